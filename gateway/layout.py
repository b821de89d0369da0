"""Point layout: where each template point of each charger (and of each slot of a pattern) sits as a BACnet
object and in Modbus tables, and the checks that keep that numbering sound.

Numbering (offsets come from the template, bases and strides from the charger entry):

- BACnet: instance = base_instance + slot x stride + offset, or the template's absolute `instance`.
- Modbus: address = base_address + slot x stride + offset in `unit`; with `unit_per_slot` the slot moves the unit
  instead (unit + slot, address = base_address + offset); or the template's absolute `address`.

A charger listed by id is slot 0 of its entry; a pattern has slots 0 .. slots-1, given to chargers as they are
discovered (`placements()` places one of them).

What fits where (the checks below refuse anything else):

| point kind | BACnet | Modbus |
|---|---|---|
| analog | analog-input, analog-value | input/holding, int16 uint16 int32 uint32 float32 |
| binary | binary-input, binary-value | discrete-input, coil, or an input/holding int16/uint16 (0/1) |
| multistate | multi-state-input, multi-state-value | input/holding int16/uint16 (the state number, from 1) |
| string | characterstring-value | input/holding string (`length` registers, 2 characters each) |

A writable point needs a *-value object and a holding register or coil. A read-only point may sit in any table but
coil (any Modbus client may write a coil); a write to a read-only point's holding register is refused. A
configuration key the gateway cannot type (a vendor key it does not know) takes its kind from its BACnet object
(or its Modbus type) instead.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cached_property

from gateway.mapping import (
    GATEWAY_BLOCK_WIDTH,
    MAX_ADDRESS,
    MAX_INSTANCE,
    MAX_UNIT,
    BacnetObjectType,
    KnownCharger,
    Mapping,
    ModbusTable,
    ModbusType,
    Template,
    TemplatePoint,
)
from gateway.sources import LIST_KEYS, Source, config_field, with_limit_unit
from gateway.yamlsource import Location
from points import Kind

Problem = tuple[Location, str]

_TYPES_FOR_KIND: dict[Kind, tuple[BacnetObjectType, ...]] = {
    kind: tuple(t for t in BacnetObjectType if t.kind is kind) for kind in Kind
}
_ARTICLE = {Kind.ANALOG: "an", Kind.BINARY: "a", Kind.MULTISTATE: "a", Kind.STRING: "a"}


def _a(kind: Kind) -> str:
    """'an analog', 'a binary', ..."""
    return f"{_ARTICLE[kind]} {kind.value}"


_TABLE_NOUN = {
    ModbusTable.COIL: "coil",
    ModbusTable.DISCRETE_INPUT: "discrete input",
    ModbusTable.INPUT: "input register",
    ModbusTable.HOLDING: "holding register",
}


@dataclass(frozen=True)
class ModbusAddress:
    """Where a point sits in Modbus: unit, table, first address and how many addresses it takes."""

    unit: int
    table: ModbusTable
    address: int
    width: int

    @property
    def end(self) -> int:
        """The first address after the point."""
        return self.address + self.width

    def __str__(self) -> str:
        noun = _TABLE_NOUN[self.table] + ("s" if self.width > 1 else "")
        span = str(self.address) if self.width == 1 else f"{self.address}-{self.end - 1}"
        return f"{noun} {span}"


@dataclass(frozen=True)
class PlacedPoint:
    """One template point of one charger (or pattern slot) with its concrete BACnet and Modbus numbers.

    `charger` is the id for an entry listed by id, None for a pattern's slot (the charger is known once it is
    discovered). `source` carries the point's kind (a configuration key's kind may come from the mapping).
    `bacnet`/`modbus` are None where the point is not shown (or its entry gives no base for its offsets)."""

    entry_index: int
    charger: str | None
    slot: int
    point: TemplatePoint
    source: Source
    bacnet: tuple[BacnetObjectType, int] | None
    modbus: ModbusAddress | None
    template: str = ""
    index: int = 0  # the point's position in its template

    @property
    def kind(self) -> Kind:
        return self.source.field.kind

    def object_name(self, charger_id: str | None = None) -> str:
        """The BACnet object name: the template's (with '{charger}' replaced) or '<charger id>/<point name>'."""
        charger = charger_id or self.charger or ""
        if self.point.bacnet is not None and self.point.bacnet.name:
            return self.point.bacnet.name.replace("{charger}", charger)
        return f"{charger}/{self.point.name or self.source.text}"

    @property
    def units(self) -> str | None:
        """The BACnet engineering unit name of an analog point (None for other kinds)."""
        if self.kind is not Kind.ANALOG:
            return None
        from gateway.bacnet_units import default_units

        given = self.point.bacnet.units if self.point.bacnet is not None else None
        return given or default_units(self.source.field.unit)


@dataclass(frozen=True)
class Layout:
    """Every concrete placement of a mapping, in file order (entry, slot, template point)."""

    points: tuple[PlacedPoint, ...] = ()

    @cached_property
    def _by_slot(self) -> dict[tuple[int, int], list[PlacedPoint]]:
        grouped: dict[tuple[int, int], list[PlacedPoint]] = defaultdict(list)
        for placed in self.points:
            grouped[(placed.entry_index, placed.slot)].append(placed)
        return dict(grouped)

    def for_charger(self, entry_index: int, slot: int = 0) -> list[PlacedPoint]:
        """The points of one charger entry's slot (slot 0 for an entry listed by id)."""
        return list(self._by_slot.get((entry_index, slot), ()))

    @property
    def bacnet_objects(self) -> list[PlacedPoint]:
        return [placed for placed in self.points if placed.bacnet is not None]

    @property
    def modbus_points(self) -> list[PlacedPoint]:
        return [placed for placed in self.points if placed.modbus is not None]


# -- expansion --------------------------------------------------------------------------------------------------


def _mapping_types(source: Source) -> bool:
    """A configuration key the gateway cannot type until it reads it: the mapping decides its kind."""
    key = source.config_key
    return key is not None and source.field.kind is Kind.STRING and key not in LIST_KEYS


def point_kind(point: TemplatePoint) -> Kind:
    """The kind of value a point holds: its source's, or for an untyped configuration key the one its BACnet
    object (else its Modbus register) shows."""
    source = point.resolved
    if not _mapping_types(source):
        return source.field.kind
    if point.bacnet is not None:
        return point.bacnet.type.kind
    if point.modbus is not None:
        if point.modbus.table.holds_bits:
            return Kind.BINARY
        if point.modbus.type is not None and point.modbus.type.numeric:
            return Kind.ANALOG
    return Kind.STRING


def placed_source(point: TemplatePoint) -> Source:
    """The point's source, with the kind the mapping gives an untyped configuration key."""
    source = point.resolved
    kind = point_kind(point)
    if source.config_key is not None and kind is not source.field.kind:
        source = replace(source, field=config_field(source.config_key, kind, source.writable))
    return source


def _bacnet_instance(entry: KnownCharger, point: TemplatePoint, slot: int) -> int | None:
    obj = point.bacnet
    if obj is None:
        return None
    if obj.instance is not None:
        return obj.instance
    if entry.bacnet is None or obj.offset is None:
        return None
    return entry.bacnet.base_instance + slot * entry.bacnet.stride + obj.offset


def _modbus_address(entry: KnownCharger, point: TemplatePoint, slot: int) -> ModbusAddress | None:
    register = point.modbus
    if register is None:
        return None
    placement = entry.modbus
    unit = placement.unit if placement is not None else 1
    per_unit = placement is not None and placement.unit_per_slot
    if per_unit:
        unit += slot
    if register.address is not None:
        address = register.address
    elif placement is None or placement.base_address is None or register.offset is None:
        return None
    else:
        address = placement.base_address + (0 if per_unit else slot * placement.stride) + register.offset
    return ModbusAddress(unit, register.table, address, register.width)


def _place(
    index: int,
    entry: KnownCharger,
    name: str,
    template: Template,
    slot: int,
    charger: str | None,
    sources: list[Source] | None = None,
) -> list[PlacedPoint]:
    sources = sources or [placed_source(point) for point in template.points]
    placed = []
    for position, (point, source) in enumerate(zip(template.points, sources, strict=True)):
        obj = _bacnet_instance(entry, point, slot)
        placed.append(
            PlacedPoint(
                entry_index=index,
                charger=charger,
                slot=slot,
                point=point,
                source=source,
                bacnet=(point.bacnet.type, obj) if point.bacnet is not None and obj is not None else None,
                modbus=_modbus_address(entry, point, slot),
                template=name,
                index=position,
            )
        )
    return placed


def expand(mapping: Mapping, skip: Iterable[int] = ()) -> Layout:
    """Place every template point of every entry (every slot of a pattern). Entries without a (known) template
    place nothing; entries in `skip` neither."""
    skipped = set(skip)
    placed: list[PlacedPoint] = []
    for index, entry in enumerate(mapping.chargers):
        template = mapping.templates.get(entry.template) if entry.template is not None else None
        if template is None or index in skipped or entry.template is None:
            continue
        sources = [placed_source(point) for point in template.points]
        for slot in range(entry.slot_count):
            placed.extend(_place(index, entry, entry.template, template, slot, entry.id, sources))
    return Layout(tuple(placed))


def placements(mapping: Mapping, charger_id: str, slot: int = 0) -> list[PlacedPoint]:
    """The points of one charger: its entry (exact id first, then patterns in file order) and template, in
    `slot` of a pattern entry (ignored for an entry listed by id). Empty when it has no template."""
    index = mapping.entry_index(charger_id)
    if index is None:
        return []
    entry = mapping.chargers[index]
    template = mapping.templates.get(entry.template) if entry.template is not None else None
    if template is None or entry.template is None:
        return []
    if entry.id is not None:
        slot = 0
    elif not 0 <= slot < entry.slot_count:
        raise ValueError(f"{entry.pattern} has slots 0-{entry.slot_count - 1}, not {slot}")
    return _place(index, entry, entry.template, template, slot, charger_id)


# -- checks -----------------------------------------------------------------------------------------------------


def check(mapping: Mapping) -> list[Problem]:
    """Every problem of the templates, of the entries that use them and of the numbering they produce, each with
    the location of the entry concerned."""
    problems: list[Problem] = []
    uses = _template_uses(mapping)
    for name, template in mapping.templates.items():
        _check_template(name, template, uses.get(name, 0), problems)
    bad_entries = set()
    for index, entry in enumerate(mapping.chargers):
        before = len(problems)
        _check_entry(mapping, index, entry, problems)
        if len(problems) > before:
            bad_entries.add(index)
    layout = expand(mapping, skip=bad_entries)
    _check_ranges(mapping, layout, problems)
    _check_bacnet_clashes(mapping, layout, problems)
    _check_modbus_overlaps(mapping, layout, problems)
    _check_gateway_block(mapping, layout, problems)
    return problems


def _template_uses(mapping: Mapping) -> dict[str, int]:
    uses: dict[str, int] = defaultdict(int)
    for entry in mapping.chargers:
        if entry.template is not None:
            uses[entry.template] += entry.slot_count
    return uses


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(float(value))


def _write_range(source: Source) -> tuple[float | None, float | None]:
    """The limits of a source's own writes; a limit's unit (A or W) is only known at run time: the wider."""
    if source.field.name == "limit" and source.connector is not None:
        source = with_limit_unit(source, "W")
    return source.field.minimum, source.field.maximum


def _check_template(name: str, template: Template, uses: int, problems: list[Problem]) -> None:
    sources: dict[str, int] = {}
    names: dict[str, int] = {}
    object_names: dict[str, int] = {}
    for position, point in enumerate(template.points):
        where: Location = ("templates", name, "points", position)
        canonical = point.resolved.text
        repeated = canonical in sources
        if repeated:
            spelled = "" if canonical == point.source else f" ({canonical})"
            problems.append(
                (
                    (*where, "source"),
                    f"source {point.source}{spelled} is already in points[{sources[canonical]}]",
                )
            )
        sources.setdefault(canonical, position)
        shown = point.name or canonical
        if shown in names and not repeated:
            problems.append(
                (
                    (*where, "name" if point.name else "source"),
                    f"name {shown!r} is already used by points[{names[shown]}]: BACnet object names must differ",
                )
            )
        names.setdefault(shown, position)
        if point.bacnet is not None and point.bacnet.name is not None:
            object_name = point.bacnet.name
            if object_name in object_names:
                problems.append(
                    (
                        (*where, "bacnet", "name"),
                        f"object name {object_name!r} is already used by points[{object_names[object_name]}]",
                    )
                )
            object_names.setdefault(object_name, position)
            if uses > 1 and "{charger}" not in object_name:
                problems.append(
                    (
                        (*where, "bacnet", "name"),
                        f"object name {object_name!r} would be the same for each of the {uses} chargers using "
                        f"template {name!r}: put {{charger}} in it",
                    )
                )
        _check_point(where, point, problems)


def _check_point(where: Location, point: TemplatePoint, problems: list[Problem]) -> None:
    source = point.resolved
    text = source.text
    kind = point_kind(point)
    if point.writable and not source.writable:
        connector = source.connector if source.connector is not None else 1
        problems.append(
            (
                (*where, "writable"),
                f"{text} is read-only: only {connector}/limit, {connector}/smart_charging and writable "
                "config/<key> points can be written",
            )
        )
    if _mapping_types(source) and kind is Kind.MULTISTATE:
        problems.append(
            (
                (*where, "bacnet", "type"),
                f"{text} has no state texts: show it as analog-*, binary-* or characterstring-value",
            )
        )
        return
    _check_limits(where, point, source, kind, problems)
    if point.bacnet is not None:
        _check_bacnet(where, point, source, kind, problems)
    if point.modbus is not None:
        _check_modbus(where, point, text, kind, problems)


def _check_limits(
    where: Location, point: TemplatePoint, source: Source, kind: Kind, problems: list[Problem]
) -> None:
    if point.minimum is None and point.maximum is None:
        return
    if not (point.writable and kind is Kind.ANALOG):
        key = "minimum" if point.minimum is not None else "maximum"
        problems.append(
            (
                (*where, key),
                f"{key} bounds what the BMS may write: only for writable analog points (writable: true)",
            )
        )
        return
    low, high = _write_range(source)
    if point.minimum is not None and low is not None and point.minimum < low:
        problems.append(
            (
                (*where, "minimum"),
                f"minimum {_num(point.minimum)} is below {source.text}'s own minimum {_num(low)}",
            )
        )
    if point.maximum is not None and high is not None and point.maximum > high:
        problems.append(
            (
                (*where, "maximum"),
                f"maximum {_num(point.maximum)} is above {source.text}'s own maximum {_num(high)}",
            )
        )
    if point.minimum is not None and point.maximum is not None and point.minimum > point.maximum:
        problems.append(
            ((*where, "minimum"), f"minimum {_num(point.minimum)} is above maximum {_num(point.maximum)}")
        )


def _check_bacnet(
    where: Location, point: TemplatePoint, source: Source, kind: Kind, problems: list[Problem]
) -> None:
    obj = point.bacnet
    assert obj is not None
    here: Location = (*where, "bacnet")
    fitting = _TYPES_FOR_KIND[kind]
    if obj.type.kind is not kind:
        problems.append(
            (
                (*here, "type"),
                f"{source.text} is {_a(kind)} point: use {' or '.join(fitting)}",
            )
        )
    elif point.writable and not obj.type.is_value:
        value_type = next(t for t in fitting if t.is_value)
        problems.append(
            (
                (*here, "type"),
                f"{source.text} is writable: use {value_type} (the BMS cannot write an {obj.type} object)",
            )
        )
    if obj.units is not None and kind is not Kind.ANALOG:
        problems.append(
            ((*here, "units"), f"units apply to analog objects only; {source.text} is {_a(kind)} point")
        )
    if obj.cov_increment is not None and kind is not Kind.ANALOG:
        problems.append(
            (
                (*here, "cov_increment"),
                f"cov_increment applies to analog objects only; {source.text} is {_a(kind)} point",
            )
        )
    if obj.relinquish_default is not None:
        reason = _relinquish_problem(point, source, kind, obj.relinquish_default)
        if reason:
            problems.append(((*here, "relinquish_default"), reason))


def _relinquish_problem(point: TemplatePoint, source: Source, kind: Kind, value: bool | float) -> str | None:
    if not point.writable:
        return "relinquish_default applies to writable points only (writable: true)"
    if kind is Kind.ANALOG:
        if isinstance(value, bool):
            return f"relinquish_default of analog {source.text} is a number, not {str(value).lower()}"
        own_low, own_high = _write_range(source)
        low = point.minimum if point.minimum is not None else own_low
        high = point.maximum if point.maximum is not None else own_high
        if (low is not None and value < low) or (high is not None and value > high):
            limits = f"{_num(low) if low is not None else '...'}..{_num(high) if high is not None else '...'}"
            return f"relinquish_default {_num(value)} is outside the write limits {limits}"
        return None
    if kind is Kind.BINARY:
        if not isinstance(value, bool):
            return f"relinquish_default of binary {source.text} is true or false"
        return None
    if kind is Kind.MULTISTATE:
        states = source.field.states
        if isinstance(value, bool) or value != int(value) or not 1 <= value <= len(states):
            return f"relinquish_default of {source.text} is a state number 1-{len(states)}"
        return None
    return "relinquish_default applies to analog, binary and multi-state values"


def _check_modbus(
    where: Location, point: TemplatePoint, text: str, kind: Kind, problems: list[Problem]
) -> None:
    register = point.modbus
    assert register is not None
    here: Location = (*where, "modbus")
    table = register.table
    if table.holds_bits:
        if register.type is not None:
            problems.append(((*here, "type"), f"a {table} holds one bit: leave out 'type'"))
        elif kind is not Kind.BINARY:
            problems.append(
                (
                    (*here, "table"),
                    f"{text} is {_a(kind)} point: a {table} holds one bit; use input or holding registers",
                )
            )
    elif register.type is None:
        problems.append(
            (here, f"{table} registers need a 'type': int16, uint16, int32, uint32, float32 or string")
        )
    else:
        fits = {
            Kind.ANALOG: register.type.numeric,
            Kind.BINARY: register.type.width == 1,
            Kind.MULTISTATE: register.type.width == 1,
            Kind.STRING: register.type is ModbusType.STRING,
        }[kind]
        if not fits:
            hint = {
                Kind.ANALOG: "use int16, uint16, int32, uint32 or float32",
                Kind.BINARY: "use a coil or discrete-input, or an int16/uint16 register (0/1)",
                Kind.MULTISTATE: "use int16 or uint16 (the state number)",
                Kind.STRING: "use type string (with length)",
            }[kind]
            problems.append(((*here, "type"), f"{text} is {_a(kind)} point: {hint}"))
        if register.type is ModbusType.STRING and register.length is None:
            problems.append((here, "a string needs 'length': the registers it takes, 2 characters each"))
    if point.writable and not table.writable:
        problems.append(
            (
                (*here, "table"),
                f"{text} is writable: put it in holding registers (or, for a binary point, a coil); "
                f"a Modbus client cannot write {_TABLE_NOUN[table]}s",
            )
        )
    if not point.writable and table is ModbusTable.COIL:
        problems.append(
            (
                (*here, "table"),
                f"{text} is read-only but any Modbus client can write a coil: use a discrete-input (or a register)",
            )
        )
    if register.length is not None and register.type is not ModbusType.STRING:
        problems.append(((*here, "length"), "length applies to type string only"))
    if register.scale is not None and not (
        kind is Kind.ANALOG and register.type is not None and register.type.numeric
    ):
        problems.append(((*here, "scale"), "scale applies to numeric registers of analog points only"))
    if register.word_order is not None and (register.type is None or register.type.width != 2):
        problems.append(
            ((*here, "word_order"), "word_order applies to 32-bit types (int32, uint32, float32) only")
        )


def _check_entry(mapping: Mapping, index: int, entry: KnownCharger, problems: list[Problem]) -> None:
    where: Location = ("chargers", index)
    if entry.id is not None:
        if entry.slots is not None:
            problems.append(((*where, "slots"), "slots is for pattern entries: an id entry is one charger"))
        if entry.bacnet is not None and "stride" in entry.bacnet.model_fields_set:
            problems.append(
                ((*where, "bacnet", "stride"), "stride is for pattern entries: an id entry has one slot")
            )
        if entry.modbus is not None:
            for key in ("stride", "unit_per_slot"):
                if key in entry.modbus.model_fields_set:
                    problems.append(
                        ((*where, "modbus", key), f"{key} is for pattern entries: an id entry has one slot")
                    )
    if entry.template is None:
        for protocol in ("bacnet", "modbus"):
            if getattr(entry, protocol) is not None:
                problems.append(
                    (
                        (*where, protocol),
                        f"'{protocol}' places a template's points: this entry has no template",
                    )
                )
        return
    template = mapping.templates.get(entry.template)
    if template is None:
        known = (
            f"the templates are {', '.join(mapping.templates)}"
            if mapping.templates
            else "the file defines no templates (add it under 'templates')"
        )
        problems.append(((*where, "template"), f"unknown template {entry.template!r}: {known}"))
        return
    _check_entry_bacnet(where, entry, entry.template, template, problems)
    _check_entry_modbus(where, entry, entry.template, template, problems)


def _check_entry_bacnet(
    where: Location, entry: KnownCharger, name: str, template: Template, problems: list[Problem]
) -> None:
    objects = [(k, p, p.bacnet) for k, p in enumerate(template.points) if p.bacnet is not None]
    offsets = [obj.offset for _, _, obj in objects if obj.offset is not None]
    if offsets and entry.bacnet is None:
        problems.append(
            (
                where,
                f"template {name!r} places BACnet objects by offset: give this entry bacnet: {{base_instance: ...}}",
            )
        )
    slots = entry.slot_count
    if slots <= 1:
        return
    absolute = next(((k, p, obj.instance) for k, p, obj in objects if obj.instance is not None), None)
    if absolute is not None:
        k, point, instance = absolute
        problems.append(
            (
                (*where, "template"),
                f"template {name!r} gives points[{k}] ({point.source}) the absolute instance {instance}: a pattern "
                f"with {slots} slots needs offsets, or every slot would use the same object",
            )
        )
    if entry.bacnet is not None and offsets and max(offsets) >= entry.bacnet.stride:
        stride = entry.bacnet.stride
        problems.append(
            (
                (*where, "bacnet", "stride")
                if "stride" in entry.bacnet.model_fields_set
                else (*where, "bacnet"),
                f"template {name!r} uses BACnet offsets up to {max(offsets)}: stride {stride} leaves room for "
                f"offsets 0-{stride - 1} only",
            )
        )


def _check_entry_modbus(
    where: Location, entry: KnownCharger, name: str, template: Template, problems: list[Problem]
) -> None:
    registers = [(k, p, p.modbus) for k, p in enumerate(template.points) if p.modbus is not None]
    by_offset = [(reg.offset, reg.width) for _, _, reg in registers if reg.offset is not None]
    placement = entry.modbus
    if by_offset and (placement is None or placement.base_address is None):
        problems.append(
            (
                (*where, "modbus") if placement is not None else where,
                f"template {name!r} places Modbus points by offset: give this entry modbus: {{base_address: ...}}",
            )
        )
    slots = entry.slot_count
    if slots <= 1:
        return
    per_unit = placement is not None and placement.unit_per_slot
    if per_unit and placement is not None and placement.unit + slots - 1 > MAX_UNIT:
        problems.append(
            (
                (*where, "modbus", "unit"),
                f"with unit_per_slot, {slots} slots from unit {placement.unit} need units up to "
                f"{placement.unit + slots - 1}: the last Modbus unit is {MAX_UNIT}",
            )
        )
    if per_unit:
        return  # each slot has its own unit: absolute addresses and any offsets are fine
    absolute = next(((k, p, reg.address) for k, p, reg in registers if reg.address is not None), None)
    if absolute is not None:
        k, point, address = absolute
        problems.append(
            (
                (*where, "template"),
                f"template {name!r} gives points[{k}] ({point.source}) the absolute address {address}: a pattern "
                f"with {slots} slots needs offsets (or modbus unit_per_slot: true), or every slot would use the "
                "same registers",
            )
        )
    if placement is not None and by_offset:
        end = max(offset + width for offset, width in by_offset)
        if end > placement.stride:
            stride = placement.stride
            problems.append(
                (
                    (*where, "modbus", "stride")
                    if "stride" in placement.model_fields_set
                    else (*where, "modbus"),
                    f"template {name!r} uses Modbus offsets up to {end - 1}: stride {stride} leaves room for "
                    f"offsets 0-{stride - 1} only",
                )
            )


def _label(mapping: Mapping, placed: PlacedPoint) -> str:
    entry = mapping.chargers[placed.entry_index]
    who = entry.id if entry.id is not None else f"{entry.pattern} slot {placed.slot}"
    return f"{who} {placed.source.text}"


def _point_location(placed: PlacedPoint, protocol: str) -> Location:
    return ("templates", placed.template, "points", placed.index, protocol)


def _entry_location(mapping: Mapping, placed: PlacedPoint, protocol: str) -> Location:
    """Where an entry places a point's objects: its bacnet/modbus key, or its template for absolute numbers."""
    entry = mapping.chargers[placed.entry_index]
    absolute = (
        placed.point.bacnet is not None and placed.point.bacnet.instance is not None
        if protocol == "bacnet"
        else placed.point.modbus is not None and placed.point.modbus.address is not None
    )
    if not absolute and getattr(entry, protocol) is not None:
        return ("chargers", placed.entry_index, protocol)
    return ("chargers", placed.entry_index, "template")


class _Grouped:
    """Problems that repeat (every slot of a pattern, every point of a template) reported once, with a count."""

    def __init__(self) -> None:
        self._first: dict[tuple[object, ...], tuple[Location, str]] = {}
        self._more: dict[tuple[object, ...], int] = defaultdict(int)

    def add(self, key: tuple[object, ...], location: Location, reason: str) -> None:
        if key in self._first:
            self._more[key] += 1
        else:
            self._first[key] = (location, reason)

    def into(self, problems: list[Problem]) -> None:
        for key, (location, reason) in self._first.items():
            more = self._more.get(key, 0)
            problems.append((location, reason + (f" (and {more} more like it)" if more else "")))


def _check_ranges(mapping: Mapping, layout: Layout, problems: list[Problem]) -> None:
    grouped = _Grouped()
    for placed in layout.points:
        if placed.bacnet is not None and placed.bacnet[1] > MAX_INSTANCE:
            kind, instance = placed.bacnet
            grouped.add(
                ("bacnet", placed.entry_index),
                _entry_location(mapping, placed, "bacnet"),
                f"{_label(mapping, placed)} would be {kind} {instance}: beyond {MAX_INSTANCE}, the highest "
                "BACnet instance",
            )
        if placed.modbus is not None and placed.modbus.end > MAX_ADDRESS + 1:
            address = placed.modbus
            location = (
                _point_location(placed, "modbus")
                if placed.point.modbus is not None and placed.point.modbus.address is not None
                else _entry_location(mapping, placed, "modbus")
            )
            grouped.add(
                ("modbus", placed.entry_index, location),
                location,
                f"{_label(mapping, placed)} would use {address}: beyond {MAX_ADDRESS}, the last Modbus address",
            )
    grouped.into(problems)


def _clash(
    mapping: Mapping,
    grouped: _Grouped,
    first: PlacedPoint,
    second: PlacedPoint,
    protocol: str,
    reason: str,
) -> None:
    if first.entry_index == second.entry_index:
        key: tuple[object, ...] = (protocol, first.entry_index, first.index, second.index)
        location = _point_location(second, protocol)
    else:
        key = (protocol, first.entry_index, second.entry_index)
        location = _entry_location(mapping, second, protocol)
    grouped.add(key, location, reason)


def _check_bacnet_clashes(mapping: Mapping, layout: Layout, problems: list[Problem]) -> None:
    grouped = _Grouped()
    seen: dict[tuple[BacnetObjectType, int], PlacedPoint] = {}
    for placed in layout.points:
        if placed.bacnet is None:
            continue
        first = seen.setdefault(placed.bacnet, placed)
        if first is not placed:
            kind, instance = placed.bacnet
            reason = (
                f"{kind} {instance} is used twice: {_label(mapping, first)} and {_label(mapping, placed)}"
            )
            _clash(mapping, grouped, first, placed, "bacnet", reason)
    grouped.into(problems)


def _check_modbus_overlaps(mapping: Mapping, layout: Layout, problems: list[Problem]) -> None:
    grouped = _Grouped()
    tables: dict[tuple[int, ModbusTable], list[tuple[int, PlacedPoint]]] = defaultdict(list)
    for order, placed in enumerate(layout.points):
        if placed.modbus is not None:
            tables[(placed.modbus.unit, placed.modbus.table)].append((order, placed))
    for (unit, _table), members in tables.items():
        members.sort(key=lambda item: (_address(item[1]).address, _address(item[1]).end, item[0]))
        holder: tuple[int, PlacedPoint] | None = None
        for order, placed in members:
            here = _address(placed)
            if holder is not None and here.address < _address(holder[1]).end:
                first, second = (holder[1], placed) if holder[0] < order else (placed, holder[1])
                a, b = _address(first), _address(second)
                verb = "overlap" if b.width > 1 else "overlaps"
                reason = (
                    f"{b} of {_label(mapping, second)} {verb} {a} of {_label(mapping, first)} (unit {unit})"
                )
                _clash(mapping, grouped, first, second, "modbus", reason)
            if holder is None or here.end > _address(holder[1]).end:
                holder = (order, placed)
    grouped.into(problems)


def _check_gateway_block(mapping: Mapping, layout: Layout, problems: list[Problem]) -> None:
    """The gateway block sits in the input and holding registers of every unit: no point may use its addresses."""
    start = mapping.modbus.gateway_block
    end = start + GATEWAY_BLOCK_WIDTH
    grouped = _Grouped()
    for placed in layout.points:
        address = placed.modbus
        if address is None or address.table.holds_bits or address.end <= start or address.address >= end:
            continue
        given = "gateway_block" in mapping.modbus.model_fields_set
        grouped.add(
            ("gateway_block", placed.entry_index),
            ("modbus", "gateway_block") if given else _entry_location(mapping, placed, "modbus"),
            f"the gateway block (input and holding registers {start}-{end - 1} in every unit) overlaps "
            f"{address} of {_label(mapping, placed)} (unit {address.unit}): move the charger, or the block "
            f"with modbus: {{gateway_block: ...}}",
        )
    grouped.into(problems)


def _address(placed: PlacedPoint) -> ModbusAddress:
    assert placed.modbus is not None
    return placed.modbus
