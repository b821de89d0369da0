"""OCPP-J framing: what is a well-formed frame, and which bad frames can still be answered."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.ocppj import (
    CALL,
    CALLERROR,
    CALLRESULT,
    Frame,
    FrameError,
    FrameFault,
    parse_frame,
    recover_call_id,
)

LIMIT = 65536
FORMAT, PROTOCOL = FrameFault.FORMAT, FrameFault.PROTOCOL


def refuse(raw: str | bytes, max_bytes: int = LIMIT) -> FrameError:
    with pytest.raises(FrameError) as caught:
        parse_frame(raw, max_bytes)
    error = caught.value
    assert str(error) == error.description
    return error


# -- well-formed frames -------------------------------------------------------------------------------------


def test_call() -> None:
    raw = '[2, "19223201", "BootNotification", {"chargePointVendor": "VendorX", "chargePointModel": "M1"}]'
    assert parse_frame(raw, LIMIT) == Frame(
        CALL, "19223201", "BootNotification", {"chargePointVendor": "VendorX", "chargePointModel": "M1"}, raw
    )


def test_callresult() -> None:
    raw = '[3, "19223201", {"status": "Accepted", "interval": 300}]'
    assert parse_frame(raw, LIMIT) == Frame(
        CALLRESULT, "19223201", None, {"status": "Accepted", "interval": 300}, raw
    )


def test_callerror() -> None:
    raw = '[4, "162376037", "NotSupported", "SetDisplayMessage not implemented", {}]'
    frame = parse_frame(raw, LIMIT)
    assert frame == Frame(
        CALLERROR, "162376037", None, ["NotSupported", "SetDisplayMessage not implemented", {}], raw
    )


@pytest.mark.parametrize("unique_id", ["x", "a" * 36, "123e4567-e89b-12d3-a456-426614174000"])
def test_unique_id_of_1_to_36_characters(unique_id: str) -> None:
    assert parse_frame(json.dumps([2, unique_id, "Heartbeat", {}]), LIMIT).unique_id == unique_id


def test_message_of_exactly_the_limit_is_accepted() -> None:
    raw = '[2, "1", "DataTransfer", {"vendorId": "' + "x" * 2000 + '"}]'
    assert parse_frame(raw, len(raw)).action == "DataTransfer"


# -- bad frames ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "fault", "unique_id", "description"),
    [
        pytest.param(
            '[2, "abc-1", "Heartbeat", {]', FORMAT, "abc-1", "not valid JSON", id="broken-json-call"
        ),
        pytest.param('  [ 2 ,"abc-2", "Heartbeat"', FORMAT, "abc-2", "not valid JSON", id="truncated-call"),
        pytest.param('[2, "a\\"b", "Heartbeat", {]', FORMAT, 'a"b', "not valid JSON", id="escaped-quote-id"),
        pytest.param('{"oops"', FORMAT, None, "not valid JSON", id="broken-json-object"),
        pytest.param('[3, "abc-3", {]', FORMAT, None, "not valid JSON", id="broken-json-callresult"),
        pytest.param('[2, "abc', FORMAT, None, "not valid JSON", id="id-cut-off"),
        pytest.param("", FORMAT, None, "not valid JSON", id="empty-text"),
        pytest.param('{"messageTypeId": 2}', FORMAT, None, "OCPP-J array", id="json-object"),
        pytest.param('"Heartbeat"', FORMAT, None, "OCPP-J array", id="json-string"),
        pytest.param("[]", FORMAT, None, "OCPP-J array", id="empty-array"),
        pytest.param(
            '["2", "abc", "Heartbeat", {}]', FORMAT, "abc", "MessageTypeId must be", id="type-as-text"
        ),
        pytest.param(
            '[2.0, "abc", "Heartbeat", {}]', FORMAT, "abc", "MessageTypeId must be", id="type-as-float"
        ),
        pytest.param(
            '["call", "abc", "Heartbeat", {}]', FORMAT, None, "MessageTypeId must be", id="type-word"
        ),
        pytest.param('[true, "abc", "Heartbeat", {}]', FORMAT, None, "MessageTypeId must be", id="type-bool"),
        pytest.param('[null, "abc"]', FORMAT, None, "MessageTypeId must be", id="type-null"),
        pytest.param('[7, "abc", {}]', FORMAT, "abc", "unknown MessageTypeId 7", id="type-7"),
        pytest.param("[7, 99]", FORMAT, 99, "unknown MessageTypeId 7", id="type-7-int-id"),
        pytest.param("[2]", FORMAT, None, "CALL without a UniqueId", id="call-no-id"),
        pytest.param(
            '[2, null, "Heartbeat", {}]', FORMAT, None, "CALL without a UniqueId", id="call-null-id"
        ),
        pytest.param(
            '[2, "abc", "Heartbeat"]', PROTOCOL, "abc", "CALL needs 4 elements", id="call-no-payload"
        ),
        pytest.param('[2, "abc"]', PROTOCOL, "abc", "CALL needs 4 elements", id="call-no-action"),
        pytest.param('[2, "abc", "Heartbeat", {}, {}]', FORMAT, "abc", "more than 4 elements", id="call-5"),
        pytest.param('[2, 123, "Heartbeat", {}]', FORMAT, 123, "UniqueId must be a string", id="int-id"),
        pytest.param('[2, "", "Heartbeat", {}]', FORMAT, "", "UniqueId must be 1 to 36", id="empty-id"),
        pytest.param(
            '[2, "abc", "", {}]', FORMAT, "abc", "Action must be a non-empty string", id="empty-action"
        ),
        pytest.param(
            '[2, "abc", 6, {}]', FORMAT, "abc", "Action must be a non-empty string", id="int-action"
        ),
        pytest.param(
            '[2, "abc", "Heartbeat", []]', FORMAT, "abc", "Payload must be a JSON object", id="list-payload"
        ),
        pytest.param(
            '[2, "abc", "Heartbeat", null]', FORMAT, "abc", "Payload must be a JSON object", id="null-pl"
        ),
        pytest.param('[3, "abc"]', FORMAT, None, "malformed CALLRESULT", id="callresult-short"),
        pytest.param('[3, "abc", []]', FORMAT, None, "malformed CALLRESULT", id="callresult-list"),
        pytest.param("[3, 5, {}]", FORMAT, None, "malformed CALLRESULT", id="callresult-int-id"),
        pytest.param('[3, "abc", {}, {}]', FORMAT, None, "malformed CALLRESULT", id="callresult-4"),
        pytest.param(
            '[4, "abc", "InternalError"]', FORMAT, None, "malformed CALLERROR", id="callerror-short"
        ),
    ],
)
def test_bad_frame(raw: str, fault: FrameFault, unique_id: Any, description: str) -> None:
    error = refuse(raw)
    assert error.fault is fault
    assert error.unique_id == unique_id
    assert type(error.unique_id) is type(unique_id)  # 123 stays an int, not "123"
    assert description in error.description


def test_invalid_json_description_carries_the_parser_message() -> None:
    error = refuse('[2, "abc", "Heartbeat", {]')
    assert error.description.startswith("message is not valid JSON: Expecting property name")


def test_unique_id_longer_than_36_is_echoed() -> None:
    long_id = "a" * 37
    error = refuse(json.dumps([2, long_id, "Heartbeat", {}]))
    assert (error.fault, error.unique_id) == (FORMAT, long_id)
    assert error.description == "UniqueId must be 1 to 36 characters"


def test_oversized_message_counts_utf8_bytes() -> None:
    text = "€" * 400  # 400 characters, 1200 bytes
    raw = json.dumps([2, "big-1", "DataTransfer", {"vendorId": "V", "data": text}], ensure_ascii=False)
    assert len(raw) < 1024 < len(raw.encode("utf-8"))
    error = refuse(raw, max_bytes=1024)
    size = len(raw.encode("utf-8"))
    assert (error.fault, error.unique_id) == (FORMAT, "big-1")
    assert error.description == f"message of {size} bytes exceeds the limit of 1024 bytes"


def test_oversized_message_checked_before_json() -> None:
    raw = '[3, "r-1", {"data": "' + "x" * 2000  # too big and broken: the size is what is reported
    error = refuse(raw, max_bytes=1024)
    assert (error.fault, error.unique_id) == (FORMAT, None)
    assert "exceeds the limit of 1024 bytes" in error.description


def test_one_byte_over_the_limit_is_refused() -> None:
    raw = '[2, "1", "DataTransfer", {"vendorId": "' + "x" * 2000 + '"}]'
    error = refuse(raw, max_bytes=len(raw) - 1)
    assert error.unique_id == "1"
    assert f"message of {len(raw)} bytes" in error.description


def test_multibyte_message_within_limit_is_accepted() -> None:
    raw = json.dumps(
        [2, "m-1", "DataTransfer", {"vendorId": "Weidmüller", "data": "é" * 100}], ensure_ascii=False
    )
    assert parse_frame(raw, len(raw.encode("utf-8"))).payload["vendorId"] == "Weidmüller"


@pytest.mark.parametrize(
    ("raw", "unique_id"),
    [
        (b'[2, "bin-1", "Heartbeat", {}]', "bin-1"),
        (b'[3, "bin-2", {}]', None),
        (b"\xff\xfe\x00garbage", None),
    ],
)
def test_binary_frame_is_refused(raw: bytes, unique_id: str | None) -> None:
    error = refuse(raw)
    assert (error.fault, error.unique_id) == (FORMAT, unique_id)
    assert "binary frame" in error.description


@pytest.mark.parametrize(
    "raw", ['[2, "ab\\x", "Heartbeat", {}]', '[2, "a\nb", "Heartbeat", {}]', '[2, "\\u12"']
)
def test_broken_json_with_undecodable_id_is_a_frame_error(raw: str) -> None:
    error = refuse(raw)
    assert error.fault is FORMAT
    assert "not valid JSON" in error.description


def test_deeply_nested_message_is_a_frame_error() -> None:
    raw = "[" * 20000 + "]" * 20000
    error = refuse(raw)
    assert (error.fault, error.unique_id) == (FORMAT, None)


# -- recover_call_id ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "unique_id"),
    [
        ('[2,"abc","Heartbeat",{', "abc"),
        ('\n [\t2 , "abc"', "abc"),
        ('[2, "tab\\there"', "tab\there"),
        ('[2, "\\u00e9t\\u00e9"', "été"),
        ('[2, "' + "a" * 36 + '", "Heartbeat"', "a" * 36),
        ('[2, "' + "a" * 37 + '", "Heartbeat"', None),
        ('[2, ""', None),
        ('[3, "abc", {', None),
        ('[4, "abc"', None),
        ('[22, "abc"', None),
        ('x[2, "abc"', None),
        ("[2, 123", None),
        ('[2, "abc', None),
        ("", None),
    ],
)
def test_recover_call_id(text: str, unique_id: str | None) -> None:
    assert recover_call_id(text) == unique_id


def test_recover_call_id_reads_only_the_start() -> None:
    assert recover_call_id(" " * 120 + '[2, "abc", "Heartbeat", {') is None
