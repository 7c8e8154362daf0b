"""The bytes on the wire between libmillis and a Millis server, as the official web
client puts them there.

A proxy of this test's own (WireProxy: TCP on 127.0.0.1, asyncio on a thread of its
own) stands between the client (the Python binding) and the devserver. It forwards
both directions and parses what passes itself: the HTTP upgrade request, then RFC 6455
frames (the client's are masked, and must be), reassembling fragmented messages. It
does not rely on the devserver's records. On request it holds the upgrade response or
the server's onready back, rewrites onready's payload, or cuts the TCP connection after
onready, to put the client where a server can put it.

What is checked:
  - the upgrade request: request line, Host, Upgrade, Connection, Sec-WebSocket-Key and
    -Version, User-Agent libmillis/x.y.z; extra headers after ours, in order; an added
    User-Agent replacing ours;
  - `initiate`: exact JSON, key order included, for agent_id, agent_config, both,
    metadata, include_metadata_in_prompt, session_continuation; public_key last;
  - `ping`: {"method": "ping", "data": "<integer epoch ms>"} after exactly every
    256 000 bytes (8 s) of microphone audio at frame_ms 10, 20 and 40;
  - audio handed in after onopen and before onready reaches the wire before onready;
    audio handed in before the socket is open is refused and never sent;
  - session_continuation on a reconnection after a cut carries the first onready's
    session id as the same JSON value (a string, and a number).
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional
from urllib.parse import urlsplit

import pytest

from millis_testkit import PUBLIC_KEY, Recorder
from ws_frames import read_frame, ws_frame

OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
KINDS = {OP_TEXT: "text", OP_BINARY: "binary", OP_CLOSE: "close", OP_PING: "ping", OP_PONG: "pong"}
PING_AUDIO_BYTES = 256_000  # 8 s of PCM16 at 16 kHz mono: the web client's 1000 chunks of 128 samples
OWN_HEADERS = ["Host", "Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version"]


def pairs(text: Any) -> Any:
    """JSON with every object as a list of (key, value) pairs, so that key order counts."""
    return json.loads(text, object_pairs_hook=list)


def keys(obj: list) -> list:
    return [k for k, _ in obj]


def member(obj: list, key: str) -> Any:
    found = [v for k, v in obj if k == key]
    assert len(found) == 1, f"{key!r} appears {len(found)} times in {obj!r}"
    return found[0]


# ---------------------------------------------------------------------------------
# The proxy
# ---------------------------------------------------------------------------------


@dataclass
class Message:
    """One message as the proxy saw it: a whole (reassembled) text or binary message, a
    control frame, or the proxy's own note "onready-forwarded" (written to the client)."""

    seq: int
    direction: str  # "c2s" or "s2c"
    kind: str  # "text", "binary", "close", "ping", "pong", "onready-forwarded"
    data: Any  # str for text, bytes otherwise
    t: float  # time.time() when the proxy read it (or forwarded it, for the note)


@dataclass
class Connection:
    number: int  # from 1, in the order the proxy accepted them
    request_line: str = ""
    headers: List[tuple] = field(default_factory=list)  # (name, value) as on the wire
    response_status: Optional[int] = None
    messages: List[Message] = field(default_factory=list)
    unmasked_client_frames: int = 0
    cut: bool = False
    transports: list = field(default_factory=list)

    def header(self, name: str) -> List[str]:
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def c2s(self, kind: Optional[str] = None) -> List[Message]:
        return [m for m in self.messages if m.direction == "c2s" and (kind is None or m.kind == kind)]

    def texts(self) -> List[Message]:
        return self.c2s("text")

    def initiate(self) -> Message:
        texts = self.texts()
        assert texts, f"connection {self.number}: the client sent no text message"
        return texts[0]

    def audio_bytes(self) -> int:
        return sum(len(m.data) for m in self.c2s("binary"))

    def onready_payload(self) -> Any:
        """The payload of the onready the client was given (as forwarded)."""
        for m in self.messages:
            if m.kind == "onready-forwarded":
                return pairs(m.data)
        raise AssertionError(f"connection {self.number}: no onready was forwarded")

    def onready_seq(self) -> int:
        for m in self.messages:
            if m.kind == "onready-forwarded":
                return m.seq
        raise AssertionError(f"connection {self.number}: no onready was forwarded")


class WireProxy:
    """A WebSocket-aware TCP proxy from 127.0.0.1:<port> to the upstream ws:// URL.

    hold_upgrade: seconds to hold the server's 101 response back (the client stays
        "connecting").
    hold_onready: seconds to hold the server's onready back.
    onready_payload: on connection 1, onready's payload is replaced by this value.
    cut_after_onready: on connection 1, seconds after onready was forwarded when both
        TCP connections are aborted (no close frame).
    """

    def __init__(self, upstream_url: str, *, hold_upgrade: float = 0.0, hold_onready: float = 0.0,
                 onready_payload: Any = None, cut_after_onready: Optional[float] = None):
        parts = urlsplit(upstream_url)
        self.upstream = (parts.hostname, parts.port)
        self.path = parts.path or "/"
        self.hold_upgrade = hold_upgrade
        self.hold_onready = hold_onready
        self.onready_payload = onready_payload
        self.cut_after_onready = cut_after_onready
        self.conns: List[Connection] = []
        self.cv = threading.Condition()
        self._seq = 0
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wire-proxy", daemon=True)
        self._thread.start()
        assert self._started.wait(10), "the proxy did not start"
        self.url = f"ws://127.0.0.1:{self.port}{self.path}"

    # -- the proxy's thread ---------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0, limit=1 << 20))
        self.port = self._server.sockets[0].getsockname()[1]
        self._started.set()
        self._loop.run_forever()

    def _note(self, conn: Connection, direction: str, kind: str, data: Any) -> None:
        with self.cv:
            self._seq += 1
            conn.messages.append(Message(self._seq, direction, kind, data, time.time()))
            self.cv.notify_all()

    async def _handle(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        with self.cv:
            conn = Connection(len(self.conns) + 1)
            self.conns.append(conn)
            self.cv.notify_all()
        conn.transports.append(cwriter.transport)
        try:
            ureader, uwriter = await asyncio.open_connection(*self.upstream, limit=1 << 20)
        except OSError:
            cwriter.close()
            return
        conn.transports.append(uwriter.transport)
        try:
            head = await creader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")[:-2]
            with self.cv:
                conn.request_line = lines[0]
                for line in lines[1:]:
                    name, _, rest = line.partition(":")
                    # One space after the colon is the separator; anything else is the value's.
                    conn.headers.append((name, rest[1:] if rest.startswith(" ") else rest))
                self.cv.notify_all()
            uwriter.write(head)
            await uwriter.drain()
            response = await ureader.readuntil(b"\r\n\r\n")
            conn.response_status = int(response.split(b" ", 2)[1])
            if self.hold_upgrade:
                await asyncio.sleep(self.hold_upgrade)
            cwriter.write(response)
            await cwriter.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            cwriter.close()
            uwriter.close()
            return
        await asyncio.gather(self._client_to_server(conn, creader, uwriter),
                             self._server_to_client(conn, ureader, cwriter),
                             return_exceptions=True)

    def _assemble(self, conn: Connection, direction: str, state: dict, fin: bool, opcode: int,
                  payload: bytes) -> None:
        if opcode >= 8:  # control frames are never fragmented
            self._note(conn, direction, KINDS.get(opcode, f"op{opcode}"), payload)
            return
        if opcode != OP_CONTINUATION:
            state["op"], state["buf"] = opcode, bytearray(payload)
        else:
            state["buf"] += payload
        if fin:
            data = bytes(state["buf"])
            kind = KINDS.get(state["op"], f"op{state['op']}")
            self._note(conn, direction, kind, data.decode("utf-8", "replace") if kind == "text" else data)

    async def _client_to_server(self, conn, reader, writer) -> None:
        state: dict = {}
        try:
            while True:
                fin, opcode, masked, payload, raw = await read_frame(reader)
                if not masked:
                    conn.unmasked_client_frames += 1
                self._assemble(conn, "c2s", state, fin, opcode, payload)
                writer.write(raw)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _server_to_client(self, conn, reader, writer) -> None:
        state: dict = {}
        try:
            while True:
                fin, opcode, _, payload, raw = await read_frame(reader)
                onready = False
                if opcode == OP_TEXT and fin:
                    try:
                        message = json.loads(payload)
                    except ValueError:
                        message = None
                    if isinstance(message, dict) and message.get("method") == "onready":
                        onready = True
                        if self.onready_payload is not None and conn.number == 1:
                            message["payload"] = self.onready_payload
                            payload = json.dumps(message, separators=(",", ":")).encode()
                            raw = ws_frame(OP_TEXT, payload)
                        if self.hold_onready:
                            await asyncio.sleep(self.hold_onready)
                self._assemble(conn, "s2c", state, fin, opcode, payload)
                writer.write(raw)
                await writer.drain()
                if onready:
                    self._note(conn, "s2c", "onready-forwarded", payload.decode())
                    if self.cut_after_onready is not None and conn.number == 1:
                        asyncio.get_running_loop().call_later(self.cut_after_onready, self._cut, conn)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def _cut(self, conn: Connection) -> None:
        conn.cut = True
        for transport in conn.transports:
            transport.abort()

    # -- the test's side --------------------------------------------------------------

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                result = predicate()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"proxy: {what or predicate} not seen within {timeout} s; "
                                         f"{self.summary()}")
                self.cv.wait(min(remaining, 0.2))

    def connection(self, number: int, timeout: float = 15.0) -> Connection:
        """Connection `number` (from 1) once its upgrade request was read."""
        self.wait_for(lambda: len(self.conns) >= number and self.conns[number - 1].request_line,
                      timeout, f"connection {number}")
        return self.conns[number - 1]

    def summary(self) -> str:
        out = []
        for conn in self.conns:
            counts: dict = {}
            for m in conn.messages:
                counts[f"{m.direction} {m.kind}"] = counts.get(f"{m.direction} {m.kind}", 0) + 1
            texts = [m.data[:200] for m in conn.messages if m.kind == "text"][:8]
            out.append(f"connection {conn.number}: {conn.request_line!r} status {conn.response_status} "
                       f"cut={conn.cut} {counts} texts {texts}")
        return "; ".join(out) or "no connection"

    def close(self) -> None:
        async def shutdown():
            self._server.close()
            for conn in self.conns:
                for transport in conn.transports:
                    transport.abort()
            await asyncio.sleep(0.1)  # the pumps see their ends and finish

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._loop.is_running():
            self._loop.close()


@pytest.fixture
def make_proxy(devserver):
    proxies: List[WireProxy] = []

    def make(**options) -> WireProxy:
        proxy = WireProxy(devserver.url, **options)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()


@pytest.fixture(scope="module")
def proxy(devserver):
    """A plain proxy (nothing held, nothing rewritten), shared by the module's tests."""
    p = WireProxy(devserver.url)
    yield p
    p.close()


def converse(millis, url: str, start: Callable[[Any], None], **client_options):
    """A client through `url`: start, onready, stop, onclose. Returns the Recorder."""
    with millis.Client(PUBLIC_KEY, url, audio_mode="application", **client_options) as client:
        rec = Recorder(client)
        start(client)
        rec.wait_for("onready")
        client.stop()
        rec.wait_for("onclose")
        assert rec.of("onerror") == [], rec.of("onerror")
        return rec


def next_connection(proxy: WireProxy) -> int:
    with proxy.cv:
        return len(proxy.conns) + 1


# ---------------------------------------------------------------------------------
# The upgrade request
# ---------------------------------------------------------------------------------


def check_own_headers(conn: Connection, proxy: WireProxy) -> None:
    assert conn.request_line == "GET /millis HTTP/1.1", conn.request_line
    names = [n for n, _ in conn.headers]
    assert names[:5] == OWN_HEADERS, conn.headers
    assert conn.header("Host") == [f"127.0.0.1:{proxy.port}"]
    assert conn.header("Upgrade") == ["websocket"]
    assert conn.header("Connection") == ["Upgrade"]
    assert conn.header("Sec-WebSocket-Version") == ["13"]
    (key,) = conn.header("Sec-WebSocket-Key")
    assert len(base64.b64decode(key, validate=True)) == 16, key
    assert conn.response_status == 101


def test_upgrade_request_default(millis, proxy):
    n = next_connection(proxy)
    converse(millis, proxy.url, lambda c: c.start(agent_id="quick-agent"))
    converse(millis, proxy.url, lambda c: c.start(agent_id="quick-agent"))
    conn, again = proxy.connection(n), proxy.connection(n + 1)
    for c in (conn, again):
        # stop() closes with 1000 (the web client sends no code: a decision of ours).
        closes = c.c2s("close")
        assert [m.data[:2] for m in closes] == [struct.pack("!H", 1000)], closes
        check_own_headers(c, proxy)
        assert [name for name, _ in c.headers] == OWN_HEADERS + ["User-Agent"], c.headers
        assert c.header("User-Agent") == [f"libmillis/{millis.version()}"]
    assert conn.header("Sec-WebSocket-Key") != again.header("Sec-WebSocket-Key"), "the key is not fresh"


def test_upgrade_request_extra_headers_in_order(millis, proxy):
    extra = [("Origin", "https://app.example.com"), ("X-Gateway-Token", "t0k3n"),
             ("X-Tag", "a"), ("X-Tag", "b"), ("X-Spaces", "  padded\tvalue  ")]
    n = next_connection(proxy)
    converse(millis, proxy.url, lambda c: c.start(agent_id="quick-agent"), headers=extra)
    conn = proxy.connection(n)
    check_own_headers(conn, proxy)
    # Ours first (User-Agent last of them), then the added ones in the order added,
    # values without their leading and trailing spaces.
    assert conn.headers[5:] == [("User-Agent", f"libmillis/{millis.version()}"),
                                ("Origin", "https://app.example.com"), ("X-Gateway-Token", "t0k3n"),
                                ("X-Tag", "a"), ("X-Tag", "b"), ("X-Spaces", "padded\tvalue")], conn.headers


def test_upgrade_request_user_agent_replaced(millis, proxy):
    n = next_connection(proxy)
    converse(millis, proxy.url, lambda c: c.start(agent_id="quick-agent"),
             headers={"User-Agent": "my-bridge/2.1 (telephony)", "Origin": "https://app.example.com"})
    conn = proxy.connection(n)
    check_own_headers(conn, proxy)
    assert conn.header("User-Agent") == ["my-bridge/2.1 (telephony)"], conn.headers
    assert conn.headers[5:] == [("User-Agent", "my-bridge/2.1 (telephony)"),
                                ("Origin", "https://app.example.com")], conn.headers
    assert not any("libmillis" in v for _, v in conn.headers), conn.headers


# ---------------------------------------------------------------------------------
# initiate
# ---------------------------------------------------------------------------------

AGENT_CONFIG = ('{"prompt": "You are terse.", "voice": {"voice_id": "devserver-ada", "provider": "elevenlabs"},'
                ' "language": "en-US", "first_message": "H\\u00e9llo \u2713", "vad_threshold": 0.5,'
                ' "tools": [{"name": "get_weather", "params": [{"name": "city", "type": "string",'
                ' "required": true}]}], "flow": {"user_start_first": true, "interruption":'
                ' {"allowed": false}}, "zz_unknown": null, "aa_last": [1, 2.5, "x", {}, [], -7]}')

INITIATE_CASES = {
    "agent_id": '{"agent": {"agent_id": "quick-agent"}}',
    "agent_config": '{"agent": {"agent_config": %s}}' % AGENT_CONFIG,
    "both": '{"agent": {"agent_id": "quick-agent", "agent_config": %s}}' % AGENT_CONFIG,
    "both-config-first": '{"agent": {"agent_config": {"prompt": "p"}, "agent_id": "quick-agent"}}',
    "metadata": '{"agent": {"agent_id": "quick-agent"}, "metadata": {"user": "ada", "tier": 3,'
                ' "nested": {"b": 1, "a": [true, null]}}}',
    "include_metadata_in_prompt": '{"agent": {"agent_id": "quick-agent"}, "metadata": {"user": "ada"},'
                                  ' "include_metadata_in_prompt": true}',
    "session_continuation": '{"agent": {"agent_id": "quick-agent"},'
                            ' "session_continuation": {"session_id": "wire-test-session"}}',
    "all-reordered": '{"metadata": {"k": "v"}, "session_continuation": {"session_id": "wire-test-2"},'
                     ' "include_metadata_in_prompt": false, "agent": {"agent_id": "quick-agent"}}',
}


@pytest.mark.parametrize("case", list(INITIATE_CASES))
def test_initiate_shape(millis, proxy, case):
    options = INITIATE_CASES[case]
    n = next_connection(proxy)
    converse(millis, proxy.url, lambda c: c.start_raw(options))
    text = proxy.connection(n).initiate().data
    message = pairs(text)
    assert keys(message) == ["method", "data"], text
    assert member(message, "method") == "initiate"
    # The options' members untouched and in their order, then the public key, last.
    assert member(message, "data") == pairs(options) + [("public_key", PUBLIC_KEY)], text


def test_initiate_from_keyword_start(millis, proxy):
    """Client.start()'s keywords give the web SDK's order: agent {agent_id,
    agent_config}, metadata, include_metadata_in_prompt, session_continuation."""
    n = next_connection(proxy)
    converse(millis, proxy.url, lambda c: c.start(
        agent_id="quick-agent", agent_config={"prompt": "p", "language": "fr"}, metadata={"m": 1},
        include_metadata_in_prompt=True, session_id="wire-test-3"))
    data = member(pairs(proxy.connection(n).initiate().data), "data")
    assert data == [("agent", [("agent_id", "quick-agent"), ("agent_config", [("prompt", "p"), ("language", "fr")])]),
                    ("metadata", [("m", 1)]), ("include_metadata_in_prompt", True),
                    ("session_continuation", [("session_id", "wire-test-3")]),
                    ("public_key", PUBLIC_KEY)], data


# ---------------------------------------------------------------------------------
# ping
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize("frame_ms", [10, 20, 40, 30])
def test_ping_format_and_cadence(millis, proxy, frame_ms):
    """A ping after exactly every 8 s of microphone audio (256 000 bytes), whatever the
    frame size, counted in audio, not time: at least 17 s of audio sent as fast as it
    goes. With 10, 20 and 40 ms frames a ping follows every 800, 400 and 200 frames;
    with 30 ms (960 bytes, 256 000 is no multiple) the remainder is carried: the k-th
    ping follows the frame that takes the count to k * 256 000 or past it."""
    frame_bytes = frame_ms * 32
    chunk = bytes(frame_bytes * 50)  # silence, whole frames
    total = math.ceil(17 * 32_000 / len(chunk)) * len(chunk)
    expected = [math.ceil(k * PING_AUDIO_BYTES / frame_bytes) * frame_bytes for k in range(1, 4)]
    expected = [e for e in expected if e <= total]
    n = next_connection(proxy)
    with millis.Client(PUBLIC_KEY, proxy.url, audio_mode="application", frame_ms=frame_ms,
                       send_queue_bytes=4 * 1024 * 1024) as client:
        rec = Recorder(client)
        client.start(agent_id="quick-agent")
        rec.wait_for("onready")
        conn = proxy.connection(n)
        for _ in range(total // len(chunk)):
            assert client.send_audio(chunk) is True
        proxy.wait_for(lambda: conn.audio_bytes() >= total, 30, f"{total} audio bytes")
        # A pong for the last ping, and time for a stray ping to show.
        proxy.wait_for(lambda: len([m for m in conn.messages if m.direction == "s2c" and m.kind == "text"
                                    and '"pong"' in m.data]) >= len(expected), 10, "the pongs")
        time.sleep(0.3)
        stats = client.stats()
        client.stop()
        rec.wait_for("onclose")
        assert rec.of("onerror") == [], rec.of("onerror")

    assert conn.unmasked_client_frames == 0, "the client sent unmasked frames (RFC 6455 5.1)"
    audio = conn.c2s("binary")
    assert conn.audio_bytes() == total, (conn.audio_bytes(), total)
    sizes = {len(m.data) for m in audio}
    assert sizes == {frame_bytes}, f"frame_ms {frame_ms}: frames of {sizes} bytes"
    assert stats["audio_frames_dropped_backpressure"] == 0, stats

    pings = []  # (audio bytes sent before it, data, wall time it was read)
    sent = 0
    for m in conn.c2s():
        if m.kind == "binary":
            sent += len(m.data)
        elif m.kind == "text" and m is not conn.initiate():
            message = pairs(m.data)
            assert keys(message) == ["method", "data"], m.data
            assert member(message, "method") == "ping", f"an unexpected message: {m.data}"
            pings.append((sent, member(message, "data"), m.t))
    assert [p[0] for p in pings] == expected, (
        f"frame_ms {frame_ms}: pings after {[p[0] for p in pings]} audio bytes "
        f"({[p[0] // frame_bytes for p in pings]} frames of {frame_bytes}); expected after {expected} "
        f"({[e // frame_bytes for e in expected]} frames)")
    for _, data, t in pings:
        assert isinstance(data, str) and re.fullmatch(r"[1-9][0-9]*", data), f"ping data {data!r}"
        # The wall clock (not a monotonic one) when the ping was made, which is before
        # the proxy read it, by the time it waited in the send queue at most.
        assert t * 1000 - 5000 <= int(data) <= t * 1000 + 50, (
            f"ping data {data} is not the epoch in ms when it was sent (read at {t * 1000:.0f})")
    # The devserver answered with pongs carrying the data back: the RTT is the wall clock's.
    rtt = stats["last_ping_rtt_ms"]
    assert rtt is not None and 0 <= rtt < 10_000, stats


# ---------------------------------------------------------------------------------
# Audio before onready
# ---------------------------------------------------------------------------------


def test_audio_before_onready_reaches_the_wire(millis, make_proxy, devserver):
    """As the web client: microphone audio flows from the moment the socket is open
    (right after initiate), before the server's onready; before the socket is open it
    is refused (NOT_READY) and never sent later."""
    # onready comes 250 ms after initiate (the devserver's --ready-delay-ms) and the
    # proxy holds it 1.5 s more: ample time for audio handed in at onopen to go out.
    proxy = make_proxy(hold_upgrade=0.4, hold_onready=1.5)
    refused = b"\x11\x11" * 320
    frames = [bytes([0x20 + i, 0x01]) * 320 for i in range(10)]
    with millis.Client(PUBLIC_KEY, proxy.url, audio_mode="application") as client:
        rec = Recorder(client)
        client.start(agent_id="quick-agent")
        assert client.connection_state == "connecting"
        assert client.send_audio(refused) is False  # no socket yet: NOT_READY
        rec.wait_for("onopen")
        accepted = [client.send_audio(f) for f in frames]
        state_after = client.connection_state
        assert accepted == [True] * len(frames), f"audio refused after onopen: {accepted}, {client.last_error}"
        assert state_after == "open", state_after  # onready had not arrived: the proxy holds it
        (session_id,) = rec.wait_for("onready")
        conn = proxy.connection(1)
        proxy.wait_for(lambda: conn.audio_bytes() >= 640 * len(frames), 10, "the audio sent before onready")
        client.stop()
        rec.wait_for("onclose")
        assert rec.of("onerror") == [], rec.of("onerror")

    c2s = conn.c2s()
    assert c2s[0].kind == "text" and member(pairs(c2s[0].data), "method") == "initiate", c2s[0]
    audio = conn.c2s("binary")
    assert [m.data for m in audio] == frames, "the audio on the wire is not what was sent after onopen"
    ready_at = conn.onready_seq()
    assert all(c2s[0].seq < m.seq < ready_at for m in audio), (
        "audio frames did not reach the wire between initiate and onready: "
        f"initiate {c2s[0].seq}, frames {[m.seq for m in audio]}, onready {ready_at}")
    assert not any(refused[:64] in m.data for m in audio), "audio refused before the socket opened was sent"
    # The devserver heard it before its onready too.
    record = devserver.record(session_id)
    assert record["audio_bytes_received_before_ready"] == 640 * len(frames), record


# ---------------------------------------------------------------------------------
# session_continuation on a reconnection
# ---------------------------------------------------------------------------------


def reconnect_through(millis, proxy: WireProxy, recorder, session_id=None):
    with millis.Client(PUBLIC_KEY, proxy.url, audio_mode="application", reconnect=(3, 50, 200)) as client:
        rec = recorder(client)
        client.start(agent_id="quick-agent", metadata={"call": 7}, session_id=session_id)
        rec.wait_for("onready")
        rec.wait_for("onreconnected", timeout=15)
        client.stop()
        rec.wait_for("onclose")
    first, second = proxy.connection(1), proxy.connection(2)
    assert first.cut, proxy.summary()
    return rec, first, second


def check_continuation(first: Connection, second: Connection, session_id: Any) -> list:
    data1 = member(pairs(first.initiate().data), "data")
    message = pairs(second.initiate().data)
    assert keys(message) == ["method", "data"], second.initiate().data
    data2 = member(message, "data")
    assert len(set(keys(data2))) == len(data2), f"a key twice: {second.initiate().data}"
    assert keys(data2)[-1] == "public_key" and member(data2, "public_key") == PUBLIC_KEY, data2
    continuation = member(data2, "session_continuation")
    assert continuation == [("session_id", session_id)], second.initiate().data
    assert type(member(continuation, "session_id")) is type(session_id), second.initiate().data
    # Everything else is the first initiate's, in its order; a continuation given to
    # start() is replaced where it stood.
    assert keys(data2) == keys(data1) or keys(data2) == keys(data1)[:-1] + ["session_continuation", "public_key"], (
        data1, data2)
    assert [kv for kv in data2 if kv[0] != "session_continuation"] == \
        [kv for kv in data1 if kv[0] != "session_continuation"], (data1, data2)
    return data2


def test_reconnection_continues_the_session(millis, make_proxy, recorder):
    proxy = make_proxy(cut_after_onready=0.3)
    rec, first, second = reconnect_through(millis, proxy, recorder)
    session_id = member(member(first.onready_payload(), "payload"), "session_id")
    assert isinstance(session_id, str) and session_id, first.onready_payload()
    assert member(pairs(first.initiate().data), "data")[0][0] == "agent"
    assert "session_continuation" not in keys(member(pairs(first.initiate().data), "data"))
    check_continuation(first, second, session_id)
    assert rec.of("onready")[0][0] == session_id


def test_reconnection_continues_the_id_onready_gave(millis, make_proxy, recorder):
    """start(session_id="old") continues "old"; the server answers another id: the
    reconnection continues the server's, in place of the one given to start()."""
    proxy = make_proxy(cut_after_onready=0.3, onready_payload={"session_id": "server-given-id"})
    rec, first, second = reconnect_through(millis, proxy, recorder, session_id="wire-old-id")
    assert member(member(pairs(first.initiate().data), "data"), "session_continuation") == [
        ("session_id", "wire-old-id")]
    check_continuation(first, second, "server-given-id")
    assert rec.of("onready")[0][0] == "server-given-id"


def test_reconnection_continues_a_numeric_session_id(millis, make_proxy, recorder):
    """onready {"session_id": 12345}: the id is kept as its JSON text, and the
    reconnection continues it with the same JSON value, the number."""
    proxy = make_proxy(cut_after_onready=0.3, onready_payload={"session_id": 12345})
    rec, first, second = reconnect_through(millis, proxy, recorder)
    assert member(first.onready_payload(), "payload") == [("session_id", 12345)]
    check_continuation(first, second, 12345)
    assert '"session_continuation":{"session_id":12345}' in second.initiate().data, second.initiate().data
    assert rec.of("onready")[0][0] == "12345", rec.of("onready")
