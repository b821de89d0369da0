"""Admission: exact id, then API-added chargers, then patterns in file order, then the guest answer."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.admission import AddedCharger, Admission, AdmissionPolicy, AdmissionSource
from gateway.mapping import Mapping
from gateway.settings import RegistrationStatus

ACCEPTED, PENDING, REJECTED = (
    RegistrationStatus.ACCEPTED,
    RegistrationStatus.PENDING,
    RegistrationStatus.REJECTED,
)

CHARGERS: list[dict[str, Any]] = [
    {"id": "CP1", "name": "Bay 1", "registration": "Accepted"},
    {"id": "BLOCKED-1", "registration": "Rejected", "retry_interval": 600},
    {"pattern": "C1-*", "name": "amina C", "registration": "Accepted"},
    {"id": "C1-0000000001", "name": "amina C on probation", "registration": "Pending"},
    {"pattern": "TEST-*", "registration": "Pending", "retry_interval": 60},
    {"pattern": "TEST-9*", "name": "never reached", "registration": "Rejected"},
    {"pattern": "X??", "name": "three letters", "registration": "Accepted"},
]

ADDED = {
    "CP1": AddedCharger("CP1", REJECTED, "shadowed by the file"),
    "NEW-1": AddedCharger("NEW-1", ACCEPTED, "discovered"),
    "C1-0000000002": AddedCharger("C1-0000000002", REJECTED, "withdrawn amina"),
}


@pytest.fixture
def admission() -> AdmissionPolicy:
    return AdmissionPolicy(Mapping.model_validate({"chargers": CHARGERS}), dict(ADDED), PENDING, 120)


def test_exact_id_from_the_mapping(admission: AdmissionPolicy) -> None:
    assert admission.decide("BLOCKED-1") == Admission(REJECTED, 600, AdmissionSource.MAPPING_ID)


def test_exact_id_beats_added_charger(admission: AdmissionPolicy) -> None:
    assert admission.decide("CP1") == Admission(ACCEPTED, 120, AdmissionSource.MAPPING_ID, "Bay 1")


def test_exact_id_beats_a_pattern_listed_before_it(admission: AdmissionPolicy) -> None:
    decided = admission.decide("C1-0000000001")
    assert decided == Admission(PENDING, 120, AdmissionSource.MAPPING_ID, "amina C on probation")
    assert decided.pattern is None


def test_added_charger_uses_guest_retry_interval(admission: AdmissionPolicy) -> None:
    assert admission.decide("NEW-1") == Admission(ACCEPTED, 120, AdmissionSource.ADDED, "discovered")


def test_added_charger_beats_pattern(admission: AdmissionPolicy) -> None:
    decided = admission.decide("C1-0000000002")
    assert decided == Admission(REJECTED, 120, AdmissionSource.ADDED, "withdrawn amina")


def test_amina_serial_matches_pattern(admission: AdmissionPolicy) -> None:
    decided = admission.decide("C1-1234567890")
    assert decided == Admission(ACCEPTED, 120, AdmissionSource.MAPPING_PATTERN, "amina C", "C1-*")
    assert decided.known
    assert decided.accepted


def test_patterns_are_tried_in_file_order(admission: AdmissionPolicy) -> None:
    decided = admission.decide("TEST-99")
    assert decided == Admission(PENDING, 60, AdmissionSource.MAPPING_PATTERN, None, "TEST-*")


def test_question_mark_matches_one_character(admission: AdmissionPolicy) -> None:
    assert admission.decide("XAB").source is AdmissionSource.MAPPING_PATTERN
    assert admission.decide("XABC").source is AdmissionSource.GUEST


@pytest.mark.parametrize("charge_point_id", ["c1-1234567890", "C2-1234567890", "C1", "XC1-1", "cp1", ""])
def test_no_match_gets_the_guest_answer(admission: AdmissionPolicy, charge_point_id: str) -> None:
    decided = admission.decide(charge_point_id)
    assert decided == Admission(PENDING, 120, AdmissionSource.GUEST)
    assert not decided.known
    assert not decided.accepted


@pytest.mark.parametrize(("guest_response", "interval"), [(ACCEPTED, 30), (PENDING, 300), (REJECTED, 86400)])
def test_guest_answer_comes_from_the_constructor(guest_response: RegistrationStatus, interval: int) -> None:
    policy = AdmissionPolicy(Mapping(), {}, guest_response, interval)
    decided = policy.decide("ANYONE")
    assert decided == Admission(guest_response, interval, AdmissionSource.GUEST)
    assert decided.accepted is (guest_response is ACCEPTED)
    assert not decided.known


def test_entry_without_retry_interval_follows_the_guest_interval() -> None:
    mapping = Mapping.model_validate({"chargers": [{"id": "CP1"}, {"pattern": "P-*", "retry_interval": 45}]})
    policy = AdmissionPolicy(mapping, {}, REJECTED, 900)
    assert policy.decide("CP1") == Admission(ACCEPTED, 900, AdmissionSource.MAPPING_ID)
    assert policy.decide("P-1").retry_interval == 45


@pytest.mark.parametrize(
    ("charge_point_id", "known", "accepted"),
    [
        ("CP1", True, True),
        ("BLOCKED-1", True, False),
        ("NEW-1", True, True),
        ("C1-0000000002", True, False),
        ("TEST-1", True, False),
        ("STRANGER", False, False),
    ],
)
def test_known_and_accepted(
    admission: AdmissionPolicy, charge_point_id: str, known: bool, accepted: bool
) -> None:
    decided = admission.decide(charge_point_id)
    assert decided.known is known
    assert decided.accepted is accepted


@pytest.mark.parametrize(
    ("charge_point_id", "listed"),
    [
        ("CP1", True),
        ("C1-0000000001", True),
        ("NEW-1", False),  # added through the API, not in the file
        ("C1-1234567890", False),  # matches a pattern only
        ("C1-*", False),  # a pattern is not an id
        ("cp1", False),
    ],
)
def test_in_mapping_is_exact_ids_only(admission: AdmissionPolicy, charge_point_id: str, listed: bool) -> None:
    assert admission.in_mapping(charge_point_id) is listed


def test_mapped_ids_lists_exact_ids_in_file_order(admission: AdmissionPolicy) -> None:
    assert admission.mapped_ids() == ["CP1", "BLOCKED-1", "C1-0000000001"]
