"""A hostile server (issue 12): raw sockets and framing of the test's own, no devserver.
Each case sends what a broken or malicious server could, and checks that libmillis
neither crashes, nor grows without bound, nor changes what it was told in silence."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import struct
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from millis_testkit import PUBLIC_KEY
from ws_frames import read_frame, ws_frame as frame

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MIB = 1024 * 1024


def text(obj) -> bytes:
    return frame(0x1, json.dumps(obj).encode())


class HostileServer:
    """One connection at a time, each handed to `script(reader, writer)` after the
    upgrade (`extra_response_headers` go into the 101)."""

    def __init__(self, script, extra_response_headers: str = ""):
        self.script = script
        self.extra = extra_response_headers
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.errors: list = []
        self.tasks: set = set()
        self.thread = threading.Thread(target=self._run, name="hostile-server", daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/millis"

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def main():
            self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = self.server.sockets[0].getsockname()[1]
            self.ready.set()
            async with self.server:
                await self.server.serve_forever()

        try:
            self.loop.run_until_complete(main())
        except (asyncio.CancelledError, RuntimeError):
            pass

    async def _handle(self, reader, writer):
        self.tasks.add(asyncio.current_task())
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            key = [line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key:")][0]
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
            writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
                          f"{self.extra}\r\n").encode())
            await writer.drain()
            await self.script(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:
            pass
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append(repr(e))
        finally:
            writer.close()
            self.tasks.discard(asyncio.current_task())

    def close(self):
        async def shutdown():
            for task in list(self.tasks):
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            self.server.close()

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(10)
        self.thread.join(5)


async def read_initiate(reader) -> dict:
    _, opcode, _, payload, _ = await read_frame(reader)
    assert opcode == 1, opcode
    message = json.loads(payload)
    assert message["method"] == "initiate", message
    return message


async def hold(reader, seconds: float = 30.0):
    """Reads and forgets what the client sends until it closes."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        _, opcode, _, _, _ = await read_frame(reader)
        if opcode == 8:
            return


@pytest.fixture
def hostile():
    servers = []

    def make(script, extra_response_headers: str = "") -> HostileServer:
        s = HostileServer(script, extra_response_headers)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def started(millis, recorder, server: HostileServer):
    """A client of `server` in application mode, started, with its recorder."""
    client = millis.Client(PUBLIC_KEY, server.url, audio_mode="application")
    rec = recorder(client)
    client.start(agent_id="a")
    return client, rec


def test_pongs_with_absurd_data_never_trap_a_getter(hostile, library_path, repo_root):
    """The pongs that made millis_client_stats_json trap (SIGILL): in a child process,
    so that a trap fails this test instead of killing the suite."""
    pongs = ["nan", "1e999", 1e308, "1700000000000000000", "-inf", -1e308, None, {"a": 1}, "12.5"]

    async def script(reader, writer):
        await read_initiate(reader)
        writer.write(text({"method": "onready", "payload": {"session_id": "S"}}))
        for data in pongs:
            writer.write(text({"method": "pong", "data": data}))
        writer.write(b"".join(frame(1, b'{"method":"pong","data":' + raw + b"}")
                              for raw in (b"1e999", b"-1e999", b"1e400")))
        writer.write(text({"method": "onsessionended"}) + frame(0x8, struct.pack("!H", 1000)))
        await writer.drain()
        await hold(reader, 10)

    server = hostile(script)
    child = textwrap.dedent(f"""
        import json, sys, time
        sys.path.insert(0, {str(repo_root / 'bindings' / 'python')!r})
        import millis
        c = millis.Client({PUBLIC_KEY!r}, {server.url!r}, audio_mode="application")
        closed = []
        c.on("onclose", lambda code, reason: closed.append(code))
        c.start(agent_id="a")
        deadline = time.monotonic() + 15
        while not closed and time.monotonic() < deadline:
            json.dumps(c.stats())
            c.session_id, c.agent_state, c.connection_state
            time.sleep(0.005)
        print(json.dumps(c.stats()))
        c.close()
    """)
    env = dict(os.environ, MILLIS_LIBRARY=str(library_path))
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, f"the client process died ({done.returncode}):\n{done.stderr[-3000:]}"
    stats = json.loads(done.stdout.strip().splitlines()[-1])
    assert stats["last_ping_rtt_ms"] is None, stats
    assert stats["pongs_ignored"] == len(pongs) + 3, stats
    assert not server.errors, server.errors


def test_a_ping_flood_from_a_server_that_reads_nothing_costs_bounded_memory(hostile, millis, recorder):
    """300 000 WebSocket pings while the server reads nothing: the pongs coalesce (RFC
    6455 §5.5.3), the send queue stays small, and the stats count the flood."""
    flood = 300_000
    sent = threading.Event()

    async def script(reader, writer):
        await read_initiate(reader)
        writer.write(text({"method": "onready", "payload": {"session_id": "S"}}))
        await writer.drain()
        writer.transport.pause_reading()  # and so the kernel's buffers fill
        payload = b"p" * 120
        batch = frame(0x9, payload) * 1000
        for _ in range(flood // 1000):
            writer.write(batch)
            await writer.drain()
        sent.set()
        await asyncio.sleep(30)

    server = hostile(script)
    client, rec = started(millis, recorder, server)
    try:
        rec.wait_for("onready", timeout=10)
        assert sent.wait(60), "the flood did not go out"
        deadline = time.monotonic() + 30
        while client.stats()["ws_pings_received"] < flood and time.monotonic() < deadline:
            time.sleep(0.05)
        stats = client.stats()
        assert stats["ws_pings_received"] == flood, stats
        # The first pongs fill the kernel's buffers; from then on one waits in the
        # send queue and the latest ping's waits behind it.
        assert stats["ws_pongs_coalesced"] >= flood - 2000, stats
        assert stats["send_queue_bytes"] <= 2 * 140, stats
        assert not rec.of("onerror"), rec.of("onerror")
    finally:
        client.close()


def test_a_subprotocol_the_client_never_offered_fails_the_handshake(hostile, millis, recorder):
    async def script(reader, writer):
        await hold(reader, 5)

    server = hostile(script, "Sec-WebSocket-Protocol: chat\r\n")
    client, rec = started(millis, recorder, server)
    try:
        (error,) = rec.wait_for("onerror", timeout=10)
        assert error.status == millis.Status.HANDSHAKE, error
        assert "subprotocol 'chat'" in str(error), error
        assert rec.wait_for("onclose", timeout=10)[0] == 1006
        assert not rec.of("onopen"), "the connection must fail before it opens"
    finally:
        client.close()


def test_fields_of_the_wrong_type_are_reported_not_emptied(hostile, millis, recorder):
    """No silent change: a transcript whose data is not a string is an error naming the
    method plus the raw message; is_final follows JavaScript truthiness; a numeric
    session id is kept as its JSON text."""
    bad = [
        {"method": "ontranscript", "data": 5, "payload": {"is_final": True}},
        {"method": "ontranscript", "data": {"t": "x"}},
        {"method": "onresponsetext", "data": None, "payload": {"is_final": True}},
        {"method": "onresponsetext", "data": ["a"]},
        {"method": "onfunction", "payload": {"name": 7}},
    ]
    good = [
        ({"method": "ontranscript", "data": "one", "payload": {"is_final": "true"}}, ("ontranscript", "one", True)),
        ({"method": "ontranscript", "data": "two", "payload": {"is_final": 1}}, ("ontranscript", "two", True)),
        ({"method": "ontranscript", "data": "three", "payload": {"is_final": 0}}, ("ontranscript", "three", False)),
        ({"method": "onresponsetext", "data": "four", "payload": {"is_final": "false"}},
         ("onresponsetext", "four", True)),
        ({"method": "onresponsetext", "data": "five", "payload": {"is_final": ""}},
         ("onresponsetext", "five", False)),
    ]

    async def script(reader, writer):
        await read_initiate(reader)
        writer.write(text({"method": "onready", "payload": {"session_id": 12345}}))
        for message in bad + [m for m, _ in good]:
            writer.write(text(message))
        writer.write(text({"method": "onsessionended"}) + frame(0x8, struct.pack("!H", 1000)))
        await writer.drain()
        await hold(reader, 10)

    server = hostile(script)
    client, rec = started(millis, recorder, server)
    try:
        rec.wait_for("onclose", timeout=15)
        assert rec.of("onready")[0][0] == "12345"
        assert client.session_id == "12345"
        errors = [args[0] for args in rec.of("onerror")]
        assert len(errors) == len(bad), [str(e) for e in errors]
        for error, message in zip(errors, bad):
            assert error.status == millis.Status.BAD_MESSAGE, error
            assert message["method"] in str(error), (error, message)
        raw = [args for args in rec.of("onmessage")]
        assert [m for m, _ in raw] == [m["method"] for m in bad], raw
        delivered = [(n, args[0], args[1]["is_final"]) for n, args, _ in rec.log
                     if n in ("ontranscript", "onresponsetext")]
        assert delivered == [expected for _, expected in good], delivered
    finally:
        client.close()
