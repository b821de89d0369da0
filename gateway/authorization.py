"""The authorization policy: which id tags may charge (seed 003 §5.4). Pure logic, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from gateway.mapping import Authorization, AuthorizationMode, IdTagEntry


class AuthorizationStatus(StrEnum):
    """idTagInfo.status values (OCPP 1.6; 2.0.1 has the same ones and more)."""

    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    CONCURRENT_TX = "ConcurrentTx"


@dataclass(frozen=True)
class IdTagInfo:
    """The answer for one id tag."""

    status: AuthorizationStatus
    expiry_date: datetime | None = None
    parent_id_tag: str | None = None


class AuthorizationPolicy:
    """Answers Authorize and StartTransaction from the mapping's mode and lists.

    - authorize-all: every tag is Accepted.
    - authorize-none: every tag is Invalid.
    - all-except-blacklist: Blocked when blacklisted, otherwise Accepted.
    - none-except-whitelist: Accepted when whitelisted (Expired once its expiry date has passed), otherwise Invalid.
    """

    def __init__(self, config: Authorization) -> None:
        self.mode = config.mode
        self._whitelist = {entry.key: entry for entry in config.whitelist}
        self._blacklist = {entry.key: entry for entry in config.blacklist}

    def authorize(self, id_tag: str, now: datetime) -> IdTagInfo:
        key = id_tag.casefold()
        match self.mode:
            case AuthorizationMode.AUTHORIZE_ALL:
                return IdTagInfo(AuthorizationStatus.ACCEPTED)
            case AuthorizationMode.AUTHORIZE_NONE:
                return IdTagInfo(AuthorizationStatus.INVALID)
            case AuthorizationMode.ALL_EXCEPT_BLACKLIST:
                if key in self._blacklist:
                    return IdTagInfo(AuthorizationStatus.BLOCKED)
                return IdTagInfo(AuthorizationStatus.ACCEPTED)
            case AuthorizationMode.NONE_EXCEPT_WHITELIST:
                entry = self._whitelist.get(key)
                if entry is None:
                    return IdTagInfo(AuthorizationStatus.INVALID)
                return _listed(entry, now)

    @property
    def whitelist(self) -> list[IdTagEntry]:
        return list(self._whitelist.values())


def _listed(entry: IdTagEntry, now: datetime) -> IdTagInfo:
    expiry = entry.expiry_date
    if expiry is not None and expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=now.tzinfo)
    if expiry is not None and expiry <= now:
        return IdTagInfo(AuthorizationStatus.EXPIRED, expiry, entry.parent_id_tag)
    return IdTagInfo(AuthorizationStatus.ACCEPTED, expiry, entry.parent_id_tag)
