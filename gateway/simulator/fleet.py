"""Run many simulated chargers against a central system: `ocpp-gateway simulate`.

Chargers are assigned profiles round-robin by the mix's weights (smooth weighted round-robin, so `-n 4` with the
default equal mix gives one of each) and numbered within their profile (C1-1000000001, ACSMART-01, ...). They
connect at `rate` per second and run for `duration` seconds, or until SIGINT/SIGTERM; then every session is
stopped (StopTransaction, reason Local) and every socket closed. A summary line goes to stdout every
`summary_every` seconds, a table per profile at the end, and `json_path` gets the final figures.

The exit code is 0 when every charger booted Accepted and nothing unexpected happened (a CALLERROR from the
central system, a call left unanswered, a dropped connection, a failure of the simulator itself), else 1; the
final summary says which.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import sys
from collections import Counter
from collections.abc import Iterable
from typing import Any, TextIO

from gateway.simulator.charger import Behaviour, SimulatedCharger
from gateway.simulator.options import FleetOptions
from gateway.simulator.profiles import PROFILES, ChargerProfile

STOP_TIMEOUT = 20.0  # seconds the chargers get to stop their sessions and close
MAX_SHOWN = 20  # problems listed in the final summary


def plan(options: FleetOptions) -> list[tuple[ChargerProfile, str]]:
    """The fleet's (profile, charge point id) in the order they connect."""
    mix = options.mix or tuple((name, 1) for name in PROFILES)
    total = sum(weight for _, weight in mix)
    current = dict.fromkeys((name for name, _ in mix), 0)
    numbers: Counter[str] = Counter()
    chargers = []
    for _ in range(options.chargers):
        for name, weight in mix:
            current[name] += weight
        chosen = max(current, key=lambda name: current[name])  # the first of equals: the mix's order
        current[chosen] -= total
        numbers[chosen] += 1
        profile = PROFILES[chosen]
        chargers.append((profile, profile.charger_id(numbers[chosen], options.id_prefix)))
    return chargers


class Fleet:
    """The chargers of one run, their tasks and their figures."""

    def __init__(self, options: FleetOptions, out: TextIO | None = None) -> None:
        self.options = options
        self.out = out or sys.stdout
        behaviour = Behaviour(
            interval=options.interval,
            session=options.session,
            idle=options.idle,
            id_tag=options.id_tag,
            unplug=min(1.0, options.session / 10),
        )
        self.chargers = [
            SimulatedCharger(profile, charger_id, options.url, behaviour, _rng(options.seed, charger_id))
            for profile, charger_id in plan(options)
        ]
        self.stop = asyncio.Event()
        self.started = 0.0
        self.elapsed = 0.0

    async def run(self) -> int:
        """Run until the duration is over or `stop` is set; returns the exit code."""
        loop = asyncio.get_running_loop()
        self.started = loop.time()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, self.stop.set)
        tasks: list[asyncio.Task[None]] = []
        reporter = asyncio.create_task(self._report())
        try:
            timer = self._timer()
            for index, charger in enumerate(self.chargers):
                start_at = self.started + index / self.options.rate
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), max(0.0, start_at - loop.time()))
                if self.stop.is_set():
                    break
                tasks.append(asyncio.create_task(charger.run(self.stop), name=charger.id))
            await timer
            await self._finish(tasks)
        finally:
            self.stop.set()
            reporter.cancel()
            await asyncio.gather(reporter, return_exceptions=True)
            for signum in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.remove_signal_handler(signum)
        self.elapsed = loop.time() - self.started
        figures = self.figures()
        self._print_final(figures)
        if self.options.json_path is not None:
            self.options.json_path.write_text(json.dumps(figures, indent=2) + "\n")
        return int(figures["exit_code"])

    def _timer(self) -> asyncio.Task[None]:
        async def wait() -> None:
            timeout = self.options.duration if self.options.duration > 0 else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout)
            self.stop.set()

        return asyncio.create_task(wait())

    async def _finish(self, tasks: list[asyncio.Task[None]]) -> None:
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
        for task in late:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                charger = next(c for c in self.chargers if c.id == task.get_name())
                charger.stats.problem(f"{charger.id}: failed: {task.exception()!r}")

    async def _report(self) -> None:
        if self.options.quiet or self.options.summary_every <= 0:
            return
        while True:
            await asyncio.sleep(self.options.summary_every)
            elapsed = asyncio.get_running_loop().time() - self.started
            print(summary_line(elapsed, self.chargers), file=self.out, flush=True)

    # -- figures ---------------------------------------------------------------------------------------------

    def figures(self) -> dict[str, Any]:
        problems = verdict(self.chargers)
        by_profile = {
            name: totals([c for c in self.chargers if c.profile.name == name])
            for name in dict.fromkeys(c.profile.name for c in self.chargers)
        }
        return {
            "url": self.options.url,
            "elapsed_s": round(self.elapsed, 1),
            "exit_code": 1 if problems else 0,
            "result": "OK" if not problems else "FAILED",
            "problems": problems,
            "totals": totals(self.chargers),
            "profiles": by_profile,
            "chargers": [charger_figures(c) for c in self.chargers],
        }

    def _print_final(self, figures: dict[str, Any]) -> None:
        print(final_summary(figures), file=self.out, flush=True)


def _rng(seed: int | None, charger_id: str) -> random.Random:
    return random.Random(f"{seed}/{charger_id}") if seed is not None else random.Random()


def totals(chargers: Iterable[SimulatedCharger]) -> dict[str, Any]:
    """The summed figures of some chargers."""
    chargers = list(chargers)
    sent: Counter[str] = Counter()
    received: Counter[str] = Counter()
    for c in chargers:
        sent.update(c.stats.sent)
        received.update(c.stats.received)
    registrations = Counter(c.registration for c in chargers)
    return {
        "chargers": len(chargers),
        "connected": sum(c.connected for c in chargers),
        "accepted": registrations["Accepted"],
        "pending": registrations["Pending"],
        "rejected": registrations["Rejected"],
        "never_accepted": sum(1 for c in chargers if not c.stats.boots["Accepted"]),
        "charging": sum(c.charging() for c in chargers),
        "sessions_started": sum(c.stats.sessions_started for c in chargers),
        "sessions_ended": sum(c.stats.sessions_ended for c in chargers),
        "id_tags_refused": sum(c.stats.refused for c in chargers),
        "sent": sum(sent.values()),
        "received": sum(received.values()),
        "sent_by_action": dict(sorted(sent.items())),
        "received_by_action": dict(sorted(received.items())),
        "callerrors_sent": sum(sum(c.stats.errors_sent.values()) for c in chargers),
        "callerrors_received": sum(sum(c.stats.errors_received.values()) for c in chargers),
        "disconnects": sum(c.stats.disconnects for c in chargers),
        "reconnects": sum(c.stats.reconnects for c in chargers),
        "connect_failures": sum(c.stats.connect_failures for c in chargers),
        "energy_kwh": round(sum(c.energy_wh() for c in chargers) / 1000, 3),
        "problems": sum(c.stats.problem_count for c in chargers),
    }


def charger_figures(c: SimulatedCharger) -> dict[str, Any]:
    return {
        "id": c.id,
        "profile": c.profile.name,
        "registration": c.registration,
        "boots": dict(c.stats.boots),
        "sent": dict(sorted(c.stats.sent.items())),
        "received": dict(sorted(c.stats.received.items())),
        "callerrors_sent": dict(c.stats.errors_sent),
        "callerrors_received": dict(c.stats.errors_received),
        "sessions_started": c.stats.sessions_started,
        "sessions_ended": c.stats.sessions_ended,
        "disconnects": c.stats.disconnects,
        "reconnects": c.stats.reconnects,
        "connect_failures": c.stats.connect_failures,
        "connect_error": c.stats.connect_error,
        "energy_wh": round(c.energy_wh(), 1),
        "problems": list(c.stats.problems),
    }


def verdict(chargers: list[SimulatedCharger]) -> list[str]:
    """Why the run failed (empty when it did not)."""
    reasons = []
    never = [c for c in chargers if not c.stats.boots["Accepted"]]
    if never:
        shown = ", ".join(f"{c.id} ({_registration(c)})" for c in never[:5])
        more = f" and {len(never) - 5} more" if len(never) > 5 else ""
        reasons.append(f"{len(never)} of {len(chargers)} chargers never booted Accepted: {shown}{more}")
    dropped = sum(c.stats.disconnects for c in chargers)
    if dropped:
        reasons.append(f"{dropped} connections dropped by the other side")
    problems = [text for c in chargers for text in c.stats.problems]
    count = sum(c.stats.problem_count for c in chargers)
    reasons.extend(problems[:MAX_SHOWN])
    if count > MAX_SHOWN:
        reasons.append(f"... and {count - MAX_SHOWN} more problems")
    return reasons


def _registration(c: SimulatedCharger) -> str:
    if c.registration is not None:
        return c.registration
    if c.stats.connect_failures:
        return f"cannot connect: {c.stats.connect_error}"
    return "no answer"


def summary_line(elapsed: float, chargers: list[SimulatedCharger]) -> str:
    """One live line: `  12s connected 50/50 booted 50 (accepted 50, pending 0, rejected 0) ...`."""
    t = totals(chargers)
    booted = t["accepted"] + t["pending"] + t["rejected"]
    return (
        f"{elapsed:5.0f}s  connected {t['connected']}/{t['chargers']}  booted {booted} (accepted {t['accepted']}, "
        f"pending {t['pending']}, rejected {t['rejected']})  charging {t['charging']}  sessions "
        f"{t['sessions_started']} started, {t['sessions_ended']} ended  messages {t['sent']} sent, "
        f"{t['received']} received  CALLERRORs {t['callerrors_sent']} sent, {t['callerrors_received']} received  "
        f"disconnects {t['disconnects']}, reconnects {t['reconnects']}  energy {t['energy_kwh']:.3f} kWh"
    )


_COLUMNS = (
    ("profile", "profile"),
    ("chargers", "chargers"),
    ("accepted", "accepted"),
    ("sessions", "sessions"),
    ("sent", "sent"),
    ("received", "received"),
    ("CALLERRORs", "callerrors"),
    ("disconnects", "disconnects"),
    ("kWh", "energy_kwh"),
)


def final_summary(figures: dict[str, Any]) -> str:
    """The table per profile and the verdict."""
    rows = [dict(profile=name, **values) for name, values in figures["profiles"].items()]
    rows.append(dict(profile="total", **figures["totals"]))
    table = [[title for title, _ in _COLUMNS]]
    for row in rows:
        table.append(
            [
                row["profile"],
                str(row["chargers"]),
                str(row["accepted"]),
                f"{row['sessions_started']}/{row['sessions_ended']}",
                str(row["sent"]),
                str(row["received"]),
                f"{row['callerrors_sent']}/{row['callerrors_received']}",
                str(row["disconnects"]),
                f"{row['energy_kwh']:.3f}",
            ]
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(_COLUMNS))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in table
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.insert(len(lines) - 1, lines[1])
    head = f"simulated {figures['totals']['chargers']} chargers against {figures['url']} for {figures['elapsed_s']:g} s"
    legend = "sessions: started/ended; CALLERRORs: sent (the profiles' refusals)/received"
    if figures["problems"]:
        verdict_text = "FAILED:\n" + "\n".join(f"  - {p}" for p in figures["problems"])
    else:
        verdict_text = "OK: every charger booted Accepted, nothing unexpected"
    return "\n".join([head, *lines, legend, verdict_text])


def run_fleet(options: FleetOptions, out: TextIO | None = None) -> int:
    """Run a fleet in a new event loop; returns the exit code."""

    async def main() -> int:
        return await Fleet(options, out).run()

    return asyncio.run(main())
