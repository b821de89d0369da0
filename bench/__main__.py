"""`python -m bench [NAME] [options]`: the benchmarks, each against a gateway in its own process.

`python -m bench` (what `make bench` runs) runs every benchmark with its defaults, one after the other; one
that fails or crashes does not stop the others. `python -m bench NAME [options]` runs only that one, with the
options going to it (`python -m bench NAME --help`): NAME is connect_many, bacnet or modbus. Options without a
name (`python -m bench --chargers 200`) go to `bench.connect_many`, as they always did.
"""

import importlib
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import cast

BENCHMARKS = ("connect_many", "fleet", "throughput", "bacnet", "modbus")


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
    return code


sys.exit(main(sys.argv[1:]))
