"""Generated OCPP 1.6 frames against the gateway running in a process of its own: every charger-initiated action,
with payloads valid by its JSON schema, mutated (fields dropped, retyped, added), and out of range (huge integers,
lone surrogates, dates out of the calendar). Whatever arrives, OCPP-J 1.6 §4.1.3 wants each CALL answered with
a CALLRESULT or a CALLERROR; the gateway never answers InternalError, never closes the connection, and starts
again on the database it was left with.

`make test` runs a few hundred frames; `make fuzz` (HYPOTHESIS_PROFILE=fuzz) tens of thousands.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import ocpp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets import Subprotocol
from websockets.sync.client import ClientConnection, connect

pytestmark = pytest.mark.fuzz

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = Path(ocpp.__file__).resolve().parent / "v16" / "schemas"
CHARGER = "FUZZ-1"
# Every action a 1.6 charge point sends to a central system.
ACTIONS = [
    "Authorize",
    "BootNotification",
    "DataTransfer",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "StartTransaction",
    "StatusNotification",
    "StopTransaction",
]
# What a central system sends, and names no one uses: answered NotSupported and NotImplemented.
OTHER_ACTIONS = ["Reset", "RemoteStartTransaction", "SignCertificate", "Teleport", ""]
MAPPING = f"""
chargers:
  - id: {CHARGER}
    registration: Accepted
authorization:
  mode: all-except-blacklist
  blacklist: [STOLEN]
"""

settings.register_profile(
    "default", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "20000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def _schema(action: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / f"{action}.json").read_text(encoding="utf-8-sig"))
    schema.pop("$schema", None)
    schema.pop("id", None)
    return schema


# -- values ------------------------------------------------------------------------------------------------------


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid by one of the 1.6 request schemas (draft 4: objects with required and optional properties,
    arrays with minItems, strings with enum, maxLength and date-time, integers, numbers, booleans). The
    hypothesis-jsonschema package does this in general, but its release fails with current Hypothesis."""
    kind = schema.get("type")
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if kind == "object":
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {name: from_schema(sub) for name, sub in properties.items() if name in required},
            optional={name: from_schema(sub) for name, sub in properties.items() if name not in required},
        )
    if kind == "array":
        return st.lists(from_schema(schema["items"]), min_size=schema.get("minItems", 0), max_size=3)
    if kind == "string":
        if schema.get("format") == "date-time":
            return st.datetimes(timezones=st.just(UTC)).map(lambda moment: moment.isoformat())
        return st.text(max_size=schema.get("maxLength", 60))
    if kind == "integer":
        return st.integers(-(2**31), 2**31)
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    raise ValueError(f"schema not covered: {schema}")


NOW = datetime.now(UTC)
near_now = st.datetimes(
    min_value=(NOW - timedelta(days=30)).replace(tzinfo=None),
    max_value=(NOW + timedelta(hours=1)).replace(tzinfo=None),
).map(lambda moment: moment.isoformat(timespec="milliseconds") + "Z")
odd_times = st.sampled_from(
    [
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+14:00",
        "1970-01-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "yesterday",
        "",
        "2026-11-30T25:00:00Z",
    ]
)
extreme_integers = st.sampled_from([-1, 0, 1, 2**31, 2**53, 2**53 + 1, -(2**63), 2**63, 2**64 + 7, 10**30])
lone_surrogates = st.sampled_from(["\ud800", "x\udfff", "\ud83d", "a\udc00b"])
odd_text = st.one_of(
    st.text(max_size=30),
    lone_surrogates,
    st.just("é" * 3000),
    st.just("=cmd|' /C calc'!A0"),
    st.just("'; DROP TABLE transactions; --"),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | odd_text | extreme_integers,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _with_times(payload: Any, times: Iterator[str]) -> Any:
    """The payload with each timestamp replaced by a time near now (schema-made ones are years off)."""
    if isinstance(payload, dict):
        return {
            key: next(times) if key == "timestamp" else _with_times(value, times)
            for key, value in payload.items()
        }
    if isinstance(payload, list):
        return [_with_times(item, times) for item in payload]
    return payload


@st.composite
def valid_payloads(draw: st.DrawFn, action: str) -> dict[str, Any]:
    payload: dict[str, Any] = draw(from_schema(_schema(action)))
    if draw(st.booleans()):
        payload = _with_times(payload, iter(draw(st.lists(near_now, min_size=8, max_size=8))))
    if "connectorId" in payload and draw(st.booleans()):
        payload["connectorId"] = draw(st.integers(0, 3))
    return payload


def _paths(payload: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    if isinstance(payload, dict):
        for key, value in payload.items():
            found += _paths(value, (*path, key))
    elif isinstance(payload, list):
        for index, value in enumerate(payload):
            found += _paths(value, (*path, index))
    return found


def _replace(payload: Any, path: tuple[Any, ...], value: Any, *, delete: bool = False) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(payload, dict):
        copy = dict(payload)
        if delete and not rest:
            copy.pop(head, None)
        else:
            copy[head] = _replace(copy[head], rest, value, delete=delete)
        return copy
    copy_list = list(payload)
    if delete and not rest:
        copy_list.pop(head)
    else:
        copy_list[head] = _replace(copy_list[head], rest, value, delete=delete)
    return copy_list


@st.composite
def mutated_payloads(draw: st.DrawFn, action: str) -> Any:
    payload = draw(valid_payloads(action))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(payload)
        kind = draw(st.sampled_from(["drop", "retype", "extreme", "text", "time", "add"]))
        if kind == "add" or not paths:
            payload = {**payload, draw(st.text(min_size=1, max_size=10)): draw(json_values)}
            continue
        path = draw(st.sampled_from(paths))
        if kind == "drop":
            payload = _replace(payload, path, None, delete=True)
        elif kind == "retype":
            payload = _replace(payload, path, draw(json_values))
        elif kind == "extreme":
            payload = _replace(payload, path, draw(extreme_integers))
        elif kind == "text":
            payload = _replace(payload, path, draw(odd_text))
        else:
            payload = _replace(payload, path, draw(odd_times))
    return payload


@st.composite
def frames(draw: st.DrawFn) -> tuple[str, str]:
    """(unique id, frame text) of one CALL."""
    unique_id = f"f{draw(st.integers(0, 10**9))}"
    which = draw(st.integers(0, 9))
    if which == 0:
        action, payload = (
            draw(st.sampled_from(OTHER_ACTIONS)),
            draw(json_values.filter(lambda v: isinstance(v, dict)) | st.just({})),
        )
    else:
        action = draw(st.sampled_from(ACTIONS))
        payload = draw(valid_payloads(action) if which <= 4 else mutated_payloads(action))
    text = json.dumps([2, unique_id, action, payload])  # a lone surrogate goes out as its \\u escape
    if draw(st.integers(0, 19)) == 0:
        text = "\ufeff" + text
    return unique_id, text


# -- the gateway in a process of its own ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Gateway:
    """`ocpp-gateway run` on free ports with its own database; started and stopped like an installer would."""

    def __init__(self, directory: Path) -> None:
        self.port = _free_port()
        (directory / "mapping.yaml").write_text(MAPPING, encoding="utf-8")
        self.env = {
            **os.environ,
            "GATEWAY_HTTP_HOST": "127.0.0.1",
            "GATEWAY_HTTP_PORT": str(self.port),
            "GATEWAY_DATABASE": str(directory / "gateway.sqlite3"),
            "GATEWAY_MAPPING": str(directory / "mapping.yaml"),
            "GATEWAY_BACNET_ENABLED": "false",
            "GATEWAY_MODBUS_ENABLED": "false",
            "GATEWAY_READ_CONFIGURATION": "false",
            "GATEWAY_LOG_LEVEL": "warning",
        }
        self.log = directory / "gateway.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway", "run"], cwd=ROOT, env=self.env, stdout=log, stderr=log
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text(errors="replace")
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError("the gateway did not come up")

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        self.process = None
        return code

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    running = Gateway(tmp_path_factory.mktemp("fuzz"))
    running.start()
    yield running
    if running.process is not None:
        running.stop()


@pytest.fixture(scope="module")
def charger(gateway: Gateway) -> Iterator[ClientConnection]:
    # No keepalive pings: websockets draws their payload from `random`, which Hypothesis watches.
    url = f"ws://127.0.0.1:{gateway.port}/{CHARGER}"
    with connect(url, subprotocols=[Subprotocol("ocpp1.6")], ping_interval=None) as ws:
        ws.send(
            json.dumps([2, "boot", "BootNotification", {"chargePointVendor": "F", "chargePointModel": "Z"}])
        )
        assert json.loads(ws.recv(timeout=5))[2]["status"] == "Accepted"
        yield ws


ANSWERS: dict[str, int] = {}


@given(frame=frames())
def test_every_frame_is_answered_and_nothing_breaks(
    charger: ClientConnection, frame: tuple[str, str]
) -> None:
    unique_id, text = frame
    charger.send(text)
    answer = json.loads(charger.recv(timeout=10))  # a closed connection raises here
    assert answer[1] == unique_id, (text[:300], answer)
    assert answer[0] in (3, 4), answer
    if answer[0] == 4:
        assert answer[2] != "InternalError", (text[:300], answer)
        ANSWERS[answer[2]] = ANSWERS.get(answer[2], 0) + 1
    else:
        ANSWERS["CALLRESULT"] = ANSWERS.get("CALLRESULT", 0) + 1


def test_the_gateway_starts_again_on_what_it_stored(gateway: Gateway, charger: ClientConnection) -> None:
    """After the frames above (this runs after them, in file order): stop, start on the same database, and
    every list answers."""
    charger.send(json.dumps([2, "last", "Heartbeat", {}]))
    assert json.loads(charger.recv(timeout=5))[:2] == [3, "last"]
    assert gateway.stop() in (0, -signal.SIGTERM)  # uvicorn ends with the signal it shut down for
    gateway.start()
    for path in (
        "/api/chargers",
        "/api/health",
        "/api/transactions",
        "/api/messages",
        "/api/points",
        "/api/messages.csv",
        "/api/transactions.csv",
        "/api/commands",
    ):
        assert httpx.get(gateway.url + path, timeout=10).status_code == 200, path
    log = gateway.log.read_text(errors="replace")
    assert "Traceback" not in log and "failed to handle" not in log, log[-3000:]
    print(f"\nfuzz answers by kind: {dict(sorted(ANSWERS.items()))}")
