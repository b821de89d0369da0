"""Modbus TCP framing: the MBAP header before each PDU (Modbus Messaging on TCP/IP Implementation Guide V1.0b
§3.1.3), cut from a byte stream however TCP delivers it: requests pipelined in one segment, one request over
several."""

from __future__ import annotations

import struct
from dataclasses import dataclass

MBAP = struct.Struct(">HHHB")  # transaction id, protocol id (0: Modbus), length of what follows, unit id
MAX_PDU = 253  # Modbus Application Protocol V1.1b3 §4.1


class FramingError(ValueError):
    """A header whose length cannot be right: the stream cannot be read past it."""


@dataclass(frozen=True)
class Frame:
    """One request: its transaction id (copied into the answer), unit and PDU."""

    transaction: int
    unit: int
    pdu: bytes


class FrameReader:
    """The requests of one connection, as they complete."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        """Every request that `data` completes, in order; the start of the next one is kept."""
        buffer = self._buffer
        buffer += data
        frames: list[Frame] = []
        start = 0
        while len(buffer) - start >= MBAP.size:
            transaction, protocol, length, unit = MBAP.unpack_from(buffer, start)
            if not 2 <= length <= MAX_PDU + 1:  # the unit and at least a function code, at most a whole PDU
                raise FramingError(f"MBAP length {length}")
            end = start + 6 + length
            if end > len(buffer):
                break
            if protocol == 0:  # another protocol's frame: not ours to answer
                frames.append(Frame(transaction, unit, bytes(buffer[start + MBAP.size : end])))
            start = end
        del buffer[:start]
        return frames


def encode(transaction: int, unit: int, pdu: bytes) -> bytes:
    """An answer: the request's transaction id and unit, then the PDU."""
    return MBAP.pack(transaction, 0, len(pdu) + 1, unit) + pdu
