"""What the REST API takes is checked as what a charger sends is: invalid text, integers beyond ±(2^53 - 1),
numbers JSON does not have and dates outside the calendar are a 422 that names the field, before anything is sent
or stored; every list still answers afterwards."""

from __future__ import annotations

import httpx
import pytest

from gateway.server import RunningGateway
from tests.conftest import connect_charger
from tests.scripted import Scripted

HUGE = "123456789012345678901234567890"
CP = "/api/chargers/CP1"

REFUSED = [
    pytest.param(
        "PUT", "/api/chargers/NEW-1/known", '{"name": "a\\ud800"}', "name", id="lone-surrogate-name"
    ),
    pytest.param("PUT", "/api/chargers/NEW-2/known", '{"name": "' + "x" * 101 + '"}', "name", id="long-name"),
    pytest.param(
        "POST",
        f"{CP}/commands/reserve-now",
        f'{{"connector_id": {HUGE}, "id_tag": "T"}}',
        "connector_id",
        id="huge-connector",
    ),
    pytest.param(
        "POST",
        f"{CP}/commands/cancel-reservation",
        f'{{"reservation_id": {HUGE}}}',
        "reservation_id",
        id="huge-reservation",
    ),
    pytest.param(
        "POST",
        f"{CP}/commands/change-configuration",
        '{"key": "K", "value": "\\udfff"}',
        "value",
        id="lone-surrogate-value",
    ),
    pytest.param("POST", f"{CP}/commands/data-transfer", '{"vendor_id": "v", "data": NaN}', "NaN", id="NaN"),
    pytest.param(
        "PATCH",
        f"{CP}/connectors/1/smart-charging",
        f'{{"profile_id": {HUGE}}}',
        "profile_id",
        id="huge-profile-id",
    ),
    pytest.param(
        "PATCH", f"{CP}/connectors/99/smart-charging", '{"limit": 5}', "connectors 0 to", id="connector-99"
    ),
    pytest.param(
        "POST",
        f"{CP}/commands/update-firmware",
        '{"location": "ftp://x", "retrieve_date": "9999-12-31T23:59:59-14:00"}',
        "calendar",
        id="date-overflows-utc",
    ),
    pytest.param("GET", "/api/messages?from=0001-01-01T00:00:00%2B14:00", None, "calendar", id="query-date"),
]


@pytest.mark.parametrize(("method", "url", "body", "named"), REFUSED)
async def test_bad_request_input_is_refused_and_nothing_breaks(
    gateway: RunningGateway, api: httpx.AsyncClient, method: str, url: str, body: str | None, named: str
) -> None:
    async with connect_charger(gateway, "CP1", cls=Scripted) as cp:
        await cp.boot()
        answer = await api.request(method, url, content=body, headers={"content-type": "application/json"})
        assert answer.status_code == 422, answer.text
        assert named in answer.text
        assert cp.received == []  # nothing reached the charger
    for listing in ("/api/chargers", "/api/commands", "/api/messages", "/api/transactions", "/api/points"):
        assert (await api.get(listing)).status_code == 200, listing
    await gateway.central.store.flush()
    assert (await gateway.central.store.fetch_all("SELECT COUNT(*) AS n FROM commands"))[0]["n"] == 0
