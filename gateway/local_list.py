"""The local authorization list (SendLocalList, GetLocalListVersion), built from the mapping's policy.

The list makes a charger working offline decide as the gateway answers online (`AuthorizationPolicy.local_list`):
it names every tag whose answer differs from what the charger decides for a tag the list leaves out. Versions
come from the database and only grow: content that differs from the newest version's gets a new number, even
content sent before. A differential update sends what changed since the list the charger last accepted, and
nothing at all when nothing changed. A list (or a change) longer than the charger's `SendLocalListMaxLength`
goes in parts, each with a version of its own greater than the one before, the last one being the list's: a
charger takes a differential update only with a version greater than its own (OCPP 1.6 §5.15).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from gateway.authorization import IdTagInfo
from gateway.commands import CommandResult, CommandService, Outcome
from gateway.state import iso, utcnow

if TYPE_CHECKING:
    from gateway.central import CentralSystem
    from gateway.configuration import Configuration

FULL = "Full"
DIFFERENTIAL = "Differential"
Entries = dict[str, dict[str, Any]]  # id tag -> idTagInfo (wire form)


class LocalLists:
    """Builds, versions and sends local authorization lists."""

    def __init__(
        self, central: CentralSystem, commands: CommandService, configuration: Configuration
    ) -> None:
        self.central = central
        self.commands = commands
        self.configuration = configuration
        self._locks: dict[str, asyncio.Lock] = {}

    def entries(self) -> Entries:
        """The list the mapping describes now."""
        local = self.central.authorization.local_list(utcnow())
        return {tag: _wire_info(info) for tag, info in local.items()}

    async def version(self) -> tuple[int, Entries]:
        """The version of the current list: the newest version when it has this content, else a new one."""
        entries = self.entries()
        number: int = await self.central.store.write(lambda c: _allocate(c, entries, 1))
        return number, entries

    async def sent(self, charger_id: str) -> tuple[int, Entries] | None:
        """The list this charger last accepted, if any."""
        rows = await self.central.store.fetch_all(
            "SELECT version, entries FROM local_lists WHERE charger_id = ?", (charger_id,)
        )
        return (rows[0]["version"], json.loads(rows[0]["entries"])) if rows else None

    async def send(self, charger_id: str, update_type: str, *, source: str) -> CommandResult:
        """SendLocalList with the current list. A differential update for a charger the gateway never sent a
        list to, or one that answers VersionMismatch, becomes a full update; one with nothing to change is
        answered `accepted` with the detail `unchanged`, and no call goes out."""
        lock = self._locks.setdefault(charger_id, asyncio.Lock())
        async with lock:
            entries = self.entries()
            previous = await self.sent(charger_id)
            if update_type == DIFFERENTIAL and previous is not None:
                changes = _difference(previous[1], entries)
                if not changes:
                    return self._unchanged(charger_id, previous[0], source)
                result = await self._send_parts(charger_id, DIFFERENTIAL, changes, entries, source)
                if result.status != "VersionMismatch":
                    return result
            items = [{"idTag": tag, "idTagInfo": info} for tag, info in entries.items()]
            return await self._send_parts(charger_id, FULL, items, entries, source)

    async def refresh(self, charger_id: str, *, source: str) -> CommandResult | None:
        """Bring a charger that holds a list from the gateway up to date (a differential update); None when it
        holds none or is not connected."""
        if self.commands.connections.get(charger_id) is None or await self.sent(charger_id) is None:
            return None
        return await self.send(charger_id, DIFFERENTIAL, source=source)

    async def refresh_all(self, *, source: str) -> None:
        """`refresh` every connected charger (after a mapping reload changed the lists or the mode), all at once."""
        chargers = list(self.commands.connections.sessions)
        await asyncio.gather(*(self.refresh(charger_id, source=source) for charger_id in chargers))

    async def _send_parts(
        self, charger_id: str, first_type: str, items: list[dict[str, Any]], entries: Entries, source: str
    ) -> CommandResult:
        size = self._max_length(charger_id) or max(len(items), 1)
        parts = [items[start : start + size] for start in range(0, len(items), size)] or [[]]
        last: int = await self.central.store.write(lambda c: _allocate(c, entries, len(parts)))
        first = last - len(parts) + 1
        for number, part in enumerate(parts):
            update_type = first_type if number == 0 else DIFFERENTIAL
            result = await self._send(charger_id, first + number, update_type, part, source)
            if len(parts) > 1:
                result = replace(result, request={**result.request, "part": f"{number + 1}/{len(parts)}"})
            if not result.accepted:
                if number > 0:
                    # The charger holds part of the list under a version the gateway never recorded: the next
                    # update must be a full one.
                    await self.central.store.write(
                        lambda c: c.execute("DELETE FROM local_lists WHERE charger_id = ?", (charger_id,))
                    )
                return result
        row = (charger_id, last, json.dumps(entries, sort_keys=True), iso(utcnow()))
        await self.central.store.write(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO local_lists (charger_id, version, entries, sent_at) VALUES (?, ?, ?, ?)",
                row,
            )
        )
        return result

    def _max_length(self, charger_id: str) -> int | None:
        try:
            limit = int(self.configuration.value(charger_id, "SendLocalListMaxLength") or 0)
        except ValueError:
            return None
        return limit if limit > 0 else None

    async def _send(
        self, charger_id: str, version: int, update_type: str, items: list[dict[str, Any]], source: str
    ) -> CommandResult:
        payload = {
            "list_version": version,
            "update_type": update_type,
            "local_authorization_list": [_snake(item) for item in items],
        }
        return await self.commands.send(charger_id, "SendLocalList", payload, source=source)

    def _unchanged(self, charger_id: str, version: int, source: str) -> CommandResult:
        # Nothing went out: the message log says so, and the command history (calls sent) has no row for it.
        now = utcnow()
        detail = f"unchanged: the charger holds this list (version {version}); nothing sent"
        request = {"listVersion": version, "updateType": DIFFERENTIAL}
        result = CommandResult(
            charger_id, "SendLocalList", request, source, Outcome.ACCEPTED, None, None, detail, now, now
        )
        self.central.log(
            charger_id, "Command", f"SendLocalList(updateType=Differential): {detail} [{source}]"
        )
        return result


def _wire_info(info: IdTagInfo) -> dict[str, Any]:
    wire: dict[str, Any] = {"status": info.status.value}
    if info.expiry_date is not None:
        wire["expiryDate"] = iso(info.expiry_date)
    if info.parent_id_tag is not None:
        wire["parentIdTag"] = info.parent_id_tag
    return wire


def _difference(old: Entries, new: Entries) -> list[dict[str, Any]]:
    """Entries added or changed (with their idTagInfo) and removed (without one), as 1.6 describes."""
    changed = [{"idTag": tag, "idTagInfo": info} for tag, info in new.items() if old.get(tag) != info]
    removed = [{"idTag": tag} for tag in old if tag not in new]
    return changed + removed


def _snake(item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"id_tag": item["idTag"]}
    if "idTagInfo" in item:
        info = item["idTagInfo"]
        out["id_tag_info"] = {
            "status": info["status"],
            **({"expiry_date": info["expiryDate"]} if "expiryDate" in info else {}),
            **({"parent_id_tag": info["parentIdTag"]} if "parentIdTag" in info else {}),
        }
    return out


def _allocate(c: sqlite3.Connection, entries: Entries, parts: int) -> int:
    """The version of `entries`, with `parts - 1` unused versions just below it for the parts before the last.
    The newest version is kept for the same content sent in one part; anything else gets new numbers above every
    version ever given, so versions only grow."""
    text = json.dumps(entries, sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()
    newest = c.execute(
        "SELECT version, digest FROM local_list_versions ORDER BY version DESC LIMIT 1"
    ).fetchone()
    if parts == 1 and newest is not None and newest["digest"] == digest:
        return int(newest["version"])
    sequence = c.execute("SELECT seq FROM sqlite_sequence WHERE name = 'local_list_versions'").fetchone()
    top = max(int(sequence["seq"]) if sequence else 0, int(newest["version"]) if newest else 0)
    c.execute("DELETE FROM local_list_versions WHERE digest = ?", (digest,))
    version = top + parts
    c.execute(
        "INSERT INTO local_list_versions (version, digest, entries, created_at) VALUES (?, ?, ?, ?)",
        (version, digest, text, iso(utcnow())),
    )
    return version
