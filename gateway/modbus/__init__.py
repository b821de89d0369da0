"""Modbus TCP: the mapping's register map served from the point database (`server`), its encoding
(`registers`) and its export as a register list."""
