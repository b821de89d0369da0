"""The local authorization list against a charger that keeps its list and checks versions strictly, as OCPP 1.6
§5.15 SendLocalList asks: a differential update whose version is less than or equal to the charger's is answered
VersionMismatch. The list follows the authorization mode, goes in parts with growing versions, is not sent when
nothing changed, and follows a mapping reload."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action

from gateway.mapping import Mapping
from gateway.ocpp16.charge_point import on
from gateway.server import RunningGateway, running
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


async def test_a_long_list_goes_in_parts_each_with_a_greater_version(tmp_path: Path) -> None:
    """OCPP 1.6 §5.15: a list longer than SendLocalListMaxLength goes as a full update and differential ones,
    each with a version greater than the one before; the last part's version is the list's."""
    settings = make_settings(tmp_path, read_configuration=True)
    async with (
        running(settings, Mapping.model_validate(site("none-except-whitelist"))) as gateway,
        httpx.AsyncClient(base_url=gateway.http_url) as api,
        connect_charger(gateway, "CP1", cls=StrictList) as charger,
    ):
        assert isinstance(charger, StrictList)
        charger.config["SendLocalListMaxLength"] = "2"
        await charger.boot()
        await until(lambda: len(charger.calls("GetConfiguration")) >= 1)
        await api.post("/api/chargers/CP1/commands/get-configuration", json={})
        result = await send(api, "Full")
        listed = (await api.get("/api/local-list", params={"charger_id": "CP1"})).json()
    parts = charger.calls("SendLocalList")
    assert result["outcome"] == "accepted"
    assert [(p["updateType"], len(p["localAuthorizationList"])) for p in parts] == [
        ("Full", 2),
        ("Differential", 2),
        ("Differential", 2),
        ("Differential", 1),
    ]
    versions = [p["listVersion"] for p in parts]
    assert versions == sorted(set(versions))  # strictly growing
    assert charger.list_version == versions[-1] == listed["version"] == listed["charger_version"]
    assert {tag.casefold() for tag in listed["entries"]} == set(charger.entries)


async def test_an_unchanged_list_is_not_sent_again(tmp_path: Path) -> None:
    """No differential update goes out when nothing changed: the answer says so and the command history holds
    only the calls that were sent."""
    async with (
        running(make_settings(tmp_path), Mapping.model_validate(site("none-except-whitelist"))) as gateway,
        httpx.AsyncClient(base_url=gateway.http_url) as api,
        connect_charger(gateway, "CP1", cls=StrictList) as charger,
    ):
        assert isinstance(charger, StrictList)
        await charger.boot()
        await send(api, "Full")
        again = await send(api, "Differential")
        history = (await api.get("/api/commands", params={"charger_id": "CP1"})).json()
        log = (await api.get("/api/messages", params={"charger_id": "CP1"})).json()
    assert (again["outcome"], again["status"]) == ("accepted", None)
    assert again["detail"].startswith("unchanged")
    assert len(charger.calls("SendLocalList")) == 1
    assert [entry["action"] for entry in history] == ["SendLocalList"]
    assert any("unchanged" in entry["summary"] for entry in log)


async def test_versions_only_grow_even_when_a_list_comes_back(tmp_path: Path) -> None:
    """A list changed back to an earlier content gets a new version (the charger holds a greater one than the
    earlier), and versions keep growing across a restart."""
    first = Mapping.model_validate(site("none-except-whitelist"))
    second = Mapping.model_validate(site("none-except-whitelist", whitelist=["NEW-1"], blacklist=[]))
    settings = make_settings(tmp_path)
    async with (
        running(settings, first) as gateway,
        httpx.AsyncClient(base_url=gateway.http_url) as api,
        connect_charger(gateway, "CP1", cls=StrictList) as charger,
    ):
        assert isinstance(charger, StrictList)
        await charger.boot()
        await send(api, "Full")
        for mapping in (second, first):
            gateway.central.apply_mapping(mapping)
            held = charger.list_version
            await until(lambda: charger.list_version > held)  # noqa: B023 - awaited here; the reload brings the list along
        sent = charger.calls("SendLocalList")
        before_restart = charger.list_version
    assert [(p["updateType"], p["listVersion"]) for p in sent] == [
        ("Full", 1),
        ("Differential", 2),
        ("Differential", 3),
    ]
    async with (
        running(settings, second) as gateway,
        httpx.AsyncClient(base_url=gateway.http_url) as api,
    ):
        assert (await api.get("/api/local-list")).json()["version"] > before_restart


async def test_a_mapping_reload_updates_the_list_a_charger_holds(tmp_path: Path) -> None:
    """A tag blacklisted by a reload is Blocked in the lists of the chargers the gateway gave one, at once for a
    connected charger and at the next boot for one that was away."""
    settings = make_settings(tmp_path)
    settings.mapping.write_text(json.dumps(site("none-except-whitelist")))
    async with (
        running(settings) as gateway,
        httpx.AsyncClient(base_url=gateway.http_url) as api,
    ):
        async with connect_charger(gateway, "CP1", cls=StrictList) as charger:
            assert isinstance(charger, StrictList)
            await charger.boot()
            await send(api, "Full")
            assert charger.offline("WHITE-1", "Invalid") == "Accepted"
            lists = {**LISTS, "blacklist": [*LISTS["blacklist"], "WHITE-1"]}
            settings.mapping.write_text(json.dumps(site("none-except-whitelist", **lists)))
            assert (await api.post("/api/mapping/reload")).status_code == 200
            await until(lambda: charger.offline("WHITE-1", "Invalid") == "Blocked")
            assert charger.calls("SendLocalList")[-1]["updateType"] == "Differential"
            version = charger.list_version
        settings.mapping.write_text(json.dumps(site("authorize-none")))
        assert (await api.post("/api/mapping/reload")).status_code == 200
        async with connect_charger(gateway, "CP1", cls=StrictList) as again:
            assert isinstance(again, StrictList)
            again.list_version, again.entries = version, dict(charger.entries)  # the list it kept
            await again.boot()
            await until(lambda: again.list_version > version)
            assert again.entries == {}  # authorize-none hands out nothing
            assert again.calls("SendLocalList")[0]["updateType"] == "Differential"


async def test_a_differential_the_charger_refuses_becomes_a_full_update(gateway: RunningGateway) -> None:
    """A charger that lost its list (it answers VersionMismatch) gets the whole list."""
    async with (
        httpx.AsyncClient(base_url=gateway.http_url) as api,
        connect_charger(gateway, "CP1", cls=StrictList) as charger,
    ):
        assert isinstance(charger, StrictList)
        await charger.boot()
        await send(api, "Full")
        charger.list_version, charger.entries = 99, {}
        gateway.central.apply_mapping(
            Mapping.model_validate(
                {**site("none-except-whitelist"), "chargers": [{"id": "CP1"}, {"id": "CP2"}]}
            )
        )
        result = await send(api, "Differential")
    assert result["outcome"] == "accepted"
    assert [p["updateType"] for p in charger.calls("SendLocalList")][-1] == "Full"
