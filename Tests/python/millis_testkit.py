"""Helpers shared by the binding's tests: an event recorder and a real-time streamer."""

from __future__ import annotations

import math
import struct
import threading
import time
import wave
from pathlib import Path
from typing import Any, Callable, List, Optional, Tuple

PUBLIC_KEY = "test-public-key"
FRAME_BYTES = 640  # 20 ms of PCM16 at 16 kHz
SCRIPT_FINALS = ["Hello, what is the weather like today?", "Thank you, goodbye."]

ALL_EVENTS = ("onopen", "onready", "onsessionended", "onaudio", "onresponsetext",
              "ontranscript", "onfunction", "onlatency", "onagentstate", "onclose",
              "onerror", "onmessage", "onlog")


def tone(seconds: float, freq: float = 440.0, amplitude: int = 12000) -> bytes:
    """A loud sine as PCM16 16 kHz mono, whole 20 ms frames: speech to the devserver's
    energy VAD (-40 dBFS threshold)."""
    n = int(round(seconds / 0.02)) * FRAME_BYTES // 2
    return struct.pack(f"<{n}h", *(int(amplitude * math.sin(2 * math.pi * freq * i / 16000))
                                   for i in range(n)))


def silence(seconds: float) -> bytes:
    return bytes(int(round(seconds / 0.02)) * FRAME_BYTES)


# One user turn as the devserver's VAD sees it: 0.5 s of speech, then 0.8 s of silence
# (more than its --end-of-speech-ms 600). The VAD counts audio time, so this ends a
# turn even when sent faster than real time.
USER_TURN = tone(0.5) + silence(0.8)


def read_wav(path: Path) -> bytes:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000), \
            f"{path}: expected 16 kHz mono PCM16"
        return w.readframes(w.getnframes())


class Recorder:
    """Registers a handler for every event and lets a test wait for them."""

    def __init__(self, client, pump: Optional[Callable[[float], Any]] = None):
        self.client = client
        self.pump = pump  # manual dispatch: called with a timeout while waiting
        self.log: List[Tuple[str, tuple, int]] = []  # (name, args, handler thread ident)
        self.timed: List[Tuple[float, str, tuple]] = []  # (monotonic time at dispatch, name, args)
        self.cv = threading.Condition()
        for name in ALL_EVENTS:
            client.on(name, self._make(name))

    def _make(self, name):
        def handler(*args):
            t = time.monotonic()
            with self.cv:
                self.log.append((name, args, threading.get_ident()))
                self.timed.append((t, name, args))
                self.cv.notify_all()
        return handler

    def of(self, name: str) -> List[tuple]:
        with self.cv:
            return [args for n, args, _ in self.log if n == name]

    def timeline(self, *names: str) -> List[Tuple[float, str, tuple]]:
        """(time, name, args) of the named events (all when none), in order."""
        with self.cv:
            return [e for e in self.timed if not names or e[1] in names]

    def names(self, exclude=("onaudio", "onlog")) -> List[str]:
        with self.cv:
            return [n for n, _, _ in self.log if n not in exclude]

    def thread_ids(self) -> set:
        with self.cv:
            return {t for _, _, t in self.log}

    def wait_for(self, name: str, pred: Callable[..., bool] = lambda *a: True,
                 timeout: float = 15.0) -> tuple:
        """Returns the args of the first `name` event satisfying pred; fails on timeout."""
        deadline = time.monotonic() + timeout

        def find():
            for n, args, _ in self.log:
                if n == name and pred(*args):
                    return args
            return None

        while True:
            with self.cv:
                found = find()
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                if self.pump is None:
                    self.cv.wait(min(remaining, 0.5))
                    continue
            self.pump(min(remaining, 0.05))
        raise AssertionError(
            f"no {name} event within {timeout} s; events so far: {self.names()}; "
            f"errors: {[str(a[0]) for a in self.of('onerror')]}")


class RecordedClient:
    """What the fault and reconnection tests read back from a client whose events a
    Recorder (`self.rec`) collects."""

    rec: Recorder

    @property
    def session_id(self) -> str:
        ready = self.rec.of("onready")
        assert ready, f"no onready; events: {self.rec.names()}"
        return ready[0][0]

    def errors(self) -> list:
        return [args[0] for args in self.rec.of("onerror")]


class Streamer(threading.Thread):
    """Sends PCM in real time, FRAME_BYTES at a time, once `ready` is set; then silence
    until `stop` is set or the session refuses audio after having accepted some."""

    def __init__(self, client, pcm: bytes, ready: threading.Event,
                 stop: Optional[threading.Event] = None, chunk: int = FRAME_BYTES,
                 silence_after: bool = True, max_seconds: float = 90.0):
        super().__init__(name="test-streamer", daemon=True)
        self.client, self.pcm, self.ready = client, pcm, ready
        self.stop_event = stop or threading.Event()
        self.chunk = chunk
        self.silence_after = silence_after
        self.max_seconds = max_seconds
        self.bytes_accepted = 0
        self.bytes_refused = 0
        self.error: Optional[BaseException] = None
        self.finished_file = threading.Event()

    def run(self):
        try:
            if not self.ready.wait(30):
                return
            silence = bytes(self.chunk)
            start = time.monotonic()
            i = 0
            offset = 0
            while not self.stop_event.is_set():
                if offset < len(self.pcm):
                    data = self.pcm[offset:offset + self.chunk]
                    if len(data) < self.chunk:
                        data = data + bytes(self.chunk - len(data))
                    offset += self.chunk
                else:
                    self.finished_file.set()
                    if not self.silence_after:
                        return
                    data = silence
                if self.client.closed:
                    return
                if self.client.send_audio(data):
                    self.bytes_accepted += len(data)
                else:
                    self.bytes_refused += len(data)
                    if self.bytes_accepted:  # the session is over
                        return
                i += 1
                if i * 0.02 > self.max_seconds:
                    return
                delay = start + i * 0.02 - time.monotonic()
                if delay > 0:
                    self.stop_event.wait(delay)
        except BaseException as exc:  # reported by the test
            self.error = exc


def show_output(result: Any, tail: int = 12000) -> str:
    """The end of a finished or timed-out subprocess's stdout and stderr, for a failure
    message (text or bytes, None as empty)."""
    def text(v: Any) -> str:
        if v is None:
            return ""
        return v.decode(errors="replace") if isinstance(v, bytes) else v
    return (f"--- stdout ---\n{text(result.stdout)[-tail:]}\n"
            f"--- stderr ---\n{text(result.stderr)[-tail:]}")
