"""`ocpp-gateway`: run the gateway, check a mapping file, export the BACnet point list (EDE) or the Modbus
register list (CSV and Markdown), or run simulated chargers against a central system."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import resource
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gateway import __version__
from gateway.layout import Layout, expand
from gateway.mapping import GATEWAY_BLOCK_WIDTH, Mapping, load_mapping
from gateway.settings import Settings
from gateway.simulator.options import add_arguments as add_simulate_arguments
from gateway.yamlsource import SourceError


def _settings_options(parser: argparse.ArgumentParser) -> None:
    """One option per setting, so `run --help` documents every GATEWAY_* variable."""
    for name, field in Settings.model_fields.items():
        default = field.default
        default_text = "" if default is None else f", default {getattr(default, 'value', default)}"
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            default=None,
            metavar=name.split("_")[-1].upper(),
            help=f"{field.description} (env GATEWAY_{name.upper()}{default_text})",
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ocpp-gateway", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="run the gateway",
        description="Run the OCPP central system. Every option can also be set as a GATEWAY_* environment "
        "variable; an option given here wins over the environment.",
    )
    _settings_options(run)
    check = commands.add_parser("check", help="validate a mapping file and print a summary")
    check.add_argument("file", nargs="?", type=Path, help="mapping file (default: GATEWAY_MAPPING)")
    export = commands.add_parser(
        "export-ede",
        help="write the BACnet device's objects as EDE files (B.I.G.-EU point list)",
        description="Write the objects the BACnet device serves (as `run` with the same settings would) as EDE "
        "files (<device name>_EDE.csv, _StateTexts.csv, _ObjTypes.csv, _Units.csv) into DIR, for a BMS to "
        "import. Points the mapping does not place get their instances now and keep them. No socket is bound.",
    )
    export.add_argument("directory", type=Path, metavar="DIR", help="directory to write the files to")
    _settings_options(export)
    export_modbus = commands.add_parser(
        "export-modbus",
        help="write the Modbus register list (CSV and Markdown)",
        description="Write every register the Modbus server serves for the mapping (GATEWAY_MAPPING or "
        "--mapping): the gateway block, then each charger's and each pattern slot's registers, with address, "
        "1-based reference, type, scale, word order, unit, access, range and sentinel. FILE gets the CSV and "
        "FILE with suffix .md the same list as Markdown; a FILE ending in .md gets the Markdown and the CSV goes "
        "beside it (suffix .csv). No socket is bound.",
    )
    export_modbus.add_argument("file", type=Path, metavar="FILE", help="file to write the list to")
    _settings_options(export_modbus)
    add_simulate_arguments(
        commands.add_parser(
            "simulate",
            help="run simulated chargers against a central system (commissioning without a car)",
            description="Connect simulated OCPP 1.6J chargers (profiles amina, ac-smart, sicharge-d, generic) to "
            "URL/<charge point id>: they boot, run charging sessions with meter values that follow the limits "
            "applied, and answer the central system's commands as their model does. A summary line every few "
            "seconds, a table per profile at the end. Exit code 0 when every charger booted Accepted and nothing "
            "unexpected happened, else 1.",
        )
    )
    commands.add_parser(
        "schema",
        help="print the mapping file's JSON schema",
        description="Print the JSON schema of the mapping file (kept as mappings/mapping.schema.json, for editors).",
    )
    return parser


def _simulate(args: argparse.Namespace) -> int:
    from gateway.simulator.fleet import run_fleet
    from gateway.simulator.options import from_arguments

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The library logs every frame, and each CALLERROR it gets; the simulator counts them.
    logging.getLogger("ocpp").setLevel(logging.ERROR)
    logging.getLogger("gateway.simulator.frames").setLevel(logging.ERROR)
    _raise_open_file_limit()
    return run_fleet(from_arguments(args))


def _load(path: Path) -> Mapping | None:
    try:
        return load_mapping(path)
    except SourceError as exc:
        print(
            f"mapping file refused ({len(exc.issues)} problem{'s' if len(exc.issues) > 1 else ''}):",
            file=sys.stderr,
        )
        for issue in exc.issues:
            print(f"  {issue}", file=sys.stderr)
        return None


def _summary(path: Path, mapping: Mapping) -> str:
    ids = [c.id for c in mapping.chargers if c.id is not None]
    patterns = [c.pattern for c in mapping.chargers if c.pattern is not None]
    auth = mapping.authorization
    listed = f" ({', '.join(ids)})" if ids else ""
    matched = f" ({', '.join(p or '' for p in patterns)})" if patterns else ""
    templates = ", ".join(f"{name}: {len(t.points)} points" for name, t in mapping.templates.items())
    layout = expand(mapping)
    return (
        f"{path}: OK\n"
        f"  chargers by id: {len(ids)}{listed}\n"
        f"  chargers by pattern: {len(patterns)}{matched}\n"
        f"  authorization: {auth.mode.value}, whitelist {len(auth.whitelist)}, blacklist {len(auth.blacklist)}\n"
        f"  templates: {len(mapping.templates)}{f' ({templates})' if templates else ''}\n"
        f"  {_bacnet_summary(layout)}\n"
        f"  {_modbus_summary(layout)}\n"
        f"  {_gateway_block_summary(mapping)}"
    )


def _bacnet_summary(layout: Layout) -> str:
    """`BACnet: 635 objects (instances 1000-20930)`, counting every slot of a pattern."""
    instances = [placed.bacnet[1] for placed in layout.points if placed.bacnet is not None]
    if not instances:
        return "BACnet: no objects"
    return f"BACnet: {len(instances)} objects (instances {min(instances)}-{max(instances)})"


def _modbus_summary(layout: Layout) -> str:
    """`Modbus: 1032 registers (input 856, holding 72, ...) in units 1, 2, 10-29`: addresses taken (a coil or
    discrete input is one), counting every slot of a pattern."""
    per_table: dict[str, int] = {}
    units: set[int] = set()
    for placed in layout.points:
        if placed.modbus is not None:
            table = placed.modbus.table.value
            per_table[table] = per_table.get(table, 0) + placed.modbus.width
            units.add(placed.modbus.unit)
    if not per_table:
        return "Modbus: no registers"
    tables = ", ".join(f"{table} {per_table[table]}" for table in _TABLES if table in per_table)
    from gateway.modbus.registers import number_ranges

    return f"Modbus: {sum(per_table.values())} registers ({tables}) in units {number_ranges(sorted(units))}"


_TABLES = ("input", "holding", "coil", "discrete-input")


def _gateway_block_summary(mapping: Mapping) -> str:
    from gateway.modbus.registers import RegisterMap

    registers = RegisterMap(mapping)
    start = registers.gateway_start
    return (
        f"Modbus gateway block: registers {start}-{start + GATEWAY_BLOCK_WIDTH - 1}, layout version "
        f"{registers.layout_version}, checksum {registers.checksum:08X}"
    )


def _export_ede(settings: Settings, directory: Path) -> int:
    mapping = _load(settings.mapping)
    if mapping is None:
        return 1
    from gateway.bacnet.ede import export_ede, read_ede

    paths = asyncio.run(export_ede(settings, mapping, directory))
    for path in paths:
        print(path)
    objects = len(read_ede(paths[0]))
    print(f"EDE: {objects} objects of device {settings.bacnet_device_id} in {directory}")
    return 0


def _export_modbus(settings: Settings, path: Path) -> int:
    mapping = _load(settings.mapping)
    if mapping is None:
        return 1
    from gateway.modbus.export import export_modbus, list_paths
    from gateway.modbus.registers import RegisterMap

    try:
        rows = export_modbus(mapping, path)
    except OSError as exc:
        print(f"cannot write the register list: {exc}", file=sys.stderr)
        return 1
    chargers = len({register.label for register in RegisterMap(mapping).registers})
    other = next(written for written in list_paths(path) if written != path)
    print(f"Modbus register list: {rows} registers of {chargers} chargers/slots in {path} and {other}")
    return 0


def _raise_open_file_limit() -> None:
    """Each charger holds a socket: lift the soft limit on open files (often 1024) to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(
                resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard)
            )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "simulate":
        return _simulate(args)  # a client of a central system: no gateway settings
    overrides: dict[str, Any] = {
        name: value
        for name, value in vars(args).items()
        if name in Settings.model_fields and value is not None
    }
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        print(f"settings refused:\n{exc}", file=sys.stderr)
        return 2
    if args.command == "schema":
        print(json.dumps(Mapping.model_json_schema(), indent=2))
        return 0
    if args.command == "check":
        path = args.file or settings.mapping
        mapping = _load(path)
        if mapping is None:
            return 1
        print(_summary(path, mapping))
        return 0
    if args.command == "export-ede":
        return _export_ede(settings, args.directory)
    if args.command == "export-modbus":
        return _export_modbus(settings, args.file)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if settings.log_level != "debug":
        for noisy in ("ocpp", "apscheduler"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        # The library warns of each CALLERROR a charger answers to our calls: the command's outcome records it.
        logging.getLogger("ocpp.frames").setLevel(logging.ERROR)
    mapping = _load(settings.mapping)
    if mapping is None:
        return 1
    _raise_open_file_limit()
    from gateway.server import serve

    started = True
    with contextlib.suppress(KeyboardInterrupt):
        started = asyncio.run(serve(settings, mapping))
    return 0 if started else 3


if __name__ == "__main__":
    sys.exit(main())
