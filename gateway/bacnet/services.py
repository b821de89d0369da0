"""The BACnet services the gateway's device executes, where bacpypes3's defaults (0.0.110) are not what a BMS needs.

- Only the services listed in Protocol_Services_Supported are executed; any other confirmed request gets a
  Reject (unrecognized-service), also one with a service choice bacpypes3 cannot decode (it would abort), and one
  bacpypes3 half does (ReadRange answers an error). bacpypes3 computes the bitstring with the confirmed
  services' numbering for unconfirmed ones too (Who-Is showed as AddListElement).
- ReadPropertyMultiple answers every property on its own: a property that cannot be read becomes a
  per-property error in the result (also for ALL, REQUIRED and OPTIONAL), never an error for the whole request,
  which makes EPICS tools retry forever.
- WriteProperty and WritePropertyMultiple: a property the object does not have is unknown-property, a property
  that is not writable (every one of the device and network-port objects, a point object's Priority_Array) is
  write-access-denied before its value is decoded, and a value of the wrong datatype is invalid-data-type
  (bacpypes3 fails while decoding it). WritePropertyMultiple writes in order and stops at the first failure
  with a WritePropertyMultiple-Error naming it (bacpypes3 raises that error where nothing catches it: the client
  waited for an answer that never came).
- A NULL written to a commandable Present_Value without a priority relinquishes priority 16.
- The wildcard device instance (4194303) names this device (bacpypes3 compares it with a tuple, never equal).
- SubscribeCOV without a lifetime is an indefinite subscription (bacpypes3 answers operational-problem).
"""

from __future__ import annotations

import inspect
import logging
from typing import Any, cast

from bacpypes3.apdu import (
    ConfirmedRequestPDU,
    ConfirmedServiceChoice,
    ReadPropertyMultipleACK,
    ReadPropertyMultipleRequest,
    RejectPDU,
    RejectReason,
    SimpleAckPDU,
    SubscribeCOVRequest,
    UnconfirmedRequestPDU,
    UnconfirmedServiceChoice,
    WritePropertyMultipleError,
    WritePropertyMultipleRequest,
    WritePropertyRequest,
    confirmed_request_types,
)
from bacpypes3.app import Application
from bacpypes3.appservice import ApplicationServiceAccessPoint
from bacpypes3.basetypes import (
    ErrorType,
    ObjectPropertyReference,
    PropertyIdentifier,
    ReadAccessResult,
    ReadAccessResultElement,
    ReadAccessResultElementChoice,
    ServicesSupported,
)
from bacpypes3.constructeddata import Any as AnyValue
from bacpypes3.constructeddata import Array
from bacpypes3.errors import ExecutionError, ObjectError, PropertyError
from bacpypes3.primitivedata import ObjectIdentifier, Unsigned

LOG = logging.getLogger(__name__)

WILDCARD_DEVICE = 4194303
_WILDCARD = ObjectIdentifier(("device", WILDCARD_DEVICE))
_WHOLE_SETS = (PropertyIdentifier.all, PropertyIdentifier.required, PropertyIdentifier.optional)

# What the device executes. ConfirmedCOVNotification is answered by bacpypes3 (the device subscribes to
# nothing, so: unknown-subscription); I-Am and I-Have arriving are taken as answers to nothing.
EXECUTED_CONFIRMED = frozenset(
    {
        ConfirmedServiceChoice.subscribeCOV,
        ConfirmedServiceChoice.readProperty,
        ConfirmedServiceChoice.readPropertyMultiple,
        ConfirmedServiceChoice.writeProperty,
        ConfirmedServiceChoice.writePropertyMultiple,
        ConfirmedServiceChoice.confirmedCOVNotification,
    }
)
EXECUTED_UNCONFIRMED = frozenset(
    {
        UnconfirmedServiceChoice.whoIs,
        UnconfirmedServiceChoice.whoHas,
        UnconfirmedServiceChoice.iAm,
        UnconfirmedServiceChoice.iHave,
        UnconfirmedServiceChoice.unconfirmedCOVNotification,
    }
)
# Protocol_Services_Supported (ASHRAE 135 clause 12.11.21): the services executed, and the ones the device
# initiates (I-Am, I-Have, COV notifications), as EPICS and BTL-listed devices show them; a BMS that finds
# I-Am or the COV notifications missing may not subscribe at all.
SERVICES_SUPPORTED = (
    "whoIs",
    "whoHas",
    "iAm",
    "iHave",
    "readProperty",
    "readPropertyMultiple",
    "writeProperty",
    "writePropertyMultiple",
    "subscribeCOV",
    "confirmedCOVNotification",
    "unconfirmedCOVNotification",
)


def services_supported() -> ServicesSupported:
    supported = ServicesSupported([])
    for name in SERVICES_SUPPORTED:
        supported[getattr(ServicesSupported, name)] = 1
    return supported


class RejectingServiceAccessPoint(ApplicationServiceAccessPoint):  # type: ignore[misc]
    """Rejects a confirmed request whose service choice bacpypes3 cannot decode (it aborts with `other`)."""

    async def confirmation(self, pdu: Any) -> None:
        data = bytes(pdu.pduData[:6])  # decoding consumes the PDU: look at the header only
        if data and data[0] >> 4 == ConfirmedRequestPDU.pduType:
            choice_at = 5 if data[0] & 0x08 else 3  # a segmented request has its sequence and window first
            if len(data) > choice_at and data[choice_at] not in confirmed_request_types:
                reject = RejectPDU(data[2], RejectReason.unrecognizedService)
                reject.pduDestination = pdu.pduSource
                await self.request(reject)
                return
        await super().confirmation(pdu)


class ServingApplication(Application):  # type: ignore[misc]
    """bacpypes3's application with the services above."""

    def get_services_supported(self) -> ServicesSupported:
        return services_supported()

    async def indication(self, apdu: Any) -> None:
        if isinstance(apdu, ConfirmedRequestPDU) and apdu.apduService not in EXECUTED_CONFIRMED:
            await self.response(RejectPDU(reason=RejectReason.unrecognizedService, context=apdu))
            return
        if isinstance(apdu, UnconfirmedRequestPDU) and apdu.apduService not in EXECUTED_UNCONFIRMED:
            return
        await super().indication(apdu)

    async def do_WhoHasRequest(self, apdu: Any) -> None:
        # bacpypes3 looks the object up in its dictionaries: make an offered one first
        wanted = apdu.object
        if wanted.objectIdentifier is not None:
            self.get_object_id(wanted.objectIdentifier)
        if wanted.objectName is not None:
            self.get_object_name(wanted.objectName)
        await super().do_WhoHasRequest(apdu)

    async def do_ReadPropertyRequest(self, apdu: Any) -> None:
        apdu.objectIdentifier = self._resolve(apdu.objectIdentifier)
        await super().do_ReadPropertyRequest(apdu)

    async def do_ReadPropertyMultipleRequest(self, apdu: ReadPropertyMultipleRequest) -> None:
        results = []
        found_any = False
        for spec in apdu.listOfReadAccessSpecs:
            object_id = self._resolve(spec.objectIdentifier)
            obj = self.get_object_id(object_id)
            found_any = found_any or obj is not None
            elements: list[ReadAccessResultElement] = []
            for reference in spec.listOfPropertyReferences:
                identifier = reference.propertyIdentifier
                if obj is None:
                    elements.append(
                        _error_element(identifier, reference.propertyArrayIndex, "object", "unknownObject")
                    )
                elif identifier in _WHOLE_SETS:
                    for name in _property_names(obj, identifier):
                        elements.append(await _read_element(obj, PropertyIdentifier(name), None))
                else:
                    elements.append(await _read_element(obj, identifier, reference.propertyArrayIndex))
            results.append(ReadAccessResult(objectIdentifier=object_id, listOfResults=elements))
        if not found_any:
            raise ObjectError("unknown-object")
        await self.response(ReadPropertyMultipleACK(listOfReadAccessResults=results, context=apdu))

    async def do_WritePropertyRequest(self, apdu: WritePropertyRequest) -> None:
        obj = self.get_object_id(self._resolve(apdu.objectIdentifier))
        if obj is None:
            raise ExecutionError(errorClass="object", errorCode="unknownObject")
        await _write(obj, apdu.propertyIdentifier, apdu.propertyArrayIndex, apdu.propertyValue, apdu.priority)
        await self.response(SimpleAckPDU(context=apdu))

    async def do_WritePropertyMultipleRequest(self, apdu: WritePropertyMultipleRequest) -> None:
        for spec in apdu.listOfWriteAccessSpecs:
            object_id = self._resolve(spec.objectIdentifier)
            obj = self.get_object_id(object_id)
            for value in spec.listOfProperties:
                identifier, index = value.propertyIdentifier, value.propertyArrayIndex
                try:
                    if obj is None:
                        raise ExecutionError(errorClass="object", errorCode="unknownObject")
                    await _write(obj, identifier, index, value.value, value.priority)
                except Exception as problem:
                    error = _as_execution_error(problem, object_id, identifier)
                    failed = ObjectPropertyReference(
                        objectIdentifier=object_id, propertyIdentifier=identifier
                    )
                    if index is not None:
                        failed.propertyArrayIndex = index
                    await self.response(
                        WritePropertyMultipleError(
                            errorType=ErrorType(errorClass=error.errorClass, errorCode=error.errorCode),
                            firstFailedWriteAttempt=failed,
                            context=apdu,
                        )
                    )
                    return
        await self.response(SimpleAckPDU(context=apdu))

    async def do_SubscribeCOVRequest(self, apdu: SubscribeCOVRequest) -> None:
        if apdu.issueConfirmedNotifications is not None and apdu.lifetime is None:
            # No lifetime is an indefinite subscription (ASHRAE 135 clause 13.14.1.1.4); bacpypes3 fails on it.
            apdu.lifetime = 0
        await super().do_SubscribeCOVRequest(apdu)

    def _resolve(self, object_id: ObjectIdentifier) -> ObjectIdentifier:
        # the wildcard instance names this device (an ObjectIdentifier never equals a plain tuple)
        if object_id == _WILDCARD and self.device_object is not None:
            return cast(ObjectIdentifier, self.device_object.objectIdentifier)
        return object_id


async def _write(
    obj: Any, identifier: Any, index: int | None, encoded: AnyValue, priority: int | None
) -> None:
    """One property written (WriteProperty, or one of WritePropertyMultiple's); ExecutionError refuses it. What
    may be written is decided before the value is decoded: a read-only property is write-access-denied whatever
    was sent."""
    property_type = obj.get_property_type(identifier)
    name = getattr(identifier, "attr", None)
    if property_type is None or name is None or not _has(obj, name):
        raise PropertyError("unknownProperty")
    may_write = getattr(obj, "may_write", None)  # only point objects take writes
    if may_write is None or not may_write(name):
        raise PropertyError("writeAccessDenied")
    if index is not None:
        if not issubclass(property_type, Array):
            raise PropertyError("propertyIsNotAnArray")
        property_type = Unsigned if index == 0 else property_type._subtype
    # NULL relinquishes a command: at the priority given, else at 16 (ASHRAE 135 clause 15.9.1.1.5)
    relinquishes = priority is not None or (name == "presentValue" and _has(obj, "priorityArray"))
    try:
        value = encoded.cast_out(property_type, null=relinquishes)
    except ExecutionError:
        raise
    except Exception as error:  # what bacpypes3 raises for a value it cannot decode as the type varies
        LOG.debug(
            "write of %s %s: cannot decode as %s: %s",
            obj.objectIdentifier,
            identifier,
            property_type.__name__,
            error,
        )
        raise PropertyError("invalidDataType") from None
    await obj.write_property(identifier, value, index, priority)


def _as_execution_error(problem: Exception, object_id: Any, identifier: Any) -> ExecutionError:
    """A failed write's error: its own, or device/operational-problem (bacpypes3 would answer that as a plain
    Error, which a client cannot decode as WritePropertyMultiple's)."""
    if isinstance(problem, ExecutionError):
        return problem
    LOG.error("writing %s of %s failed", identifier, object_id, exc_info=problem)
    return ExecutionError(errorClass="device", errorCode="operationalProblem")


def _property_names(obj: Any, which: PropertyIdentifier) -> list[str]:
    """The properties an object has (ALL), of them the required ones (REQUIRED) or the rest (OPTIONAL); the
    property list itself is never returned for these (ASHRAE 135 clause 15.7.3.1.2)."""
    present = [name for name in obj._elements if name != "propertyList" and _has(obj, name)]
    if which == PropertyIdentifier.all:
        return present
    required: set[str] = set()
    for cls in type(obj).__mro__:
        required.update(getattr(cls, "_required", ()))
    required.discard("propertyList")
    if which == PropertyIdentifier.required:
        return [name for name in present if name in required]
    return [name for name in present if name not in required]


def _has(obj: Any, name: str) -> bool:
    return inspect.getattr_static(obj, name, None) is not None


async def _read_element(obj: Any, identifier: Any, index: int | None) -> ReadAccessResultElement:
    """One property read into a result element; any failure becomes that property's error."""
    result = ReadAccessResultElementChoice()
    try:
        value = await obj.read_property(identifier, index)
        if value is None:
            raise PropertyError("unknownProperty")
        datatype = obj.get_property_type(identifier)
        if datatype is None:
            raise PropertyError("unknownProperty")
        result.propertyValue = AnyValue(value)
    except ExecutionError as error:
        result.propertyAccessError = ErrorType(errorClass=error.errorClass, errorCode=error.errorCode)
    except AttributeError:
        result.propertyAccessError = ErrorType(errorClass="property", errorCode="unknownProperty")
    except Exception:
        LOG.exception("reading %s of %s failed", identifier, obj.objectIdentifier)
        result.propertyAccessError = ErrorType(errorClass="property", errorCode="other")
    return ReadAccessResultElement(propertyIdentifier=identifier, propertyArrayIndex=index, readResult=result)


def _error_element(
    identifier: Any, index: int | None, error_class: str, code: str
) -> ReadAccessResultElement:
    result = ReadAccessResultElementChoice(
        propertyAccessError=ErrorType(errorClass=error_class, errorCode=code)
    )
    return ReadAccessResultElement(propertyIdentifier=identifier, propertyArrayIndex=index, readResult=result)
