"""The devserver itself, driven by a plain `websockets` client (no libmillis):

- audio sent between initiate and onready is read, counted
  (audio_bytes_received_before_ready), recorded and heard, and onready comes
  --ready-delay-ms after the initiate;
- the three barge-in sequences (--barge-in) go out on the wire in their order, in
  real-time and burst mode, and a later answer still comes;
- --agent-audio burst sends an answer faster than real time; realtime does not.

Time is only bounded from below here (a delay the server must keep) or by generous
timeouts against hangs: a loaded machine only makes things later.
"""

from __future__ import annotations

import asyncio
import json
import importlib.util
import math
import sys
import time
import types
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from millis_testkit import FRAME_BYTES, PUBLIC_KEY, SCRIPT_FINALS, USER_TURN, read_wav, tone

FRAME_SECONDS = 0.02
TIMEOUT = 30.0  # against hangs only


def frames(pcm: bytes) -> list:
    return [pcm[i:i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]


TURN = USER_TURN


class Call:
    """One WebSocket connection to the devserver: every message received is logged
    with its arrival time ("text" with the parsed JSON, "audio" with the byte count);
    a pacer task sends 20 ms frames in real time (what say() queued, else silence)."""

    def __init__(self, url: str):
        self.url = url
        self.log: list = []  # (monotonic t, "text"|"audio"|"close", value)
        self.ws = None
        self.changed = asyncio.Event()
        self.pending = bytearray()
        self.tasks: list = []
        self.t_initiate = None

    async def open(self, agent_id: str = "demo-agent") -> None:
        self.ws = await connect(self.url, max_size=None, ping_interval=None)
        await self.ws.send(json.dumps({"method": "initiate", "data": {
            "agent": {"agent_id": agent_id}, "public_key": PUBLIC_KEY}}))
        self.t_initiate = time.monotonic()
        self.tasks.append(asyncio.create_task(self._receive()))

    async def _receive(self) -> None:
        try:
            async for message in self.ws:
                t = time.monotonic()
                if isinstance(message, bytes):
                    self.log.append((t, "audio", len(message)))
                else:
                    self.log.append((t, "text", json.loads(message)))
                self.changed.set()
        except Exception:
            pass
        self.log.append((time.monotonic(), "close", self.ws.close_code))
        self.changed.set()

    def start_pacer(self) -> None:
        self.tasks.append(asyncio.create_task(self._pace()))

    async def _pace(self) -> None:
        start = time.monotonic()
        i = 0
        try:
            while True:
                data = bytes(self.pending[:FRAME_BYTES])
                del self.pending[:FRAME_BYTES]
                await self.ws.send(data + bytes(FRAME_BYTES - len(data)))
                i += 1
                await asyncio.sleep(max(0.0, start + i * FRAME_SECONDS - time.monotonic()))
        except Exception:  # closed
            pass

    def say(self, pcm: bytes) -> None:
        self.pending += pcm

    def methods(self) -> list:
        return [v["method"] for _, kind, v in self.log if kind == "text"]

    def index_of(self, pred, start: int = 0):
        for i in range(start, len(self.log)):
            if pred(*self.log[i][1:]):
                return i
        return None

    async def wait_for(self, pred, start: int = 0, timeout: float = TIMEOUT) -> int:
        """The index in self.log of the first entry from `start` with pred(kind, value)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.index_of(pred, start)
            if found is not None:
                return found
            if any(kind == "close" for _, kind, _ in self.log):
                raise AssertionError(f"closed before the awaited message; methods: {self.methods()}")
            self.changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out; methods so far: {self.methods()}")
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except TimeoutError:
                pass

    async def wait_method(self, method: str, start: int = 0, **kw) -> int:
        return await self.wait_for(lambda kind, v: kind == "text" and v.get("method") == method, start, **kw)

    async def wait_closed(self, timeout: float = TIMEOUT) -> None:
        await asyncio.wait_for(self.ws.wait_closed(), timeout)
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await self.ws.close()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def session_id(self) -> str:
        i = self.index_of(lambda kind, v: kind == "text" and v.get("method") == "onready")
        return self.log[i][2]["payload"]["session_id"]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


@pytest.fixture(scope="module")
def servers(devserver_variant):
    """Devservers by (barge-in sequence, agent audio mode), shared with the other tests
    that ask for the same options; the defaults (pause-clear-unpause, realtime, ready
    delay 250 ms) are `devserver` itself."""

    def get(sequence: str = "pause-clear-unpause", audio: str = "realtime"):
        args = []
        if sequence != "pause-clear-unpause":
            args += ["--barge-in", sequence]
        if audio != "realtime":
            args += ["--agent-audio", audio]
        return devserver_variant(*args)

    return get


# --- audio before onready ----------------------------------------------------------------

def test_audio_before_ready_is_read_recorded_and_heard(devserver):
    """A client that streams from the moment the socket opens (as the official web
    client does): a whole user turn sent right after initiate, before onready. The
    server reads it while it gets ready, counts it as before-ready audio, keeps it in
    the user WAV and hears the turn: after onready comes the scripted answer."""
    mark = devserver.log_mark()

    async def main():
        call = Call(devserver.url)
        await call.open()
        for frame in frames(TURN):
            await call.ws.send(frame)
        sent_before = time.monotonic()
        ready = await call.wait_method("onready")
        t_ready = call.log[ready][0]
        call.start_pacer()  # silence from now on
        transcript = await call.wait_for(lambda kind, v: kind == "text" and v.get("method") == "ontranscript"
                                         and (v.get("payload") or {}).get("is_final"), ready)
        await call.close()
        return call, sent_before, t_ready, call.log[transcript][2]["data"]

    call, sent_before, t_ready, final = run(main())
    # onready waited out the ready delay (the default, 250 ms) after the initiate...
    assert t_ready - call.t_initiate >= 0.2, t_ready - call.t_initiate
    # ...while the whole turn had been sent already.
    assert sent_before < t_ready
    assert final == SCRIPT_FINALS[0]
    record = devserver.record(call.session_id())
    assert record["ready_delay_ms"] == 250
    before = record["audio_bytes_received_before_ready"]
    assert 0 < before <= len(TURN), before
    assert record["audio_bytes_received"] >= len(TURN)
    # On the server's own clock too: onready ready-delay after the initiate was read.
    initiate_t = record["text_messages_received"][0]["t"]
    ready_t = next(e["t"] for e in record["events_sent"] if e["method"] == "onready")
    assert ready_t - initiate_t >= 0.25 - 0.005, (initiate_t, ready_t)
    # The turn was heard (it ended before onready), and the audio is in the user WAV.
    assert record["user_turns"], record["user_turns"]
    recorded = read_wav(devserver.user_wav(record))
    assert len(recorded) == record["audio_bytes_received"]
    assert recorded.startswith(TURN[:before])
    devserver.assert_healthy(mark)


def test_ready_delay_zero_answers_at_once(devserver_variant):
    """--ready-delay-ms 0: onready right after the initiate, as before the option."""
    server = devserver_variant("--ready-delay-ms", "0")

    async def main():
        call = Call(server.url)
        await call.open()
        await call.wait_method("onready")
        await call.close()
        return call

    call = run(main())
    record = server.record(call.session_id())
    assert record["ready_delay_ms"] == 0
    initiate_t = record["text_messages_received"][0]["t"]
    ready_t = next(e["t"] for e in record["events_sent"] if e["method"] == "onready")
    # (No wall-clock bound: only that nothing was waited for on purpose, ordering-wise.)
    assert ready_t >= initiate_t
    assert record["audio_bytes_received_before_ready"] == 0


# --- barge-in sequences ------------------------------------------------------------------

EXPECTED = {
    "pause-clear-unpause": ["pause", "clear", "unpause"],
    "clear": ["clear"],
    "pause-clear": ["pause", "clear"],
}
FALSE_ALARM = {
    "pause-clear-unpause": ["pause", "unpause"],
    "clear": [],
    "pause-clear": ["pause", "unpause"],
}
BARGE = ("pause", "clear", "unpause")


@pytest.mark.parametrize("sequence,audio", [
    ("pause-clear-unpause", "realtime"),
    ("clear", "realtime"),
    ("pause-clear", "realtime"),
    ("pause-clear-unpause", "burst"),
])
def test_barge_in_sequences_on_the_wire(servers, sequence, audio):
    """During the first answer: a 60 ms blip (a false alarm), then real speech over the
    agent (a barge-in). The wire carries each one's sequence in order, no agent audio
    while paused or after the clear, and the second answer still comes."""
    server = servers(sequence, audio)
    mark = server.log_mark()

    async def main():
        call = Call(server.url)
        await call.open()
        ready = await call.wait_method("onready")
        call.start_pacer()
        call.say(TURN)
        answering = await call.wait_method("start_answering", ready)
        await call.wait_for(lambda kind, v: kind == "audio", answering)
        await asyncio.sleep(0.1)
        call.say(tone(0.06))  # a blip: under 200 ms of speech, silent at the decision
        await asyncio.sleep(0.6)
        call.say(tone(0.8))  # a barge-in: still talking at the decision, then a turn
        second = await call.wait_method("start_answering", answering + 1)
        await call.wait_for(lambda kind, v: kind == "audio", second)
        await call.wait_method("onsessionended", second)
        await call.wait_closed()
        return call, answering, second

    call, answering, second = run(main())
    between = [v["method"] if kind == "text" else kind for _, kind, v in call.log[answering:second]]
    barge = [m for m in between if m in BARGE]
    assert barge == FALSE_ALARM[sequence] + EXPECTED[sequence], between
    # The second answer's audio arrived: the barge-in left the client free to play it.
    assert call.index_of(lambda kind, v: kind == "audio", second) is not None
    # Nothing sent while paused; nothing of the first answer after its clear.
    paused = False
    for m in between:
        if m == "pause":
            paused = True
        elif m in ("unpause", "clear"):
            paused = False
        assert not (paused and m == "audio"), f"audio while paused: {between}"
    after_clear = between[between.index("clear"):]
    assert "audio" not in after_clear, after_clear
    record = server.record(call.session_id())
    assert record["barge_in_sequence"] == sequence
    assert record["agent_audio"]["mode"] == audio
    ins = record["barge_ins"]
    assert [b["outcome"] for b in ins] == ["unpause", "clear"], ins
    assert [b["sequence"] for b in ins] == [sequence] * 2
    assert ins[0]["sent"] == FALSE_ALARM[sequence] and ins[1]["sent"] == EXPECTED[sequence], ins
    server.assert_healthy(mark)


# --- burst and real-time agent audio -----------------------------------------------------

@pytest.mark.parametrize("audio", ["realtime", "burst"])
def test_agent_audio_rate(servers, audio):
    """Burst mode delivers the answer faster than real time (by about --burst-speed,
    2x), realtime mode in real time. The rate is judged on the server's send times
    (its own schedule; the test's receive times only add noise), and for burst also
    on arrival: the answer's last frame came well before its audio could have played."""
    server = servers("pause-clear-unpause", audio)

    async def main():
        call = Call(server.url)
        await call.open()
        ready = await call.wait_method("onready")
        for frame in frames(TURN):  # unpaced: the VAD counts audio time
            await call.ws.send(frame)
        answering = await call.wait_method("start_answering", ready)
        await call.wait_for(lambda kind, v: kind == "audio", answering)
        # The first answer is over when the server waits for the next turn: it then
        # sends nothing. Its end is read from the record; here, wait until a second
        # passes without audio (burst gaps are 250 ms, real-time ones 20 ms).
        while True:
            n = len(call.log)
            await asyncio.sleep(1.0)
            if not any(kind == "audio" for _, kind, _ in call.log[n:]):
                break
        await call.close()
        return call, answering

    call, answering = run(main())
    record = server.record(call.session_id())
    assert record["agent_audio"] == {"mode": audio, "burst_ms": 500, "burst_speed": 2.0}
    times = record["agent_audio_frame_times"]
    audio_bytes = record["agent_audio_bytes_sent"]
    assert len(times) == record["agent_audio_frames_sent"] and len(times) > 25
    duration = audio_bytes / 32000
    assert duration > 1.0, duration
    sent_over = times[-1] - times[0]
    received = [t for t, kind, _ in call.log[answering:] if kind == "audio"]
    assert len(received) == len(times)
    print(f"{audio}: {duration:.2f} s of audio sent over {sent_over:.2f} s, "
          f"received over {received[-1] - received[0]:.2f} s")
    # No frame leaves before its slot in the server's schedule (a loaded machine can
    # only make it later): 500 ms bursts every 250 ms, or one frame every 20 ms. That
    # the burst schedule runs ahead of real time is the schedule's own property,
    # checked without a clock in test_burst_schedule_runs_ahead_of_real_time.
    schedule = devserver_module().Playback.due
    mode = types.SimpleNamespace(mode=audio, burst_frames=25, speed=2.0)
    late = [times[i] - times[0] - schedule(mode, i) for i in range(len(times))]
    assert min(late) >= -0.01, min(late)
    if audio == "burst":
        bursts = math.ceil(len(times) / 25)
        assert sent_over >= (bursts - 1) * 0.25 - 0.01, (sent_over, bursts)
    else:
        # Paced: every frame at its 20 ms slot, never early.
        assert sent_over >= (len(times) - 1) * FRAME_SECONDS - 0.01, (sent_over, len(times))
        assert all(b - a >= 0 for a, b in zip(times, times[1:]))


def devserver_module():
    """devserver/millis_devserver.py as a module, for its pure parts."""
    path = Path(__file__).resolve().parents[2] / "devserver" / "millis_devserver.py"
    name = "millis_devserver_under_test"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # its dataclasses look themselves up there
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_burst_schedule_runs_ahead_of_real_time():
    """--agent-audio burst: frames due 25 at a time, each burst 250 ms after the last,
    so an answer is due in half its duration; realtime: every frame at its 20 ms slot."""
    due = devserver_module().Playback.due
    burst = types.SimpleNamespace(mode="burst", burst_frames=25, speed=2.0)
    realtime = types.SimpleNamespace(mode="realtime", burst_frames=25, speed=2.0)
    assert [due(burst, i) for i in (0, 24, 25, 49, 50)] == [0.0, 0.0, 0.25, 0.25, 0.5]
    n = 136  # 2.72 s of audio
    assert due(burst, n - 1) < 0.5 * n * 0.02
    assert [round(due(realtime, i), 6) for i in (0, 1, 135)] == [0.0, 0.02, 2.7]
