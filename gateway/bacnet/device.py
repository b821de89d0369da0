"""The gateway's BACnet/IP device on bacpypes3: its device and network-port objects, one object class per point
object type, and the service handlers where bacpypes3's defaults are not what a BMS needs.

What is changed from bacpypes3 (0.0.110), and why:

- ReadPropertyMultiple answers every property on its own: a property that cannot be read becomes a
  per-property error in the result (also for ALL, REQUIRED and OPTIONAL), never an error for the whole request,
  which makes EPICS tools retry forever.
- WriteProperty: a value of the wrong datatype is refused with `invalid-data-type` (bacpypes3 fails while
  decoding it); writes to a point object go to the gateway (`WriteHandler`), which range-checks them, keeps the
  priority array and carries the command to the charger. Nothing else of an object is writable.
- SubscribeCOV without a lifetime is an indefinite subscription (bacpypes3 answers operational-problem).
- Property_List leaves out Object_Identifier, Object_Name, Object_Type and itself (ASHRAE 135 clause
  12.1.1.4.1); the network port has its APDU_Length.
- Multi-state objects report COV on every change (bacpypes3 gives them the analog COV-increment criteria).
- The device lists the object types it serves and raises its database revision when objects are added.
- Point objects are made when first asked for: the gateway offers each one (its identifier and name, listed in
  the device's object-list at once, in a stable order), and the first request that names it (a read, write,
  COV subscription or Who-Has) makes it. A bacpypes3 object costs about a millisecond and several kilobytes to
  make, so a mapping with 1,000 chargers (18,000 objects) would otherwise take half a minute and 300 MB before
  the device answered anything.

This module only speaks BACnet; what a point is and where a write goes is `gateway.bacnet.server`'s business.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any, Protocol, cast

from bacpypes3.apdu import (
    ReadPropertyMultipleACK,
    ReadPropertyMultipleRequest,
    SimpleAckPDU,
    SubscribeCOVRequest,
    WritePropertyRequest,
)
from bacpypes3.app import Application
from bacpypes3.basetypes import (
    ErrorType,
    ObjectTypesSupported,
    PropertyIdentifier,
    ReadAccessResult,
    ReadAccessResultElement,
    ReadAccessResultElementChoice,
    Segmentation,
)
from bacpypes3.constructeddata import Any as AnyValue
from bacpypes3.constructeddata import Array, ArrayOf
from bacpypes3.errors import ExecutionError, ObjectError, PropertyError
from bacpypes3.local.analog import AnalogInputObject, AnalogValueObject
from bacpypes3.local.binary import BinaryInputObject, BinaryValueObject
from bacpypes3.local.cov import GenericCriteria
from bacpypes3.local.device import ArrayOfObjectIdentifier, DeviceObject
from bacpypes3.local.multistate import MultiStateInputObject, MultiStateValueObject
from bacpypes3.local.networkport import NetworkPortObject
from bacpypes3.local.object import Object as LocalObject
from bacpypes3.object import CharacterStringValueObject as _CharacterStringValueObject
from bacpypes3.pdu import IPv4Address
from bacpypes3.primitivedata import ObjectIdentifier, ObjectType, Unsigned

from gateway.bacnet.objects import ObjectPlan
from gateway.mapping import BacnetObjectType
from points import PointSpec

LOG = logging.getLogger(__name__)

MAX_APDU = 1476  # BACnet/IP over Ethernet
WILDCARD_DEVICE = 4194303
_WHOLE_SETS = (PropertyIdentifier.all, PropertyIdentifier.required, PropertyIdentifier.optional)
ArrayOfPropertyIdentifier = ArrayOf(PropertyIdentifier)
_NOT_LISTED = frozenset({"objectIdentifier", "objectName", "objectType", "propertyList"})


@functools.cache
def _object_type(name: str) -> ObjectType:
    return ObjectType(name)


class ListedProperties:
    """Mixed into every object class: Property_List without the four properties every object has (ASHRAE 135
    clause 12.1.1.4.1, "shall not include")."""

    @property
    def propertyList(self) -> Any:
        everything = cast(Any, LocalObject).propertyList.fget(self)
        return ArrayOfPropertyIdentifier([p for p in everything if p.attr not in _NOT_LISTED])

    @propertyList.setter
    def propertyList(self, value: Any) -> None:
        """Computed; writes are ignored."""


class WriteHandler(Protocol):
    """Where a BMS write to a point object goes; raises ExecutionError to refuse it."""

    async def write_object(self, obj: PointObject, attr: str, value: Any, priority: int | None) -> None: ...


class PointObject(ListedProperties):
    """Mixed into each object class: the object's plan and where its writes go."""

    _plan: ObjectPlan
    _spec: PointSpec
    _handler: WriteHandler
    _elements: dict[str, Any]
    _property_identifier_class: type
    _property_monitors: dict[str, list[Any]]

    async def write_property(
        self, attr: int | str, value: Any, index: int | None = None, priority: int | None = None
    ) -> None:
        if isinstance(attr, int):
            attr = cast(str, self._property_identifier_class(attr).attr)
        if attr not in self._elements:
            raise PropertyError("unknownProperty")
        if index is not None:
            raise PropertyError("propertyIsNotAnArray")
        await self._handler.write_object(self, attr, value, priority)


class AnalogInput(PointObject, AnalogInputObject):  # type: ignore[misc]
    """An analog point the BMS reads."""


class AnalogValue(PointObject, AnalogValueObject):  # type: ignore[misc]
    """An analog point the BMS may write (commandable where it is a limit)."""


class BinaryInput(PointObject, BinaryInputObject):  # type: ignore[misc]
    """An on/off point the BMS reads."""


class BinaryValue(PointObject, BinaryValueObject):  # type: ignore[misc]
    """An on/off point the BMS may write (commandable where it switches smart charging)."""


class MultiStateInput(PointObject, MultiStateInputObject):  # type: ignore[misc]
    """A state (connector status, error code) the BMS reads."""

    _cov_criteria = GenericCriteria  # bacpypes3 gives multi-state objects the analog (COV increment) criteria


class MultiStateValue(PointObject, MultiStateValueObject):  # type: ignore[misc]
    """A state the BMS may write."""

    _cov_criteria = GenericCriteria


class CharacterStringValue(PointObject, LocalObject, _CharacterStringValueObject):  # type: ignore[misc]
    """A text (id tag, charger info)."""

    _cov_criteria = GenericCriteria
    _required = ("presentValue", "statusFlags")


OBJECT_CLASSES: dict[BacnetObjectType, type[PointObject]] = {
    BacnetObjectType.ANALOG_INPUT: AnalogInput,
    BacnetObjectType.ANALOG_VALUE: AnalogValue,
    BacnetObjectType.BINARY_INPUT: BinaryInput,
    BacnetObjectType.BINARY_VALUE: BinaryValue,
    BacnetObjectType.MULTI_STATE_INPUT: MultiStateInput,
    BacnetObjectType.MULTI_STATE_VALUE: MultiStateValue,
    BacnetObjectType.CHARACTERSTRING_VALUE: CharacterStringValue,
}


class GatewayDevice(ListedProperties, DeviceObject):  # type: ignore[misc]
    """The device object: lists the object types the gateway serves, and every object, made or offered."""

    @property
    def objectList(self) -> Any:
        app = cast("GatewayApplication | None", self._app)  # not annotated: bacpypes3 reads the class's hints
        if app is None:
            return ArrayOfObjectIdentifier([self.objectIdentifier])
        return app.object_list()

    @objectList.setter
    def objectList(self, value: Any) -> None:
        """Computed; writes are ignored."""

    @property
    def databaseRevision(self) -> Any:
        app = cast("GatewayApplication | None", self._app)
        return Unsigned(1 if app is None else app.revision)

    @databaseRevision.setter
    def databaseRevision(self, value: Any) -> None:
        """Counted by the application as objects are added; writes are ignored."""

    @property
    def protocolObjectTypesSupported(self) -> ObjectTypesSupported:
        supported = ObjectTypesSupported([])
        for name in ("device", "network-port", *(t.value for t in BacnetObjectType)):
            supported[ObjectType(name)] = 1
        return supported

    @protocolObjectTypesSupported.setter
    def protocolObjectTypesSupported(self, value: Any) -> None:
        """Computed; writes are ignored."""


class GatewayNetworkPort(ListedProperties, NetworkPortObject):  # type: ignore[misc]
    """The BACnet/IP port the device answers on."""


class GatewayApplication(Application):  # type: ignore[misc]
    """bacpypes3's application with per-property ReadPropertyMultiple errors, typed WriteProperty errors, and
    point objects made on first use."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._listed: dict[ObjectIdentifier, None] = {}  # every object, made or offered, in the order added
        self._offered: dict[ObjectIdentifier, tuple[str, Callable[[], PointObject | None]]] = {}
        self._offered_names: dict[str, ObjectIdentifier] = {}
        self.revision = 1  # the device's database revision: raised for each point object offered or added
        self._object_list: tuple[int, Any] | None = None
        super().__init__(*args, **kwargs)

    def add_object(self, obj: Any) -> None:
        super().add_object(obj)
        self._listed[obj.objectIdentifier] = None

    def offer(self, object_id: tuple[str, int], name: str, make: Callable[[], PointObject | None]) -> None:
        """List an object that `make` creates (and adds with `add_point_object`) when it is first asked for."""
        object_type, instance = object_id
        key = ObjectIdentifier((_object_type(object_type), instance))
        self._offered[key] = (name, make)
        self._offered_names[name] = key
        self._listed[key] = None
        self.revision += 1

    def add_point_object(self, obj: PointObject) -> None:
        """Add a point object (made at once, or made now that it was asked for)."""
        key = cast(Any, obj).objectIdentifier
        offered = key in self._listed
        self.add_object(obj)
        if not offered:
            self.revision += 1

    def object_list(self) -> Any:
        """The device's object-list, made once per database revision: a BMS reads a long list one index at a
        time, and bacpypes3 would build the whole array for each read."""
        if self._object_list is None or self._object_list[0] != self.revision:
            self._object_list = (self.revision, ArrayOfObjectIdentifier(list(self._listed)))
        return self._object_list[1]

    def get_object_id(self, objid: Any) -> Any:
        found = self.objectIdentifier.get(objid)
        if found is None and objid in self._offered:
            found = self._make(objid)
        return found

    def get_object_name(self, objname: Any) -> Any:
        found = self.objectName.get(objname)
        if found is None and objname in self._offered_names:
            found = self._make(self._offered_names[objname])
        return found

    def _make(self, objid: ObjectIdentifier) -> PointObject | None:
        name, make = self._offered.pop(objid)
        self._offered_names.pop(name, None)
        obj = make()
        if obj is None:  # its point went away meanwhile
            self._listed.pop(objid, None)
            self.revision += 1
        return obj

    async def do_WhoHasRequest(self, apdu: Any) -> None:
        # bacpypes3 looks the object up in its dictionaries: make an offered one first
        wanted = apdu.object
        if wanted.objectIdentifier is not None:
            self.get_object_id(wanted.objectIdentifier)
        if wanted.objectName is not None:
            self.get_object_name(wanted.objectName)
        await super().do_WhoHasRequest(apdu)

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
        property_type = obj.get_property_type(apdu.propertyIdentifier)
        if property_type is None:
            raise PropertyError("unknownProperty")
        index = apdu.propertyArrayIndex
        if issubclass(property_type, Array) and index is not None:
            property_type = Unsigned if index == 0 else property_type._subtype
        try:
            value = apdu.propertyValue.cast_out(property_type, null=apdu.priority is not None)
        except ExecutionError:
            raise
        except Exception as error:  # what bacpypes3 raises for a value it cannot decode as the type varies
            LOG.debug(
                "write of %s %s: cannot decode as %s: %s",
                obj.objectIdentifier,
                apdu.propertyIdentifier,
                property_type.__name__,
                error,
            )
            raise PropertyError("invalidDataType") from None
        await obj.write_property(apdu.propertyIdentifier, value, index, apdu.priority)
        await self.response(SimpleAckPDU(context=apdu))

    async def do_SubscribeCOVRequest(self, apdu: SubscribeCOVRequest) -> None:
        if apdu.issueConfirmedNotifications is not None and apdu.lifetime is None:
            # No lifetime is an indefinite subscription (ASHRAE 135 clause 13.14.1.1.4); bacpypes3 fails on it.
            apdu.lifetime = 0
        await super().do_SubscribeCOVRequest(apdu)

    def _resolve(self, object_id: ObjectIdentifier) -> ObjectIdentifier:
        if object_id == ("device", WILDCARD_DEVICE) and self.device_object is not None:
            return cast(ObjectIdentifier, self.device_object.objectIdentifier)
        return object_id


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


def build_application(
    *,
    address: str,
    port: int,
    device_id: int,
    name: str,
    description: str,
    location: str,
    vendor_id: int,
    vendor_name: str,
    model_name: str,
    version: str,
) -> GatewayApplication:
    """The application with its device and network-port objects, bound to `address` (`ip/prefix`, an
    interface name, or `host` for the interface of the default route) and `port`."""
    link = IPv4Address(f"{address}:{port}")
    device = GatewayDevice(
        objectIdentifier=("device", device_id),
        objectName=name,
        description=description,
        location=location,
        vendorIdentifier=vendor_id,
        vendorName=vendor_name,
        modelName=model_name,
        firmwareRevision=version,
        applicationSoftwareVersion=version,
        maxApduLengthAccepted=MAX_APDU,
        segmentationSupported=Segmentation.segmentedBoth,
        maxSegmentsAccepted=64,
    )
    network_port = GatewayNetworkPort(
        link,
        objectIdentifier=("network-port", 1),
        objectName="NetworkPort-1",
        networkNumber=0,
        networkNumberQuality="unknown",
        apduLength=MAX_APDU,
    )
    return cast(GatewayApplication, GatewayApplication.from_object_list([device, network_port]))
