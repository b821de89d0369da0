"""The gateway's BACnet/IP device on bacpypes3: its device and network-port objects and one object class per
point object type (the services they answer are `gateway.bacnet.services`).

What is changed from bacpypes3 (0.0.110), and why:

- Writes to a point object go to the gateway (`WriteHandler`), which says what is writable, range-checks the
  value, keeps the priority array and carries the command to the charger. The device and network-port objects
  take no writes: their properties come from the installer's settings.
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
from collections.abc import Callable
from typing import Any, Protocol, cast

from bacpypes3.basetypes import ObjectTypesSupported, PropertyIdentifier, Segmentation
from bacpypes3.constructeddata import ArrayOf
from bacpypes3.errors import PropertyError
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
from gateway.bacnet.services import RejectingServiceAccessPoint, ServingApplication
from gateway.mapping import BacnetObjectType
from points import PointSpec

MAX_APDU = 1476  # BACnet/IP over Ethernet
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

    def may_write(self, obj: PointObject, attr: str) -> bool: ...

    async def write_object(self, obj: PointObject, attr: str, value: Any, priority: int | None) -> None: ...


class PointObject(ListedProperties):
    """Mixed into each object class: the object's plan and where its writes go."""

    _plan: ObjectPlan
    _spec: PointSpec
    _handler: WriteHandler
    _elements: dict[str, Any]
    _property_identifier_class: type
    _property_monitors: dict[str, list[Any]]

    def may_write(self, attr: str) -> bool:
        """Whether a BMS may write this property at all (before its value is looked at)."""
        return self._handler.may_write(self, attr)

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


class GatewayApplication(ServingApplication):
    """The device's application: its services, and point objects made on first use."""

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
    app = cast(GatewayApplication, GatewayApplication.from_object_list([device, network_port]))
    # bacpypes3 makes its own service access point, which aborts a service choice it cannot decode
    app.asap.__class__ = RejectingServiceAccessPoint
    return app
