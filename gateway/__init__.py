"""OCPP-to-BACnet/Modbus edge gateway: the central system for a building's EV chargers."""

__version__ = "0.1.0"
