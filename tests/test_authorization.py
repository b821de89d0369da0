"""The authorization policy: the four modes, the lists, expiry and case-insensitive id tags, and the local list
that makes a charger working offline decide as the gateway does online."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


@pytest.mark.parametrize("id_tag", ["TAG-OK", "TAG-OLD", "NEVER-SEEN"])
def test_authorize_all_accepts_every_tag_not_blacklisted(id_tag: str) -> None:
    assert policy("authorize-all").authorize(id_tag, NOW) == IdTagInfo(AuthorizationStatus.ACCEPTED)


@pytest.mark.parametrize("id_tag", ["TAG-STOLEN", "Lost-Card"])
def test_authorize_all_still_blocks_a_blacklisted_tag(id_tag: str) -> None:
    """OCPP 1.6 §4.2 Authorize / §7.22 AuthorizationStatus: Blocked. Opening a site to every tag does not let a
    stolen card in."""
    assert policy("authorize-all").authorize(id_tag, NOW) == IdTagInfo(AuthorizationStatus.BLOCKED)


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
        ("TAG-STOLEN", AuthorizationStatus.BLOCKED),  # OCPP 1.6 §7.22: Blocked, not merely unknown
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


@pytest.mark.parametrize("mode", ["authorize-all", "all-except-blacklist", "none-except-whitelist"])
def test_a_tag_on_both_lists_is_blocked(mode: str) -> None:
    """OCPP 1.6 §7.22 AuthorizationStatus Blocked: the blacklist wins over the whitelist, whatever the case."""
    both = policy(mode, whitelist=["TAG-BOTH", "TAG-OK"], blacklist=["tag-both"])
    assert both.authorize("Tag-Both", NOW) == IdTagInfo(AuthorizationStatus.BLOCKED)


@pytest.mark.parametrize("mode", ["authorize-all", "all-except-blacklist", "none-except-whitelist"])
def test_a_tag_whose_parent_is_blacklisted_is_blocked(mode: str) -> None:
    """OCPP 1.6 §3.4 (parentIdTag groups tags): blacklisting the group blocks its members."""
    lists = {"whitelist": [{"id_tag": "MEMBER", "parent_id_tag": "FLEET"}, "OTHER"], "blacklist": ["fleet"]}
    assert policy(mode, **lists).authorize("member", NOW) == IdTagInfo(AuthorizationStatus.BLOCKED)
    assert policy(mode, **lists).authorize("OTHER", NOW).status is AuthorizationStatus.ACCEPTED


def test_authorize_none_answers_invalid_even_for_blacklisted_tags() -> None:
    assert status("authorize-none", "TAG-STOLEN") is AuthorizationStatus.INVALID


# -- the local list (OCPP 1.6 §3.5 Local Authorization List, §5.15 SendLocalList) --------------------------------


def listed(mode: str, now: datetime = NOW, **lists: Any) -> dict[str, IdTagInfo]:
    return policy(mode, **lists).local_list(now)


def test_local_list_in_none_except_whitelist() -> None:
    """Whitelisted tags with their expiry and parent; an expired one as Expired, never Accepted; blacklisted
    ones as Blocked. Tags on no list are left out: the charger answers Invalid for them offline."""
    assert listed("none-except-whitelist") == {
        "TAG-OK": IdTagInfo(AuthorizationStatus.ACCEPTED),
        "Tag-Child": IdTagInfo(AuthorizationStatus.ACCEPTED, None, "FLEET"),
        "TAG-LATER": IdTagInfo(AuthorizationStatus.ACCEPTED, datetime(2030, 1, 1, tzinfo=UTC), "FLEET"),
        "TAG-OLD": IdTagInfo(AuthorizationStatus.EXPIRED, datetime(2020, 1, 1, tzinfo=UTC), "FLEET"),
        "TAG-STOLEN": IdTagInfo(AuthorizationStatus.BLOCKED),
        "lost-card": IdTagInfo(AuthorizationStatus.BLOCKED),
    }
    assert policy("none-except-whitelist").offline_default is AuthorizationStatus.INVALID


@pytest.mark.parametrize("mode", ["authorize-all", "all-except-blacklist"])
def test_local_list_in_the_modes_that_accept_unknown_tags_holds_the_blocked_ones(mode: str) -> None:
    assert listed(mode) == {
        "TAG-STOLEN": IdTagInfo(AuthorizationStatus.BLOCKED),
        "lost-card": IdTagInfo(AuthorizationStatus.BLOCKED),
    }
    assert policy(mode).offline_default is AuthorizationStatus.ACCEPTED


def test_local_list_in_authorize_none_hands_out_nothing() -> None:
    assert listed("authorize-none") == {}
    assert policy("authorize-none").offline_default is AuthorizationStatus.INVALID


def test_local_list_names_a_tag_on_both_lists_once() -> None:
    both = listed("none-except-whitelist", whitelist=["Tag-Both"], blacklist=["TAG-BOTH"])
    assert both == {"Tag-Both": IdTagInfo(AuthorizationStatus.BLOCKED)}


def test_a_tag_expires_in_the_local_list_as_it_does_online() -> None:
    before = listed("none-except-whitelist", datetime(2029, 12, 31, tzinfo=UTC))["TAG-LATER"]
    after = listed("none-except-whitelist", datetime(2030, 1, 1, tzinfo=UTC))["TAG-LATER"]
    assert (before.status, after.status) == (AuthorizationStatus.ACCEPTED, AuthorizationStatus.EXPIRED)


TAGS = st.text(alphabet="abAB1-", min_size=1, max_size=3)
DATES = st.sampled_from([None, "2020-01-01T00:00:00Z", "2025-06-01T12:00:00Z", "2030-01-01T00:00:00Z"])
ENTRIES = st.fixed_dictionaries(
    {"id_tag": TAGS}, optional={"expiry_date": DATES, "parent_id_tag": st.one_of(st.none(), TAGS)}
)


def tag_lists() -> st.SearchStrategy[list[dict[str, Any]]]:
    return st.lists(ENTRIES, max_size=6, unique_by=lambda entry: str(entry["id_tag"]).casefold())


@settings(max_examples=300, deadline=None)
@given(
    mode=st.sampled_from([m.value for m in AuthorizationMode]),
    whitelist=tag_lists(),
    blacklist=tag_lists(),
    probes=st.lists(TAGS, max_size=5),
    now=st.sampled_from([NOW, datetime(2019, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=PLUS_TWO)]),
)
def test_local_list_agrees_with_the_online_answer(
    mode: str,
    whitelist: list[dict[str, Any]],
    blacklist: list[dict[str, Any]],
    probes: list[str],
    now: datetime,
) -> None:
    """OCPP 1.6 §3.5: a charger working offline from the local list decides as the central system would online.
    For every tag: its entry is the online answer, or it has none and the online answer is the mode's offline
    default (what the charger decides for a tag the list leaves out)."""
    subject = policy(mode, whitelist=whitelist, blacklist=blacklist)
    local = subject.local_list(now)
    by_key = {tag.casefold(): info for tag, info in local.items()}
    assert len(by_key) == len(local)  # one entry per tag, whatever the case
    named = [str(entry["id_tag"]) for entry in whitelist + blacklist]
    for tag in [*named, *probes, *(t.upper() for t in named)]:
        online = subject.authorize(tag, now)
        entry = by_key.get(tag.casefold())
        if entry is None:
            assert online.status is subject.offline_default, tag
        else:
            assert entry == online, tag
    for entry in local.values():
        if entry.status is AuthorizationStatus.ACCEPTED and entry.expiry_date is not None:
            assert entry.expiry_date > now  # an expired tag never goes out as Accepted
