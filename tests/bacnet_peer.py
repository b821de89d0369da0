"""An independent BACnet/IP client that tests run in another process to talk to the gateway's BACnet device.

The gateway's device is built on bacpypes3; this peer is a separate bacpypes3 *client* application with its
own device object, in its own process, exchanging real UDP datagrams with the gateway over loopback, so a
test sees exactly what a building-management system would see on the wire.

Two parts live here:

* The subprocess program, ``python -m tests.bacnet_peer --bind 127.0.0.1:<port> [--device-id N] [--max-apdu
  N] [--segmentation segmented-both|no-segmentation|...]`` (device "test-peer", instance 4194000, max APDU
  1476 and segmented-both by default; APDU timeout 2 s with one retry). Once its
  socket is bound it prints ``{"ready": true, "address": "127.0.0.1:<port>"}``. It then reads one JSON
  request per line on stdin, ``{"id": <any>, "op": "<op>", ...fields}``, handles each in its own task (so a
  long ``wait_cov`` does not hold up the others) and writes exactly one line per request on stdout:
  ``{"id": <same id>, "ok": true, "result": ...}``, or ``{"id": ..., "ok": false, "error": "<text>"}`` when
  the request itself was bad or the peer failed (a BACnet error from the other device is *not* a failure).

* :class:`BacnetPeer` / :func:`bacnet_peer`, the async wrapper tests use to start, drive and stop it.

Operations and their results (objects are ``"analog-value,1024"``, properties ``"present-value"``, or an int
for a proprietary one; addresses are ``"127.0.0.1:47809"``):

``read``          {address, object, property, index?} -> the value
``rpm``           {address, specs: [[object, [property, ...]], ...]} -> ``[[object, property, index, value],
                  ...]``; a property may be ``"all"``/``"required"``/``"optional"`` or ``"name[index]"``, and
                  a per-property access error is the value ``{"error": "class:code"}``
``write``         {address, object, property, value, priority?, index?, type?} -> null on SimpleAck. Without
                  ``type`` the value is cast to the property's standard datatype (null -> Null, which
                  relinquishes when a priority is given); with ``type`` in ``real``, ``double``,
                  ``enumerated``, ``unsigned``, ``integer``, ``boolean``, ``null``, ``characterstring`` the
                  value is sent as exactly that primitive, to provoke datatype errors.
``wpm``           {address, specs: [[object, [[property, value, {priority?, index?, type?}], ...]], ...]} ->
                  null on SimpleAck; a WritePropertyMultiple-Error is ``{"error": "class:code", "first_failed":
                  [object, property, index]}``; values are given as for ``write``.
``read_range``    {address, object, property} -> the ack's item data, or an error/reject/abort dict (a
                  confirmed service the gateway does not execute).
``raw``           {address, apdu: hex, timeout? (s, default 3)} -> ``{"apdu": hex}``, the APDU of the first
                  answer, or ``{"timeout": true}``: the APDU (e.g. a confirmed request with a service choice
                  no BACnet stack knows) is sent in a BVLC Original-Unicast-NPDU from a socket of its own.
``whois``         {address?, low?, high?, timeout? (s, default 3)} -> ``[{"device": n, "address": "ip:port",
                  "max_apdu": n, "segmentation": "segmented-both", "vendor": n}, ...]``; with an address the
                  answer comes as soon as that device replies (unicast Who-Is); without one a global
                  broadcast is sent, which only works when the peer was bound with a netmask, e.g.
                  ``127.0.0.1/8:<port>``, and never crosses UDP ports on loopback.
``subscribe_cov`` {address, object, confirmed, lifetime? (s, default 300; null leaves it out), process_id?
                  (default 1), cancel?} -> null. ``cancel: true`` sends the cancellation form (no confirmed
                  flag, no lifetime).
``wait_cov``      {object?, timeout, count? (default 1), where?: {"present-value": 7.5}} -> the first
                  ``count`` matching notifications, which are removed from the record, or ``{"error":
                  "timeout", "seen": [every notification still recorded]}``
``epics``         {address, device} -> ``{"objects": {"analog-value,1024": {"present-value": 7.5, ...}},
                  "failures": [{"object": ..., "error"|"reject"|"abort": ...}], "object_list_read":
                  "whole"|"indexed"}``: the ``object-list`` is read whole, or, if that gets an
                  error/reject/abort, element by element; then every object is read with
                  ReadPropertyMultiple(ALL); an object whose RPM fails as a whole is a failure. Array-index
                  results appear as ``"name[index]"`` keys. If the object-list cannot be read at all the
                  result is ``{"error": {"object-list": ..., "object-list[0]": ...}}``.
``quit``          -> null, then the program exits.

Every COV notification the peer receives (any subscription; confirmed ones are always acknowledged with a
SimpleAck) is recorded as ``{"object": "analog-value,1024", "confirmed": true, "values": {"present-value":
7.5, "status-flags": [0, 0, 0, 0]}, "process_id": 1, "time_remaining": 297, "device": 599, "source":
"127.0.0.1:47809"}``.

BACnet failures from the other device are results, never ``ok: false``: ``{"error": "<class>:<code>"}``
(e.g. ``"property:unknown-property"``, ``"property:write-access-denied"``), ``{"reject": "<reason>"}``
(e.g. ``"invalid-tag"``) or ``{"abort": "<reason>"}`` (e.g. ``"segmentation-not-supported"``,
``"no-response"`` when the device never answers), with bacpypes3's hyphenated names.

Values are converted to JSON by :func:`to_json`: Real -> float (the shortest decimal that is the same
32-bit float, so 7.3 stays 7.3), Double -> float, Unsigned/Integer -> int, Boolean -> bool, Enumerated ->
its hyphenated name (``"amperes"``, ``"active"``), CharacterString -> str, ObjectIdentifier ->
``"type,instance"``, BitString -> list of 0/1, Null -> None, arrays and lists -> lists, PriorityValue -> its
inner value (None for null), as is any other Choice (``current-command-priority`` -> 8 or None),
Date/Time/DateTime -> str, OctetString -> hex str, other constructed values ->
a dict of their present fields (hyphenated names), a value the peer cannot decode as the property's
standard datatype -> its application-tagged primitive(s), else ``{"undecoded": "<hex>"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import re
import socket
import struct
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from bacpypes3.apdu import (
    AbortPDU,
    ConfirmedCOVNotificationRequest,
    ErrorRejectAbortNack,
    ReadPropertyMultipleRequest,
    ReadPropertyRequest,
    ReadRangeRequest,
    RejectPDU,
    SimpleAckPDU,
    SubscribeCOVRequest,
    UnconfirmedCOVNotificationRequest,
    WritePropertyMultipleError,
    WritePropertyMultipleRequest,
    WritePropertyRequest,
)
from bacpypes3.app import Application
from bacpypes3.basetypes import (
    DateTime,
    PropertyIdentifier,
    PropertyReference,
    PropertyValue,
    ReadAccessSpecification,
    WriteAccessSpecification,
)
from bacpypes3.constructeddata import Any as AnyValue
from bacpypes3.constructeddata import Array, Choice, SequenceOf
from bacpypes3.constructeddata import Sequence as BacnetSequence
from bacpypes3.local.device import DeviceObject
from bacpypes3.local.networkport import NetworkPortObject
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import (
    Atomic,
    BitString,
    Boolean,
    CharacterString,
    Date,
    Double,
    Enumerated,
    Integer,
    Null,
    ObjectIdentifier,
    OctetString,
    Real,
    TagClass,
    Time,
    Unsigned,
    attr_to_asn1,
)
from bacpypes3.vendor import get_vendor_info

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEVICE_ID = 4194000
DEFAULT_TIMEOUT = 20.0

# Standard object and property datatypes, to decode what the other device sends.
_ASHRAE = get_vendor_info(0)

# Primitive datatypes a `write` can force with "type".
_FORCED_TYPES: dict[str, Any] = {
    "real": Real,
    "double": Double,
    "enumerated": Enumerated,
    "unsigned": Unsigned,
    "integer": Integer,
    "boolean": Boolean,
    "characterstring": CharacterString,
}

_PROPERTY_INDEX_RE = re.compile(r"^([A-Za-z0-9-]+)\[(\d+)\]$")


# --------------------------------------------------------------------------------------------------------
# Value conversion


def _real_to_float(value: float) -> float:
    """The shortest decimal that is the same 32-bit float, so a Real 7.3 reads as 7.3, not 7.300000190734863."""
    if not math.isfinite(value):
        return float(value)
    packed = struct.pack(">f", value)
    for digits in range(6, 10):
        shortest = float(f"{value:.{digits}g}")
        if struct.pack(">f", shortest) == packed:
            return shortest
    return float(value)


def to_json(value: Any) -> Any:
    """Convert a decoded bacpypes3 value to plain JSON (see the module docstring for the rules)."""
    if value is None or isinstance(value, Null):
        return None
    if isinstance(value, Boolean):
        return bool(value)
    if isinstance(value, Enumerated):
        return str(value)
    if isinstance(value, (Unsigned, Integer)):
        return int(value)
    if isinstance(value, Double):
        return float(value)
    if isinstance(value, Real):
        return _real_to_float(float(value))
    if isinstance(value, CharacterString):
        return str(value)
    if isinstance(value, ObjectIdentifier):
        return str(value)
    if isinstance(value, BitString):
        return [1 if bit else 0 for bit in value]
    if isinstance(value, OctetString):
        return bytes(value).hex()
    if isinstance(value, (Date, Time, DateTime)):
        return str(value)
    if isinstance(value, Choice):  # PriorityValue, OptionalUnsigned, TimeStamp, ...: the chosen alternative
        for name in _field_names(value):
            inner = getattr(value, name, None)
            if inner is not None:
                return to_json(inner)
        return None
    if isinstance(value, BacnetSequence):
        fields = {name: getattr(value, name, None) for name in _field_names(value)}
        return {attr_to_asn1(name): to_json(inner) for name, inner in fields.items() if inner is not None}
    if isinstance(value, AnyValue):
        return _generic_json(value)
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _field_names(value: Any) -> list[str]:
    """A Sequence's or Choice's field names (a Choice has no ``_order``, only ``_elements``)."""
    return list(value._order or value._elements)


def _generic_json(value: Any) -> Any:
    """An Any whose datatype is unknown: its application-tagged primitive(s), else the raw tags in hex."""
    tags = list(value.tagList or [])
    if len(tags) >= 2 and tags[0].tag_class == TagClass.opening and tags[-1].tag_class == TagClass.closing:
        tags = tags[1:-1]
    if tags and all(tag.tag_class == TagClass.application for tag in tags):
        try:
            items = [to_json(tag.app_to_object()) for tag in tags]
        except Exception:
            pass
        else:
            return items[0] if len(items) == 1 else items
    encoded = b"".join(bytes(tag.encode().pduData) for tag in (value.tagList or []))
    return {"undecoded": encoded.hex()}


def _datatype(object_id: Any, property_id: Any, index: int | None) -> Any:
    """The standard datatype of a property (of one element when indexed), or None when not known."""
    object_class = _ASHRAE.get_object_class(object_id[0])
    if object_class is None:
        return None
    datatype = object_class.get_property_type(property_id)
    if datatype is None:
        return None
    if index is not None and issubclass(datatype, Array):
        datatype = Unsigned if index == 0 else datatype._subtype
    return datatype


def _decode(any_value: Any, object_id: Any, property_id: Any, index: int | None) -> Any:
    """Decode a property value carried in an Any and convert it to JSON."""
    datatype = _datatype(object_id, property_id, index)
    if datatype is not None:
        try:
            return to_json(any_value.cast_out(datatype, null=issubclass(datatype, Atomic)))
        except Exception:
            pass
    return _generic_json(any_value)


def _nack_json(nack: BaseException) -> dict[str, str]:
    """A BACnet Error/Reject/Abort as ``{"error": "class:code"}``, ``{"reject": ...}`` or ``{"abort": ...}``."""
    if isinstance(nack, RejectPDU):
        return {"reject": str(nack.apduAbortRejectReason)}
    if isinstance(nack, AbortPDU):
        return {"abort": str(nack.apduAbortRejectReason)}
    error = getattr(nack, "errorType", None) or nack  # ChangeListError and kin wrap an ErrorType
    return {"error": f"{getattr(error, 'errorClass', None)}:{getattr(error, 'errorCode', None)}"}


def _error_type_json(error: Any) -> dict[str, str]:
    return {"error": f"{error.errorClass}:{error.errorCode}"}


def _address_text(address: Any) -> str:
    host, port = address.addrTuple
    return f"{host}:{port}"


def _property_key(property_id: Any, index: int | None) -> str:
    return str(property_id) if index is None else f"{property_id}[{index}]"


# --------------------------------------------------------------------------------------------------------
# The peer's application


def _property_reference(text: str | int) -> Any:
    """``"present-value"``, ``"priority-array[8]"``, ``"all"`` or a proprietary number."""
    if isinstance(text, int):
        return PropertyReference(propertyIdentifier=PropertyIdentifier(text))
    match = _PROPERTY_INDEX_RE.match(text)
    if match:
        return PropertyReference(
            propertyIdentifier=PropertyIdentifier(match.group(1)), propertyArrayIndex=int(match.group(2))
        )
    return PropertyReference(propertyIdentifier=PropertyIdentifier(text))


def _property_id(value: str | int) -> Any:
    return PropertyIdentifier(value)


class PeerApplication(Application):  # type: ignore[misc]
    """The bacpypes3 client application; records (and acknowledges) every COV notification it receives."""

    notifications: list[dict[str, Any]]
    notifications_changed: asyncio.Condition

    def start_recording(self) -> None:
        self.notifications = []
        self.notifications_changed = asyncio.Condition()

    async def _record(self, apdu: Any, confirmed: bool) -> None:
        object_id = apdu.monitoredObjectIdentifier
        values: dict[str, Any] = {}
        for element in apdu.listOfValues:
            index = element.propertyArrayIndex
            key = _property_key(element.propertyIdentifier, index)
            values[key] = _decode(element.value, object_id, element.propertyIdentifier, index)
        note = {
            "object": str(object_id),
            "confirmed": confirmed,
            "values": values,
            "process_id": int(apdu.subscriberProcessIdentifier),
            "time_remaining": int(apdu.timeRemaining),
            "device": int(apdu.initiatingDeviceIdentifier[1]),
            "source": _address_text(apdu.pduSource),
        }
        async with self.notifications_changed:
            self.notifications.append(note)
            self.notifications_changed.notify_all()

    async def do_ConfirmedCOVNotificationRequest(self, apdu: ConfirmedCOVNotificationRequest) -> None:
        await self._record(apdu, confirmed=True)
        await self.response(SimpleAckPDU(context=apdu))

    async def do_UnconfirmedCOVNotificationRequest(self, apdu: UnconfirmedCOVNotificationRequest) -> None:
        await self._record(apdu, confirmed=False)


def build_application(bind: str, device_id: int, max_apdu: int, segmentation: str) -> PeerApplication:
    device = DeviceObject(
        objectIdentifier=("device", device_id),
        objectName="test-peer",
        vendorIdentifier=999,
        maxApduLengthAccepted=max_apdu,
        segmentationSupported=segmentation,
        apduTimeout=2000,
        numberOfApduRetries=1,
    )
    network_port = NetworkPortObject(bind, objectIdentifier=("network-port", 1), objectName="NetworkPort-1")
    app: PeerApplication = PeerApplication.from_object_list([device, network_port])
    app.start_recording()
    return app


async def _wait_bound(app: PeerApplication, timeout: float) -> str:
    """Wait until the UDP socket is bound (bacpypes3 binds in a task and retries forever on errors)."""
    (link_layer,) = app.link_layers.values()
    server = link_layer.server
    try:
        await asyncio.wait_for(server._local_transport_ready.wait(), timeout)
    except TimeoutError:
        raise RuntimeError(f"could not bind {server.local_address}") from None
    host, port = server.local_transport.get_extra_info("sockname")[:2]
    return f"{host}:{port}"


async def _send(app: PeerApplication, request: Any) -> Any:
    """Send a confirmed request; the ack, or the Error/Reject/Abort (an exception in bacpypes3) as a value."""
    try:
        return await app.request(request)
    except ErrorRejectAbortNack as nack:
        return nack


async def op_read(app: PeerApplication, req: Mapping[str, Any]) -> Any:
    object_id = ObjectIdentifier(req["object"])
    property_id = _property_id(req["property"])
    index: int | None = req.get("index")
    request = ReadPropertyRequest(
        objectIdentifier=object_id, propertyIdentifier=property_id, destination=Address(req["address"])
    )
    if index is not None:
        request.propertyArrayIndex = index
    ack = await _send(app, request)
    if isinstance(ack, ErrorRejectAbortNack):
        return _nack_json(ack)
    return _decode(ack.propertyValue, ack.objectIdentifier, ack.propertyIdentifier, ack.propertyArrayIndex)


async def _rpm(app: PeerApplication, address: str, specs: Sequence[Sequence[Any]]) -> Any:
    """ReadPropertyMultiple: ``[[object, property, index, value], ...]`` or a whole-request nack dict."""
    access_specs = [
        ReadAccessSpecification(
            objectIdentifier=ObjectIdentifier(object_text),
            listOfPropertyReferences=[_property_reference(prop) for prop in props],
        )
        for object_text, props in specs
    ]
    request = ReadPropertyMultipleRequest(
        listOfReadAccessSpecs=SequenceOf(ReadAccessSpecification)(access_specs), destination=Address(address)
    )
    ack = await _send(app, request)
    if isinstance(ack, ErrorRejectAbortNack):
        return _nack_json(ack)
    rows: list[list[Any]] = []
    for result in ack.listOfReadAccessResults:
        object_id = result.objectIdentifier
        for element in result.listOfResults:
            property_id = element.propertyIdentifier
            index = element.propertyArrayIndex
            read_result = element.readResult
            if read_result.propertyAccessError is not None:
                value = _error_type_json(read_result.propertyAccessError)
            else:
                value = _decode(read_result.propertyValue, object_id, property_id, index)
            rows.append([str(object_id), str(property_id), index, value])
    return rows


async def op_rpm(app: PeerApplication, req: Mapping[str, Any]) -> Any:
    return await _rpm(app, req["address"], req["specs"])


def _write_element(object_id: Any, property_id: Any, index: int | None, raw: Any, forced: str | None) -> Any:
    """The primitive a write sends: Null for None, the forced type, else the property's standard datatype."""
    if forced == "null" or (forced is None and raw is None):
        return Null(())
    if forced is not None:
        if forced not in _FORCED_TYPES:
            raise ValueError(f"unknown type {forced!r}: one of null, {', '.join(_FORCED_TYPES)}")
        return _FORCED_TYPES[forced](raw)
    datatype = _datatype(object_id, property_id, index)
    if datatype is None:
        raise ValueError(f"unknown datatype for {object_id} {property_id}; give a 'type'")
    return datatype(raw)


async def op_write(app: PeerApplication, req: Mapping[str, Any]) -> Any:
    object_id = ObjectIdentifier(req["object"])
    property_id = _property_id(req["property"])
    index: int | None = req.get("index")
    priority: int | None = req.get("priority")
    element = _write_element(object_id, property_id, index, req.get("value"), req.get("type"))
    request = WritePropertyRequest(
        objectIdentifier=object_id,
        propertyIdentifier=property_id,
        propertyValue=element,
        destination=Address(req["address"]),
    )
    if index is not None:
        request.propertyArrayIndex = index
    if priority is not None:
        request.priority = priority
    ack = await _send(app, request)
    if isinstance(ack, ErrorRejectAbortNack):
        return _nack_json(ack)
    return None


async def op_wpm(app: PeerApplication, req: Mapping[str, Any]) -> Any:
    specs = []
    for object_text, properties in req["specs"]:
        object_id = ObjectIdentifier(object_text)
        values = []
        for property_text, raw, *rest in properties:
            options: Mapping[str, Any] = rest[0] if rest else {}
            property_id = _property_id(property_text)
            index = options.get("index")
            value = PropertyValue(
                propertyIdentifier=property_id,
                value=_write_element(object_id, property_id, index, raw, options.get("type")),
            )
            if index is not None:
                value.propertyArrayIndex = index
            if options.get("priority") is not None:
                value.priority = options["priority"]
            values.append(value)
        specs.append(
            WriteAccessSpecification(
                objectIdentifier=object_id, listOfProperties=SequenceOf(PropertyValue)(values)
            )
        )
    request = WritePropertyMultipleRequest(
        listOfWriteAccessSpecs=SequenceOf(WriteAccessSpecification)(specs),
        destination=Address(req["address"]),
    )
    ack = await _send(app, request)
    if isinstance(ack, WritePropertyMultipleError):
        failed = ack.firstFailedWriteAttempt
        return {
            **_error_type_json(ack.errorType),
            "first_failed": [
                str(failed.objectIdentifier),
                str(failed.propertyIdentifier),
                failed.propertyArrayIndex,
            ],
        }
    if isinstance(ack, ErrorRejectAbortNack):
        return _nack_json(ack)
    return None


async def op_read_range(app: PeerApplication, req: Mapping[str, Any]) -> Any:
    request = ReadRangeRequest(
        objectIdentifier=ObjectIdentifier(req["object"]),
        propertyIdentifier=_property_id(req["property"]),
        destination=Address(req["address"]),
    )
    ack = await _send(app, request)
    if isinstance(ack, ErrorRejectAbortNack):
        return _nack_json(ack)
    return to_json(getattr(ack, "itemData", None))


async def op_raw(app: PeerApplication, req: Mapping[str, Any]) -> Any:
    host, port = Address(req["address"]).addrTuple
    npdu = bytes([0x01, 0x04]) + bytes.fromhex(req["apdu"])  # version 1, expecting a reply
    frame = bytes([0x81, 0x0A]) + struct.pack(">H", len(npdu) + 4) + npdu
    timeout = float(req.get("timeout", 3.0))

    def exchange() -> bytes | None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(timeout)
            sock.sendto(frame, (host, port))
            try:
                answer, _ = sock.recvfrom(2048)
            except TimeoutError:
                return None
            return answer

    answer = await asyncio.to_thread(exchange)
    if answer is None:
        return {"timeout": True}
    control = answer[5]
    if control & 0x28:  # a routed answer: no such thing on loopback
        raise ValueError(f"unexpected NPDU control {control:#x} in {answer.hex()}")
    return {"apdu": answer[6:].hex()}


async def op_whois(app: PeerApplication, req: Mapping[str, Any]) -> Any:
    address = req.get("address")
    if not address and not any(link.server.broadcast_address for link in app.link_layers.values()):
        # bacpypes3 would only log "no broadcast" from a background task and find nobody
        raise ValueError("no broadcast address: bind the peer with a netmask, e.g. 127.0.0.1/8:<port>")
    i_ams = await app.who_is(
        req.get("low"),
        req.get("high"),
        Address(address) if address else None,
        float(req.get("timeout", 3.0)),
    )
    return [
        {
            "device": int(i_am.iAmDeviceIdentifier[1]),
            "address": _address_text(i_am.pduSource),
            "max_apdu": int(i_am.maxAPDULengthAccepted),
            "segmentation": str(i_am.segmentationSupported),
            "vendor": int(i_am.vendorID),
        }
        for i_am in i_ams
    ]


async def op_subscribe_cov(app: PeerApplication, req: Mapping[str, Any]) -> Any:
    request = SubscribeCOVRequest(
        subscriberProcessIdentifier=int(req.get("process_id", 1)),
        monitoredObjectIdentifier=ObjectIdentifier(req["object"]),
        destination=Address(req["address"]),
    )
    if not req.get("cancel", False):
        request.issueConfirmedNotifications = bool(req["confirmed"])
        lifetime = req.get("lifetime", 300)
        if lifetime is not None:
            request.lifetime = int(lifetime)
    ack = await _send(app, request)
    if isinstance(ack, ErrorRejectAbortNack):
        return _nack_json(ack)
    return None


def _same(actual: Any, wanted: Any) -> bool:
    if isinstance(actual, float) and isinstance(wanted, (int, float)) and not isinstance(wanted, bool):
        return math.isclose(actual, wanted, rel_tol=1e-6, abs_tol=1e-9)
    return bool(actual == wanted)


async def op_wait_cov(app: PeerApplication, req: Mapping[str, Any]) -> Any:
    object_text: str | None = req.get("object")
    count = int(req.get("count", 1))
    where: Mapping[str, Any] = req.get("where") or {}

    def matches(note: Mapping[str, Any]) -> bool:
        if object_text is not None and note["object"] != object_text:
            return False
        return all(key in note["values"] and _same(note["values"][key], want) for key, want in where.items())

    def found() -> list[dict[str, Any]]:
        return [note for note in app.notifications if matches(note)][:count]

    async with app.notifications_changed:
        try:
            await asyncio.wait_for(
                app.notifications_changed.wait_for(lambda: len(found()) >= count), float(req["timeout"])
            )
        except TimeoutError:
            return {"error": "timeout", "seen": list(app.notifications)}
        taken = found()
        for note in taken:
            app.notifications.remove(note)
        return taken


async def op_epics(app: PeerApplication, req: Mapping[str, Any]) -> Any:
    address = req["address"]
    device = f"device,{int(req['device'])}"
    read_how = "whole"
    object_list = await op_read(app, {"address": address, "object": device, "property": "object-list"})
    if isinstance(object_list, dict):
        read_how = "indexed"
        length = await op_read(
            app, {"address": address, "object": device, "property": "object-list", "index": 0}
        )
        if isinstance(length, dict):
            return {"error": {"object-list": object_list, "object-list[0]": length}}
        object_list = []
        for index in range(1, int(length) + 1):
            item = await op_read(
                app, {"address": address, "object": device, "property": "object-list", "index": index}
            )
            if isinstance(item, dict):
                return {"error": {f"object-list[{index}]": item}}
            object_list.append(item)
    objects: dict[str, dict[str, Any]] = {}
    failures: list[dict[str, Any]] = []
    for object_text in object_list:
        rows = await _rpm(app, address, [[object_text, ["all"]]])
        if isinstance(rows, dict):
            failures.append({"object": object_text, **rows})
            continue
        objects[object_text] = {_property_key(prop, index): value for _, prop, index, value in rows}
    return {"objects": objects, "failures": failures, "object_list_read": read_how}


OPERATIONS = {
    "read": op_read,
    "rpm": op_rpm,
    "write": op_write,
    "wpm": op_wpm,
    "read_range": op_read_range,
    "raw": op_raw,
    "whois": op_whois,
    "subscribe_cov": op_subscribe_cov,
    "wait_cov": op_wait_cov,
    "epics": op_epics,
}


def _emit(message: Mapping[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def _handle(app: PeerApplication, req: Mapping[str, Any]) -> None:
    request_id = req.get("id")
    try:
        operation = OPERATIONS[req["op"]]
        result = await operation(app, req)
    except (Exception, ErrorRejectAbortNack) as exc:
        _emit({"id": request_id, "ok": False, "error": f"{type(exc).__name__}: {exc}"})
    else:
        _emit({"id": request_id, "ok": True, "result": result})


async def serve(args: argparse.Namespace) -> None:
    # bacpypes3 binds with SO_REUSEPORT and retries forever on errors: find a busy port out here, quickly
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(Address(args.bind).addrTuple)
    app = build_application(args.bind, args.device_id, args.max_apdu, args.segmentation)
    tasks: set[asyncio.Task[None]] = set()
    try:
        _emit({"ready": True, "address": await _wait_bound(app, 5.0)})
        loop = asyncio.get_running_loop()
        stdin = asyncio.StreamReader(limit=16 * 1024 * 1024)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
        while line := await stdin.readline():
            if not line.strip():
                continue
            try:
                req = json.loads(line)
                if not isinstance(req, dict):
                    raise ValueError("a JSON object expected")
            except ValueError as exc:
                _emit({"id": None, "ok": False, "error": f"bad request line: {exc}"})
                continue
            if req.get("op") == "quit":
                _emit({"id": req.get("id"), "ok": True, "result": None})
                break
            task = asyncio.create_task(_handle(app, req))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    finally:
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        app.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bacnet_peer", description="An independent BACnet/IP client for tests."
    )
    parser.add_argument("--bind", required=True, help="IPv4 address:port to bind, e.g. 127.0.0.1:47900")
    parser.add_argument("--device-id", type=int, default=DEFAULT_DEVICE_ID)
    parser.add_argument("--max-apdu", type=int, default=1476, help="max-apdu-length-accepted")
    parser.add_argument(
        "--segmentation",
        default="segmented-both",
        choices=["segmented-both", "segmented-transmit", "segmented-receive", "no-segmentation"],
    )
    asyncio.run(serve(parser.parse_args(argv)))


# --------------------------------------------------------------------------------------------------------
# The wrapper tests use


class PeerError(Exception):
    """The peer answered ``ok: false``, did not answer in time, or died."""


def free_udp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class BacnetPeer:
    """A running peer subprocess; see the module docstring for the operations and their JSON."""

    def __init__(self, process: asyncio.subprocess.Process, address: str) -> None:
        self.process = process
        self.address = address  # "127.0.0.1:<port>" the peer is bound to
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._stderr = bytearray()
        self._stdout_task: asyncio.Task[None] | None = None
        self._stderr_task = asyncio.create_task(self._drain_stderr())
        self._closed = False
        self._killed = False

    @classmethod
    async def start(
        cls,
        port: int | None = None,
        *,
        device_id: int = DEFAULT_DEVICE_ID,
        segmentation: str = "segmented-both",
        max_apdu: int = 1476,
        ready_timeout: float = DEFAULT_TIMEOUT,
        bind: str | None = None,
        prefix: Sequence[str] = (),
    ) -> BacnetPeer:
        """Start the peer bound to 127.0.0.1:`port` (a free one when None) or to `bind` ("ip/prefix:port");
        `prefix` runs it under another command (`ip netns exec <namespace>`)."""
        bind = bind or f"127.0.0.1:{port or free_udp_port()}"
        process = await asyncio.create_subprocess_exec(
            *prefix,
            sys.executable,
            "-m",
            "tests.bacnet_peer",
            "--bind",
            bind,
            "--device-id",
            str(device_id),
            "--segmentation",
            segmentation,
            "--max-apdu",
            str(max_apdu),
            cwd=REPO_ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=64 * 1024 * 1024,
        )
        peer = cls(process, bind)
        try:
            ready = await asyncio.wait_for(peer._read_ready(), ready_timeout)
        except Exception as exc:
            await peer._kill()
            await peer._settle_tasks()
            raise PeerError(f"peer did not start: {exc!r}; stderr:\n{peer.stderr}") from exc
        except BaseException:
            await peer._kill()
            await peer._settle_tasks()
            raise
        peer.address = ready["address"]
        peer._stdout_task = asyncio.create_task(peer._read_responses())
        return peer

    @property
    def stderr(self) -> str:
        """What the peer has written on stderr so far (bacpypes3 logs land here)."""
        return self._stderr.decode(errors="replace")

    async def _drain_stderr(self) -> None:
        assert self.process.stderr is not None
        while chunk := await self.process.stderr.read(65536):
            self._stderr += chunk
            del self._stderr[: max(0, len(self._stderr) - 256 * 1024)]

    async def _read_ready(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            message = json.loads(line)
            if isinstance(message, dict) and message.get("ready"):
                return message
        raise PeerError(f"peer exited with {await self.process.wait()} before it was ready")

    async def _read_responses(self) -> None:
        assert self.process.stdout is not None
        try:
            while line := await self.process.stdout.readline():
                message = json.loads(line)
                future = self._pending.pop(message.get("id"), None)
                if future is not None and not future.done():
                    future.set_result(message)
        finally:
            returncode = await self.process.wait()
            with contextlib.suppress(TimeoutError):  # let the stderr drain catch up
                await asyncio.wait_for(asyncio.shield(self._stderr_task), 1.0)
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(PeerError(f"peer exited with {returncode}; stderr:\n{self.stderr}"))
            self._pending.clear()

    async def request(self, op: str, /, *, response_timeout: float | None = None, **fields: Any) -> Any:
        """Send one request and return its result; raises PeerError on ``ok: false``, a timeout or a dead peer.

        The default response timeout is 20 s plus the request's own ``timeout`` field, if any.
        """
        if self.process.returncode is not None:
            raise PeerError(f"peer exited with {self.process.returncode}; stderr:\n{self.stderr}")
        if response_timeout is None:
            response_timeout = DEFAULT_TIMEOUT + float(fields.get("timeout") or 0)
        self._next_id += 1
        request_id = self._next_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps({"id": request_id, "op": op, **fields}) + "\n").encode())
        await self.process.stdin.drain()
        try:
            message = await asyncio.wait_for(future, response_timeout)
        except TimeoutError:
            raise PeerError(f"no answer to {op} {fields} in {response_timeout} s") from None
        finally:
            self._pending.pop(request_id, None)
        if not message.get("ok"):
            raise PeerError(f"{op} {fields}: {message.get('error')}")
        return message.get("result")

    async def read(self, address: str, obj: str, prop: str | int, index: int | None = None) -> Any:
        """The value, or ``{"error": "class:code"}`` / ``{"reject": ...}`` / ``{"abort": ...}``."""
        fields: dict[str, Any] = {"address": address, "object": obj, "property": prop}
        if index is not None:
            fields["index"] = index
        return await self.request("read", **fields)

    async def rpm(self, address: str, specs: Sequence[tuple[str, Sequence[str | int]]]) -> Any:
        """``[[object, property, index, value], ...]`` or a whole-request error dict."""
        return await self.request("rpm", address=address, specs=[[obj, list(props)] for obj, props in specs])

    async def write(
        self,
        address: str,
        obj: str,
        prop: str | int,
        value: Any,
        *,
        priority: int | None = None,
        index: int | None = None,
        datatype: str | None = None,
    ) -> Any:
        """None on SimpleAck, else an error/reject/abort dict. ``datatype`` forces the primitive sent."""
        fields: dict[str, Any] = {"address": address, "object": obj, "property": prop, "value": value}
        if priority is not None:
            fields["priority"] = priority
        if index is not None:
            fields["index"] = index
        if datatype is not None:
            fields["type"] = datatype
        return await self.request("write", **fields)

    async def wpm(
        self, address: str, specs: Sequence[tuple[str, Sequence[tuple[str | int, Any, dict[str, Any]]]]]
    ) -> Any:
        """WritePropertyMultiple: None on SimpleAck, ``{"error": ..., "first_failed": [...]}`` or a nack dict."""
        return await self.request(
            "wpm", address=address, specs=[[obj, [list(p) for p in props]] for obj, props in specs]
        )

    async def read_range(self, address: str, obj: str, prop: str) -> Any:
        return await self.request("read_range", address=address, object=obj, property=prop)

    async def raw(self, address: str, apdu: bytes, timeout: float = 3.0) -> Any:
        """``{"apdu": hex}`` of the answer to a hand-made APDU, or ``{"timeout": True}``."""
        return await self.request("raw", address=address, apdu=apdu.hex(), timeout=timeout)

    async def whois(
        self,
        address: str | None = None,
        low: int | None = None,
        high: int | None = None,
        timeout: float = 3.0,
    ) -> list[dict[str, Any]]:
        fields: dict[str, Any] = {"timeout": timeout}
        if address is not None:
            fields["address"] = address
        if low is not None:
            fields["low"] = low
        if high is not None:
            fields["high"] = high
        result: list[dict[str, Any]] = await self.request("whois", **fields)
        return result

    async def subscribe_cov(
        self,
        address: str,
        obj: str,
        *,
        confirmed: bool,
        lifetime: int | None = 300,
        process_id: int = 1,
        cancel: bool = False,
    ) -> Any:
        """None when the device accepted, else an error/reject/abort dict."""
        return await self.request(
            "subscribe_cov",
            address=address,
            object=obj,
            confirmed=confirmed,
            lifetime=lifetime,
            process_id=process_id,
            cancel=cancel,
        )

    async def wait_cov(
        self,
        obj: str | None = None,
        *,
        timeout: float = 10.0,
        count: int = 1,
        where: Mapping[str, Any] | None = None,
    ) -> Any:
        """A list of ``count`` notifications, or ``{"error": "timeout", "seen": [...]}``."""
        fields: dict[str, Any] = {"timeout": timeout, "count": count}
        if obj is not None:
            fields["object"] = obj
        if where is not None:
            fields["where"] = dict(where)
        return await self.request("wait_cov", **fields)

    async def epics(self, address: str, device: int, *, response_timeout: float = 120.0) -> Any:
        """``{"objects": {...}, "failures": [...], "object_list_read": ...}`` (see the module docstring)."""
        return await self.request("epics", response_timeout=response_timeout, address=address, device=device)

    async def close(self, timeout: float = 5.0) -> None:
        """Ask the peer to quit, kill it if it does not; raises PeerError if it had died or exited badly.

        Closing again does nothing.
        """
        if self._closed:
            return
        self._closed = True
        died = self.process.returncode is not None
        if not died:
            with contextlib.suppress(PeerError, ConnectionError):
                await self.request("quit", response_timeout=timeout)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                await self._kill()
        await self._settle_tasks()
        if died or (self.process.returncode != 0 and not self._killed):
            raise PeerError(f"peer exited with {self.process.returncode}; stderr:\n{self.stderr}")

    async def _settle_tasks(self) -> None:
        """Let the stdout/stderr readers finish on EOF (the process has exited), else cancel them."""
        for task in (self._stdout_task, self._stderr_task):
            if task is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(task), 1.0)
                task.cancel()

    async def _kill(self) -> None:
        if self.process.returncode is None:
            self._killed = True
            self.process.kill()
            await self.process.wait()


@contextlib.asynccontextmanager
async def bacnet_peer(port: int | None = None, **options: Any) -> AsyncIterator[BacnetPeer]:
    """``async with bacnet_peer() as peer:`` -- a started peer, closed on exit."""
    peer = await BacnetPeer.start(port, **options)
    try:
        yield peer
    finally:
        await peer.close()


if __name__ == "__main__":
    main()
