"""The protocol-neutral point model: values, their types, units and quality, and change notification.

It imports nothing of OCPP, BACnet or Modbus. (Filled by the point-database issue.)
"""
