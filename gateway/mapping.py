"""The mapping file: which chargers are known (by id or pattern), how id tags are authorized, and the point
lists (templates) that place each charger's values as BACnet objects and Modbus registers.

The file is YAML, validated strictly (unknown keys refused) and cross-checked after parsing (`gateway.layout`
checks the point lists and their numbering); every problem is reported with the file, the line and the entry it
concerns.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from difflib import get_close_matches
from enum import StrEnum
from fnmatch import fnmatchcase
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from gateway.bacnet_units import UNITS
from gateway.identity import identity_problem
from gateway.settings import RegistrationStatus
from gateway.sources import Source, resolve
from gateway.yamlsource import SourceError, SourceIssue, YamlDocument, load_yaml
from points import Kind


def _must_be_text(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        # YAML reads 49839108034579556 as a number (and 0123 as octal 83): make the user quote it.
        raise ValueError(f"write {value} in quotes: YAML reads it as a number, an id must be text")
    return value


Text = Annotated[str, BeforeValidator(_must_be_text)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- point lists: BACnet objects and Modbus registers ----------------------------------------------------------

MAX_INSTANCE = 4_194_302  # the highest BACnet object instance (4194303 means "no instance")
MAX_ADDRESS = 65_535  # the last Modbus address (addresses are the protocol's, counted from 0)
MAX_UNIT = 247  # the last Modbus unit (slave) id
DEFAULT_SLOTS = 10  # chargers a pattern entry can hold when it does not say
DEFAULT_STRIDE = 100  # instances or registers between a pattern's slots when it does not say
GATEWAY_BLOCK_WIDTH = 14  # registers of the Modbus gateway block (gateway/modbus/registers.py lays it out)


class BacnetObjectType(StrEnum):
    """The BACnet object types a point can be (ASHRAE 135 names)."""

    ANALOG_INPUT = "analog-input"
    ANALOG_VALUE = "analog-value"
    BINARY_INPUT = "binary-input"
    BINARY_VALUE = "binary-value"
    MULTI_STATE_INPUT = "multi-state-input"
    MULTI_STATE_VALUE = "multi-state-value"
    CHARACTERSTRING_VALUE = "characterstring-value"

    @property
    def number(self) -> int:
        """The BACnetObjectType enumeration number."""
        return _OBJECT_TYPE_NUMBERS[self]

    @property
    def kind(self) -> Kind:
        """The kind of point this object type shows."""
        return _OBJECT_TYPE_KINDS[self]

    @property
    def is_value(self) -> bool:
        """A *-value object (a BMS may write it); an *-input object is read-only."""
        return self.value.endswith("-value")


_OBJECT_TYPE_NUMBERS = {
    BacnetObjectType.ANALOG_INPUT: 0,
    BacnetObjectType.ANALOG_VALUE: 2,
    BacnetObjectType.BINARY_INPUT: 3,
    BacnetObjectType.BINARY_VALUE: 5,
    BacnetObjectType.MULTI_STATE_INPUT: 13,
    BacnetObjectType.MULTI_STATE_VALUE: 19,
    BacnetObjectType.CHARACTERSTRING_VALUE: 40,
}
_OBJECT_TYPE_KINDS = {
    BacnetObjectType.ANALOG_INPUT: Kind.ANALOG,
    BacnetObjectType.ANALOG_VALUE: Kind.ANALOG,
    BacnetObjectType.BINARY_INPUT: Kind.BINARY,
    BacnetObjectType.BINARY_VALUE: Kind.BINARY,
    BacnetObjectType.MULTI_STATE_INPUT: Kind.MULTISTATE,
    BacnetObjectType.MULTI_STATE_VALUE: Kind.MULTISTATE,
    BacnetObjectType.CHARACTERSTRING_VALUE: Kind.STRING,
}


class ModbusTable(StrEnum):
    """The four Modbus tables: coils and discrete inputs hold bits, input and holding registers 16-bit words."""

    COIL = "coil"
    DISCRETE_INPUT = "discrete-input"
    INPUT = "input"
    HOLDING = "holding"

    @property
    def holds_bits(self) -> bool:
        return (
            self is ModbusTable.COIL or self is ModbusTable.DISCRETE_INPUT
        )  # identity: hot in layout checks

    @property
    def writable(self) -> bool:
        """A Modbus client can write coils and holding registers."""
        return self in (ModbusTable.COIL, ModbusTable.HOLDING)


class ModbusType(StrEnum):
    """How a value sits in registers."""

    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    FLOAT32 = "float32"
    STRING = "string"

    @property
    def width(self) -> int | None:
        """Registers one value takes; None for a string (its `length` says)."""
        return _TYPE_WIDTHS[self]

    @property
    def numeric(self) -> bool:
        return self is not ModbusType.STRING


_TYPE_WIDTHS = {
    ModbusType.INT16: 1,
    ModbusType.UINT16: 1,
    ModbusType.INT32: 2,
    ModbusType.UINT32: 2,
    ModbusType.FLOAT32: 2,
    ModbusType.STRING: None,
}


class WordOrder(StrEnum):
    """Which register of a 32-bit value comes first."""

    BIG = "big"  # high word first (Modicon convention)
    LITTLE = "little"  # low word first


def _known_unit(value: str) -> str:
    if value not in UNITS:
        close = get_close_matches(value, UNITS, n=1)
        hint = f"did you mean {close[0]}?" if close else "e.g. amperes, watts, watt-hours, percent, seconds"
        raise ValueError(f"unknown BACnet unit {value!r}: {hint} (the list is in gateway/bacnet_units.py)")
    return value


BacnetUnit = Annotated[
    str,
    AfterValidator(_known_unit),
    WithJsonSchema({"type": "string", "enum": sorted(UNITS)}),
]


class BacnetObject(StrictModel):
    """The BACnet object that shows a point. Give exactly one of `offset` and `instance`."""

    type: BacnetObjectType = Field(
        description="Object type: analog-* for numbers, binary-* for on/off, multi-state-* for states, "
        "characterstring-value for texts. Writable points need a *-value object."
    )
    offset: int | None = Field(
        None,
        ge=0,
        le=MAX_INSTANCE,
        description="Instance relative to the charger's bacnet.base_instance (and its slot, for a pattern).",
    )
    instance: int | None = Field(
        None,
        ge=0,
        le=MAX_INSTANCE,
        description="Absolute instance number (only for templates used by one charger).",
    )
    name: str | None = Field(
        None,
        min_length=1,
        description="Object name; '{charger}' is replaced by the charger id. Default: '<charger id>/<point name>'.",
    )
    description: str | None = Field(
        None, description="Object description (default: the point's description)."
    )
    units: BacnetUnit | None = Field(
        None,
        description="Engineering unit, analog objects only (default: from the point's unit, e.g. amperes).",
    )
    cov_increment: float | None = Field(
        None, gt=0, description="Change that triggers a COV notification, analog objects only."
    )
    relinquish_default: bool | int | float | None = Field(
        None,
        description="Value when every priority is relinquished, writable *-value objects only: a number for "
        "analog, true/false for binary, a state number for multi-state.",
    )

    @model_validator(mode="after")
    def _offset_or_instance(self) -> Self:
        if (self.offset is None) == (self.instance is None):
            raise ValueError("give exactly one of 'offset' (from the charger's base_instance) or 'instance'")
        return self


class ModbusRegister(StrictModel):
    """The Modbus register(s), coil or discrete input that shows a point. Give exactly one of `offset` and
    `address`. Addresses count from 0, as the protocol does (holding register 0 is the one a '4x' list calls
    40001)."""

    table: ModbusTable = Field(
        description="coil and holding can be written by a Modbus client (writable points go there); "
        "discrete-input and input are read-only. Read-only points never sit in coils."
    )
    offset: int | None = Field(
        None,
        ge=0,
        le=MAX_ADDRESS,
        description="Address relative to the charger's modbus.base_address (and its slot, for a pattern).",
    )
    address: int | None = Field(
        None,
        ge=0,
        le=MAX_ADDRESS,
        description="Absolute address (only for templates used by one charger, or patterns with unit_per_slot).",
    )
    type: ModbusType | None = Field(
        None,
        description="Register type, registers only (coils and discrete inputs hold one bit and take no type). "
        "Binary and multistate points use int16/uint16; texts use string.",
    )
    scale: float | None = Field(
        None,
        gt=0,
        description="register = value x scale (default 1), numeric registers of analog points only.",
    )
    word_order: WordOrder | None = Field(
        None, description="32-bit types only: big = high word first (default), little = low word first."
    )
    length: int | None = Field(
        None, ge=1, le=125, description="Registers of a string (2 characters each), type string only."
    )

    @model_validator(mode="after")
    def _offset_or_address(self) -> Self:
        if (self.offset is None) == (self.address is None):
            raise ValueError("give exactly one of 'offset' (from the charger's base_address) or 'address'")
        return self

    @property
    def width(self) -> int:
        """Addresses the point takes: 1 for a bit, 1 or 2 registers for a number, `length` for a string."""
        if self.table.holds_bits or self.type is None:
            return 1
        return self.type.width or self.length or 1


class TemplatePoint(StrictModel):
    """One value of a charger in a template: its source, how people read it, and where BACnet and Modbus show
    it."""

    source: str = Field(
        description="What the value is (see gateway/sources.py): 'online', '1/status', "
        "'1/meter/Energy.Active.Import.Register', '1/limit', 'config/HeartbeatInterval', ..."
    )
    name: str | None = Field(
        None,
        min_length=1,
        description="What people read; the BACnet object name's suffix. Default: the source.",
    )
    description: str | None = Field(
        None, description="What the value means (default: the source's description)."
    )
    writable: bool = Field(
        False,
        description="The BMS may write it. Only writable sources: <n>/limit, <n>/smart_charging and writable "
        "config/<key>.",
    )
    minimum: float | None = Field(
        None, description="Lowest value the BMS may write (writable analog points; within the source's own)."
    )
    maximum: float | None = Field(
        None, description="Highest value the BMS may write (writable analog points; within the source's own)."
    )
    bacnet: BacnetObject | None = Field(
        None, description="The BACnet object that shows it (none: not on BACnet)."
    )
    modbus: ModbusRegister | None = Field(None, description="Where Modbus shows it (none: not on Modbus).")

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        resolve(value)  # raises SourceProblem (a ValueError) with the reason
        return value

    @property
    def resolved(self) -> Source:
        """The source as `gateway.sources` describes it (meter sources in their canonical spelling)."""
        return resolve(self.source)


_TEMPLATE_NAME = re.compile(r"[A-Za-z0-9_-]+")


def _template_name(value: str) -> str:
    if not _TEMPLATE_NAME.fullmatch(value):
        raise ValueError(f"template name {value!r} may only contain letters, digits, '_' and '-'")
    return value


TemplateName = Annotated[
    str,
    AfterValidator(_template_name),
    WithJsonSchema({"type": "string", "pattern": "^[A-Za-z0-9_-]+$"}),
]


class Template(StrictModel):
    """A charger model's point list: which values a BMS sees and where."""

    description: str | None = Field(None, description="What chargers the template is for.")
    points: list[TemplatePoint] = Field(
        default_factory=list, description="The points, in the order people read."
    )


class BacnetPlacement(StrictModel):
    """Where a charger's BACnet objects start: instance = base_instance + slot x stride + offset."""

    base_instance: int = Field(ge=0, le=MAX_INSTANCE, description="Instance of the objects at offset 0.")
    stride: int = Field(
        DEFAULT_STRIDE,
        ge=1,
        le=MAX_INSTANCE,
        description="Patterns only: instances between slots (offsets must stay below it).",
    )


class ModbusPlacement(StrictModel):
    """Where a charger's Modbus points are: the unit, and address = base_address + slot x stride + offset (or,
    with unit_per_slot, unit + slot and base_address + offset)."""

    unit: int = Field(1, ge=1, le=MAX_UNIT, description="Modbus unit (slave) id, 1-247.")
    base_address: int | None = Field(
        None, ge=0, le=MAX_ADDRESS, description="Address of offset 0 (needed when the template uses offsets)."
    )
    stride: int = Field(
        DEFAULT_STRIDE,
        ge=1,
        le=MAX_ADDRESS + 1,
        description="Patterns only: addresses between slots (offsets and their registers must fit in it).",
    )
    unit_per_slot: bool = Field(
        False,
        description="Patterns only: slot n uses unit + n (same addresses) instead of base + n x stride.",
    )


class KnownCharger(StrictModel):
    """A charger entry: an exact `id`, or a `pattern` (`*` and `?` wildcards) such as `C1-*` for amina serials."""

    id: Text | None = Field(None, description="Exact charge point id.")
    pattern: str | None = Field(None, description="Glob matched against the charge point id, e.g. 'C1-*'.")
    name: str | None = Field(None, description="A name people use for this charger.")
    registration: RegistrationStatus = Field(
        RegistrationStatus.ACCEPTED, description="BootNotification answer for matching chargers."
    )
    retry_interval: int | None = Field(
        None, ge=1, description="Seconds before a charger that was not Accepted boots again (default: guest)."
    )
    template: str | None = Field(None, description="Name of the template that gives its points.")
    slots: int | None = Field(
        None,
        ge=1,
        le=10_000,
        description=f"Patterns only: how many chargers it can hold, each in its own slot (default {DEFAULT_SLOTS}).",
    )
    bacnet: BacnetPlacement | None = Field(
        None,
        description="Where its BACnet objects start (needed when the template places objects by offset).",
    )
    modbus: ModbusPlacement | None = Field(
        None, description="Its Modbus unit and where its registers start (needed for offsets)."
    )

    @field_validator("id")
    @classmethod
    def _valid_identity(cls, value: str | None) -> str | None:
        if value is not None and (problem := identity_problem(value)):
            raise ValueError(problem)
        return value

    @field_validator("pattern")
    @classmethod
    def _pattern_not_empty(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("pattern is empty")
        return value

    @model_validator(mode="after")
    def _id_or_pattern(self) -> Self:
        if (self.id is None) == (self.pattern is None):
            raise ValueError("give exactly one of 'id' or 'pattern'")
        return self

    def matches(self, charge_point_id: str) -> bool:
        if self.id is not None:
            return self.id == charge_point_id
        return fnmatchcase(charge_point_id, self.pattern or "")

    @property
    def slot_count(self) -> int:
        """Chargers this entry places: 1 for an id, `slots` (default 10) for a pattern."""
        if self.id is not None:
            return 1
        return self.slots if self.slots is not None else DEFAULT_SLOTS

    @property
    def label(self) -> str:
        return self.id if self.id is not None else self.pattern or ""


class AuthorizationMode(StrEnum):
    """How Authorize and StartTransaction answer (seed 003 §5.4)."""

    AUTHORIZE_ALL = "authorize-all"
    AUTHORIZE_NONE = "authorize-none"
    ALL_EXCEPT_BLACKLIST = "all-except-blacklist"
    NONE_EXCEPT_WHITELIST = "none-except-whitelist"


class IdTagEntry(StrictModel):
    """An id tag on a list; a bare string in the file is shorthand for `{id_tag: ...}`."""

    id_tag: Text = Field(
        min_length=1, max_length=20, description="The id tag (IdToken, up to 20 characters)."
    )
    expiry_date: datetime | None = Field(None, description="After this the tag answers Expired.")

    @field_validator("expiry_date")
    @classmethod
    def _in_utc(cls, moment: datetime | None) -> datetime | None:
        try:
            return (
                None
                if moment is None
                else moment.astimezone(UTC)
                if moment.tzinfo
                else moment.replace(tzinfo=UTC)
            )
        except OverflowError:
            raise ValueError("the date is outside the calendar once put in UTC") from None

    parent_id_tag: Text | None = Field(None, max_length=20, description="Group id tag handed to the charger.")

    @property
    def key(self) -> str:
        return self.id_tag.casefold()


def _tag_shorthand(value: Any) -> Any:
    return value if isinstance(value, dict) else {"id_tag": value}


IdTagItem = Annotated[IdTagEntry, BeforeValidator(_tag_shorthand, json_schema_input_type=str | IdTagEntry)]


class Authorization(StrictModel):
    """The authorization policy and its lists (id tags compare case-insensitively, as OCPP's IdToken does)."""

    mode: AuthorizationMode = AuthorizationMode.AUTHORIZE_ALL
    whitelist: list[IdTagItem] = Field(default_factory=list)
    blacklist: list[IdTagItem] = Field(default_factory=list)


class DataTransferStatus(StrEnum):
    """DataTransfer.conf status values (OCPP 1.6 §6.17)."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    UNKNOWN_MESSAGE_ID = "UnknownMessageId"
    UNKNOWN_VENDOR_ID = "UnknownVendorId"


class DataTransferEntry(StrictModel):
    """How the gateway answers a charger's DataTransfer of one vendor (and message id). Vendor and message ids
    compare case-insensitively (OCPP's CiString)."""

    vendor_id: Text = Field(
        min_length=1, max_length=255, description="The charger's vendorId, e.g. 'com.bender'."
    )
    message_id: Text | None = Field(
        None,
        min_length=1,
        max_length=50,
        description="The messageId this entry answers; none: every message of the vendor no other entry names. "
        "A vendor listed only with message ids answers UnknownMessageId for the others.",
    )
    status: DataTransferStatus = Field(DataTransferStatus.ACCEPTED, description="The answer's status.")
    data: str | None = Field(None, description="The answer's data (text; none: no data).")

    @property
    def key(self) -> tuple[str, str | None]:
        return self.vendor_id.casefold(), self.message_id.casefold() if self.message_id is not None else None


class ModbusMap(StrictModel):
    """Settings of the Modbus register map as a whole."""

    layout_version: int = Field(
        1,
        ge=0,
        le=65_535,
        description="Your number for this register layout: raise it whenever you change a register. The gateway "
        "block shows it (with a checksum of the layout), so a BMS can check it reads the map it was set up for.",
    )
    gateway_block: int = Field(
        9000,
        ge=0,
        le=MAX_ADDRESS + 1 - GATEWAY_BLOCK_WIDTH,
        description=f"First address of the gateway block ({GATEWAY_BLOCK_WIDTH} registers: identification, "
        "versions, charger counts, uptime), served as input and as read-only holding registers in every unit the "
        "map uses (and unit 1). The default 9000 is '39001'/'49001' in 1-based 5-digit lists.",
    )


class Mapping(StrictModel):
    """The whole mapping file."""

    version: int = Field(1, ge=1, le=1, description="Mapping file format version.")
    templates: dict[TemplateName, Template] = Field(
        default_factory=dict, description="Point lists by name (letters, digits, '_' and '-')."
    )
    chargers: list[KnownCharger] = Field(default_factory=list)
    authorization: Authorization = Field(default_factory=Authorization)
    modbus: ModbusMap = Field(default_factory=ModbusMap, description="The Modbus register map as a whole.")
    data_transfer: list[DataTransferEntry] = Field(
        default_factory=list,
        description="Answers to chargers' DataTransfer requests by vendor (and message id); a vendor not listed "
        "gets UnknownVendorId.",
    )

    @cached_property
    def _entries_by_id(self) -> dict[str, int]:
        # the model is frozen, so the index is built once (a site may list a thousand chargers by id)
        found: dict[str, int] = {}
        for index, entry in enumerate(self.chargers):
            if entry.id is not None:
                found.setdefault(entry.id, index)
        return found

    def entry_index(self, charger_id: str) -> int | None:
        """The index of the entry a charger falls under: its exact id first, then patterns in file order (as
        admission decides)."""
        exact = self._entries_by_id.get(charger_id)
        if exact is not None:
            return exact
        for index, entry in enumerate(self.chargers):
            if entry.pattern is not None and entry.matches(charger_id):
                return index
        return None

    def entry_for(self, charger_id: str) -> KnownCharger | None:
        """The entry a charger falls under: its exact id first, then patterns in file order."""
        index = self.entry_index(charger_id)
        return None if index is None else self.chargers[index]

    def data_transfer_answer(
        self, vendor_id: str, message_id: str | None
    ) -> tuple[DataTransferStatus, str | None] | None:
        """The configured answer to a DataTransfer; None when the vendor is not listed."""
        vendor = vendor_id.casefold()
        entries = {entry.key[1]: entry for entry in self.data_transfer if entry.key[0] == vendor}
        if not entries:
            return None
        entry = entries.get(message_id.casefold() if message_id is not None else None) or entries.get(None)
        if entry is None:
            return DataTransferStatus.UNKNOWN_MESSAGE_ID, None
        return entry.status, entry.data

    def template_for(self, charger_id: str) -> Template | None:
        """The template of the entry a charger falls under, if it has one."""
        entry = self.entry_for(charger_id)
        if entry is None or entry.template is None:
            return None
        return self.templates.get(entry.template)


def _cross_check(mapping: Mapping) -> list[tuple[tuple[str | int, ...], str]]:
    problems: list[tuple[tuple[str | int, ...], str]] = []
    first_by_key: dict[tuple[str, str], int] = {}
    for index, charger in enumerate(mapping.chargers):
        key = ("id", charger.id) if charger.id is not None else ("pattern", charger.pattern or "")
        if key in first_by_key:
            problems.append(
                (
                    ("chargers", index, key[0]),
                    f"{key[0]} {key[1]!r} is already listed at chargers[{first_by_key[key]}]",
                )
            )
        else:
            first_by_key[key] = index
    for list_name in ("whitelist", "blacklist"):
        seen: dict[str, int] = {}
        for index, entry in enumerate(getattr(mapping.authorization, list_name)):
            if entry.key in seen:
                problems.append(
                    (
                        ("authorization", list_name, index),
                        f"id tag {entry.id_tag!r} is already listed at {list_name}[{seen[entry.key]}]",
                    )
                )
            seen.setdefault(entry.key, index)
    answers: dict[tuple[str, str | None], int] = {}
    for index, answer in enumerate(mapping.data_transfer):
        if answer.key in answers:
            what = f"message id {answer.message_id!r}" if answer.message_id is not None else "no message id"
            problems.append(
                (
                    ("data_transfer", index),
                    f"vendor {answer.vendor_id!r} with {what} is already listed at "
                    f"data_transfer[{answers[answer.key]}]",
                )
            )
        answers.setdefault(answer.key, index)
    return problems


def parse_mapping(document: YamlDocument) -> Mapping:
    """Validate a parsed YAML document as a mapping; raise `SourceError` naming every problem's line."""
    if not isinstance(document.data, dict):
        raise SourceError(
            [SourceIssue(document.file, 1, "", "the mapping file must be a YAML mapping (key: value)")]
        )
    try:
        mapping = Mapping.model_validate(document.data)
    except ValidationError as exc:
        issues = [document.issue(_location(error["loc"]), _reason(error)) for error in exc.errors()]
        raise SourceError(sorted(issues, key=lambda issue: issue.line)) from None
    from gateway.layout import check  # layout builds on the models above

    problems = _cross_check(mapping) + check(mapping)
    if problems:
        issues = [document.issue(location, reason) for location, reason in problems]
        raise SourceError(sorted(issues, key=lambda issue: issue.line))
    return mapping


def _location(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    # pydantic marks a dict key's own problem with a "[key]" part the file does not have
    return loc[:-1] if loc and loc[-1] == "[key]" else loc


def _reason(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def load_mapping(path: Path) -> Mapping:
    """Read, parse and validate the mapping file at `path`."""
    return parse_mapping(load_yaml(path))
