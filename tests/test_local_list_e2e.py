"""The local authorization list against a charger that keeps its list and checks versions strictly, as OCPP 1.6
§5.15 SendLocalList asks: a differential update whose version is less than or equal to the charger's is answered
VersionMismatch. The list follows the authorization mode, goes in parts with growing versions, is not sent when
nothing changed, and follows a mapping reload."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action

from gateway.mapping import Mapping
from gateway.ocpp16.charge_point import on
from gateway.server import running
from tests.conftest import connect_charger, make_settings
from tests.scripted import Scripted

LISTS: dict[str, Any] = {
    "whitelist": [
        "WHITE-1",
        {"id_tag": "WHITE-OLD", "expiry_date": "2020-01-01T00:00:00Z"},
        {"id_tag": "WHITE-LATER", "expiry_date": "2099-01-01T00:00:00Z", "parent_id_tag": "FLEET"},
        "BOTH-1",
        {"id_tag": "MEMBER-1", "parent_id_tag": "BAD-FLEET"},
    ],
    "blacklist": ["BLACK-1", "both-1", "BAD-FLEET"],
}
PROBES = [
    "WHITE-1",
    "white-1",
    "WHITE-OLD",
    "WHITE-LATER",
    "BOTH-1",
    "MEMBER-1",
    "BLACK-1",
    "BAD-FLEET",
    "OTHER",
]
# What the charger decides offline for a tag its list leaves out, by mode (README, local list): AllowOfflineTx-
# ForUnknownId true where unknown tags are accepted, false elsewhere.
OFFLINE_DEFAULT = {
    "authorize-all": "Accepted",
    "all-except-blacklist": "Accepted",
    "authorize-none": "Invalid",
    "none-except-whitelist": "Invalid",
}


class StrictList(Scripted):
    """A charger that holds its local list: Full replaces it, Differential changes it, and a differential
    update needs a version greater than the one it holds (else VersionMismatch)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.list_version = 0
        self.entries: dict[str, dict[str, Any]] = {}

    @on(Action.send_local_list)
    async def on_send_local_list(  # type: ignore[override]
        self,
        list_version: int,
        update_type: str,
        local_authorization_list: list[dict[str, Any]] | None = None,
    ) -> Any:
        items = local_authorization_list or []
        limit = int(self.config.get("SendLocalListMaxLength", "1000"))
        if len(items) > limit:
            return call_result.SendLocalList(status="Failed")
        if update_type == "Differential" and list_version <= self.list_version:
            return call_result.SendLocalList(status="VersionMismatch")
        entries = {} if update_type == "Full" else dict(self.entries)
        for item in items:
            key = item["id_tag"].casefold()
            if "id_tag_info" in item:
                entries[key] = item["id_tag_info"]
            else:
                entries.pop(key, None)
        self.list_version, self.entries = list_version, entries
        return call_result.SendLocalList(status="Accepted")

    @on(Action.get_local_list_version)
    async def on_local_list_version(self) -> Any:
        return call_result.GetLocalListVersion(list_version=self.list_version)

    def offline(self, id_tag: str, default: str) -> str:
        """What the charger decides for a tag while it cannot reach the central system."""
        entry = self.entries.get(id_tag.casefold())
        return str(entry["status"]) if entry else default


def site(mode: str, **lists: Any) -> dict[str, Any]:
    return {"chargers": [{"id": "CP1"}], "authorization": {"mode": mode, **(lists or LISTS)}}


async def send(api: httpx.AsyncClient, update_type: str) -> Any:
    response = await api.post("/api/chargers/CP1/commands/send-local-list", json={"update_type": update_type})
    assert response.status_code == 200, response.text
    return response.json()


async def until(check: Any, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


@pytest.mark.parametrize("mode", list(OFFLINE_DEFAULT))
async def test_the_local_list_decides_offline_as_the_gateway_answers_online(
    tmp_path: Path, mode: str
) -> None:
    """OCPP 1.6 §3.5 Local Authorization List: for every tag the charger's offline decision from the list is the
    gateway's online answer; an expired tag never goes out as Accepted."""
    mapping = Mapping.model_validate(site(mode))
    async with (
        running(make_settings(tmp_path), mapping) as gateway,
        httpx.AsyncClient(base_url=gateway.http_url) as api,
        connect_charger(gateway, "CP1", cls=StrictList) as charger,
    ):
        assert isinstance(charger, StrictList)
        await charger.boot()
        assert (await send(api, "Full"))["outcome"] == "accepted"
        online = {tag: (await charger.call(call.Authorize(id_tag=tag))).id_tag_info for tag in PROBES}
    for tag, answer in online.items():
        assert charger.offline(tag, OFFLINE_DEFAULT[mode]) == answer["status"], tag
        entry = charger.entries.get(tag.casefold())
        if entry is not None:
            assert entry == answer, tag  # the same expiry date and parent id tag too
    assert charger.entries.get("white-old", {}).get("status") != "Accepted"
    if mode == "authorize-none":
        assert charger.entries == {}
