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


# Modes that accept a tag the lists do not name.
_OPEN_MODES = frozenset({AuthorizationMode.AUTHORIZE_ALL, AuthorizationMode.ALL_EXCEPT_BLACKLIST})


class AuthorizationPolicy:
    """Answers Authorize, StartTransaction and StopTransaction from the mapping's mode and lists.

    - authorize-none: every tag is Invalid.
    - authorize-all and all-except-blacklist: Blocked when blacklisted, otherwise Accepted.
    - none-except-whitelist: Blocked when blacklisted, Accepted when whitelisted (Expired once its expiry date has
      passed), otherwise Invalid.

    Wherever the blacklist applies, a whitelisted tag whose parent id tag is blacklisted is Blocked too.
    """

    def __init__(self, config: Authorization) -> None:
        self.mode = config.mode
        self._whitelist = {entry.key: entry for entry in config.whitelist}
        self._blacklist = {entry.key: entry for entry in config.blacklist}

    def authorize(self, id_tag: str, now: datetime) -> IdTagInfo:
        if self.mode is AuthorizationMode.AUTHORIZE_NONE:
            return IdTagInfo(AuthorizationStatus.INVALID)
        key = id_tag.casefold()
        entry = self._whitelist.get(key)
        if key in self._blacklist or (
            entry is not None
            and entry.parent_id_tag is not None
            and entry.parent_id_tag.casefold() in self._blacklist
        ):
            return IdTagInfo(AuthorizationStatus.BLOCKED)
        if self.mode in _OPEN_MODES:
            return IdTagInfo(AuthorizationStatus.ACCEPTED)
        if entry is None:
            return IdTagInfo(AuthorizationStatus.INVALID)
        return _listed(entry, now)

    @property
    def offline_default(self) -> AuthorizationStatus:
        """What a charger working from the local list must decide for a tag the list leaves out: Accepted in the
        modes that accept unknown tags (the charger's AllowOfflineTxForUnknownId true), Invalid in the others."""
        return AuthorizationStatus.ACCEPTED if self.mode in _OPEN_MODES else AuthorizationStatus.INVALID

    def local_list(self, now: datetime) -> dict[str, IdTagInfo]:
        """The local authorization list that makes a charger decide offline as `authorize` does online: every tag
        the lists name whose answer is not the `offline_default`, once (whitelist spelling first)."""
        entries: dict[str, IdTagInfo] = {}
        seen: set[str] = set()
        for entry in [*self._whitelist.values(), *self._blacklist.values()]:
            if entry.key in seen:
                continue
            seen.add(entry.key)
            info = self.authorize(entry.id_tag, now)
            if info.status is not self.offline_default:
                entries[entry.id_tag] = info
        return entries

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
