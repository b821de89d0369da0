"""Simulated OCPP 1.6J chargers, for commissioning a site without a car: `ocpp-gateway simulate`.

`profiles` describes the chargers (pure data), `physics` their electrical behaviour and charging-profile stack
(pure, no sockets), `charger` one charger on a WebSocket (the `ocpp` package's ChargePoint), `fleet` runs
many of them with a live summary, and `options` is the command line's part.
"""
