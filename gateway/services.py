"""The gateway's services wired together: the point database, the central system, the charger connections, and
the command service with what sends through it (configuration, smart charging, local lists)."""

from __future__ import annotations

from gateway.bacnet.server import BacnetServer
from gateway.central import CentralSystem
from gateway.commands import CommandResult, CommandService
from gateway.configuration import Configuration
from gateway.connections import Connections
from gateway.local_list import LocalLists
from gateway.mapping import Mapping
from gateway.modbus.server import ModbusServer
from gateway.settings import Settings
from gateway.slots import ChargerSlots
from gateway.smart_charging import SmartChargingService
from gateway.store import Store
from gateway.writes import BmsWrites
from points import PointDatabase


class Services:
    """Everything one running gateway holds; `start()` loads the saved state, `stop()` ends the follow-ups."""

    def __init__(self, settings: Settings, store: Store, mapping: Mapping) -> None:
        self.settings = settings
        self.points = PointDatabase()
        self.central = CentralSystem(settings, store, mapping, self.points)
        self.connections = Connections(self.central)
        self.commands = CommandService(self.central, self.connections)
        self.configuration = Configuration(self.central, self.commands)
        self.central.connector_count = self.configuration.number_of_connectors
        self.smart_charging = SmartChargingService(self.central, self.commands, self.configuration)
        self.local_lists = LocalLists(self.central, self.commands, self.configuration)
        # BMS and API writes to these points come back here and leave as commands.
        self.central.points.writers.update(
            limit=self.smart_charging.write_limit,
            smart_charging=self.smart_charging.write_enabled,
            config=self.configuration.write_point,
        )
        self.central.after_boot.append(self._booted)
        self.central.after_resume.append(self._resumed)
        self.central.after_transaction_start.append(self._transaction_started)
        self.commands.listeners.append(self._show_command)
        self.slots = ChargerSlots(store)
        self.writes = BmsWrites(self.points, self.central.points)
        self.bacnet = (
            BacnetServer(settings, self.points, store, self.slots, mapping, self.writes)
            if settings.bacnet_enabled
            else None
        )
        self.modbus = (
            ModbusServer(settings, self.points, self.slots, mapping, self.writes)
            if settings.modbus_enabled
            else None
        )
        self.central.mapping_listeners.append(self._mapping_changed)

    async def load(self) -> None:
        """Load the saved state (chargers, configuration, smart-charging settings, slots) into the points."""
        await self.central.load()
        await self.configuration.load()
        await self.smart_charging.load()
        await self.slots.load()

    async def start(self) -> None:
        await self.load()
        if self.bacnet is not None:
            await self.bacnet.start()
        if self.modbus is not None:
            await self.modbus.start()

    async def stop(self) -> None:
        await self.connections.close_all()
        await self.commands.close()
        if self.modbus is not None:
            await self.modbus.stop()
        if self.bacnet is not None:
            await self.bacnet.stop()
        await self.writes.close()

    def _mapping_changed(self, mapping: Mapping) -> None:
        if self.bacnet is not None:
            self.bacnet.use_mapping(mapping)
        if self.modbus is not None:
            self.modbus.use_mapping(mapping)
        # A charger's local list must follow the new lists and mode, or it keeps accepting a tag now refused.
        self.commands.spawn(self.local_lists.refresh_all(source="gateway"), name="local-lists-after-reload")

    def _booted(self, charger_id: str) -> None:
        self.commands.spawn(self._follow_boot(charger_id), name=f"after-boot-{charger_id}")

    async def _follow_boot(self, charger_id: str) -> None:
        if self.settings.read_configuration:
            await self.configuration.read(charger_id, source="gateway")
        await self.smart_charging.after_boot(charger_id)
        await self.local_lists.refresh(charger_id, source="gateway")

    def _resumed(self, charger_id: str) -> None:
        self.commands.spawn(self.smart_charging.resume(charger_id), name=f"resume-{charger_id}")

    def _transaction_started(self, charger_id: str, connector_id: int) -> None:
        work = self.smart_charging.transaction_started(charger_id, connector_id)
        self.commands.spawn(work, name=f"tx-profile-{charger_id}")

    def _show_command(self, result: CommandResult) -> None:
        points = self.central.points
        points.set(result.charger_id, "last_command", result.summary(), result.finished_at, origin="gateway")
        points.set(
            result.charger_id,
            "last_command_status",
            result.outcome.value,
            result.finished_at,
            origin="gateway",
        )
