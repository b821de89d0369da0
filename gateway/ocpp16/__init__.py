"""OCPP 1.6J message handling."""
