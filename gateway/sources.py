"""Point sources: the names of every value the gateway keeps for a charger, and what each one is.

A source is written the same way in the mapping file, in the API and in a point's id (`<charger>/<source>`):

- charger values: `online`, `registration`, `vendor`, `model`, `serial_number`, `firmware_version`,
  `firmware_status`, `diagnostics_status`, `last_command`, `last_command_status`, `write_status`
- connector values (`0` is the charge point as a whole): `1/status`, `1/error_code`, `1/info`,
  `1/vendor_error_code`, `1/transaction_active`, `1/transaction_id`, `1/id_tag`, `1/session_energy`
- smart charging per connector (seed 003 §6.3): `1/limit` and `1/smart_charging` (writable), `1/limit_unit`,
  `1/profile_kind`, `1/profile_purpose`, `1/profile_id`, `1/stack_level`, `1/limit_status`
- meter values (discovered when first reported): `1/meter/<Measurand>[/<phase>][@<location>]`, e.g.
  `1/meter/Energy.Active.Import.Register`, `1/meter/Current.Import/L1`, `1/meter/Temperature@Body`
- configuration keys (read with GetConfiguration): `config/<Key>`, e.g. `config/HeartbeatInterval`

`resolve()` turns a source into its point description or says why it is not one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from points import Kind, PointSpec

CONNECTOR_STATUSES = (
    "Available",
    "Preparing",
    "Charging",
    "SuspendedEVSE",
    "SuspendedEV",
    "Finishing",
    "Reserved",
    "Unavailable",
    "Faulted",
)
ERROR_CODES = (
    "ConnectorLockFailure",
    "EVCommunicationError",
    "GroundFailure",
    "HighTemperature",
    "InternalError",
    "LocalListConflict",
    "NoError",
    "OtherError",
    "OverCurrentFailure",
    "OverVoltage",
    "PowerMeterFailure",
    "PowerSwitchFailure",
    "ReaderFailure",
    "ResetFailure",
    "UnderVoltage",
    "WeakSignal",
)
REGISTRATION_STATES = ("Accepted", "Pending", "Rejected")
COMMAND_OUTCOMES = ("accepted", "rejected", "not-supported", "timed-out", "offline", "failed")
# A BMS write's outcome: `stored` is taken by the gateway but not sent yet (a limit while smart charging is off).
WRITE_OUTCOMES = ("pending", "accepted", "stored", "rejected", "timed-out", "offline", "failed")
LIMIT_UNITS = ("A", "W")
PROFILE_KINDS = ("Absolute", "Recurring", "Relative")
PROFILE_PURPOSES = ("ChargePointMaxProfile", "TxDefaultProfile", "TxProfile")

# Measurand -> the unit its point has after normalisation (kWh -> Wh and so on); None: no unit.
MEASURANDS: dict[str, str | None] = {
    "Current.Export": "A",
    "Current.Import": "A",
    "Current.Offered": "A",
    "Energy.Active.Export.Register": "Wh",
    "Energy.Active.Import.Register": "Wh",
    "Energy.Reactive.Export.Register": "varh",
    "Energy.Reactive.Import.Register": "varh",
    "Energy.Active.Export.Interval": "Wh",
    "Energy.Active.Import.Interval": "Wh",
    "Energy.Reactive.Export.Interval": "varh",
    "Energy.Reactive.Import.Interval": "varh",
    "Frequency": None,
    "Power.Active.Export": "W",
    "Power.Active.Import": "W",
    "Power.Factor": None,
    "Power.Offered": "W",
    "Power.Reactive.Export": "var",
    "Power.Reactive.Import": "var",
    "RPM": None,
    "SoC": "Percent",
    "Temperature": "Celsius",
    "Voltage": "V",
}


def natural_unit(measurand: str) -> str | None:
    """The unit a reading of `measurand` has when its charger leaves the unit out."""
    return MEASURANDS.get(measurand, "Wh")


PHASES = ("L1", "L2", "L3", "N", "L1-N", "L2-N", "L3-N", "L1-L2", "L2-L3", "L3-L1")
LOCATIONS = ("Inlet", "Outlet", "Body", "Cable", "EV")
DEFAULT_LOCATION = "Outlet"

# Standard keys that are read-only in OCPP 1.6 (appendix 3 of seed 003; AC SMART marks the same ones).
READ_ONLY_KEYS = frozenset(
    {
        "ChargeProfileMaxStackLevel",
        "ChargingScheduleAllowedChargingRateUnit",
        "ChargeScheduleAllowedChargingRateUnit",  # AC SMART's spelling
        "ChargingScheduleMaxPeriods",
        "ConnectorPhaseRotationMaxLength",
        "ConnectorSwitch3to1PhaseSupported",
        "GetConfigurationMaxKeys",
        "LocalAuthListMaxLength",
        "MaxChargingProfilesInstalled",
        "MeterValuesAlignedDataMaxLength",
        "MeterValuesSampledDataMaxLength",
        "NumberOfConnectors",
        "ReserveConnectorZeroSupported",
        "SendLocalListMaxLength",
        "StopTxnAlignedDataMaxLength",
        "StopTxnSampledDataMaxLength",
        "SupportedFeatureProfiles",
        "SupportedFeatureProfilesMaxLength",
        "Cst_MaxCurrentRotarySwitchSetting",  # amina: set by the rotary switch at installation
    }
)

# The value types of the standard 1.6 keys and of the seed chargers' vendor keys; other keys are typed from the
# value a charger reports (a mapping that binds an unknown vendor key sees it as a string).
BOOLEAN_KEYS = frozenset(
    {
        "AllowOfflineTxForUnknownId",
        "AuthorizationCacheEnabled",
        "AuthorizeRemoteTxRequests",
        "ConnectorSwitch3to1PhaseSupported",
        "LocalAuthListEnabled",
        "LocalAuthorizeOffline",
        "LocalPreAuthorize",
        "ReserveConnectorZeroSupported",
        "StopTransactionOnEVSideDisconnect",
        "StopTransactionOnInvalidId",
        "UnlockConnectorOnEVSideDisconnect",
    }
)
NUMBER_KEYS = frozenset(
    {
        "BlinkRepeat",
        "ChargeProfileMaxStackLevel",
        "ChargingScheduleMaxPeriods",
        "ClockAlignedDataInterval",
        "ConnectionTimeOut",
        "ConnectorPhaseRotationMaxLength",
        "GetConfigurationMaxKeys",
        "HeartbeatInterval",
        "LightIntensity",
        "LocalAuthListMaxLength",
        "MaxChargingProfilesInstalled",
        "MaxEnergyOnInvalidId",
        "MeterValueSampleInterval",
        "MeterValuesAlignedDataMaxLength",
        "MeterValuesSampledDataMaxLength",
        "MinimumStatusDuration",
        "NumberOfConnectors",
        "ResetRetries",
        "SendLocalListMaxLength",
        "StopTxnAlignedDataMaxLength",
        "StopTxnSampledDataMaxLength",
        "SupportedFeatureProfilesMaxLength",
        "TransactionMessageAttempts",
        "TransactionMessageRetryInterval",
        "WebSocketPingInterval",
        "Cst_MaxCurrentRotarySwitchSetting",  # amina (seed 000): amperes
        "ConnectorMaximumCurrent",  # Weidmüller AC SMART (seed 002): amperes
    }
)
LIST_KEYS = frozenset(
    {
        "ChargingScheduleAllowedChargingRateUnit",
        "ChargeScheduleAllowedChargingRateUnit",
        "ConnectorPhaseRotation",
        "MeterValuesAlignedData",
        "MeterValuesSampledData",
        "StopTxnAlignedData",
        "StopTxnSampledData",
        "SupportedFeatureProfiles",
    }
)


def config_kind(key: str, value: str | None = None) -> Kind:
    """A configuration key's point kind: from the tables above, else from its value (lists are strings)."""
    if key in BOOLEAN_KEYS:
        return Kind.BINARY
    if key in NUMBER_KEYS:
        return Kind.ANALOG
    if key in LIST_KEYS or value is None:
        return Kind.STRING
    if value.strip().lower() in ("true", "false"):
        return Kind.BINARY
    try:
        float(value)
    except ValueError:
        return Kind.STRING
    return Kind.ANALOG if value.strip() else Kind.STRING


@dataclass(frozen=True)
class _Field:
    name: str
    kind: Kind
    description: str
    unit: str | None = None
    states: tuple[str, ...] = ()
    writable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    own: bool = False  # the gateway's own knowledge: stays good while the charger is offline


CHARGER_FIELDS: dict[str, _Field] = {
    f.name: f
    for f in (
        _Field(
            "online",
            Kind.BINARY,
            "The charger is connected and talking",
            states=("offline", "online"),
            own=True,
        ),
        _Field("registration", Kind.MULTISTATE, "Answer to its last boot", states=REGISTRATION_STATES),
        _Field("vendor", Kind.STRING, "Vendor (BootNotification)"),
        _Field("model", Kind.STRING, "Model (BootNotification)"),
        _Field("serial_number", Kind.STRING, "Charge point serial number (BootNotification)"),
        _Field("firmware_version", Kind.STRING, "Firmware version (BootNotification)"),
        _Field("firmware_status", Kind.STRING, "Last FirmwareStatusNotification"),
        _Field("diagnostics_status", Kind.STRING, "Last DiagnosticsStatusNotification"),
        _Field("last_command", Kind.STRING, "Last command sent and its answer", own=True),
        _Field(
            "last_command_status",
            Kind.MULTISTATE,
            "Outcome of the last command",
            states=COMMAND_OUTCOMES,
            own=True,
        ),
        _Field(
            "write_status",
            Kind.MULTISTATE,
            "Outcome of the last BMS write (BACnet or Modbus): pending until the charger answers",
            states=WRITE_OUTCOMES,
            own=True,
        ),
    )
}

CONNECTOR_FIELDS: dict[str, _Field] = {
    f.name: f
    for f in (
        _Field("status", Kind.MULTISTATE, "Status", states=CONNECTOR_STATUSES),
        _Field("error_code", Kind.MULTISTATE, "Error code", states=ERROR_CODES),
        _Field("info", Kind.STRING, "Additional error information"),
        _Field("vendor_error_code", Kind.STRING, "Vendor error code"),
        _Field(
            "transaction_active", Kind.BINARY, "A transaction is running", states=("idle", "charging session")
        ),
        _Field("transaction_id", Kind.ANALOG, "Running transaction id (0: none)"),
        _Field("id_tag", Kind.STRING, "Id tag of the running transaction"),
        _Field("session_energy", Kind.ANALOG, "Energy of the running (or last) transaction", unit="Wh"),
        _Field(
            "limit", Kind.ANALOG, "Smart charging limit", unit="A", writable=True, minimum=0, maximum=1000
        ),
        _Field(
            "smart_charging",
            Kind.BINARY,
            "Smart charging enabled",
            states=("disabled", "enabled"),
            writable=True,
        ),
        _Field("limit_unit", Kind.MULTISTATE, "Smart charging unit", states=LIMIT_UNITS),
        _Field("profile_kind", Kind.MULTISTATE, "Charging profile kind", states=PROFILE_KINDS),
        _Field("profile_purpose", Kind.MULTISTATE, "Charging profile purpose", states=PROFILE_PURPOSES),
        _Field("profile_id", Kind.ANALOG, "Charging profile id"),
        _Field("stack_level", Kind.ANALOG, "Charging profile stack level"),
        _Field("limit_status", Kind.STRING, "Outcome of the last smart charging write"),
    )
}

_CONFIG_KEY = re.compile(r"^[A-Za-z0-9_.\-]{1,50}$")
_METER = re.compile(r"^(?P<measurand>[A-Za-z.]+)(?:/(?P<phase>[A-Z0-9\-]+))?(?:@(?P<location>[A-Za-z]+))?$")


@dataclass(frozen=True)
class Source:
    """A parsed source: what it names and the point description it gives a charger."""

    text: str
    connector: int | None
    field: _Field
    measurand: str | None = None
    phase: str | None = None
    location: str | None = None
    config_key: str | None = None

    @property
    def writable(self) -> bool:
        return self.field.writable

    def point_spec(
        self, charger_id: str, name: str | None = None, description: str | None = None
    ) -> PointSpec:
        """The point this source gives `charger_id`; the mapping may name and describe it."""
        f = self.field
        return PointSpec(
            id=f"{charger_id}/{self.text}",
            name=name or f"{charger_id}/{self.text}",
            kind=f.kind,
            unit=f.unit,
            description=description or f.description,
            writable=f.writable,
            minimum=f.minimum,
            maximum=f.maximum,
            states=f.states,
            own=f.own,
        )


class SourceProblem(ValueError):
    """A source text that names nothing the gateway keeps."""


def meter_source(measurand: str, phase: str | None, location: str | None) -> str:
    """The source text of a meter series (the default location Outlet is left out)."""
    text = measurand + (f"/{phase}" if phase else "")
    return text + (f"@{location}" if location and location != DEFAULT_LOCATION else "")


def config_field(key: str, kind: Kind, writable: bool) -> _Field:
    """The field of a configuration key once its value's type is known."""
    return _Field(key, kind, f"Configuration key {key}", writable=writable)


def resolve(text: str) -> Source:
    """Parse a source; raises `SourceProblem` with a reason a person can act on."""
    if not isinstance(text, str) or not text:
        raise SourceProblem("a source is a non-empty text such as '1/status' or 'config/HeartbeatInterval'")
    if text in CHARGER_FIELDS:
        return Source(text, None, CHARGER_FIELDS[text])
    head, _, rest = text.partition("/")
    if head == "config":
        if not _CONFIG_KEY.fullmatch(rest):
            raise SourceProblem(
                f"{rest!r} is not a configuration key (up to 50 letters, digits, '_', '.', '-')"
            )
        writable = rest not in READ_ONLY_KEYS
        return Source(text, None, config_field(rest, config_kind(rest), writable), config_key=rest)
    if not head.isdigit() or not rest:
        raise SourceProblem(
            f"unknown source {text!r}: use a charger value ({', '.join(CHARGER_FIELDS)}), "
            "'<connector>/<value>', '<connector>/meter/<measurand>' or 'config/<key>'"
        )
    connector = int(head)
    if rest.startswith("meter/"):
        return _meter(text, connector, rest.removeprefix("meter/"))
    field = CONNECTOR_FIELDS.get(rest)
    if field is None:
        raise SourceProblem(
            f"unknown connector value {rest!r}: one of {', '.join(CONNECTOR_FIELDS)}, or meter/..."
        )
    return Source(text, connector, field)


def _meter(text: str, connector: int, series: str) -> Source:
    match = _METER.fullmatch(series)
    if match is None:
        raise SourceProblem(f"{series!r} is not '<measurand>[/<phase>][@<location>]'")
    measurand, phase, location = match["measurand"], match["phase"], match["location"]
    if measurand not in MEASURANDS:
        raise SourceProblem(f"unknown measurand {measurand!r}: one of {', '.join(MEASURANDS)}")
    if phase is not None and phase not in PHASES:
        raise SourceProblem(f"unknown phase {phase!r}: one of {', '.join(PHASES)}")
    if location is not None and location not in LOCATIONS:
        raise SourceProblem(f"unknown location {location!r}: one of {', '.join(LOCATIONS)}")
    canonical = f"{connector}/meter/{meter_source(measurand, phase, location)}"
    label = measurand + (f" {phase}" if phase else "") + (f" ({location})" if location else "")
    field = _Field(f"meter/{series}", Kind.ANALOG, label, unit=MEASURANDS[measurand])
    return Source(canonical, connector, field, measurand, phase, location or DEFAULT_LOCATION)


def with_limit_unit(source: Source, unit: str) -> Source:
    """The limit source with the unit the charger's schedule uses (A or W)."""
    maximum = 1000.0 if unit == "A" else 1_000_000.0
    return replace(source, field=replace(source.field, unit=unit, maximum=maximum))
