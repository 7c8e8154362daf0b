"""RFC 6455 framing for the tests that stand between libmillis and a server, or play
the server themselves (test_wire.py, test_hostile_server.py): their own code, not the
library's, so that what they check is read independently of it."""

from __future__ import annotations

import asyncio
import struct


def ws_frame(opcode: int, payload: bytes) -> bytes:
    """An unmasked (server) frame, FIN set."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


def unmask(payload: bytes, mask: bytes) -> bytes:
    n = len(payload)
    if n == 0:
        return payload
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


async def read_frame(reader: asyncio.StreamReader):
    """(fin, opcode, masked, payload unmasked, the frame's raw bytes)."""
    head = await reader.readexactly(2)
    fin, opcode = bool(head[0] & 0x80), head[0] & 0x0F
    masked, n = bool(head[1] & 0x80), head[1] & 0x7F
    ext = b""
    if n == 126:
        ext = await reader.readexactly(2)
        n = struct.unpack("!H", ext)[0]
    elif n == 127:
        ext = await reader.readexactly(8)
        n = struct.unpack("!Q", ext)[0]
    mask = await reader.readexactly(4) if masked else b""
    body = await reader.readexactly(n)
    return fin, opcode, masked, (unmask(body, mask) if masked else body), head + ext + mask + body
