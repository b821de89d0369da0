"""`ocpp-gateway`: run the gateway, or check a mapping file."""

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
from gateway.mapping import Mapping, load_mapping
from gateway.settings import Settings
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
    commands.add_parser(
        "schema",
        help="print the mapping file's JSON schema",
        description="Print the JSON schema of the mapping file (kept as mappings/mapping.schema.json, for editors).",
    )
    return parser


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
    return (
        f"{path}: OK\n"
        f"  chargers by id: {len(ids)}{listed}\n"
        f"  chargers by pattern: {len(patterns)}{matched}\n"
        f"  authorization: {auth.mode.value}, whitelist {len(auth.whitelist)}, blacklist {len(auth.blacklist)}"
    )


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
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if settings.log_level != "debug":
        for noisy in ("ocpp", "apscheduler"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    mapping = _load(settings.mapping)
    if mapping is None:
        return 1
    _raise_open_file_limit()
    from gateway.server import serve

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings, mapping))
    return 0


if __name__ == "__main__":
    sys.exit(main())
