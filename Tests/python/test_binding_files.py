"""The Python binding's audio files and recording: Client(input_file=, input_pacing=,
output_file=, recording=, recording_mono=), start_recording() / stop_recording(), the
oninputended and onturn events, and the FILE status; against the devserver's
demo-agent, with the server's record of what it received as the reference."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import pytest

from millis_testkit import PUBLIC_KEY, SCRIPT_FINALS

np = pytest.importorskip("numpy")
signal = pytest.importorskip("scipy.signal")

INVALID_ARGUMENT, INVALID_STATE, FILE = 1, 3, 18
CALL_TIMEOUT = 60.0
CORRELATION_FLOOR = 0.9
TURN_KEYS = {"turn", "user_speech_end", "start_answering", "first_audio", "first_played",
             "latency_ms"}
LATENCY_KEYS = {"end_of_speech_to_start_answering", "start_answering_to_first_audio",
                "first_audio_to_played", "total"}


def mentions(message: str, *words: str) -> bool:
    low = message.lower()
    return any(w.lower() in low for w in words)


# --- audio helpers ----------------------------------------------------------------------

def read_wav_any(path: Path):
    """(samples float64 in [-1, 1] shaped (frames, channels), rate) of a PCM16/24/32 or
    float32 WAV; wave handles the PCM ones, float is parsed by hand."""
    data = Path(path).read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE", f"{path} is not a WAV"
    pos, fmt, body = 12, None, None
    while pos + 8 <= len(data):
        tag, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        chunk = data[pos + 8:pos + 8 + size]
        if tag == b"fmt ":
            fmt = struct.unpack("<HHIIHH", chunk[:16])
        elif tag == b"data":
            body = chunk
        pos += 8 + size + (size & 1)
    assert fmt and body is not None, f"{path}: no fmt or data chunk"
    tag, channels, rate, _, _, bits = fmt
    if tag == 0xFFFE:  # WAVE_FORMAT_EXTENSIBLE: the sub-format's first two bytes
        sub = data.find(b"fmt ") + 8 + 24
        tag = struct.unpack("<H", data[sub:sub + 2])[0]
    if tag == 3:
        x = np.frombuffer(body, dtype="<f4").astype(np.float64)
    elif bits == 16:
        x = np.frombuffer(body, dtype="<i2") / 32768.0
    elif bits == 24:
        raw = np.frombuffer(body[:len(body) - len(body) % 3], dtype=np.uint8).reshape(-1, 3)
        ints = (raw[:, 0].astype(np.int32) | (raw[:, 1].astype(np.int32) << 8)
                | (raw[:, 2].astype(np.int32) << 16))
        x = np.where(ints >= 1 << 23, ints - (1 << 24), ints) / float(1 << 23)
    elif bits == 32:
        x = np.frombuffer(body, dtype="<i4") / float(1 << 31)
    else:
        raise AssertionError(f"{path}: {bits}-bit PCM")
    frames = len(x) // channels
    return x[:frames * channels].reshape(frames, channels), rate


def mono16k(path: Path) -> "np.ndarray":
    """A WAV's audio mixed to mono and resampled to 16 kHz (the reference for what the
    library should have sent)."""
    x, rate = read_wav_any(path)
    mono = x.mean(axis=1)
    if rate != 16000:
        g = np.gcd(int(rate), 16000)
        mono = signal.resample_poly(mono, 16000 // g, int(rate) // g)
    return mono


def write_wav(path: Path, samples: "np.ndarray", rate: int, sampwidth: int = 2) -> None:
    """samples (frames, channels) in [-1, 1] as PCM16 (sampwidth 2) or float32 (4)."""
    frames, channels = samples.shape
    if sampwidth == 2:
        body = np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2").tobytes()
        tag, bits = 1, 16
    else:
        body = samples.astype("<f4").tobytes()
        tag, bits = 3, 32
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    riff = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    riff += b"data" + struct.pack("<I", len(body)) + body
    Path(path).write_bytes(b"RIFF" + struct.pack("<I", len(riff)) + riff)


def ncc_peak(ref: "np.ndarray", sig: "np.ndarray"):
    """(peak, lag): the normalised cross-correlation of ref against every window of sig
    of ref's length (1.0: sig holds ref exactly, at sample `lag`, up to a gain)."""
    ref = np.asarray(ref, dtype=np.float64)
    sig = np.asarray(sig, dtype=np.float64)
    if len(sig) < len(ref):
        sig = np.concatenate([sig, np.zeros(len(ref) - len(sig))])
    num = signal.correlate(sig, ref, mode="valid", method="fft")
    energy = np.concatenate([[0.0], np.cumsum(sig * sig)])
    window = energy[len(ref):] - energy[:-len(ref)]
    den = np.linalg.norm(ref) * np.sqrt(np.maximum(window, 1e-12))
    score = num / den
    lag = int(np.argmax(score))
    return float(score[lag]), lag


def speech_windows(x: "np.ndarray", rate: int = 16000, threshold_db: float = -40.0) -> int:
    """How many 20 ms windows of x are louder than threshold_db (the devserver's VAD)."""
    n = rate // 50
    frames = len(x) // n
    if frames == 0:
        return 0
    power = (x[:frames * n].reshape(frames, n) ** 2).mean(axis=1)
    return int((10 * np.log10(power + 1e-20) > threshold_db).sum())


def locate(answer: bytes, sig: "np.ndarray", window: int = 4000) -> list:
    """Finds the loud 0.25 s windows of an answer (PCM16 bytes) in sig: [(peak, lag)]
    in the answer's order. Window by window, so that a playout gap (an underrun, which
    a speaker and so an output file may have under load) only costs the window it
    falls in."""
    x = np.frombuffer(answer, dtype="<i2") / 32768.0
    found = []
    for start in range(0, len(x) - window + 1, window):
        part = x[start:start + window]
        if 10 * np.log10(np.mean(part * part) + 1e-20) > -40:
            peak, lag = ncc_peak(part, sig)
            found.append((peak, lag - start))  # lag of the answer's first sample
    return found


def assert_answers_in(call, sig: "np.ndarray", what: str) -> None:
    """Every answer the agent sent (onaudio delivers it in device mode too) is in sig,
    in order, starting where onturn says it was first played."""
    answers = call.agent_audio_by_answer()
    turns = [args[0] for args in call.of("onturn")]
    assert len(answers) == 2 and all(answers), [len(a) for a in answers]
    assert sum(len(a) for a in answers) == call.record["agent_audio_bytes_sent"]
    previous = -1
    for i, answer in enumerate(answers):
        found = locate(answer, sig)
        good = [lag for peak, lag in found if peak >= 0.99]
        assert found and len(good) >= 0.8 * len(found), (
            f"{what}: answer {i + 1}: windows found {found}; underruns "
            f"{call.stats['playback_underruns']}")
        start = min(good)
        assert start > previous, f"{what}: answer {i + 1} is not after answer {i}"
        previous = start
        # at the time it was played (both files start with start(), as the turn times)
        played = turns[i]["first_played"]
        assert abs(start / 16000 - played) <= 0.15, (what, i + 1, start / 16000, played)


def read_jsonl(path: Path) -> list:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


def line_kind(entry: dict):
    """The kind of a timeline line ("recording", "event", "turn", "end", ...)."""
    for key in ("type", "kind", "event"):
        if isinstance(entry.get(key), str):
            return entry[key]
    return None


# --- a conversation driven by files --------------------------------------------------------

class Call:
    """One conversation of a Client created with the given keyword arguments: every
    event with its time (seconds since start()), the stats, the devserver's record."""

    def __init__(self, millis, devserver, agent_id: str = "demo-agent", **kwargs):
        self.events: list = []  # (t, name, args)
        self.cv = threading.Condition()
        self.client = client = millis.Client(PUBLIC_KEY, devserver.url, **kwargs)
        for name in millis.EVENTS:
            client.on(name, self._handler(name))
        try:
            self.t_start = time.monotonic()
            client.start(agent_id=agent_id)
            self.closed = client.wait_closed(CALL_TIMEOUT)
            self.t_closed = time.monotonic() - self.t_start
            if not self.closed:
                client.stop()
                client.wait_closed(10)
            client.stop_recording()
            self.stats = client.stats()
        finally:
            client.close()
        assert self.closed, f"no close within {CALL_TIMEOUT} s; events: {self.names()}"
        ready = self.of("onready")
        assert ready, f"no onready; errors: {self.errors()}"
        self.session_id = ready[0][0]
        self.record = devserver.record(self.session_id)
        self.server_audio = mono16k(devserver.user_wav(self.record))

    def _handler(self, name):
        def handler(*args):
            with self.cv:
                self.events.append((time.monotonic() - self.t_start, name, args))
                self.cv.notify_all()
        return handler

    def of(self, name: str) -> list:
        return [args for _, n, args in self.events if n == name]

    def times(self, name: str) -> list:
        return [t for t, n, _ in self.events if n == name]

    def names(self) -> list:
        return [n for _, n, _ in self.events if n not in ("onaudio", "onlog")]

    def errors(self) -> list:
        return [str(args[0]) for args in self.of("onerror")]

    def agent_audio_by_answer(self) -> list:
        """The agent's audio from onaudio, one bytes object per answer (a final
        transcript starts each answer of the demo agent)."""
        answers: list = []
        for _, name, args in self.events:
            if name == "ontranscript" and args[1]["is_final"]:
                answers.append(bytearray())
            elif name == "onaudio" and answers:
                answers[-1] += args[0]
        return [bytes(a) for a in answers]


@pytest.fixture(scope="module")
def user_wav(repo_root) -> Path:
    return repo_root / "bindings" / "audio" / "user.wav"


@pytest.fixture(scope="module")
def user_audio(user_wav):
    return mono16k(user_wav)


@pytest.fixture(scope="module")
def realtime_call(millis, devserver, user_wav, tmp_path_factory):
    """demo-agent heard from user.wav in real time, answering into a WAV file; the
    call recorded in stereo."""
    tmp = tmp_path_factory.mktemp("realtime")
    call = Call(millis, devserver, input_file=user_wav, output_file=tmp / "agent.wav",
                recording=tmp / "call.wav")
    call.output = tmp / "agent.wav"
    call.recording = tmp / "call.wav"
    return call


@pytest.fixture(scope="module")
def fast_call(millis, devserver, user_wav, tmp_path_factory):
    """The same input streamed as fast as the server takes it, recorded in stereo."""
    tmp = tmp_path_factory.mktemp("fast")
    call = Call(millis, devserver, input_file=user_wav, input_pacing="fast",
                output_file=tmp / "agent.wav", recording=tmp / "call.wav")
    call.output = tmp / "agent.wav"
    call.recording = tmp / "call.wav"
    return call


# --- declarations -------------------------------------------------------------------------

def test_file_enums_match_header(millis, repo_root):
    import re
    header = (repo_root / "include" / "millis.h").read_text()
    pacing = {m.group(1): int(m.group(2))
              for m in re.finditer(r"\bMILLIS_FILE_([A-Z_]+)\s*=\s*(\d+)", header)}
    assert pacing == {"REALTIME": 0, "FAST": 1}, pacing
    assert {m.name: int(m) for m in millis.FilePacing} == pacing
    flags = {m.group(1): int(m.group(2))
             for m in re.finditer(r"\bMILLIS_RECORD_([A-Z_]+)\s*=\s*(\d+)", header)}
    assert flags == {"STEREO": 0, "MONO": 1}, flags
    # (iterating an IntFlag skips its 0 member: read the members instead)
    assert {name: int(m) for name, m in millis.RecordFlags.__members__.items()} == flags
    assert str(millis.FilePacing.FAST) == "fast"
    assert millis.Status.FILE == 18 and millis.MillisError(18).name == "FILE"
    assert millis.MillisError(18).message == millis.status_string(18)
    for name in ("FilePacing", "RecordFlags"):
        assert name in millis.__all__
    assert "oninputended" in millis.EVENTS and "onturn" in millis.EVENTS
    for name in ("INPUT_ENDED_CB", "TURN_CB"):
        assert hasattr(millis._native, name)


# --- bad inputs ---------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, words", [
    ({"input_file": ""}, ("empty", "path")),
    ({"input_file": "x.mp3"}, ("mp3", "extension")),
    ({"input_file": "noextension"}, ("extension",)),
    ({"input_file": "user.wav", "input_pacing": 2}, ("pacing",)),
    ({"input_file": "user.wav", "input_pacing": -1}, ("pacing",)),
    ({"output_file": ""}, ("empty", "path")),
    ({"output_file": "x.mp3"}, ("mp3", "extension")),
    ({"recording": ""}, ("empty", "path")),
    ({"recording": "x.mp3"}, ("mp3", "extension")),
    ({"recording": "call.flac", "recording_mono": True}, ("flac", "extension")),
])
def test_file_settings_refused(millis, kwargs, words):
    with pytest.raises(millis.MillisError) as info:
        millis.Client(PUBLIC_KEY, dispatch="manual", **kwargs)
    err = info.value
    assert err.status == millis.Status.INVALID_ARGUMENT, err
    assert err.message and mentions(err.message, *words), f"{err.message!r} names none of {words}"


def test_file_settings_python_errors(millis, tmp_path):
    with pytest.raises(ValueError, match="pacing"):  # an unknown name, as for other enums
        millis.Client(PUBLIC_KEY, dispatch="manual", input_file="user.wav", input_pacing="slow")
    with pytest.raises(ValueError, match="input_file"):
        millis.Client(PUBLIC_KEY, dispatch="manual", input_pacing="fast")
    with pytest.raises(ValueError, match="recording"):
        millis.Client(PUBLIC_KEY, dispatch="manual", recording_mono=True)
    with pytest.raises(TypeError, match="input_file"):
        millis.Client(PUBLIC_KEY, dispatch="manual", input_file=42)
    with millis.Client(PUBLIC_KEY, dispatch="manual", audio_mode="application") as c:
        with pytest.raises(TypeError, match="path"):
            c.start_recording(None)


def test_file_settings_accepted(millis, tmp_path, user_wav):
    """Files are only opened by start(): creating the client checks the settings, and a
    client with a file is in device audio mode."""
    for kwargs in ({"input_file": user_wav},
                   {"input_file": str(user_wav), "input_pacing": "fast"},
                   {"input_file": tmp_path / "missing.opus", "input_pacing": millis.FilePacing.REALTIME},
                   {"input_file": tmp_path / "missing.ogg", "input_pacing": 1},
                   {"output_file": tmp_path / "out.wav"},
                   {"output_file": os.fsencode(tmp_path / "out.opus")},
                   {"input_file": user_wav, "output_file": tmp_path / "out.ogg"},
                   {"recording": tmp_path / "call.wav"},
                   {"recording": tmp_path / "call.opus", "recording_mono": True},
                   {"recording": tmp_path / "call.ogg", "audio_mode": "application"}):
        with millis.Client(PUBLIC_KEY, dispatch="manual", **kwargs) as c:
            if "input_file" in kwargs or "output_file" in kwargs:
                assert c.audio_mode is millis.AudioMode.DEVICE, kwargs
    assert not list(tmp_path.iterdir()), "a file was created before start()"


def test_files_need_device_audio_mode(millis, user_wav, tmp_path):
    for kwargs in ({"input_file": user_wav}, {"output_file": tmp_path / "out.wav"}):
        with pytest.raises(millis.MillisError) as info:
            millis.Client(PUBLIC_KEY, dispatch="manual", audio_mode="application", **kwargs)
        assert info.value.status == millis.Status.INVALID_STATE, info.value
        assert mentions(info.value.message, "application"), info.value.message
    with millis.Client(PUBLIC_KEY, dispatch="manual", audio_mode="device", input_file=user_wav) as c:
        assert c.audio_mode is millis.AudioMode.DEVICE


def test_new_events_in_manual_dispatch(millis, devserver, user_wav, tmp_path):
    """oninputended and onturn through events(), on the calling thread."""
    with millis.Client(PUBLIC_KEY, devserver.url, dispatch="manual", input_file=user_wav,
                       input_pacing=millis.FilePacing.FAST, output_file=tmp_path / "a.wav") as c:
        c.start(agent_id="quick-agent")  # answers at once, then waits for the client
        seen, stopping = {}, False
        deadline = time.monotonic() + 15
        for name, args in c.events(timeout=5):
            if name in ("oninputended", "onturn"):
                seen.setdefault(name, []).append(args)
            if not stopping and (len(seen) == 2 or time.monotonic() > deadline):
                stopping = True
                c.stop()
        assert seen.get("oninputended") == [()], seen
        (turn,), = seen["onturn"]
        assert turn["turn"] == 1 and set(turn) >= TURN_KEYS, turn
        assert turn["latency_ms"]["first_audio_to_played"] >= 0, turn


def test_missing_input_file_fails_start(millis, devserver, tmp_path):
    missing = tmp_path / "no-such-input.wav"
    with millis.Client(PUBLIC_KEY, devserver.url, input_file=missing,
                       output_file=tmp_path / "agent.wav") as c:
        with pytest.raises(millis.MillisError) as info:
            c.start(agent_id="demo-agent")
        err = info.value
        assert err.status == millis.Status.FILE == FILE and err.name == "FILE", err
        assert str(missing) in err.message, err.message
        assert c.last_error == err.message
        assert c.wait_closed(0)  # nothing was started: no onclose to wait for
        assert c.connection_state == "idle"


def test_undecodable_input_file_fails_start(millis, devserver, tmp_path):
    bogus = tmp_path / "bogus.wav"
    bogus.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(100))
    opus = tmp_path / "bogus.opus"
    opus.write_bytes(b"not an ogg stream at all" * 10)
    for path in (bogus, opus):
        with millis.Client(PUBLIC_KEY, devserver.url, input_file=path,
                           output_file=tmp_path / "agent.wav") as c:
            with pytest.raises(millis.MillisError) as info:
                c.start(agent_id="demo-agent")
            assert info.value.status == millis.Status.FILE, info.value
            assert str(path) in info.value.message, info.value.message


def test_unwritable_output_and_recording_fail(millis, devserver, user_wav, tmp_path):
    nowhere = tmp_path / "no-such-dir"
    for kwargs, path in (({"output_file": nowhere / "agent.wav"}, nowhere / "agent.wav"),
                         ({"output_file": tmp_path / "agent.wav",
                           "recording": nowhere / "call.opus"}, nowhere / "call.opus")):
        with millis.Client(PUBLIC_KEY, devserver.url, input_file=user_wav, **kwargs) as c:
            with pytest.raises(millis.MillisError) as info:
                c.start(agent_id="demo-agent")
            assert info.value.status == millis.Status.FILE, info.value
            # the recording's audio or its timeline beside it, whichever failed first
            assert str(path.with_suffix("")) in info.value.message, info.value.message
    ready = threading.Event()
    with millis.Client(PUBLIC_KEY, devserver.url, audio_mode="application") as c:
        c.on("onready", lambda sid: ready.set())
        # Armed before a conversation: the files are created by start(), which fails.
        c.start_recording(nowhere / "armed.wav")
        with pytest.raises(millis.MillisError) as info:
            c.start(agent_id="quick-agent")
        assert info.value.status == millis.Status.FILE, info.value
        assert str(nowhere / "armed") in info.value.message, info.value.message
        # During a conversation: start_recording() itself fails.
        c.start(agent_id="quick-agent")
        assert ready.wait(10)
        with pytest.raises(millis.MillisError) as info:
            c.start_recording(nowhere / "live.wav")
        assert info.value.status == millis.Status.FILE, info.value
        assert str(nowhere / "live") in info.value.message, info.value.message
        c.start_recording(tmp_path / "after-failure.wav")  # the failure left no recording
        c.stop_recording()
        c.stop()
        assert c.wait_closed(10)
    with wave.open(str(tmp_path / "after-failure.wav"), "rb") as w:
        assert w.getnchannels() == 2


def test_start_recording_refusals(millis, tmp_path):
    with millis.Client(PUBLIC_KEY, dispatch="manual", audio_mode="application") as c:
        for path, words in (("", ("empty", "path")), (tmp_path / "x.mp3", ("mp3", "extension"))):
            with pytest.raises(millis.MillisError) as info:
                c.start_recording(path)
            assert info.value.status == millis.Status.INVALID_ARGUMENT, info.value
            assert mentions(info.value.message, *words), info.value.message
        c.start_recording(tmp_path / "first.wav")  # before a conversation: armed
        with pytest.raises(millis.MillisError) as info:
            c.start_recording(tmp_path / "second.wav")
        assert info.value.status == millis.Status.INVALID_STATE == INVALID_STATE, info.value
        assert info.value.message
        c.stop_recording()
        c.stop_recording()
    with pytest.raises(millis.MillisError) as info:
        c.start_recording(tmp_path / "closed.wav")
    assert info.value.status == millis.Status.INVALID_STATE


def test_stop_recording_without_recording(millis, devserver):
    with millis.Client(PUBLIC_KEY, dispatch="manual", audio_mode="application") as c:
        assert c.stop_recording() is None
        assert c.stop_recording() is None
        assert c.last_error == ""


# --- a real-time conversation from a file -------------------------------------------------

def test_realtime_call_closes_normally(realtime_call):
    call = realtime_call
    assert call.of("onclose") == [(1000, "session ended")], call.names()
    assert not call.errors(), call.errors()
    finals = [text for text, payload in call.of("ontranscript") if payload["is_final"]]
    assert finals == SCRIPT_FINALS, finals
    # The file is the microphone: it streams from initiate on, before the server's
    # onready, as the web client's microphone does from the socket's opening.
    assert call.record["audio_bytes_received_before_ready"] > 0
    assert len(call.record["user_turns"]) == 2, call.record["user_turns"]
    assert call.stats["audio_mode"] == "device"


def test_realtime_input_ended_once(realtime_call, user_audio):
    call = realtime_call
    assert len(call.of("oninputended")) == 1, call.names()
    duration = len(user_audio) / 16000
    # Streamed in real time from the session's start (initiate, or onready for an
    # engine that waits for it): it ends no sooner than one file's duration after the
    # socket opened. (From below only: a loaded machine can only make it later.)
    ended = call.times("oninputended")[0] - call.times("onopen")[0]
    assert ended >= duration - 0.3, (ended, duration)


def test_realtime_server_heard_the_file(realtime_call, user_audio):
    call = realtime_call
    peak, lag = ncc_peak(user_audio, call.server_audio)
    assert peak >= CORRELATION_FLOOR, f"correlation {peak:.3f} at lag {lag}"
    assert lag < 16000 * 0.2, f"the file's audio starts {lag / 16000:.3f} s into the stream"
    # and silence after it, in real time, until the session closed
    tail = call.server_audio[lag + len(user_audio):]
    assert speech_windows(tail) == 0
    assert len(call.server_audio) / 16000 >= len(user_audio) / 16000 + 0.5


def test_realtime_output_file(realtime_call):
    call = realtime_call
    with wave.open(str(call.output), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
        out_seconds = w.getnframes() / 16000
    out = mono16k(call.output)
    assert speech_windows(out) > 50, "the output file is silent"
    # Silence is written in real time between answers: the file lasts the conversation.
    assert abs(out_seconds - call.t_closed) <= 1.0, (out_seconds, call.t_closed)
    assert_answers_in(call, out, "output file")


def test_realtime_turns(realtime_call, user_audio):
    call = realtime_call
    turns = call.of("onturn")
    assert len(turns) == 2, (turns, call.names())
    assert len(call.record["user_turns"]) == 2
    ready_t = call.times("onready")[0]
    for number, (turn,) in enumerate(turns, 1):
        assert isinstance(turn, dict) and set(turn) >= TURN_KEYS, turn
        assert turn["turn"] == number, turn
        latency = turn["latency_ms"]
        assert set(latency) >= LATENCY_KEYS, latency
        for key in LATENCY_KEYS:
            assert isinstance(latency[key], (int, float)) and latency[key] > 0, (key, turn)
        parts = sum(latency[k] for k in LATENCY_KEYS - {"total"})
        assert abs(latency["total"] - parts) <= 3, turn
        times = [turn[k] for k in ("user_speech_end", "start_answering", "first_audio",
                                   "first_played")]
        assert all(isinstance(t, (int, float)) for t in times), turn
        assert times == sorted(times) and times[0] > ready_t - 0.2, (times, ready_t)
        assert latency["end_of_speech_to_start_answering"] == pytest.approx(
            (times[1] - times[0]) * 1000, abs=2), turn
        # The devserver ends a turn after 600 ms of silence and thinks for 100 ms.
        # (From below only: a loaded machine can only add to a latency.)
        assert latency["end_of_speech_to_start_answering"] >= 400, turn
    # The user's speech ends where the file's does (user.wav: ~2.8 s and ~9.6 s in).
    n = 320
    frames = len(user_audio) // n
    loud = 10 * np.log10((user_audio[:frames * n].reshape(frames, n) ** 2).mean(axis=1) + 1e-20) > -40
    ends = [(i + 1) * n / 16000 for i in range(frames - 1) if loud[i] and not loud[i + 1:i + 26].any()]
    assert len(ends) == 2, ends
    for (turn,), end in zip(turns, ends):
        assert abs(turn["user_speech_end"] - (ready_t + end)) <= 0.6, (turn, ready_t + end)
    # onturn comes after the turn's first audio was played; onlatency measured the same.
    latencies = [args[0] for args in call.of("onlatency")]
    assert len(latencies) == 2
    for (turn,), ms in zip(turns, latencies):
        assert turn["latency_ms"]["start_answering_to_first_audio"] == pytest.approx(ms, abs=25)


# --- fast pacing ----------------------------------------------------------------------------

def test_fast_input_reaches_server_faster_than_real_time(fast_call, user_audio):
    call = fast_call
    duration = len(user_audio) / 16000
    assert len(call.of("oninputended")) == 1, call.names()
    assert call.of("onclose") == [(1000, "session ended")], (call.names(), call.errors())
    record = call.record
    ready_sent = next(e["t"] for e in record["events_sent"] if e["method"] == "onready")
    turns = record["user_turns"]
    assert len(turns) == 2, turns
    # The whole file (both turns, ended by its own silences) arrived in a fraction of
    # its duration.
    assert turns[-1]["end"] - ready_sent < duration / 3, (turns, ready_sent, duration)
    first_final = next(t for t, name, args in call.events
                       if name == "ontranscript" and args[1]["is_final"])
    assert first_final < duration / 3, first_final
    ended = call.times("oninputended")[0] - call.times("onready")[0]
    assert ended < duration / 3, ended


def test_fast_input_loses_nothing(fast_call, user_audio):
    call = fast_call
    stats = call.stats
    assert stats["audio_frames_dropped"] == 0, stats
    assert stats["audio_frames_dropped_backpressure"] == 0, stats
    assert call.record["audio_bytes_received"] >= len(user_audio) * 2
    peak, lag = ncc_peak(user_audio, call.server_audio)
    assert peak >= CORRELATION_FLOOR and lag < 16000 * 0.2, (peak, lag)
    # Every sample in order: the server's copy of the file is the file.
    got = call.server_audio[lag:lag + len(user_audio)]
    assert np.max(np.abs(got - user_audio)) <= 2 / 32768, "the file arrived altered"


# --- recording ------------------------------------------------------------------------------

def test_recording_wav_is_stereo(realtime_call, user_audio):
    call = realtime_call
    with wave.open(str(call.recording), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, 16000)
        seconds = w.getnframes() / 16000
    assert seconds == pytest.approx(call.t_closed, abs=1.0)
    x, _ = read_wav_any(call.recording)
    user, agent = x[:, 0], x[:, 1]
    # Left: the file as sent, from onready on. Right: the agent as played.
    peak, lag = ncc_peak(user_audio, user)
    assert peak >= CORRELATION_FLOOR, peak
    assert lag / 16000 <= call.times("onready")[0] + 0.1, lag
    assert_answers_in(call, agent, "recording (right)")
    # Nothing but the file on the left (files get no processing: the samples as sent).
    assert np.max(np.abs(user[lag:lag + len(user_audio)] - user_audio)) <= 2 / 32768
    assert not np.any(user[:lag]) and speech_windows(user[lag + len(user_audio):]) == 0


def test_recording_timeline(realtime_call):
    call = realtime_call
    entries = read_jsonl(call.recording.with_suffix(".jsonl"))
    assert len(entries) >= 3
    head, end = entries[0], entries[-1]
    assert line_kind(head) == "recording", head
    assert head.get("channels") == 2 and head.get("sample_rate") == 16000, head
    assert line_kind(end) == "end", end
    with wave.open(str(call.recording), "rb") as w:
        assert end.get("duration") == pytest.approx(w.getnframes() / 16000, abs=0.02), end
    assert end.get("dropped_samples", 0) == 0, end
    times = [e["t"] for e in entries]
    assert all(isinstance(t, (int, float)) for t in times) and times == sorted(times), \
        "timeline times go backwards"
    # One turn line per onturn event, with the same breakdown.
    turns = [e for e in entries if line_kind(e) == "turn"]
    reported = [args[0] for args in call.of("onturn")]
    assert len(turns) == len(reported) == 2, ([line_kind(e) for e in entries], reported)
    for line, turn in zip(turns, reported):
        assert line["turn"] == turn["turn"]
        for key in LATENCY_KEYS:
            assert line["latency_ms"][key] == pytest.approx(turn["latency_ms"][key], abs=0.01)
        assert line["first_played"] == pytest.approx(turn["first_played"], abs=0.05)


def test_recording_of_a_fast_input(fast_call, user_audio):
    """FAST pacing: the file goes out faster than real time; the recording still holds
    all of it on the left and the agent on the right."""
    call = fast_call
    with wave.open(str(call.recording), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, 16000)
    x, _ = read_wav_any(call.recording)
    peak, _ = ncc_peak(user_audio, x[:, 0])
    assert peak >= CORRELATION_FLOOR, peak
    answers = call.agent_audio_by_answer()
    found = locate(answers[0], x[:, 1])
    assert sum(peak >= 0.99 for peak, _ in found) >= 0.8 * len(found), found
    entries = read_jsonl(call.recording.with_suffix(".jsonl"))
    assert line_kind(entries[0]) == "recording" and line_kind(entries[-1]) == "end"
    assert entries[-1].get("dropped_samples", 0) == 0, entries[-1]
    assert [line_kind(e) for e in entries].count("turn") == len(call.of("onturn")) == 2


def test_start_recording_during_a_conversation(millis, devserver, tmp_path):
    """start_recording() while a conversation runs; stop_recording() returns with the
    files complete; a second recording of the same conversation; mono; Ogg Opus."""
    ready = threading.Event()
    with millis.Client(PUBLIC_KEY, devserver.url, audio_mode="application") as c:
        c.on("onready", lambda sid: ready.set())
        c.start(agent_id="quick-agent")
        assert ready.wait(10)
        c.start_recording(tmp_path / "live.wav", mono=True)
        with pytest.raises(millis.MillisError) as info:
            c.start_recording(tmp_path / "again.wav")
        assert info.value.status == millis.Status.INVALID_STATE, info.value
        tone = (0.3 * 32767 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype("<i2")
        for i in range(0, len(tone), 320):
            c.send_audio(tone[i:i + 320].tobytes())
            time.sleep(0.02)
        c.stop_recording()
        with wave.open(str(tmp_path / "live.wav"), "rb") as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
            assert w.getnframes() >= 16000 * 0.8, w.getnframes()
        entries = read_jsonl(tmp_path / "live.jsonl")
        assert line_kind(entries[0]) == "recording" and line_kind(entries[-1]) == "end"

        c.start_recording(tmp_path / "second.opus")
        time.sleep(0.5)
        c.stop()
        assert c.wait_closed(10)
        c.stop_recording()  # after onclose: the files are complete already
    data = (tmp_path / "second.opus").read_bytes()
    assert data[:4] == b"OggS", data[:16]
    head = data.find(b"OpusHead")
    assert head > 0 and data[head + 9] == 2, "expected a stereo OpusHead"
    entries = read_jsonl(tmp_path / "second.jsonl")
    assert line_kind(entries[0]) == "recording" and line_kind(entries[-1]) == "end"


def test_close_finishes_the_recording(millis, devserver, user_wav, tmp_path):
    """close() in the middle of a conversation: the recording is complete when it
    returns (the binding stops it before millis_client_destroy)."""
    rec = tmp_path / "cut.wav"
    ready = threading.Event()
    c = millis.Client(PUBLIC_KEY, devserver.url, input_file=user_wav,
                      output_file=tmp_path / "agent.wav", recording=rec)
    c.on("onready", lambda sid: ready.set())
    c.start(agent_id="demo-agent")
    assert ready.wait(10)
    time.sleep(1.0)
    c.close()
    with wave.open(str(rec), "rb") as w:
        assert w.getnchannels() == 2 and w.getnframes() >= 16000 * 0.8, w.getnframes()
    entries = read_jsonl(rec.with_suffix(".jsonl"))
    assert line_kind(entries[-1]) == "end", entries[-1]
    with pytest.raises(millis.MillisError) as info:
        c.stop_recording()
    assert info.value.status == millis.Status.INVALID_STATE  # closed, as every method


def test_recording_mono_from_config(millis, devserver, tmp_path):
    rec = tmp_path / "mono.wav"
    ready = threading.Event()
    with millis.Client(PUBLIC_KEY, devserver.url, audio_mode="application",
                       recording=rec, recording_mono=True) as c:
        c.on("onready", lambda sid: ready.set())
        c.start(agent_id="quick-agent")
        assert ready.wait(10)
        time.sleep(0.3)
        c.stop()
        assert c.wait_closed(10)
        c.stop_recording()
    with wave.open(str(rec), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
    # quick-agent's 5 frames (100 ms of voice) are in it
    assert speech_windows(mono16k(rec)) >= 2


# --- other input formats --------------------------------------------------------------------

def _make_input(kind: str, user_wav: Path, tmp: Path) -> Path:
    x, rate = read_wav_any(user_wav)
    mono = x[:, 0]
    if kind == "wav-44100-stereo":
        up = signal.resample_poly(mono, 441, 160)
        path = tmp / "user-44k-stereo.wav"
        write_wav(path, np.stack([up, up * 0.5], axis=1), 44100)
    elif kind == "wav-float-48000":
        path = tmp / "user-48k-float.wav"
        write_wav(path, signal.resample_poly(mono, 3, 1)[:, None], 48000, sampwidth=4)
    elif kind == "opus":
        if shutil.which("opusenc") is None:
            pytest.skip("opusenc (opus-tools) is not installed")
        path = tmp / "user.opus"
        subprocess.run(["opusenc", "--quiet", "--bitrate", "64", str(user_wav), str(path)],
                       check=True, timeout=60)
    else:
        raise AssertionError(kind)
    return path


@pytest.mark.parametrize("kind", ["wav-44100-stereo", "wav-float-48000", "opus"])
def test_input_formats(millis, devserver, user_wav, user_audio, tmp_path, kind):
    """The file is mixed to mono and resampled to 16 kHz: the server hears user.wav."""
    path = _make_input(kind, user_wav, tmp_path)
    call = Call(millis, devserver, input_file=path, input_pacing="fast",
                output_file=tmp_path / "agent.opus")
    assert not call.errors(), call.errors()
    assert len(call.of("oninputended")) == 1
    assert len(call.record["user_turns"]) == 2, call.record["user_turns"]
    # (Opus at 64 kbit/s is not sample-exact, but opusdec's copy correlates at 0.999.)
    peak, _ = ncc_peak(user_audio, call.server_audio)
    assert peak >= CORRELATION_FLOOR, f"{kind}: correlation {peak:.3f}"
    data = (tmp_path / "agent.opus").read_bytes()
    assert data[:4] == b"OggS" and b"OpusHead" in data[:200]


# --- the example ----------------------------------------------------------------------------

def test_example_file_bot(repo_root, library_path, devserver, user_wav, tmp_path):
    out, rec = tmp_path / "agent.wav", tmp_path / "call.opus"
    env = dict(os.environ, MILLIS_LIBRARY=str(library_path), MILLIS_PUBLIC_KEY=PUBLIC_KEY)
    proc = subprocess.run(
        [sys.executable, str(repo_root / "bindings" / "python" / "examples" / "file_bot.py"),
         "--endpoint", devserver.url, "--agent-id", "demo-agent", "--input", str(user_wav),
         "--output", str(out), "--record", str(rec), "--fast", "--timeout", "60"],
        cwd=str(repo_root), env=env, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    text = proc.stdout
    for final in SCRIPT_FINALS:
        assert f"user:  {final}" in text, text[-3000:]
    assert "agent: It's sunny" in text and "tool:  get_weather" in text, text[-3000:]
    assert "turn 1:" in text and "turn 2:" in text, text[-3000:]
    # Read fast, no answer can be tied to an end of speech: the table says so.
    assert "Latency per agent turn" in text and "no end-of-speech times" in text, text[-3000:]
    assert "input file ended" in text, text[-3000:]
    with wave.open(str(out), "rb") as w:
        assert (w.getnchannels(), w.getframerate()) == (1, 16000) and w.getnframes() > 16000
    assert rec.read_bytes()[:4] == b"OggS"
    assert read_jsonl(rec.with_suffix(".jsonl"))


def test_example_file_bot_missing_input(repo_root, library_path, devserver, tmp_path):
    env = dict(os.environ, MILLIS_LIBRARY=str(library_path), MILLIS_PUBLIC_KEY=PUBLIC_KEY)
    missing = tmp_path / "missing.wav"
    proc = subprocess.run(
        [sys.executable, str(repo_root / "bindings" / "python" / "examples" / "file_bot.py"),
         "--endpoint", devserver.url, "--input", str(missing), "--output", str(tmp_path / "a.wav")],
        cwd=str(repo_root), env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FILE" in proc.stderr and str(missing) in proc.stderr, proc.stderr
