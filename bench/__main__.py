"""`python -m bench [NAME] [options]`: the benchmarks, each against a gateway in its own process.

`python -m bench` (what `make bench` runs) runs every benchmark with its defaults, one after the other; one
that fails or crashes does not stop the others. It ends with a summary of the figures that have targets
(bench/results/summary.json). `python -m bench NAME [options]` runs only that one, with the
options going to it (`python -m bench NAME --help`): NAME is connect_many, bacnet or modbus. Options without a
name (`python -m bench --chargers 200`) go to `bench.connect_many`, as they always did.
"""

import importlib
import json
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

BENCHMARKS = ("connect_many", "fleet", "throughput", "bacnet", "modbus")
RESULTS = Path(__file__).resolve().parent / "results"
MIB = 1024 * 1024


def _targets(results: dict[str, Any]) -> list[tuple[str, float | None, str, float, bool]]:
    """(figure, value, unit, target, lower is better) for every figure the benchmarks must meet."""
    rows: list[tuple[str, float | None, str, float, bool]] = []

    def figure(benchmark: str, *path: Any) -> float | None:
        value: Any = results.get(benchmark, {}).get("results")
        for key in path:
            if value is None:
                return None
            value = value[key] if isinstance(value, list) else value.get(key)
        return None if value is None else float(value)

    rows.append(("OCPP throughput, gateway / bare library", figure("throughput", "ratio"), "x", 0.8, False))
    for name in ("bacnet", "modbus"):
        label = "BACnet" if name == "bacnet" else "Modbus"
        fresh = figure(name, "freshness", "fresh", "p99_ms")
        rows.append((f"MeterValues -> readable over {label}, p99", fresh, "ms", 20.0, True))
    for name in ("bacnet", "modbus"):
        label = "BACnet" if name == "bacnet" else "Modbus"
        write = figure(name, "write", "set_charging_profile", "p99_ms")
        rows.append((f"{label} write -> SetChargingProfile, p99", write, "ms", 50.0, True))
    stages = results.get("fleet", {}).get("results", {}).get("stages", [])
    for stage in stages:
        rss = stage["rss_max_bytes"] / MIB
        rows.append((f"RSS with {stage['chargers']} chargers connected", rss, "MiB", 300.0, True))
    if stages:
        rows.append(
            (
                f"CPU with {stages[-1]['chargers']} chargers connected",
                stages[-1]["cpu_percent"],
                "%",
                25.0,
                True,
            )
        )
    rows.append(("start-up, 1,000 chargers mapped", figure("fleet", "start", "seconds"), "s", 5.0, True))
    return rows


def summary(names: Sequence[str]) -> int:
    """Print the figures with targets from this run's results; 1 if one is missed or missing."""
    results = {}
    for name in names:
        path = RESULTS / f"{name}.json"
        if path.exists():
            results[name] = json.loads(path.read_text())
    rows = _targets(results)
    print("\nsummary: the figures with targets")
    width = max(len(row[0]) for row in rows)
    missed = 0
    table = []
    for label, value, unit, target, lower in rows:
        met = value is not None and (value < target if lower else value >= target)
        missed += not met
        shown = "-" if value is None else f"{value:.2f} {unit}"
        goal = f"{'<' if lower else '>='} {target:g} {unit}"
        print(f"  {label:<{width}}  {shown:>12}  target {goal:<10}  {'ok' if met else 'MISSED'}")
        table.append({"figure": label, "value": value, "unit": unit, "target": goal, "met": met})
    machine: dict[str, Any] = next((r["machine"] for r in results.values() if "machine" in r), {})
    (RESULTS / "summary.json").write_text(json.dumps({"machine": machine, "figures": table}, indent=2) + "\n")
    return 1 if missed else 0


def run(name: str, argv: Sequence[str]) -> int:
    module = importlib.import_module(f"bench.{name}")
    main = cast(Callable[[Sequence[str]], int], module.main)
    return main(argv)


def main(argv: Sequence[str]) -> int:
    if argv and argv[0] in BENCHMARKS:
        return run(argv[0], argv[1:])
    if argv:
        return run("connect_many", argv)
    code = 0
    for name in BENCHMARKS:  # one benchmark failing does not keep the others from running
        try:
            code = max(code, run(name, []))
        except Exception:
            traceback.print_exc()
            print(f"FAILED: the {name} benchmark did not finish", file=sys.stderr)
            code = max(code, 1)
    return max(code, summary(BENCHMARKS))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
