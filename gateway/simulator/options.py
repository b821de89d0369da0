"""The options of `ocpp-gateway simulate`: their command-line form and the `FleetOptions` they make. Light to
import (no sockets, no OCPP library), so the command line builds its parser without loading the simulator."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from gateway.simulator.profiles import PROFILES


@dataclass(frozen=True)
class FleetOptions:
    """What `ocpp-gateway simulate` was asked for; times in seconds."""

    url: str = "ws://127.0.0.1:8887"
    chargers: int = 4
    rate: float = 5.0  # connections per second
    duration: float = 0.0  # 0: until SIGINT/SIGTERM
    mix: tuple[tuple[str, int], ...] = ()  # (profile, weight); empty: every profile once
    id_prefix: str = ""
    interval: float = 10.0
    session: float = 120.0
    idle: float = 60.0
    id_tag: str = "SIM-TAG"
    seed: int | None = None
    quiet: bool = False
    summary_every: float = 2.0
    json_path: Path | None = None


def parse_mix(text: str) -> tuple[tuple[str, int], ...]:
    """`amina=2,ac-smart=1` -> (("amina", 2), ("ac-smart", 1)); a bare name weighs 1. Raises ValueError."""
    mix: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition("=")
        name = name.strip()
        if name not in PROFILES:
            raise ValueError(f"unknown profile {name!r} (profiles: {', '.join(PROFILES)})")
        try:
            value = int(weight) if weight.strip() else 1
        except ValueError:
            raise ValueError(f"the weight of {name} must be a whole number, not {weight!r}") from None
        if value < 0:
            raise ValueError(f"the weight of {name} cannot be negative")
        mix[name] = mix.get(name, 0) + value
    if not any(mix.values()):
        raise ValueError("the mix names no profile with a weight above 0")
    return tuple((name, weight) for name, weight in mix.items() if weight > 0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `simulate` command's arguments."""
    parser.add_argument(
        "url",
        nargs="?",
        default="ws://127.0.0.1:8887",
        help="central system URL (default ws://127.0.0.1:8887)",
    )
    parser.add_argument(
        "-n", "--chargers", type=_at_least_one, default=4, help="how many chargers (default 4)"
    )
    parser.add_argument(
        "--rate", type=_positive, default=5.0, help="connections per second while ramping up (default 5)"
    )
    parser.add_argument(
        "--duration",
        type=_not_negative,
        default=0.0,
        help="seconds to run; 0 (default) until Ctrl-C or SIGTERM",
    )
    parser.add_argument(
        "--mix",
        type=_mix,
        default=(),
        help="profiles and their weights, e.g. amina=2,ac-smart=1,sicharge-d=1,generic=1 (default: equal, "
        "assigned round-robin)",
    )
    parser.add_argument(
        "--id-prefix", default="", help="put in front of every charge point id (default none)"
    )
    parser.add_argument(
        "--interval",
        type=_not_negative,
        default=10.0,
        help="meter values every this many seconds (default 10)",
    )
    parser.add_argument(
        "--session", type=_positive, default=120.0, help="mean session length, s (default 120)"
    )
    parser.add_argument(
        "--idle", type=_not_negative, default=60.0, help="mean idle time between sessions, s (default 60)"
    )
    parser.add_argument("--id-tag", default="SIM-TAG", help="id tag the cars present (default SIM-TAG)")
    parser.add_argument("--seed", type=int, default=None, help="seed for reproducible randomness")
    parser.add_argument("--quiet", action="store_true", help="no live summary lines, only the final summary")
    parser.add_argument(
        "--summary-every", type=_positive, default=2.0, help="seconds between summary lines (default 2)"
    )
    parser.add_argument(
        "--json", type=Path, default=None, metavar="FILE", help="write the final figures here"
    )


def from_arguments(args: argparse.Namespace) -> FleetOptions:
    return FleetOptions(
        url=args.url,
        chargers=args.chargers,
        rate=args.rate,
        duration=args.duration,
        mix=args.mix,
        id_prefix=args.id_prefix,
        interval=args.interval,
        session=args.session,
        idle=args.idle,
        id_tag=args.id_tag,
        seed=args.seed,
        quiet=args.quiet,
        summary_every=args.summary_every,
        json_path=args.json,
    )


def _mix(text: str) -> tuple[tuple[str, int], ...]:
    try:
        return parse_mix(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
    return value


def _not_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"cannot be negative, not {text}")
    return value


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {text}")
    return value
