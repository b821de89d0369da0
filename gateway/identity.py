"""Charge point identities: the last path segment of the WebSocket URL a charger connects to."""

from __future__ import annotations

import re

MAX_IDENTITY_LENGTH = 48
# OCPP's identifierString character set (OCPP 2.0.1 part 2, also what 1.6J chargers use in practice).
_IDENTITY = re.compile(rf"[A-Za-z0-9*\-_=:+|@.]{{1,{MAX_IDENTITY_LENGTH}}}")


def is_valid_identity(identity: str) -> bool:
    """True when `identity` is a non-empty identifierString of at most 48 characters."""
    return _IDENTITY.fullmatch(identity) is not None


def identity_problem(identity: str) -> str | None:
    """Why `identity` cannot be a charge point id, or None when it can."""
    if not identity:
        return "the charge point id (last URL path segment) is empty"
    if len(identity) > MAX_IDENTITY_LENGTH:
        return f"the charge point id is longer than {MAX_IDENTITY_LENGTH} characters"
    if not is_valid_identity(identity):
        return "the charge point id may only contain a-z A-Z 0-9 and * - _ = : + | @ ."
    return None
