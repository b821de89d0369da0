"""Which slot of a pattern entry each charger holds.

A pattern entry (`pattern: C1-*`, `slots: 20`) reserves blocks of BACnet instances and Modbus registers. The first
time a charger that falls under it is seen, it takes the lowest free slot; the choice is kept in SQLite, so its
objects and registers keep their numbers across restarts and reconnections. A charger listed by id is slot 0 of
its entry. When every slot is taken the charger gets no placed points (the BMS adapters give its points their
own numbers, where they can) and a warning says which entry is full.
"""

from __future__ import annotations

import logging

from gateway.mapping import Mapping
from gateway.store import Store, load_rows

LOG = logging.getLogger(__name__)


class ChargerSlots:
    """The slot assignments of pattern entries, loaded once and kept as chargers appear."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._by_pattern: dict[str, dict[int, str]] = {}  # pattern -> slot -> charger id
        self._full_warned: set[str] = set()

    async def load(self) -> None:
        rows = await self.store.fetch_all("SELECT pattern, slot, charger_id FROM charger_slots")
        load_rows("charger_slots", rows, self._load_row)

    def _load_row(self, row: dict[str, object]) -> None:
        slot, pattern, charger_id = row["slot"], row["pattern"], row["charger_id"]
        if (
            not isinstance(slot, int)
            or slot < 0
            or not isinstance(pattern, str)
            or not isinstance(charger_id, str)
        ):
            raise ValueError("not a slot of a pattern")
        self._by_pattern.setdefault(pattern, {})[slot] = charger_id

    def assigned(self, pattern: str) -> dict[int, str]:
        """The chargers holding slots of a pattern, by slot."""
        return dict(self._by_pattern.get(pattern, {}))

    def holder(self, pattern: str, slot: int) -> str | None:
        """The charger holding a slot of a pattern, if any."""
        return self._by_pattern.get(pattern, {}).get(slot)

    def slot_for(self, mapping: Mapping, charger_id: str) -> int | None:
        """The charger's slot in the entry it falls under (0 for an entry listed by id), taking a free one the
        first time; None if it falls under no entry or its pattern's slots are all taken."""
        entry = mapping.entry_for(charger_id)
        if entry is None:
            return None
        if entry.pattern is None:
            return 0
        held = self._by_pattern.setdefault(entry.pattern, {})
        for slot, holder in held.items():
            if holder == charger_id:
                return slot if slot < entry.slot_count else None
        free = next((slot for slot in range(entry.slot_count) if slot not in held), None)
        if free is None:
            if entry.pattern not in self._full_warned:
                self._full_warned.add(entry.pattern)
                LOG.warning(
                    "all %d slots of pattern %s are taken; %s and later chargers get no mapped points "
                    "(raise `slots` in the mapping, or free a slot with the API)",
                    entry.slot_count,
                    entry.pattern,
                    charger_id,
                )
            return None
        held[free] = charger_id
        self.store.execute_nowait(
            "INSERT OR REPLACE INTO charger_slots (pattern, slot, charger_id) VALUES (?, ?, ?)",
            (entry.pattern, free, charger_id),
        )
        LOG.info("charger %s takes slot %d of pattern %s", charger_id, free, entry.pattern)
        return free
