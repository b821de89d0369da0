"""Gateway settings: ports, paths, timeouts and TLS, read from `GATEWAY_*` environment variables.

Settings are what an installer sets per box; what the site looks like (chargers, authorization) lives in the
mapping file. No `.env` file is read: BAC0 loads one from the working directory at import, so a file of that
name must never be where our settings come from.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class RegistrationStatus(StrEnum):
    """The answer to a BootNotification (the same three values in OCPP 1.6 and 2.0.1)."""

    ACCEPTED = "Accepted"
    PENDING = "Pending"
    REJECTED = "Rejected"


class Settings(BaseSettings):
    """Everything an installer can set; each field is `GATEWAY_<NAME>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_file=None, extra="forbid")

    http_host: str = Field("0.0.0.0", description="Address the HTTP/WebSocket server listens on.")
    http_port: int = Field(8887, ge=0, le=65535, description="Port for OCPP WebSockets, the API and /docs.")
    mapping: Path = Field(Path("mappings/example.yaml"), description="Mapping file (YAML).")
    database: Path = Field(Path("data/gateway.sqlite3"), description="SQLite database file.")
    response_timeout: float = Field(10.0, gt=0, description="Seconds to wait for a charger's answer.")
    guest_response: RegistrationStatus = Field(
        RegistrationStatus.PENDING, description="BootNotification answer for chargers not in the mapping."
    )
    guest_retry_interval: int = Field(
        120, ge=1, description="Seconds a charger that was not Accepted waits before it boots again."
    )
    heartbeat_interval: int = Field(
        300, ge=1, description="Heartbeat interval handed to Accepted chargers (s)."
    )
    offline_after_heartbeats: float = Field(
        3.0, gt=1, description="A charger silent for this many heartbeat intervals is offline."
    )
    socket_closed_offline: bool = Field(
        True, description="A closed WebSocket makes its charger offline at once."
    )
    read_configuration: bool = Field(
        True, description="Read each charger's configuration (GetConfiguration) once it is Accepted."
    )
    tls_certfile: Path | None = Field(
        None, description="PEM certificate; with tls_keyfile the server speaks wss."
    )
    tls_keyfile: Path | None = Field(None, description="PEM private key for tls_certfile.")
    max_connectors: int = Field(
        10,
        ge=1,
        le=1000,
        description="Highest connector id accepted from a charger that has not reported NumberOfConnectors.",
    )
    timestamp_max_age_days: int = Field(
        365,
        ge=1,
        description="A charger's timestamp older than this many days is refused (PropertyConstraintViolation).",
    )
    timestamp_max_ahead: int = Field(
        86400,
        ge=0,
        description="A charger's timestamp more than this many seconds ahead of the gateway's clock is refused.",
    )
    max_message_bytes: int = Field(
        65536, ge=1024, description="Largest OCPP message accepted; a larger one gets a CALLERROR."
    )
    message_log_retention_days: int = Field(90, ge=1, description="Days the message log is kept.")
    meter_retention_days: int = Field(90, ge=1, description="Days sampled meter values are kept.")
    bacnet_enabled: bool = Field(True, description="Serve the points as a BACnet/IP device.")
    bacnet_address: str = Field(
        "host",
        description="BACnet/IP address: 'ip/prefix' (192.168.1.20/24), an interface name (eth0), or 'host' for "
        "the interface of the default route.",
    )
    bacnet_port: int = Field(47808, ge=1, le=65535, description="BACnet/IP UDP port (47808 is 0xBAC0).")
    bacnet_device_id: int = Field(
        47808, ge=0, le=4194302, description="Device instance; it must be unique on the BACnet internetwork."
    )
    bacnet_device_name: str = Field("OCPP gateway", min_length=1, description="Device object name.")
    bacnet_description: str = Field("EV chargers (OCPP) as BACnet objects", description="Device description.")
    bacnet_location: str = Field("", description="Device location, e.g. 'Plant room B2'.")
    bacnet_vendor_id: int = Field(
        999, ge=0, le=65535, description="Vendor identifier (999: none assigned by ASHRAE)."
    )
    bacnet_vendor_name: str = Field("ocpp-gateway", description="Vendor name.")
    bacnet_model_name: str = Field("ocpp-gateway", description="Model name.")
    bacnet_unmapped_points: Literal["listed", "all", "none"] = Field(
        "listed",
        description="Which points the mapping does not place get objects of their own, named by point id: those of "
        "chargers the mapping lists (by id or pattern; a meter series the template leaves out, every point of an "
        "entry without a template), 'all' (guest chargers too), or 'none'. Configuration keys only where mapped.",
    )
    bacnet_unmapped_base_instance: int = Field(
        1000000, ge=0, le=4194302, description="First instance for the objects of unmapped points."
    )
    modbus_enabled: bool = Field(True, description="Serve the points over Modbus TCP.")
    modbus_host: str = Field("0.0.0.0", description="Address the Modbus TCP server listens on.")
    modbus_port: int = Field(
        5020, ge=0, le=65535, description="Modbus TCP port (502 is the standard one; it needs privileges)."
    )
    modbus_read_gaps: bool = Field(
        False,
        description="A read that spans addresses the map does not use reads them as 0 (default: exception 2), for "
        "clients that poll one long block.",
    )
    modbus_max_connections: int = Field(
        32,
        ge=1,
        description="Modbus TCP connections open at once; one more is closed as it comes (a warning is logged).",
    )
    modbus_idle_timeout: float = Field(
        60.0,
        ge=0,
        description="Seconds a Modbus TCP connection may go without a request before it is closed (0: never).",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Log level: debug (every OCPP frame too), info, warning or error."
    )

    @field_validator("tls_certfile", "tls_keyfile", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # GATEWAY_TLS_CERTFILE= (empty, as env files write it) means no TLS, not the path "."
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _tls_pair(self) -> Self:
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError("set both GATEWAY_TLS_CERTFILE and GATEWAY_TLS_KEYFILE, or neither")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_certfile is not None

    @property
    def offline_after_seconds(self) -> float:
        return self.heartbeat_interval * self.offline_after_heartbeats
