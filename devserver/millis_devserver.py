#!/usr/bin/env python3
"""A local, Millis-compatible voice-agent WebSocket server for offline development.

It speaks the wire protocol described in docs/protocol.md the way the Millis cloud does:
`initiate` -> `onready` (--ready-delay-ms later, reading meanwhile), ping/pong, PCM16
16 kHz mono audio both ways (the agent's paced in real time, or in bursts with
--agent-audio burst), transcripts, response text, function calls, barge-in (pause /
clear / unpause, in the order --barge-in says) and `onsessionended`. The "agent" is a fixed script: each time the user finishes a turn
(detected with a simple energy VAD) the next scripted turn is played back.

Special agent ids and HTTP paths produce protocol faults, so that clients can test
their error handling. With --record-dir every connection leaves a JSON record (and a
WAV of the user's audio) for tests to inspect.

Run: python3 devserver/millis_devserver.py --port 0
Once listening it prints one line to stdout: MILLIS_DEVSERVER_READY ws://HOST:PORT/millis
"""

from __future__ import annotations

import argparse
import array
import asyncio
import hashlib
import http
import json
import logging
import math
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import sys
import tempfile
import uuid
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit

try:
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.datastructures import Headers
    from websockets.exceptions import ConnectionClosed
    from websockets.frames import Frame, Opcode
    from websockets.http11 import Request, Response
    from websockets.protocol import State
except ImportError:
    # One line that says what to install, where a traceback would only say what failed
    # (websockets missing, or older than 14: Debian 12's python3-websockets is 10.4).
    try:
        import websockets as _found
        _what = f"has websockets {getattr(_found, '__version__', '?')}, older than the 14 needed"
    except ImportError:
        _what = "has no websockets package (version 14 or later needed)"
    sys.stderr.write(f"millis devserver: {sys.executable} {_what}: install it with "
                     f"`{sys.executable} -m pip install 'websockets>=14'` "
                     "(or `apt install python3-websockets` where that is 14 or later)\n")
    sys.exit(1)

log = logging.getLogger("millis_devserver")

DEFAULT_PUBLIC_KEY = "test-public-key"
DEFAULT_AGENT_ID = "demo-agent"
WS_PATH = "/millis"
DEFAULT_SCRIPT = Path(__file__).resolve().parent / "scripts" / "default.json"

SAMPLE_RATE = 16000
FRAME_SECONDS = 0.02
FRAME_BYTES = 640  # 20 ms of PCM16 mono at 16 kHz
WINDOW_SAMPLES = FRAME_BYTES // 2

INITIATE_TIMEOUT = 10.0
MIN_SPEECH_SECONDS = 0.2  # a turn needs this much speech, shorter blips are noise
# At the barge-in decision the user counts as "still talking" if a speech window
# arrived this recently. Shorter than the end-of-speech delay: it has to tell a cough
# from speech within --barge-in-ms, while tolerating the gaps between words.
BARGE_IN_HANGOVER = 0.15
# After the last reply has been sent, leave the client time to play its buffered tail
# before the session ends.
END_TAIL_SECONDS = 0.5
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

# What the server sends on barge-in (--barge-in). "pause" goes out at the onset of the
# user's speech over the agent; once the barge-in is confirmed:
#   pause-clear-unpause  clear, then unpause, so that no client stays paused (default);
#   clear                clear alone, and no pause at the onset: the agent's audio keeps
#                        flowing until the barge-in is confirmed;
#   pause-clear          clear, no unpause: the older order. The official web client
#                        (@millisai/web-sdk 1.0.13) keeps its pause flag through clear and
#                        stays silent for the rest of the session after it.
# A false alarm (a cough) ends with unpause alone (nothing at all with "clear").
BARGE_IN_SEQUENCES = ("pause-clear-unpause", "clear", "pause-clear")
# Agent audio (--agent-audio): "realtime" paces 20 ms frames in real time; "burst"
# sends --burst-ms of audio at once, then waits so that the average rate is
# --burst-speed times real time, as speech pipelines deliver it.
AGENT_AUDIO_MODES = ("realtime", "burst")
DEFAULT_BURST_MS = 500
DEFAULT_BURST_SPEED = 2.0
# After a valid initiate the server reads on for this long before onready
# (--ready-delay-ms): audio a client sends meanwhile is counted, recorded and heard.
DEFAULT_READY_DELAY = 0.25

FAULT_MALFORMED_JSON = "fault-malformed-json"
FAULT_UNKNOWN_METHOD = "fault-unknown-method"
FAULT_ODD_AUDIO = "fault-odd-audio"
FAULT_OVERSIZED = "fault-oversized"
FAULT_INVALID_UTF8 = "fault-invalid-utf8"
FAULT_NO_READY = "fault-no-ready"
FAULT_IDS = (
    FAULT_MALFORMED_JSON,
    FAULT_UNKNOWN_METHOD,
    FAULT_ODD_AUDIO,
    FAULT_OVERSIZED,
    FAULT_INVALID_UTF8,
    FAULT_NO_READY,
)

# A fast, silent-free agent for tests that need a conversation without streaming
# speech: right after onready it sends a final transcript, start_answering, a few
# unpaced audio frames and a final response text, then stays connected.
QUICK_AGENT_ID = "quick-agent"
QUICK_TRANSCRIPT = "quick"
QUICK_RESPONSE = "ok"
QUICK_FRAMES = 5

# For playback tests (pause/unpause continuity): right after onready, start_answering
# and PAUSE_AGENT_SECONDS of a known signal (a sine sweep, 300 Hz to 3 kHz, half scale)
# sent at once, unpaced; `pause` after PAUSE_AT seconds, `unpause` PAUSE_HOLD seconds
# later; then it stays connected. The times are in the record ("pause_agent").
PAUSE_AGENT_ID = "pause-agent"
PAUSE_AGENT_SECONDS = 3.0
PAUSE_AT = 1.0
PAUSE_HOLD = 1.0


def sweep_pcm(seconds: float = PAUSE_AGENT_SECONDS, rate: int = 16000) -> bytes:
    """The pause agent's voice: a linear sweep from 300 Hz to 3 kHz at half scale."""
    n = int(seconds * rate)
    f0, f1 = 300.0, 3000.0
    k = (f1 - f0) / seconds
    samples = (int(16384 * math.sin(2 * math.pi * (f0 * t + k * t * t / 2)))
               for t in (i / rate for i in range(n)))
    return struct.pack(f"<{n}h", *samples)

# Connection faults (reliability tests). They apply only to a connection whose
# initiate carries no session_continuation, so that a client resuming the session gets
# the normal agent; "-always" applies them to continued connections too (at once,
# before onready, so that every reconnection attempt fails); "-quick" makes the
# continued connection behave like quick-agent instead of the scripted demo agent.
FAULT_DELAY = 0.3  # seconds from onready to the fault
RESUME_DELAY = 0.15  # seconds from a continued fault session's initiate to its onready
STALL_SECONDS = 8.0  # fault-stop-reading: how long reading is paused
FRAGMENT_BYTES = 3  # fault-slow-fragmented: payload bytes per text frame
FRAGMENT_GAP = 0.005  # seconds between the frames of a fragmented message
SERVER_PINGS = (b"p1", b"p2", b"p3")
BIG_MESSAGE_BYTES = 16 * 1024 * 1024
BURST_COUNT = 10_000
DISCONNECT_FAULTS = ("reset", "abrupt", "close")
FAULT_RE = re.compile(
    r"fault-(?P<kind>reset|abrupt|close-(?P<code>\d{1,4})|stop-reading|slow-fragmented"
    r"|server-ping|continuation-text|16mib|burst|ended-reset)(?P<always>-always)?(?P<quick>-quick)?"
)


@dataclass(frozen=True)
class Fault:
    kind: str  # "reset", "abrupt", "close", "stop-reading", ...
    code: int | None  # for "close"
    always: bool
    quick: bool


def parse_fault(agent_id: Any) -> Fault | None:
    """The connection fault an agent id asks for, or None."""
    if not isinstance(agent_id, str):
        return None
    m = FAULT_RE.fullmatch(agent_id)
    if not m:
        return None
    code = int(m.group("code")) if m.group("code") else None
    kind = "close" if code is not None else m.group("kind")
    return Fault(kind, code, bool(m.group("always")), bool(m.group("quick")))


def ws_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """One unmasked (server-to-client) WebSocket frame."""
    head = bytearray([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head.append(n)
    elif n < 1 << 16:
        head.append(126)
        head += struct.pack("!H", n)
    else:
        head.append(127)
        head += struct.pack("!Q", n)
    return bytes(head) + payload


# ---------------------------------------------------------------------------------
# Script and voice
# ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScriptTurn:
    transcript: str
    response: str
    function: dict[str, Any] | None
    audio: bytes  # the reply's voice: PCM16LE 16 kHz mono, a whole number of frames


class StartupError(Exception):
    """The server cannot start (bad script, port in use...)."""


class ScriptError(StartupError):
    """The conversation script, or an audio file it names, is unusable."""


def pad_to_frames(pcm: bytes) -> bytes:
    """Pads PCM with silence to a whole number of 20 ms frames."""
    return pcm + bytes(-len(pcm) % FRAME_BYTES)


def synthetic_voice(text: str) -> bytes:
    """A deterministic voice-like signal, about as long as speaking `text` would be.

    A 140 Hz tone with three harmonics, shaped into 4 "syllables" per second, at
    roughly -14 dBFS: loud enough for any energy VAD, and recognisably not silence.
    """
    seconds = min(max(0.06 * len(text), 0.5), 10.0)
    samples = array.array("h")
    for n in range(int(seconds * SAMPLE_RATE)):
        t = n / SAMPLE_RATE
        envelope = math.sin(math.pi * ((t * 4.0) % 1.0)) ** 2
        phase = 2 * math.pi * 140.0 * t
        tone = 0.5 * math.sin(phase) + 0.3 * math.sin(2 * phase) + 0.2 * math.sin(3 * phase)
        samples.append(int(10000 * envelope * tone))
    if sys.byteorder == "big":
        samples.byteswap()
    return pad_to_frames(samples.tobytes())


async def _run(args: list[str], stdin: bytes) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin)
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({proc.returncode}): {err.decode(errors='replace').strip()}")
    return out


async def spoken_voice(text: str) -> bytes | None:
    """The text spoken by espeak-ng, as PCM16 16 kHz mono; None without espeak-ng/sox."""
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        return None
    try:
        # The text goes through stdin so that nothing in it can be read as an option.
        wav = await _run(["espeak-ng", "--stdout"], text.encode())
        pcm = await _run(
            ["sox", "-t", "wav", "-", "-t", "raw", "-r", str(SAMPLE_RATE), "-c", "1",
             "-b", "16", "-e", "signed-integer", "-L", "-"],
            wav,
        )
    except (OSError, RuntimeError) as exc:
        log.warning("speech synthesis failed, using the synthetic voice: %s", exc)
        return None
    return pad_to_frames(pcm)


async def load_wav(path: Path) -> bytes:
    """A WAV file as PCM16 16 kHz mono, converted with sox when it is in another format."""
    if not path.is_file():
        raise ScriptError(f"audio file not found: {path}")
    try:
        with wave.open(str(path), "rb") as w:
            if (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (SAMPLE_RATE, 1, 2):
                return pad_to_frames(w.readframes(w.getnframes()))
    except (wave.Error, EOFError):
        pass  # not a plain PCM WAV (float, extensible...): sox may still read it
    if not shutil.which("sox"):
        raise ScriptError(f"{path} is not 16 kHz mono 16-bit, and sox is not installed to convert it")
    try:
        pcm = await _run(
            ["sox", str(path), "-t", "raw", "-r", str(SAMPLE_RATE), "-c", "1",
             "-b", "16", "-e", "signed-integer", "-L", "-"],
            b"",
        )
    except (OSError, RuntimeError) as exc:
        raise ScriptError(f"cannot convert {path}: {exc}") from exc
    return pad_to_frames(pcm)


async def load_script(path: Path) -> list[ScriptTurn]:
    """Reads and checks a script, and prepares every reply's audio up front."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ScriptError(f"cannot read script {path}: {exc}") from exc
    if not isinstance(raw, list) or not raw:
        raise ScriptError(f"{path}: a script is a non-empty JSON list of turns")
    voices: dict[str, bytes] = {}  # per-text cache: a repeated reply is synthesised once
    turns = []
    for i, item in enumerate(raw, 1):
        where = f"{path}: turn {i}"
        if not isinstance(item, dict):
            raise ScriptError(f"{where}: a turn is a JSON object")
        unknown = set(item) - {"transcript", "response", "function", "audio"}
        if unknown:
            raise ScriptError(f"{where}: unknown keys {sorted(unknown)}")
        transcript, response = item.get("transcript"), item.get("response")
        if not isinstance(transcript, str) or not isinstance(response, str):
            raise ScriptError(f"{where}: 'transcript' and 'response' must be strings")
        function = item.get("function")
        if function is not None:
            if not (isinstance(function, dict) and isinstance(function.get("name"), str)
                    and isinstance(function.get("params", {}), dict)):
                raise ScriptError(f"{where}: 'function' must be {{\"name\": str, \"params\": {{...}}}}")
            function = {"name": function["name"], "params": function.get("params", {})}
        if "audio" in item:
            if not isinstance(item["audio"], str):
                raise ScriptError(f"{where}: 'audio' must be a path")
            audio = await load_wav(path.parent / item["audio"])
        else:
            if response not in voices:
                voices[response] = await spoken_voice(response) or synthetic_voice(response)
            audio = voices[response]
        turns.append(ScriptTurn(transcript, response, function, audio))
    return turns


# ---------------------------------------------------------------------------------
# Voice activity detection
# ---------------------------------------------------------------------------------


class EnergyVad:
    """Finds user turns in PCM16 audio by the RMS energy of 20 ms windows.

    A turn starts with the first speech window. It ends after `end_of_speech` seconds
    of non-speech, if it held at least MIN_SPEECH_SECONDS of speech; otherwise it was
    noise and is dropped. Silence is counted in audio time (the client's frames),
    except that a client that stops sending audio altogether also ends the turn (see
    audio_stopped()).
    """

    def __init__(self, threshold_db: float, end_of_speech: float) -> None:
        self.threshold_db = threshold_db
        self.end_of_speech = end_of_speech
        self.in_turn = False
        self.last_speech_at: float | None = None  # loop time of the last speech window
        self._pending = bytearray()
        self._speech = 0.0
        self._silence = 0.0

    def feed(self, pcm: bytes, now: float) -> list[str]:
        """Consumes audio; returns the events it caused: "start" and/or "end"."""
        events = []
        self._pending += pcm
        whole = len(self._pending) - len(self._pending) % FRAME_BYTES
        samples = array.array("h", self._pending[:whole])
        del self._pending[:whole]
        if sys.byteorder == "big":
            samples.byteswap()
        for start in range(0, len(samples), WINDOW_SAMPLES):
            window = samples[start:start + WINDOW_SAMPLES]
            power = sum(s * s for s in window) / WINDOW_SAMPLES
            speech = power > 0 and 10 * math.log10(power / 32768.0**2) > self.threshold_db
            if speech:
                self.last_speech_at = now
                if not self.in_turn:
                    self.in_turn = True
                    self._speech = self._silence = 0.0
                    events.append("start")
                self._speech += FRAME_SECONDS
                self._silence = 0.0
            elif self.in_turn:
                self._silence += FRAME_SECONDS
                if self._silence >= self.end_of_speech - 1e-9 and self._close_turn():
                    events.append("end")
        return events

    def audio_stopped(self) -> bool:
        """No audio came for end_of_speech seconds: ends the turn. True if it counts."""
        return self._close_turn()

    def discard_turn(self) -> None:
        """Forgets the current turn (a false alarm during barge-in)."""
        self.in_turn = False

    def _close_turn(self) -> bool:
        self.in_turn = False
        return self._speech >= MIN_SPEECH_SECONDS - 1e-9


# ---------------------------------------------------------------------------------
# Sessions
# ---------------------------------------------------------------------------------


@dataclass
class Settings:
    public_keys: set[str]
    agent_ids: set[str]
    record_dir: Path | None
    script: list[ScriptTurn]
    vad_threshold_db: float
    end_of_speech: float
    think: float
    barge_in: float
    quick_audio: bytes = b""  # quick-agent's QUICK_FRAMES frames
    barge_in_sequence: str = "pause-clear-unpause"  # one of BARGE_IN_SEQUENCES
    agent_audio: str = "realtime"  # "realtime" or "burst" (see Playback)
    burst_ms: int = DEFAULT_BURST_MS
    burst_speed: float = DEFAULT_BURST_SPEED
    ready_delay: float = DEFAULT_READY_DELAY  # seconds from initiate to onready
    connections: dict[str, int] = field(default_factory=dict)  # per session id

    def next_connection_number(self, session_id: str) -> int:
        """1 for a session's first connection, 2 for its first continuation, ..."""
        self.connections[session_id] = self.connections.get(session_id, 0) + 1
        return self.connections[session_id]


class Rejected(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


class Playback:
    """Sends one reply's audio in 20 ms frames, pausable and clearable.

    Realtime: each frame when its turn comes in real time. Burst: `burst_ms` of frames
    at once, each burst due `burst_ms / speed` after the previous one, so the average
    rate is `speed` times real time. Either way, a pause holds sending (the time held
    shifts every later frame) and a clear drops whatever has not been sent. In burst
    mode the playback then lasts until the audio sent would have finished playing at
    the client (pauses included), so that a barge-in during that tail still counts.
    """

    def __init__(self, session: Session, pcm: bytes, mode: str = "realtime",
                 burst_ms: int = DEFAULT_BURST_MS, speed: float = DEFAULT_BURST_SPEED) -> None:
        self.session = session
        self.frames = [pcm[i:i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]
        self.mode = mode
        self.burst_frames = max(1, round(burst_ms / 1000 / FRAME_SECONDS))
        self.speed = speed
        self.cleared = False
        self._loop = asyncio.get_running_loop()
        self._running = asyncio.Event()
        self._running.set()
        self._paused_at = 0.0
        self._held = 0.0  # total time spent paused: it shifts every later frame

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def pause(self) -> None:
        self._paused_at = self._loop.time()
        self._running.clear()

    def resume(self) -> None:
        if self.paused:
            self._held += self._loop.time() - self._paused_at
            self._running.set()

    def clear(self) -> None:
        self.cleared = True
        self._running.set()

    def due(self, i: int) -> float:
        """When frame i is due, in seconds from the start (pauses not counted)."""
        if self.mode == "burst":
            return (i // self.burst_frames) * self.burst_frames * FRAME_SECONDS / self.speed
        return i * FRAME_SECONDS

    async def run(self) -> bool:
        """Sends the frames; True when all were sent (and, in burst mode, played out at
        the client's pace), False when cleared."""
        start = self._loop.time()
        i = 0
        n = len(self.frames)
        while i < n or self.mode == "burst":
            await self._running.wait()
            if self.cleared:
                return False
            # Each frame is due at a fixed offset from the start (plus the time held
            # in pauses): sleeping until that deadline, not for a fixed interval,
            # keeps the pace free of drift. After a sleep, go round again: a pause or
            # clear may have come meanwhile. Past the last frame (burst mode) the
            # "deadline" is the end of the audio's playout.
            due = self.due(i) if i < n else n * FRAME_SECONDS
            delay = start + self._held + due - self._loop.time()
            if delay > 0:
                # (At most 50 ms at a time, so that a clear ends a burst gap or the
                # tail promptly; realtime gaps are shorter anyway.)
                await asyncio.sleep(min(delay, 0.05))
                continue
            if i >= n:
                break
            await self.session.send_audio(self.frames[i])
            i += 1
        return True


def new_record(path: str) -> dict[str, Any]:
    """A connection record before anything happened on it."""
    return {
        "session_id": None,
        "path": path,
        "initiate": None,
        "agent_id": None,
        "public_key_ok": False,
        "audio_frames_received": 0,
        "audio_bytes_received": 0,
        "audio_bytes_received_before_ready": 0,
        "frame_sizes": {},
        "pings_received": 0,
        "text_messages_received": [],
        "events_sent": [],
        "raw_frames_sent": [],
        "agent_audio_frames_sent": 0,
        "agent_audio_bytes_sent": 0,
        "agent_audio_sha256": hashlib.sha256().hexdigest(),
        "user_turns": [],
        "barge_ins": [],
        "pongs_received": [],
        "fault": None,
        "connection_number": None,
        "close": None,
        "user_audio_wav": None,
        "agent_audio_wav": None,
        "agent_audio_frame_times": [],
    }


def safe_file_stem(session_id: str) -> str:
    """A session id made safe to use as a file name (a client may choose it)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", session_id)[:128]
    return "_" + stem if stem.startswith(".") or not stem else stem


def write_record(record_dir: Path, name: str, record: dict[str, Any]) -> None:
    """Writes a JSON record atomically: a temp file in the same dir, then os.replace."""
    fd, tmp = tempfile.mkstemp(dir=record_dir, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=2)
        os.replace(tmp, record_dir / name)
    except BaseException:
        os.unlink(tmp)
        raise


def redacted(message: Any) -> Any:
    """The initiate message with its public key hidden, for logging."""
    if isinstance(message, dict) and isinstance(message.get("data"), dict) and "public_key" in message["data"]:
        return {**message, "data": {**message["data"], "public_key": "<redacted>"}}
    return message


class Session:
    """One WebSocket connection: the initiate handshake, then a scripted conversation
    (or a fault scenario), with everything recorded."""

    def __init__(self, ws: ServerConnection, settings: Settings) -> None:
        self.ws = ws
        self.settings = settings
        self.loop = asyncio.get_running_loop()
        self.t0 = self.loop.time()
        self.session_id: str | None = None
        self.ready = False
        self.vad = EnergyVad(settings.vad_threshold_db, settings.end_of_speech)
        self.last_audio_at = self.t0
        self.turn_start: float | None = None
        self.ended_turns: asyncio.Queue[None] = asyncio.Queue()
        self.playback: Playback | None = None
        self.barge_in_task: asyncio.Task[None] | None = None
        self.driver_task: asyncio.Task[None] | None = None
        self.wav: wave.Wave_write | None = None
        # What the agent sent, frame after frame, with each frame's send time in the
        # record ("agent_audio_frame_times"): a client's recording is checked against it.
        self.agent_wav: wave.Wave_write | None = None
        self.odd_byte = b""  # a trailing half sample, kept for the WAV
        self.record = new_record(ws.request.path if ws.request else "")
        # How this server was set to behave (--barge-in, --agent-audio, --ready-delay-ms).
        self.record["barge_in_sequence"] = settings.barge_in_sequence
        self.record["agent_audio"] = {"mode": settings.agent_audio, "burst_ms": settings.burst_ms,
                                      "burst_speed": settings.burst_speed}
        self.record["ready_delay_ms"] = round(settings.ready_delay * 1000)
        # Held while a message is written as several frames, so that no other data
        # message can land between its fragments.
        self.send_lock = asyncio.Lock()
        # Set once a fault cut the connection: nothing more is sent.
        self.severed = False
        self.fault: Fault | None = None
        self.audio_hash = hashlib.sha256()
        self._hook_pongs()

    def _hook_pongs(self) -> None:
        """Records the payload of every pong frame the client sends."""
        process_event = self.ws.process_event

        def process_event_recording_pongs(event: Any) -> None:
            if isinstance(event, Frame) and event.opcode is Opcode.PONG:
                self.record["pongs_received"].append(bytes(event.data).decode("utf-8", errors="backslashreplace"))
            process_event(event)

        self.ws.process_event = process_event_recording_pongs  # type: ignore[method-assign]

    def now(self) -> float:
        """Seconds since the connection was accepted."""
        return round(self.loop.time() - self.t0, 6)

    # -- sending ------------------------------------------------------------------

    async def send_event(self, method: str, **fields: Any) -> None:
        """Sends a JSON control message; `fields` are its "data" and/or "payload"."""
        self.record["events_sent"].append(
            {"t": self.now(), "method": method, "data": fields.get("data"), "payload": fields.get("payload")}
        )
        log.debug("[%s] -> %s %s", self.session_id, method, fields)
        if self.severed:
            return
        async with self.send_lock:
            await self.ws.send(json.dumps({"method": method, **fields}))

    async def send_words(self, method: str, text: str) -> None:
        """Sends text as growing word prefixes (is_final false), then whole (true)."""
        words = text.split()
        for n in range(1, len(words)):
            await self.send_event(method, data=" ".join(words[:n]), payload={"is_final": False})
        await self.send_event(method, data=text, payload={"is_final": True})

    def open_wav(self, side: str) -> wave.Wave_write:
        """<session>.<side>.wav in the record dir (16 kHz mono PCM16), named in the record."""
        assert self.settings.record_dir is not None
        name = f"{safe_file_stem(self.session_id)}.{side}.wav"
        wav = wave.open(str(self.settings.record_dir / name), "wb")
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        self.record[f"{side}_audio_wav"] = name
        return wav

    async def send_audio(self, pcm: bytes) -> None:
        if self.agent_wav:
            self.agent_wav.writeframes(pcm)
            self.record["agent_audio_frame_times"].append(self.now())
        self.record["agent_audio_frames_sent"] += 1
        self.record["agent_audio_bytes_sent"] += len(pcm)
        self.audio_hash.update(pcm)
        self.record["agent_audio_sha256"] = self.audio_hash.hexdigest()
        if self.severed:
            return
        async with self.send_lock:
            await self.ws.send(pcm)

    def record_raw(self, payload: bytes) -> None:
        """Notes a text frame that is not a well-formed JSON message (fault scenarios);
        bytes that are not UTF-8 appear as \\xNN escapes."""
        self.record["raw_frames_sent"].append(
            {"t": self.now(), "text": payload.decode("utf-8", errors="backslashreplace")}
        )

    async def end_session(self) -> None:
        await self.send_event("onsessionended")
        await self.ws.close(1000, "session ended")

    # -- connection life cycle ----------------------------------------------------

    async def run(self) -> None:
        try:
            await self.initiate()
            await self.receive_loop()
        except Rejected as rejection:
            log.info("connection rejected: %s %s", rejection.code, rejection.reason)
            await self.ws.close(rejection.code, rejection.reason)
        except ConnectionClosed:
            pass
        except Exception:
            # Close here: the connection must be closed before the record is written.
            log.exception("[%s] session failed", self.session_id)
            await self.ws.close(1011, "devserver error")
        finally:
            for task in (self.driver_task, self.barge_in_task):
                if task:
                    task.cancel()
            await asyncio.gather(
                *(t for t in (self.driver_task, self.barge_in_task) if t), return_exceptions=True
            )
            await self.ws.wait_closed()
            self.finish()

    async def initiate(self) -> None:
        """Checks the initiate message, sends onready and starts the agent's side."""
        try:
            first = await asyncio.wait_for(self.ws.recv(), INITIATE_TIMEOUT)
        except TimeoutError:
            raise Rejected(4000, "expected initiate") from None
        if not isinstance(first, str):
            raise Rejected(4000, "expected initiate")
        message = self.note_text(first)
        if not isinstance(message, dict) or message.get("method") != "initiate":
            raise Rejected(4000, "expected initiate")
        self.record["initiate"] = message
        log.debug("<- %s", json.dumps(redacted(message)))
        data = message.get("data") if isinstance(message.get("data"), dict) else {}
        agent = data.get("agent")
        agent_id = agent.get("agent_id") if isinstance(agent, dict) else None
        self.record["agent_id"] = agent_id if isinstance(agent_id, str) else None
        self.record["public_key_ok"] = data.get("public_key") in self.settings.public_keys
        if not self.record["public_key_ok"]:
            raise Rejected(4001, "invalid public key")
        if not isinstance(agent, dict) or (agent_id is None and agent.get("agent_config") is None):
            raise Rejected(4002, "initiate needs agent.agent_id or agent.agent_config")
        if agent_id is not None and agent_id not in self.settings.agent_ids and parse_fault(agent_id) is None:
            raise Rejected(4004, f"unknown agent_id: {agent_id}")

        continuation = data.get("session_continuation")
        previous = continuation.get("session_id") if isinstance(continuation, dict) else None
        continued = isinstance(previous, str) and bool(previous)
        self.session_id = previous if continued else uuid.uuid4().hex
        self.record["session_id"] = self.session_id
        self.record["connection_number"] = self.settings.next_connection_number(self.session_id)
        fault = parse_fault(agent_id)
        if fault and (fault.always or not continued):
            self.fault = fault
            self.record["fault"] = {"kind": fault.kind, "code": fault.code, "continued": continued}
        if self.settings.record_dir:
            self.wav = self.open_wav("user")
            self.agent_wav = self.open_wav("agent")
        log.info("session %s started (agent %s)", self.session_id, agent_id or "<agent_config>")

        if agent_id == FAULT_NO_READY:
            return
        if self.fault and continued and self.fault.kind in DISCONNECT_FAULTS:
            # "-always": the reconnection attempt itself fails, before onready.
            log.info("[%s] fault %s on a continued connection: at once", self.session_id, agent_id)
            self.driver_task = asyncio.create_task(self.drive(self.fire_fault))
            return
        resuming = fault is not None and continued
        # A server takes a moment to get ready, and one restoring a session a moment
        # more: onready comes late (RESUME_DELAY for a continued fault session,
        # --ready-delay-ms otherwise), from the driver's task, so that the receive loop
        # meanwhile reads, records and hears any audio the client sends before it
        # (audio_bytes_received_before_ready).
        ready_delay = RESUME_DELAY if resuming else self.settings.ready_delay
        if ready_delay <= 0:
            await self.send_onready()
        drivers: dict[str | None, Callable[[], Awaitable[None]]] = {
            FAULT_MALFORMED_JSON: self.fault_malformed_json,
            FAULT_UNKNOWN_METHOD: self.fault_unknown_method,
            FAULT_ODD_AUDIO: self.fault_odd_audio,
            FAULT_OVERSIZED: self.fault_oversized,
            FAULT_INVALID_UTF8: self.fault_invalid_utf8,
            QUICK_AGENT_ID: self.quick,
            PAUSE_AGENT_ID: self.pause_agent,
        }
        if self.fault:
            driver = self.run_fault
        elif fault and fault.quick:
            driver = self.quick  # a continued "-quick" fault session
        else:
            driver = drivers.get(agent_id, self.converse)
        if ready_delay > 0:
            async def ready_then(driver: Callable[[], Awaitable[None]] = driver) -> None:
                await asyncio.sleep(ready_delay)
                await self.send_onready()
                await driver()

            self.driver_task = asyncio.create_task(self.drive(ready_then))
        else:
            self.driver_task = asyncio.create_task(self.drive(driver))

    async def send_onready(self) -> None:
        await self.send_event("onready", payload={"session_id": self.session_id})
        self.ready = True

    async def drive(self, driver: Callable[[], Awaitable[None]]) -> None:
        """Runs the agent's side; a bug in it closes the session with 1011."""
        try:
            await driver()
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("[%s] agent side failed", self.session_id)
            if not self.severed:
                await self.ws.close(1011, "devserver error")

    async def receive_loop(self) -> None:
        while True:
            # While the user is mid-turn, time out when audio stops coming, so that a
            # client that simply stops sending still ends its turn.
            timeout = None
            if self.vad.in_turn:
                timeout = max(0.0, self.last_audio_at + self.settings.end_of_speech - self.loop.time())
            try:
                message = await asyncio.wait_for(self.ws.recv(), timeout)
            except TimeoutError:  # cancelling recv() is safe: no message is lost
                if self.vad.audio_stopped():
                    self.on_turn_end()
                continue
            if isinstance(message, bytes):
                self.on_audio(message)
            else:
                await self.on_text(message)

    def finish(self) -> None:
        """Records how the connection ended, then writes the record."""
        protocol = self.ws.protocol
        sent, rcvd = protocol.close_sent, protocol.close_rcvd
        if sent is not None and (rcvd is None or not protocol.close_rcvd_then_sent):
            close = {"code": sent.code, "reason": sent.reason, "by": "server"}
        elif rcvd is not None:
            close = {"code": rcvd.code, "reason": rcvd.reason, "by": "client"}
        else:
            close = {"code": None, "reason": "", "by": "abrupt"}
        self.record["close"] = close
        log.info("session %s closed by %s (%s %s)", self.session_id, close["by"], close["code"], close["reason"])
        if self.wav:
            self.wav.close()
        if self.agent_wav:
            self.agent_wav.close()
        if self.settings.record_dir:
            stem = safe_file_stem(self.session_id) if self.session_id else f"rejected-{uuid.uuid4().hex}"
            write_record(self.settings.record_dir, stem + ".json", self.record)
            if self.session_id:
                # Every connection of a session also keeps its own record.
                connections = self.settings.record_dir / "connections"
                connections.mkdir(exist_ok=True)
                write_record(connections, f"{stem}.{self.record['connection_number']}.json", self.record)

    # -- receiving ----------------------------------------------------------------

    def note_text(self, text: str) -> Any:
        """Records a received text message; returns it parsed (or the raw string)."""
        try:
            message = json.loads(text)
        except ValueError:
            message = text
        self.record["text_messages_received"].append({"t": self.now(), "message": message})
        return message

    async def on_text(self, text: str) -> None:
        message = self.note_text(text)
        log.debug("[%s] <- %s", self.session_id, json.dumps(redacted(message)))
        if isinstance(message, dict) and message.get("method") == "ping":
            self.record["pings_received"] += 1
            await self.send_event("pong", **({"data": message["data"]} if "data" in message else {}))

    def on_audio(self, pcm: bytes) -> None:
        rec = self.record
        rec["audio_frames_received"] += 1
        rec["audio_bytes_received"] += len(pcm)
        if not self.ready:
            rec["audio_bytes_received_before_ready"] += len(pcm)
        size = str(len(pcm))
        rec["frame_sizes"][size] = rec["frame_sizes"].get(size, 0) + 1
        self.last_audio_at = self.loop.time()
        if self.wav:
            # Only whole samples go to the WAV; a split sample is completed by the next frame.
            data = self.odd_byte + pcm
            cut = len(data) - len(data) % 2
            self.wav.writeframes(data[:cut])
            self.odd_byte = data[cut:]
        for event in self.vad.feed(pcm, self.last_audio_at):
            if event == "start":
                self.on_speech_start()
            else:
                self.on_turn_end()

    def on_speech_start(self) -> None:
        self.turn_start = self.now()
        log.debug("[%s] user speech starts", self.session_id)
        playback = self.playback
        if playback and not playback.paused and not playback.cleared and self.barge_in_task is None:
            if self.settings.barge_in_sequence != "clear":
                playback.pause()  # before any await: not one more frame goes out
            self.barge_in_task = asyncio.create_task(self.barge_in(playback))

    def on_turn_end(self) -> None:
        self.record["user_turns"].append({"start": self.turn_start, "end": self.now()})
        log.info("[%s] user turn ended", self.session_id)
        self.ended_turns.put_nowait(None)

    async def barge_in(self, playback: Playback) -> None:
        """The user spoke over the agent: pause, then clear or unpause, in the order
        --barge-in says (BARGE_IN_SEQUENCES)."""
        t = self.now()
        sequence = self.settings.barge_in_sequence
        sent: list[str] = []
        entry = {"t": t, "outcome": None, "sequence": sequence, "sent": sent}

        async def send(method: str) -> None:
            sent.append(method)
            await self.send_event(method)

        try:
            if sequence != "clear":
                await send("pause")  # the playback was paused by on_speech_start
            await asyncio.sleep(self.settings.barge_in)
            last = self.vad.last_speech_at
            still_talking = last is not None and self.loop.time() - last <= BARGE_IN_HANGOVER
            entry["outcome"] = "clear" if still_talking else "unpause"
            if still_talking:
                # The interruption stands: drop the rest of the reply; the user's
                # speech goes on as their next turn.
                playback.clear()
                await send("clear")
                if sequence == "pause-clear-unpause":
                    # The client must not stay paused: the next answer has to play.
                    await send("unpause")
            else:
                # A false alarm (a cough, a click): it is not a turn.
                self.vad.discard_turn()
                if sequence != "clear":
                    await send("unpause")
                playback.resume()
            log.info("[%s] barge-in: %s (sent %s)", self.session_id, entry["outcome"], " ".join(sent) or "nothing")
        except ConnectionClosed:
            pass
        finally:
            # t: the onset of the user's speech over the agent (when pause was sent,
            # unless --barge-in clear); sent: the messages sent, in order.
            self.record["barge_ins"].append(entry)
            self.barge_in_task = None

    # -- the agent's side ---------------------------------------------------------

    async def converse(self) -> None:
        """Plays the script: one scripted turn per ended user turn."""
        finished = True
        for turn in self.settings.script:
            await self.ended_turns.get()
            await self.send_words("ontranscript", turn.transcript)
            await asyncio.sleep(self.settings.think)
            await self.send_event("start_answering")
            await self.send_words("onresponsetext", turn.response)
            if turn.function:
                await self.send_event("onfunction", data="", payload=turn.function)
            self.playback = Playback(self, turn.audio, self.settings.agent_audio,
                                     self.settings.burst_ms, self.settings.burst_speed)
            finished = await self.playback.run()
            self.playback = None
        if finished:
            await asyncio.sleep(END_TAIL_SECONDS)
        else:
            # The last reply was interrupted: the agent has nothing left to say, so
            # the session ends once the interrupting turn does.
            await self.ended_turns.get()
        await self.end_session()

    async def fault_malformed_json(self) -> None:
        broken = '{"method": "ontranscript", "data": "unterminated'
        self.record_raw(broken.encode())
        await self.ws.send(broken)
        await self.send_event("ontranscript", data="still here", payload={"is_final": True})
        await self.end_session()

    async def fault_unknown_method(self) -> None:
        await self.send_event("ai_action", data={"action": "wave"}, payload={"x": 1})
        await self.end_session()

    async def fault_odd_audio(self) -> None:
        await self.send_event("start_answering")
        await self.send_audio(bytes(FRAME_BYTES + 1))
        await self.end_session()

    async def fault_oversized(self) -> None:
        # The client should refuse it (1009); the receive loop then sees its close.
        await self.send_audio(bytes(2 * 1024 * 1024 + 1))

    async def fault_invalid_utf8(self) -> None:
        # websockets refuses to send invalid UTF-8 as text, so the frame is written to
        # the transport directly: FIN + text opcode, unmasked, 7-bit length. Frames
        # are written whole and synchronously, so this cannot interleave with another.
        payload = b'{"method":"ontranscript","data":"\xff\xfe"}'
        self.record_raw(payload)
        self.ws.transport.write(bytes([0x81, len(payload)]) + payload)

    # -- quick agent and connection faults ------------------------------------------

    async def quick(self) -> None:
        """quick-agent: the whole exchange at once, unpaced; then stays connected."""
        await self.send_event("ontranscript", data=QUICK_TRANSCRIPT, payload={"is_final": True})
        await self.send_event("start_answering")
        audio = self.settings.quick_audio
        for i in range(0, len(audio), FRAME_BYTES):
            await self.send_audio(audio[i:i + FRAME_BYTES])
        await self.send_event("onresponsetext", data=QUICK_RESPONSE, payload={"is_final": True})
        # The receive loop answers pings until the client closes.

    async def pause_agent(self) -> None:
        """pause-agent: a known signal at once, then pause and unpause on a timer."""
        await self.send_event("start_answering")
        audio = sweep_pcm()
        for i in range(0, len(audio), FRAME_BYTES):
            await self.send_audio(audio[i:i + FRAME_BYTES])
        start = self.now()
        await asyncio.sleep(PAUSE_AT)
        await self.send_event("pause")
        paused = self.now()
        await asyncio.sleep(PAUSE_HOLD)
        await self.send_event("unpause")
        self.record["pause_agent"] = {"sent": start, "pause": paused, "unpause": self.now()}

    def note_fault(self, **fields: Any) -> None:
        assert self.record["fault"] is not None
        self.record["fault"].update(fields)

    async def run_fault(self) -> None:
        assert self.fault is not None
        drivers = {
            "stop-reading": self.fault_stop_reading,
            "slow-fragmented": self.fault_slow_fragmented,
            "server-ping": self.fault_server_ping,
            "continuation-text": self.fault_continuation_text,
            "16mib": self.fault_16mib,
            "burst": self.fault_burst,
        }
        if self.fault.kind in DISCONNECT_FAULTS:
            await asyncio.sleep(FAULT_DELAY)
            await self.fire_fault()
        elif self.fault.kind == "ended-reset":
            # The session is over, then the connection drops without a close frame:
            # a client must not try to resume an ended session.
            await asyncio.sleep(FAULT_DELAY)
            await self.send_event("onsessionended")
            await asyncio.sleep(0.1)
            self.fault = Fault("reset", None, False, False)
            await self.fire_fault()
        else:
            await drivers[self.fault.kind]()

    async def fire_fault(self) -> None:
        """Cuts the connection as the fault says: reset, abrupt (FIN) or close frame."""
        assert self.fault is not None
        kind = self.fault.kind
        self.note_fault(t=self.now())
        log.info("[%s] fault: %s%s", self.session_id, kind, f" {self.fault.code}" if self.fault.code else "")
        transport = self.ws.transport
        if kind == "reset":
            self.severed = True
            sock = transport.get_extra_info("socket")
            if sock is not None:
                # Linger on with a zero timeout: close() sends RST, not FIN.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        elif kind == "abrupt":
            self.severed = True
            # Let what was already queued go out first, then half-close: the client
            # reads EOF without a close frame. The server keeps reading until the
            # client closes its side (closing with unread data would send RST).
            for _ in range(100):
                if transport.get_write_buffer_size() == 0:
                    break
                await asyncio.sleep(0.01)
            sock = transport.get_extra_info("socket")
            try:
                if sock is None:
                    raise OSError("no socket")
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                transport.close()
            await self.wait_closed_or_abort(10.0)
        else:
            code = self.fault.code
            assert code is not None
            reason = f"fault {code}"
            try:
                await self.ws.close(code, reason)
            except ConnectionClosed:
                pass
            except Exception:
                # A code websockets refuses to send (1005, 1006, 1015, < 1000, ...):
                # the close frame is written by hand.
                self.severed = True
                self.note_fault(raw_close_frame=True)
                transport.write(ws_frame(0x8, struct.pack("!H", code & 0xFFFF) + reason.encode()))
                await self.wait_closed_or_abort(10.0)

    async def wait_closed_or_abort(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self.ws.wait_closed(), timeout)
        except TimeoutError:
            log.info("[%s] the client did not close within %.0f s: aborting", self.session_id, timeout)
            self.ws.transport.abort()

    async def send_fragmented(self, opcode: int, payload: bytes, size: int, gap: float) -> None:
        """Writes one message as frames of `size` payload bytes, `gap` seconds apart."""
        pieces = [payload[i:i + size] for i in range(0, len(payload), size)] or [b""]
        async with self.send_lock:
            for i, piece in enumerate(pieces):
                if self.severed or self.ws.protocol.state is not State.OPEN:
                    # Closing or closed: the message is abandoned (drive() expects this).
                    raise ConnectionClosed(None, None)
                self.ws.transport.write(ws_frame(opcode if i == 0 else 0, piece, fin=i == len(pieces) - 1))
                if gap:
                    await asyncio.sleep(gap)

    async def send_event_fragmented(self, method: str, size: int, gap: float, **fields: Any) -> None:
        """send_event, but the message goes out as continuation frames."""
        self.record["events_sent"].append(
            {"t": self.now(), "method": method, "data": fields.get("data"), "payload": fields.get("payload")}
        )
        text = json.dumps({"method": method, **fields})
        await self.send_fragmented(0x1, text.encode(), size, gap)

    async def fault_stop_reading(self) -> None:
        transport = self.ws.transport
        self.note_fault(stall_start=self.now(), stall_seconds=STALL_SECONDS,
                        audio_bytes_before_stall=self.record["audio_bytes_received"],
                        text_messages_before_stall=len(self.record["text_messages_received"]))
        log.info("[%s] fault: not reading for %.0f s", self.session_id, STALL_SECONDS)
        # The kernel buffers (see --mss and --rcvbuf) hold only a few seconds of audio,
        # so the stall reaches the client's own send queue.
        transport.pause_reading()
        try:
            # Ends early if the server shuts down (it is closing this connection and
            # must read the client's close frame).
            deadline = self.loop.time() + STALL_SECONDS
            while self.loop.time() < deadline and self.ws.protocol.state is State.OPEN:
                await asyncio.sleep(min(0.05, max(0.0, deadline - self.loop.time())))
        finally:
            if not transport.is_closing():
                transport.resume_reading()
        self.note_fault(stall_end=self.now(), audio_bytes_at_stall_end=self.record["audio_bytes_received"])
        await self.quick()

    async def fault_slow_fragmented(self) -> None:
        await self.send_event_fragmented("ontranscript", FRAGMENT_BYTES, FRAGMENT_GAP,
                                         data="slow fragmented transcript", payload={"is_final": True})
        await self.send_event_fragmented("start_answering", FRAGMENT_BYTES, FRAGMENT_GAP)
        await self.send_event_fragmented("onresponsetext", FRAGMENT_BYTES, FRAGMENT_GAP,
                                         data="slow fragmented response", payload={"is_final": True})
        audio = self.settings.quick_audio
        for i in range(0, len(audio), FRAME_BYTES):
            frame = audio[i:i + FRAME_BYTES]
            self.record["agent_audio_frames_sent"] += 1
            self.record["agent_audio_bytes_sent"] += len(frame)
            self.audio_hash.update(frame)
            self.record["agent_audio_sha256"] = self.audio_hash.hexdigest()
            await self.send_fragmented(0x2, frame, (len(frame) + 1) // 2, FRAGMENT_GAP)
        await self.end_session()

    async def fault_continuation_text(self) -> None:
        text = json.dumps({"method": "ontranscript", "data": "split across frames", "payload": {"is_final": True}})
        self.record["events_sent"].append({"t": self.now(), "method": "ontranscript",
                                           "data": "split across frames", "payload": {"is_final": True}})
        payload = text.encode()
        await self.send_fragmented(0x1, payload, -(-len(payload) // 4), FRAGMENT_GAP)
        await self.end_session()

    async def fault_server_ping(self) -> None:
        waiters = []
        for data in SERVER_PINGS:
            waiters.append(await self.ws.ping(data))
            await asyncio.sleep(0.1)
        self.note_fault(pings_sent=[d.decode() for d in SERVER_PINGS])
        try:
            await asyncio.wait_for(asyncio.gather(*waiters), 5.0)
        except TimeoutError:
            log.info("[%s] not every ping was answered", self.session_id)
        await self.end_session()

    async def fault_16mib(self) -> None:
        # A client with the default 1 MiB limit refuses it (1009); the receive loop
        # then sees its close. A client that accepts it closes when it likes.
        await self.send_audio(bytes(BIG_MESSAGE_BYTES))

    async def fault_burst(self) -> None:
        for n in range(BURST_COUNT):
            await self.send_event("ontranscript", data=f"burst {n}", payload={"is_final": False})
        await self.end_session()


# ---------------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------------


class DevServer:
    def __init__(self, settings: Settings, voices_path: str = "/voices") -> None:
        self.settings = settings
        self.voices_path = voices_path

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Routes the HTTP upgrade: /millis is the WebSocket, /status/NNN answers NNN,
        the voices path lists VOICES."""
        path = urlsplit(request.path).path
        if path == WS_PATH:
            return None
        if path == self.voices_path:
            return self.voices_response(request)
        match = re.fullmatch(r"/status/(\d{3})", path)
        if match and 200 <= int(match.group(1)) <= 599:
            status = int(match.group(1))
            text = f"devserver: status {status} requested"
        else:
            status, text = 404, f"devserver: no such path {path}"
        body = text.encode()
        headers = Headers([
            ("Connection", "close"),
            ("Content-Length", str(len(body))),
            ("Content-Type", "text/plain; charset=utf-8"),
        ])
        log.info("HTTP %d for %s", status, request.path)
        if self.settings.record_dir:
            record = new_record(request.path)
            record["close"] = {"code": None, "reason": f"HTTP {status}", "by": "server"}
            write_record(self.settings.record_dir, f"rejected-{uuid.uuid4().hex}.json", record)
        # Built by hand rather than with connection.respond(): that only accepts the
        # codes http.HTTPStatus knows, and /status/NNN takes any code from 200 to 599.
        try:
            phrase = http.HTTPStatus(status).phrase
        except ValueError:
            phrase = "Devserver Status"
        return Response(status, phrase, headers, body)

    def voices_response(self, request: Request) -> Response:
        """GET <voices path>: the fixed VOICES for an accepted public key in the
        Authorization header (as the Millis REST API takes it), 401 otherwise."""
        if request.headers.get("Authorization") in self.settings.public_keys:
            status, body = 200, json.dumps(VOICES).encode()
        else:
            status = 401
            body = json.dumps({"error": "unauthorized",
                               "message": "missing or invalid public key in the Authorization header"}).encode()
        log.info("HTTP %d for %s", status, request.path)
        headers = Headers([
            ("Connection", "close"),
            ("Content-Length", str(len(body))),
            ("Content-Type", "application/json"),
        ])
        return Response(status, http.HTTPStatus(status).phrase, headers, body)

    async def handle(self, ws: ServerConnection) -> None:
        await Session(ws, self.settings).run()


# What the voices path answers (millis voices; devserver/README.md).
VOICES = [
    {"voice_id": "devserver-ada", "name": "Ada", "language": "en-US", "gender": "female", "provider": "elevenlabs"},
    {"voice_id": "devserver-basil", "name": "Basil", "language": "en-GB", "gender": "male", "provider": "cartesia"},
    {"voice_id": "devserver-chloe", "name": "Chloé", "language": "fr-FR", "gender": "female", "provider": "openai"},
]


async def serve_until_stopped(args: argparse.Namespace) -> None:
    record_dir = Path(args.record_dir) if args.record_dir else None
    if record_dir:
        record_dir.mkdir(parents=True, exist_ok=True)
    frame_ms = round(FRAME_SECONDS * 1000)
    if args.burst_ms < frame_ms or args.burst_ms % frame_ms:
        raise StartupError(f"--burst-ms must be a positive multiple of 20, not {args.burst_ms}")
    if not args.burst_speed >= 1.0:
        raise StartupError(f"--burst-speed must be at least 1 (times real time), not {args.burst_speed}")
    if args.ready_delay_ms < 0:
        raise StartupError(f"--ready-delay-ms must not be negative, not {args.ready_delay_ms}")
    script = await load_script(Path(args.script))
    settings = Settings(
        public_keys={DEFAULT_PUBLIC_KEY, *args.public_key},
        agent_ids={DEFAULT_AGENT_ID, QUICK_AGENT_ID, PAUSE_AGENT_ID, *FAULT_IDS, *args.agent_id},
        record_dir=record_dir,
        script=script,
        vad_threshold_db=args.vad_threshold_db,
        end_of_speech=args.end_of_speech_ms / 1000,
        think=args.think_ms / 1000,
        barge_in=args.barge_in_ms / 1000,
        quick_audio=synthetic_voice(QUICK_RESPONSE * 10)[:QUICK_FRAMES * FRAME_BYTES],
        barge_in_sequence=args.barge_in,
        agent_audio=args.agent_audio,
        burst_ms=args.burst_ms,
        burst_speed=args.burst_speed,
        ready_delay=args.ready_delay_ms / 1000,
    )
    devserver = DevServer(settings, args.voices_path)

    tls: ssl.SSLContext | None = None
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            raise StartupError("--tls-cert and --tls-key go together")
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            tls.load_cert_chain(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise StartupError(f"cannot load the TLS certificate/key: {exc}") from exc
    scheme = "wss" if tls else "ws"

    loop = asyncio.get_running_loop()

    def on_unhandled(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        # Keeps the "no unhandled task exceptions" promise checkable: tests grep for it.
        log.error("UNHANDLED asyncio error: %s", context.get("message"), exc_info=context.get("exception"))

    loop.set_exception_handler(on_unhandled)

    # One socket, bound here, so that --port 0 yields a single port even for a host
    # name that resolves to several addresses.
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    # Accepted connections inherit these. Loopback's 64 KiB segments let the client's
    # kernel send buffer autotune to megabytes (it grows with the segment size), and an
    # autotuned receive buffer grows as well: seconds of audio would vanish into the
    # kernel and a server that stops reading (fault-stop-reading) would go unnoticed
    # by the client. Ethernet-sized segments and a fixed receive buffer behave like a
    # real network path. Both must be set before listen() to shape the handshake.
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            for level, option, value in ((socket.IPPROTO_TCP, socket.TCP_MAXSEG, args.mss),
                                         (socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)):
                if value:
                    sock.setsockopt(level, option, value)
            sock.bind((args.host, args.port))
            sock.listen(128)
        except BaseException:
            sock.close()
            raise
    except OSError as exc:
        raise StartupError(f"cannot listen on {args.host}:{args.port}: {exc}") from exc
    async with serve(
        devserver.handle,
        sock=sock,
        process_request=devserver.process_request,
        ssl=tls,
        max_size=MAX_MESSAGE_BYTES,
        # The server must never give up on a slow client by itself.
        ping_interval=None,
        ping_timeout=None,
    ) as server:
        stop = loop.create_future()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        print(f"MILLIS_DEVSERVER_READY {scheme}://{shown}:{port}{WS_PATH}", flush=True)
        log.info("listening on %s://%s:%d%s (%d script turns)", scheme, shown, port, WS_PATH, len(script))
        await stop
        log.info("stopping")
        server.close()  # closes open sessions with 1001; their records are written
        await server.wait_closed()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="A local Millis-compatible voice-agent server.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    p.add_argument("--record-dir", help="write a JSON record and a WAV of the user's audio per connection")
    p.add_argument("--script", default=str(DEFAULT_SCRIPT), help="conversation script (JSON)")
    p.add_argument("--public-key", action="append", default=[],
                   help=f"accept this public key as well as {DEFAULT_PUBLIC_KEY!r} (repeatable)")
    p.add_argument("--agent-id", action="append", default=[],
                   help=f"accept this agent id as well as {DEFAULT_AGENT_ID!r} (repeatable)")
    p.add_argument("--vad-threshold-db", type=float, default=-40.0, help="speech above this RMS level (dBFS)")
    p.add_argument("--end-of-speech-ms", type=int, default=600, help="silence that ends a user turn")
    p.add_argument("--think-ms", type=int, default=300, help="delay between transcript and answer")
    p.add_argument("--barge-in-ms", type=int, default=300, help="speech over the agent that clears it")
    p.add_argument("--barge-in", choices=BARGE_IN_SEQUENCES, default=BARGE_IN_SEQUENCES[0],
                   help="what barge-in sends: pause at the speech onset, then clear and unpause "
                        "(default); clear alone, no pause; or pause then clear without unpause "
                        "(the old order: the official web client 1.0.13 stays silent after it)")
    p.add_argument("--agent-audio", choices=AGENT_AUDIO_MODES, default="realtime",
                   help="pace the agent's audio in real time (default), or send it in bursts "
                        "faster than real time (--burst-ms, --burst-speed)")
    p.add_argument("--burst-ms", type=int, default=DEFAULT_BURST_MS,
                   help="burst mode: audio per burst, sent at once (a multiple of 20)")
    p.add_argument("--burst-speed", type=float, default=DEFAULT_BURST_SPEED,
                   help="burst mode: average sending rate, in times real time (>= 1)")
    p.add_argument("--ready-delay-ms", type=int, default=round(DEFAULT_READY_DELAY * 1000),
                   help="after a valid initiate, read (and record) this long before onready")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    p.add_argument("--mss", type=int, default=1460,
                   help="TCP maximum segment size of accepted connections (0: the system's)")
    p.add_argument("--rcvbuf", type=int, default=32768,
                   help="SO_RCVBUF of accepted connections, fixed; Linux doubles it (0: the system's, autotuned)")
    p.add_argument("--tls-cert", help="PEM certificate (chain): serve wss:// (needs --tls-key)")
    p.add_argument("--tls-key", help="PEM private key of --tls-cert")
    p.add_argument("--voices-path", default="/voices", help="HTTP path of the voices list (GET, key in Authorization)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # websockets' debug log shows frame contents, the initiate's public key included.
    logging.getLogger("websockets").setLevel(max(logging.INFO, logging.getLogger().level))
    try:
        asyncio.run(serve_until_stopped(args))
    except StartupError as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
