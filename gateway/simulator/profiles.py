"""Charger profiles for the simulator: pure data, no sockets.

A profile says what a charger model is (vendor, model, firmware, connectors, AC or DC and its ratings), how its
charge point ids look, which OCPP 1.6 messages it sends and which it answers, and its configuration keys. Four
profiles follow the seeds:

* `amina`: amina C (seed 000), ids `C1-<10-digit serial>`; one AC three-phase connector whose current the
  read-only `Cst_MaxCurrentRotarySwitchSetting` (the installer's rotary switch) caps whatever limit is applied.
* `ac-smart`: Weidmüller AC SMART (seed 002): exactly the 7 messages it sends, the 14 it receives (anything else
  gets CALLERROR NotImplemented) and its 16 configuration keys; `ConnectorMaximumCurrent` caps the current.
* `sicharge-d`: Siemens SICHARGE D (seed 004): DC, two connectors reporting state of charge, voltage and
  current; Core and Local Auth List Management only, every other 1.6 feature profile's call gets CALLERROR
  NotSupported (recognized, not supported).
* `generic`: a two-connector AC charger with every 1.6 feature profile.
"""

from __future__ import annotations

from dataclasses import dataclass

# -- OCPP 1.6 feature profiles: (what the central system sends, what the charge point sends) -------------------

CORE = "Core"
FIRMWARE = "FirmwareManagement"
LOCAL_LIST = "LocalAuthListManagement"
RESERVATION = "Reservation"
SMART_CHARGING = "SmartCharging"
REMOTE_TRIGGER = "RemoteTrigger"

FEATURE_PROFILES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    CORE: (
        frozenset(
            {
                "ChangeAvailability",
                "ChangeConfiguration",
                "ClearCache",
                "DataTransfer",
                "GetConfiguration",
                "RemoteStartTransaction",
                "RemoteStopTransaction",
                "Reset",
                "UnlockConnector",
            }
        ),
        frozenset(
            {
                "Authorize",
                "BootNotification",
                "DataTransfer",
                "Heartbeat",
                "MeterValues",
                "StartTransaction",
                "StatusNotification",
                "StopTransaction",
            }
        ),
    ),
    FIRMWARE: (
        frozenset({"GetDiagnostics", "UpdateFirmware"}),
        frozenset({"DiagnosticsStatusNotification", "FirmwareStatusNotification"}),
    ),
    LOCAL_LIST: (frozenset({"GetLocalListVersion", "SendLocalList"}), frozenset()),
    RESERVATION: (frozenset({"CancelReservation", "ReserveNow"}), frozenset()),
    SMART_CHARGING: (
        frozenset({"ClearChargingProfile", "GetCompositeSchedule", "SetChargingProfile"}),
        frozenset(),
    ),
    REMOTE_TRIGGER: (frozenset({"TriggerMessage"}), frozenset()),
}
# Every call a 1.6 central system may send to a charge point (the security extension's are not simulated).
CENTRAL_SYSTEM_CALLS = frozenset(action for received, _ in FEATURE_PROFILES.values() for action in received)


def _received(*features: str) -> frozenset[str]:
    return frozenset(action for feature in features for action in FEATURE_PROFILES[feature][0])


def _sent(*features: str) -> frozenset[str]:
    return frozenset(action for feature in features for action in FEATURE_PROFILES[feature][1])


@dataclass(frozen=True)
class ConfigKey:
    """One configuration key as GetConfiguration reports it."""

    key: str
    value: str
    readonly: bool = False


@dataclass(frozen=True)
class ChargerProfile:
    """A charger model as the simulator plays it."""

    name: str
    description: str
    id_format: str  # str.format with `n` (1, 2, ... within the profile), e.g. "C1-{serial}" or "SIM-{n:04d}"
    vendor: str  # BootNotification chargePointVendor (at most 20 characters)
    model: str  # chargePointModel (at most 20)
    firmware: str
    connectors: int
    dc: bool
    phases: int  # AC phases (1 or 3); 0 for DC
    voltage: float  # AC: phase-to-neutral volts; DC: nominal battery volts (the charger reports the car's)
    max_current: float  # A per connector (AC per phase)
    max_power: float  # W per connector
    sends: frozenset[str]  # the calls it makes; it never sends anything else
    receives: frozenset[str]  # the calls it answers
    not_supported: frozenset[str]  # calls it recognizes but does not support: CALLERROR NotSupported
    configuration: tuple[ConfigKey, ...]
    feature_profiles: tuple[str, ...]
    # Configuration keys whose value (A) caps the current whatever limit is applied.
    current_caps: tuple[str, ...] = ()
    # DataTransfer vendor ids it knows; any other gets UnknownVendorId.
    vendor_ids: tuple[str, ...] = ()
    serial_base: int = 0  # amina: serial = serial_base + n

    def charger_id(self, n: int, prefix: str = "") -> str:
        """The id of this profile's `n`th charger (from 1), with `prefix` in front."""
        return prefix + self.id_format.format(n=n, serial=self.serial_base + n)

    def config(self, key: str) -> ConfigKey | None:
        return next((entry for entry in self.configuration if entry.key == key), None)

    def refusal(self, action: str) -> str | None:
        """The CALLERROR code a call gets that this charger does not answer, or None if it answers it."""
        if action in self.receives:
            return None
        return "NotSupported" if action in self.not_supported else "NotImplemented"


# -- configuration keys ----------------------------------------------------------------------------------------

AC_MEASURANDS = "Energy.Active.Import.Register,Power.Active.Import,Current.Import"
DC_MEASURANDS = "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage,SoC"


def _core_keys(connectors: int, measurands: str, features: tuple[str, ...], rotation: str) -> list[ConfigKey]:
    return [
        ConfigKey("AllowOfflineTxForUnknownId", "false"),
        ConfigKey("AuthorizationCacheEnabled", "false"),
        ConfigKey("AuthorizeRemoteTxRequests", "false"),
        ConfigKey("ClockAlignedDataInterval", "0"),
        ConfigKey("ConnectionTimeOut", "60"),
        ConfigKey("ConnectorPhaseRotation", rotation),
        ConfigKey("GetConfigurationMaxKeys", "50", readonly=True),
        ConfigKey("HeartbeatInterval", "300"),
        ConfigKey("LocalAuthorizeOffline", "true"),
        ConfigKey("LocalPreAuthorize", "false"),
        ConfigKey("MeterValuesAlignedData", "Energy.Active.Import.Register"),
        ConfigKey("MeterValuesSampledData", measurands),
        ConfigKey("MeterValueSampleInterval", "10"),
        ConfigKey("NumberOfConnectors", str(connectors), readonly=True),
        ConfigKey("ResetRetries", "3"),
        ConfigKey("StopTransactionOnEVSideDisconnect", "true"),
        ConfigKey("StopTransactionOnInvalidId", "true"),
        ConfigKey("StopTxnAlignedData", ""),
        ConfigKey("StopTxnSampledData", "Energy.Active.Import.Register"),
        ConfigKey("SupportedFeatureProfiles", ",".join(features), readonly=True),
        ConfigKey("TransactionMessageAttempts", "3"),
        ConfigKey("TransactionMessageRetryInterval", "60"),
        ConfigKey("UnlockConnectorOnEVSideDisconnect", "true"),
        ConfigKey("WebSocketPingInterval", "20"),
    ]


def _smart_charging_keys(units: str) -> list[ConfigKey]:
    return [
        ConfigKey("ChargeProfileMaxStackLevel", "8", readonly=True),
        ConfigKey("ChargingScheduleAllowedChargingRateUnit", units, readonly=True),
        ConfigKey("ChargingScheduleMaxPeriods", "24", readonly=True),
        ConfigKey("MaxChargingProfilesInstalled", "16", readonly=True),
    ]


def _local_list_keys() -> list[ConfigKey]:
    return [
        ConfigKey("LocalAuthListEnabled", "true"),
        ConfigKey("LocalAuthListMaxLength", "1000", readonly=True),
        ConfigKey("SendLocalListMaxLength", "1000", readonly=True),
    ]


# -- the profiles ----------------------------------------------------------------------------------------------

_AMINA_FEATURES = (CORE, SMART_CHARGING, REMOTE_TRIGGER, LOCAL_LIST)
AMINA = ChargerProfile(
    name="amina",
    description="amina C: one AC three-phase connector, its rotary switch caps the current",
    id_format="C1-{serial:010d}",
    serial_base=1_000_000_000,
    vendor="amina",
    model="amina C",
    firmware="2.4.1-sim",
    connectors=1,
    dc=False,
    phases=3,
    voltage=230.0,
    max_current=32.0,
    max_power=22_080.0,
    sends=_sent(CORE),
    receives=_received(*_AMINA_FEATURES),
    not_supported=CENTRAL_SYSTEM_CALLS - _received(*_AMINA_FEATURES),
    configuration=tuple(
        _core_keys(1, AC_MEASURANDS, _AMINA_FEATURES, "0.RST,1.RST")
        + _smart_charging_keys("Current")
        + _local_list_keys()
        + [ConfigKey("Cst_MaxCurrentRotarySwitchSetting", "16", readonly=True)]
    ),
    feature_profiles=_AMINA_FEATURES,
    current_caps=("Cst_MaxCurrentRotarySwitchSetting",),
)

AC_SMART_SENDS = frozenset(
    {
        "Authorize",
        "BootNotification",
        "Heartbeat",
        "MeterValues",
        "StartTransaction",
        "StopTransaction",
        "StatusNotification",
    }
)
AC_SMART_RECEIVES = frozenset(
    {
        "CancelReservation",
        "ChangeAvailability",
        "ChangeConfiguration",
        "ClearChargingProfile",
        "GetCompositeSchedule",
        "GetConfiguration",
        "GetDiagnostics",
        "RemoteStartTransaction",
        "RemoteStopTransaction",
        "ReserveNow",
        "Reset",
        "SetChargingProfile",
        "UnlockConnector",
        "UpdateFirmware",
    }
)
AC_SMART = ChargerProfile(
    name="ac-smart",
    description="Weidmüller AC SMART: one AC connector, 7 messages sent, 14 answered, 16 configuration keys",
    id_format="ACSMART-{n:02d}",
    vendor="Weidmueller",
    model="AC SMART ADVANCED",
    firmware="1.5.3-sim",
    connectors=1,
    dc=False,
    phases=3,
    voltage=230.0,
    max_current=32.0,
    max_power=22_080.0,
    sends=AC_SMART_SENDS,
    receives=AC_SMART_RECEIVES,
    not_supported=frozenset(),  # anything it does not receive is NotImplemented
    configuration=(
        ConfigKey("ConnectionTimeOut", "60"),
        ConfigKey("HeartbeatInterval", "300"),
        ConfigKey("MeterValueSampleInterval", "10"),
        ConfigKey("NumberOfConnectors", "1", readonly=True),
        ConfigKey("TransactionMessageAttempts", "3"),
        ConfigKey("TransactionMessageRetryInterval", "60"),
        ConfigKey("ConnectorMaximumCurrent", "32"),
        ConfigKey("WebSocketPingInterval", "20"),
        ConfigKey("GetConfigurationMaxKeys", "16", readonly=True),
        ConfigKey("MeterValuesSampledData", AC_MEASURANDS, readonly=True),
        ConfigKey("ConnectorPhaseRotation", "NotApplicable", readonly=True),
        ConfigKey("ChargeProfileMaxStackLevel", "8", readonly=True),
        ConfigKey("ChargeScheduleAllowedChargingRateUnit", "Current", readonly=True),
        ConfigKey("ChargingScheduleMaxPeriods", "24", readonly=True),
        ConfigKey("ConnectorSwitch3to1PhaseSupported", "false", readonly=True),
        ConfigKey("MaxChargingProfilesInstalled", "8", readonly=True),
    ),
    feature_profiles=(CORE, FIRMWARE, RESERVATION, SMART_CHARGING),  # each only in part: see `receives`
    current_caps=("ConnectorMaximumCurrent",),
)

_SICHARGE_FEATURES = (CORE, LOCAL_LIST)
SICHARGE_D = ChargerProfile(
    name="sicharge-d",
    description="Siemens SICHARGE D: DC, two connectors with state of charge; Core + Local Auth List only",
    id_format="SICHARGE-D-{n:02d}",
    vendor="Siemens",
    model="SICHARGE D",
    firmware="3.1.0-sim",
    connectors=2,
    dc=True,
    phases=0,
    voltage=400.0,
    max_current=200.0,
    max_power=80_000.0,
    sends=_sent(CORE),
    receives=_received(*_SICHARGE_FEATURES),
    not_supported=CENTRAL_SYSTEM_CALLS - _received(*_SICHARGE_FEATURES),
    configuration=tuple(
        _core_keys(2, DC_MEASURANDS, _SICHARGE_FEATURES, "0.NotApplicable,1.NotApplicable,2.NotApplicable")
        + _local_list_keys()
    ),
    feature_profiles=_SICHARGE_FEATURES,
)

_GENERIC_FEATURES = (CORE, FIRMWARE, LOCAL_LIST, RESERVATION, SMART_CHARGING, REMOTE_TRIGGER)
GENERIC = ChargerProfile(
    name="generic",
    description="generic AC charger, two connectors, every OCPP 1.6 feature profile",
    id_format="SIM-{n:04d}",
    vendor="ocpp-gateway",
    model="Simulated AC 2x22kW",
    firmware="1.0.0-sim",
    connectors=2,
    dc=False,
    phases=3,
    voltage=230.0,
    max_current=32.0,
    max_power=22_080.0,
    sends=_sent(CORE, FIRMWARE),
    receives=CENTRAL_SYSTEM_CALLS,
    not_supported=frozenset(),
    configuration=tuple(
        _core_keys(2, AC_MEASURANDS, _GENERIC_FEATURES, "0.RST,1.RST,2.RST")
        + _smart_charging_keys("Current,Power")
        + _local_list_keys()
        + [ConfigKey("ReserveConnectorZeroSupported", "false", readonly=True)]
    ),
    feature_profiles=_GENERIC_FEATURES,
    vendor_ids=("ocpp-gateway",),
)

PROFILES: dict[str, ChargerProfile] = {p.name: p for p in (AMINA, AC_SMART, SICHARGE_D, GENERIC)}
