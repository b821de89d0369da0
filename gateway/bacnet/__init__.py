"""The gateway's BACnet/IP device: its points as BACnet objects (`server`), the bacpypes3 device and service
handlers (`device`), the object each point becomes (`objects`) and the EDE point-list export (`ede`)."""
