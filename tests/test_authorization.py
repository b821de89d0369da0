"""The authorization policy: the four modes, the lists, expiry and case-insensitive id tags."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from gateway.authorization import AuthorizationPolicy, AuthorizationStatus, IdTagInfo
from gateway.mapping import Authorization, AuthorizationMode

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
PLUS_TWO = timezone(timedelta(hours=2))

LISTS: dict[str, Any] = {
    "whitelist": [
        "TAG-OK",
        {"id_tag": "Tag-Child", "parent_id_tag": "FLEET"},
        {"id_tag": "TAG-LATER", "expiry_date": "2030-01-01T00:00:00Z", "parent_id_tag": "FLEET"},
        {"id_tag": "TAG-OLD", "expiry_date": "2020-01-01T00:00:00Z", "parent_id_tag": "FLEET"},
    ],
    "blacklist": ["TAG-STOLEN", {"id_tag": "lost-card"}],
}


def policy(mode: str, **lists: Any) -> AuthorizationPolicy:
    return AuthorizationPolicy(Authorization.model_validate({"mode": mode, **(lists or LISTS)}))


def status(mode: str, id_tag: str, now: datetime = NOW) -> AuthorizationStatus:
    return policy(mode).authorize(id_tag, now).status


@pytest.mark.parametrize("id_tag", ["TAG-OK", "TAG-STOLEN", "TAG-OLD", "NEVER-SEEN"])
def test_authorize_all_accepts_every_tag(id_tag: str) -> None:
    assert policy("authorize-all").authorize(id_tag, NOW) == IdTagInfo(AuthorizationStatus.ACCEPTED)


@pytest.mark.parametrize("id_tag", ["TAG-OK", "TAG-STOLEN", "NEVER-SEEN"])
def test_authorize_none_refuses_every_tag(id_tag: str) -> None:
    assert policy("authorize-none").authorize(id_tag, NOW) == IdTagInfo(AuthorizationStatus.INVALID)


def test_default_mode_is_authorize_all() -> None:
    default = AuthorizationPolicy(Authorization.model_validate({}))
    assert default.mode is AuthorizationMode.AUTHORIZE_ALL
    assert default.authorize("ANY", NOW).status is AuthorizationStatus.ACCEPTED


@pytest.mark.parametrize(
    ("id_tag", "expected"),
    [
        ("TAG-STOLEN", AuthorizationStatus.BLOCKED),
        ("tag-stolen", AuthorizationStatus.BLOCKED),
        ("LOST-CARD", AuthorizationStatus.BLOCKED),
        ("NEVER-SEEN", AuthorizationStatus.ACCEPTED),
        ("TAG-OK", AuthorizationStatus.ACCEPTED),
        ("TAG-OLD", AuthorizationStatus.ACCEPTED),  # the whitelist and its expiry play no part in this mode
    ],
)
def test_all_except_blacklist(id_tag: str, expected: AuthorizationStatus) -> None:
    assert status("all-except-blacklist", id_tag) is expected


def test_all_except_blacklist_blocked_answer_has_no_extras() -> None:
    assert policy("all-except-blacklist").authorize("TAG-STOLEN", NOW) == IdTagInfo(
        AuthorizationStatus.BLOCKED
    )


@pytest.mark.parametrize(
    ("id_tag", "expected"),
    [
        ("TAG-OK", AuthorizationStatus.ACCEPTED),
        ("tag-ok", AuthorizationStatus.ACCEPTED),
        ("TAG-CHILD", AuthorizationStatus.ACCEPTED),
        ("TAG-LATER", AuthorizationStatus.ACCEPTED),
        ("TAG-OLD", AuthorizationStatus.EXPIRED),
        ("NEVER-SEEN", AuthorizationStatus.INVALID),
        ("TAG-STOLEN", AuthorizationStatus.INVALID),  # blacklisted but not whitelisted: simply unknown here
    ],
)
def test_none_except_whitelist(id_tag: str, expected: AuthorizationStatus) -> None:
    assert status("none-except-whitelist", id_tag) is expected


def test_whitelisted_tag_passes_parent_id_tag_through() -> None:
    info = policy("none-except-whitelist").authorize("tag-child", NOW)
    assert info == IdTagInfo(AuthorizationStatus.ACCEPTED, None, "FLEET")


def test_whitelisted_tag_with_future_expiry_reports_it() -> None:
    info = policy("none-except-whitelist").authorize("TAG-LATER", NOW)
    assert info == IdTagInfo(AuthorizationStatus.ACCEPTED, datetime(2030, 1, 1, tzinfo=UTC), "FLEET")


def test_expired_tag_keeps_expiry_and_parent() -> None:
    info = policy("none-except-whitelist").authorize("TAG-OLD", NOW)
    assert info == IdTagInfo(AuthorizationStatus.EXPIRED, datetime(2020, 1, 1, tzinfo=UTC), "FLEET")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2030, 1, 1, tzinfo=UTC) - timedelta(seconds=1), AuthorizationStatus.ACCEPTED),
        (datetime(2030, 1, 1, tzinfo=UTC), AuthorizationStatus.EXPIRED),
        (datetime(2030, 1, 1, tzinfo=UTC) + timedelta(days=1), AuthorizationStatus.EXPIRED),
    ],
)
def test_tag_expires_once_expiry_date_is_reached(now: datetime, expected: AuthorizationStatus) -> None:
    assert status("none-except-whitelist", "TAG-LATER", now) is expected


@pytest.mark.parametrize(
    ("wall_clock", "expected"),
    [
        (
            datetime(2030, 1, 1, 1, 30, tzinfo=PLUS_TWO),
            AuthorizationStatus.ACCEPTED,
        ),  # 23:30 UTC the day before
        (datetime(2030, 1, 1, 2, 30, tzinfo=PLUS_TWO), AuthorizationStatus.EXPIRED),  # 00:30 UTC
    ],
)
def test_expiry_compares_instants_not_wall_clocks(
    wall_clock: datetime, expected: AuthorizationStatus
) -> None:
    assert status("none-except-whitelist", "TAG-LATER", wall_clock) is expected


def test_naive_expiry_is_read_in_the_time_zone_of_now() -> None:
    lists = {"whitelist": [{"id_tag": "NAIVE", "expiry_date": "2025-06-01T12:00:00"}]}
    naive_policy = policy("none-except-whitelist", **lists)
    before = naive_policy.authorize("NAIVE", NOW - timedelta(minutes=1))
    assert before.status is AuthorizationStatus.ACCEPTED
    assert before.expiry_date == datetime(2025, 6, 1, 12, tzinfo=UTC)
    assert naive_policy.authorize("NAIVE", NOW).status is AuthorizationStatus.EXPIRED


def test_whitelist_property_lists_entries() -> None:
    assert [entry.id_tag for entry in policy("none-except-whitelist").whitelist] == [
        "TAG-OK",
        "Tag-Child",
        "TAG-LATER",
        "TAG-OLD",
    ]


@pytest.mark.parametrize("mode", [m.value for m in AuthorizationMode])
def test_policy_keeps_the_mode(mode: str) -> None:
    assert policy(mode).mode == AuthorizationMode(mode)
