"""The four authorization modes over a real WebSocket: Authorize and StartTransaction both follow them."""

from __future__ import annotations

from pathlib import Path

import pytest
from ocpp.v16 import call

from gateway.mapping import Mapping
from gateway.server import running
from tests.conftest import connect_charger, make_settings

LISTS = {
    "whitelist": [
        "WHITE-1",
        {"id_tag": "WHITE-OLD", "expiry_date": "2020-01-01T00:00:00Z"},
        "BOTH-1",
        {"id_tag": "MEMBER-1", "parent_id_tag": "BAD-FLEET"},
    ],
    "blacklist": ["BLACK-1", "both-1", "BAD-FLEET"],
}
OPEN = {
    "WHITE-1": "Accepted",
    "WHITE-OLD": "Accepted",  # the whitelist's expiry plays no part where every tag is accepted
    "BLACK-1": "Blocked",
    "BOTH-1": "Blocked",
    "MEMBER-1": "Blocked",  # its parent (group) is blacklisted
    "OTHER": "Accepted",
}


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("authorize-all", OPEN),  # a blacklisted (stolen) card stays Blocked when the site is opened to all
        ("authorize-none", dict.fromkeys(OPEN, "Invalid")),
        ("all-except-blacklist", OPEN),
        (
            "none-except-whitelist",
            {
                "WHITE-1": "Accepted",
                "white-1": "Accepted",
                "WHITE-OLD": "Expired",
                "BLACK-1": "Blocked",
                "BOTH-1": "Blocked",
                "MEMBER-1": "Blocked",
                "OTHER": "Invalid",
            },
        ),
    ],
)
async def test_mode(tmp_path: Path, mode: str, expected: dict[str, str]) -> None:
    """OCPP 1.6 §4.2 Authorize, §4.8 StartTransaction, §4.10 StopTransaction: one policy answers all three, and a
    blacklisted tag is Blocked wherever the blacklist applies."""
    mapping = Mapping.model_validate({"chargers": [{"id": "CP1"}], "authorization": {"mode": mode, **LISTS}})
    async with running(make_settings(tmp_path), mapping) as gateway, connect_charger(gateway, "CP1") as cp:
        await cp.boot()
        for connector_id, (id_tag, status) in enumerate(expected.items(), start=1):
            authorized = await cp.call(call.Authorize(id_tag=id_tag))
            assert authorized.id_tag_info["status"] == status, id_tag
            started = await cp.call(
                call.StartTransaction(
                    connector_id=connector_id, id_tag=id_tag, meter_start=0, timestamp="2026-05-01T10:00:00Z"
                )
            )
            assert started.id_tag_info["status"] == status, id_tag
            assert (
                started.transaction_id > 0
            )  # a start is recorded whatever the answer: the charger has started
            stopped = await cp.call(
                call.StopTransaction(
                    meter_stop=10,
                    timestamp="2026-05-01T10:05:00Z",
                    transaction_id=started.transaction_id,
                    id_tag=id_tag,
                )
            )
            assert stopped.id_tag_info["status"] == status, id_tag
        rows = await gateway.central.store.fetch_all(
            "SELECT id_tag, id_tag_status FROM transactions ORDER BY id"
        )
    assert {row["id_tag"]: row["id_tag_status"] for row in rows} == expected


async def test_whitelist_entry_hands_out_parent_and_expiry(tmp_path: Path) -> None:
    mapping = Mapping.model_validate(
        {
            "chargers": [{"id": "CP1"}],
            "authorization": {
                "mode": "none-except-whitelist",
                "whitelist": [
                    {"id_tag": "GW-1", "parent_id_tag": "FLEET", "expiry_date": "2030-01-01T00:00:00Z"}
                ],
            },
        }
    )
    async with running(make_settings(tmp_path), mapping) as gateway, connect_charger(gateway, "CP1") as cp:
        await cp.boot()
        answer = await cp.call(call.Authorize(id_tag="GW-1"))
    # the charger's library validated the camelCase answer against the 1.6 schema and hands it over in snake_case
    assert answer.id_tag_info == {
        "status": "Accepted",
        "parent_id_tag": "FLEET",
        "expiry_date": "2030-01-01T00:00:00.000Z",
    }
