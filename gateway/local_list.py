"""The local authorization list (SendLocalList, GetLocalListVersion), built from the mapping's policy.

The list makes a charger working offline decide as the gateway answers online (`AuthorizationPolicy.local_list`):
it names every tag whose answer differs from what the charger decides for a tag the list leaves out. Each
distinct list content gets the next version number (kept in the database). A differential update
sends what changed since the list the charger last accepted; a charger whose `SendLocalListMaxLength` is shorter
than the list gets a full update followed by differential ones of the same version.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from gateway.authorization import IdTagInfo
from gateway.commands import CommandResult, CommandService
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

    def entries(self) -> Entries:
        """The list the mapping describes now."""
        local = self.central.authorization.local_list(utcnow())
        return {tag: _wire_info(info) for tag, info in local.items()}

    async def version(self) -> tuple[int, Entries]:
        """The version of the current list: the same content keeps its number, new content gets the next."""
        entries = self.entries()
        text = json.dumps(entries, sort_keys=True)
        digest = hashlib.sha256(text.encode()).hexdigest()
        number: int = await self.central.store.write(lambda c: _version(c, digest, text))
        return number, entries

    async def sent(self, charger_id: str) -> tuple[int, Entries] | None:
        """The list this charger last accepted, if any."""
        rows = await self.central.store.fetch_all(
            "SELECT version, entries FROM local_lists WHERE charger_id = ?", (charger_id,)
        )
        return (rows[0]["version"], json.loads(rows[0]["entries"])) if rows else None

    async def send(self, charger_id: str, update_type: str, *, source: str) -> CommandResult:
        """SendLocalList with the current list. A differential update for a charger the gateway never sent a
        list to, or one that answers VersionMismatch, becomes a full update."""
        version, entries = await self.version()
        previous = await self.sent(charger_id)
        if update_type == DIFFERENTIAL and previous is not None:
            changes = _difference(previous[1], entries)
            result = await self._send(charger_id, version, DIFFERENTIAL, changes, source)
            if result.status != "VersionMismatch":
                return await self._accepted(charger_id, result, version, entries)
        chunk = self._chunk_size(charger_id, len(entries))
        items = [{"idTag": tag, "idTagInfo": info} for tag, info in entries.items()]
        result = await self._send(charger_id, version, FULL, items[:chunk], source)
        for start in range(chunk, len(items), chunk):
            if not result.accepted:
                break
            more = await self._send(charger_id, version, DIFFERENTIAL, items[start : start + chunk], source)
            result = replace(more, request={**result.request, "parts": start // chunk + 1})
        return await self._accepted(charger_id, result, version, entries)

    def _chunk_size(self, charger_id: str, total: int) -> int:
        try:
            limit = int(self.configuration.value(charger_id, "SendLocalListMaxLength") or 0)
        except ValueError:
            limit = 0
        return limit if limit > 0 else max(total, 1)

    async def _send(
        self, charger_id: str, version: int, update_type: str, items: list[dict[str, Any]], source: str
    ) -> CommandResult:
        payload = {
            "list_version": version,
            "update_type": update_type,
            "local_authorization_list": [_snake(item) for item in items],
        }
        return await self.commands.send(charger_id, "SendLocalList", payload, source=source)

    async def _accepted(
        self, charger_id: str, result: CommandResult, version: int, entries: Entries
    ) -> CommandResult:
        if result.accepted:
            row = (charger_id, version, json.dumps(entries, sort_keys=True), iso(utcnow()))
            await self.central.store.write(
                lambda c: c.execute(
                    "INSERT OR REPLACE INTO local_lists (charger_id, version, entries, sent_at) VALUES (?, ?, ?, ?)",
                    row,
                )
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


def _version(c: sqlite3.Connection, digest: str, text: str) -> int:
    row = c.execute("SELECT version FROM local_list_versions WHERE digest = ?", (digest,)).fetchone()
    if row is not None:
        return int(row["version"])
    cursor = c.execute(
        "INSERT INTO local_list_versions (digest, entries, created_at) VALUES (?, ?, ?)",
        (digest, text, iso(utcnow())),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid
