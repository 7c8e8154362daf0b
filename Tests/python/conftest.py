"""Shared fixtures of the Python test suite (also used by test_c_programs.py).

Fixtures:
  repo_root     the repository root (pathlib.Path).
  library_path  <repo>/build/libmillis.so; fails with "run make build" when missing.
                Sets MILLIS_LIBRARY and puts bindings/python on sys.path.
  millis        the imported binding (depends on library_path).
  devserver     one devserver for the session: .url, .base, .record_dir,
                .record(session_id, timeout=15), .connection_record(session_id, n),
                .log_mark() / .assert_healthy(mark).
  devserver_factory
                starts more devservers (session-scoped): factory(*extra_args) returns
                a DevServer (e.g. factory("--tls-cert", cert, "--tls-key", key)).
  devserver_variant
                variant(*extra_args): a devserver with those options, started once per
                distinct argument list and shared by every test that asks for it
                (no arguments: `devserver` itself), e.g. variant("--barge-in", "clear").
  burst_devserver
                variant("--agent-audio", "burst"): agent audio in 500 ms bursts at
                twice real time, for tests of playout buffering and idle logic.
  recorder      recorder(client): a millis_testkit.Recorder that also records
                onreconnecting and onreconnected.
  process_health
                snapshot of this process' fds and threads (taken after a warm-up of
                the engine's network thread); .check() fails when the client under
                test left any behind (after a short settle wait).
  pacer         the Pacer class: a thread sending 20 ms frames in real time.
  state_sampler the StateSampler class: a thread sampling connection_state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BINDINGS_PYTHON = REPO_ROOT / "bindings" / "python"
# MILLIS_DEVSERVER_SCRIPT may name another script speaking the same contract.
DEVSERVER = Path(os.environ.get("MILLIS_DEVSERVER_SCRIPT")
                 or REPO_ROOT / "devserver" / "millis_devserver.py")
READY_PREFIX = "MILLIS_DEVSERVER_READY "
STARTUP_TIMEOUT = 30.0


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def library_path(repo_root: Path) -> Path:
    path = repo_root / "build" / "libmillis.so"
    if not path.exists():
        pytest.fail(f"{path} does not exist: run `make build` first", pytrace=False)
    os.environ["MILLIS_LIBRARY"] = str(path)
    if str(BINDINGS_PYTHON) not in sys.path:
        sys.path.insert(0, str(BINDINGS_PYTHON))
    return path


@pytest.fixture(scope="session")
def millis(library_path: Path):
    import millis as module

    loaded = Path(module.library_path).resolve()
    assert loaded == library_path.resolve(), (
        f"the binding loaded {loaded}, not the build tree's {library_path}")
    return module


class DevServer:
    """A running devserver/millis_devserver.py."""

    def __init__(self, proc: subprocess.Popen, url: str, record_dir: Path, log_path: Path):
        self.proc = proc
        self.url = url  # ws://HOST:PORT/millis
        parts = urlsplit(url)
        self.base = f"{parts.scheme}://{parts.netloc}"  # ws://HOST:PORT
        self.record_dir = record_dir
        self.log_path = log_path
        self.stdout_lines: list = []

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def record(self, session_id: str, timeout: float = 15.0) -> dict:
        """Waits for <record_dir>/<session_id>.json and returns it parsed."""
        assert session_id, "record() needs a session id"
        return self._wait_json(self.record_dir / f"{session_id}.json", timeout)

    def connection_record(self, session_id: str, number: int, timeout: float = 15.0) -> dict:
        """Waits for the record of one connection of a session (1: the first)."""
        return self._wait_json(self.record_dir / "connections" / f"{session_id}.{number}.json", timeout)

    def _wait_json(self, path: Path, timeout: float) -> dict:
        """The devserver writes records shortly after a close: poll until one parses."""
        deadline = time.monotonic() + timeout
        last_error = None
        while time.monotonic() < deadline:
            if not self.alive():
                pytest.fail(f"the devserver died (exit {self.proc.returncode}):\n{self.log_tail()}")
            if path.exists():
                try:
                    return json.loads(path.read_text())
                except ValueError as exc:  # written while we read: try again
                    last_error = exc
            time.sleep(0.05)
        raise AssertionError(
            f"no record {path} within {timeout} s (last parse error: {last_error}); "
            f"records present: {sorted(p.name for p in path.parent.glob('*.json'))}")

    def log_mark(self) -> int:
        """The current size of the devserver's log, for assert_healthy()."""
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def assert_healthy(self, mark: int = 0) -> None:
        """The devserver is alive and logged no unhandled error since `mark`."""
        assert self.alive(), f"the devserver died (exit {self.proc.returncode}):\n{self.log_tail()}"
        with open(self.log_path, "rb") as f:
            f.seek(mark)
            text = f.read().decode(errors="replace")
        bad = [line for line in text.splitlines()
               if any(s in line for s in ("UNHANDLED", "Traceback", "session failed",
                                          "agent side failed", "Task exception"))]
        assert not bad, "the devserver logged errors:\n" + "\n".join(bad[:20])

    def user_wav(self, record: dict) -> Path:
        """The WAV of the user's audio that the devserver wrote for a record."""
        assert record.get("user_audio_wav"), "the record names no user WAV"
        return self.record_dir / record["user_audio_wav"]


def _start_devserver(tmp_path_factory, repo_root: Path, extra_args=()):
    """Starts a devserver; returns (DevServer, log_file). Fails the test run if it
    does not come up."""
    if not DEVSERVER.exists():
        pytest.fail(f"{DEVSERVER} does not exist", pytrace=False)
    workdir = tmp_path_factory.mktemp("devserver")
    record_dir = workdir / "records"
    record_dir.mkdir()
    log_path = workdir / "devserver.stderr"
    log_file = open(log_path, "wb")
    proc = subprocess.Popen(
        [sys.executable, str(DEVSERVER), "--host", "127.0.0.1", "--port", "0",
         "--record-dir", str(record_dir), "--think-ms", "100", *map(str, extra_args)],
        cwd=str(repo_root), stdout=subprocess.PIPE, stderr=log_file,
        text=True, bufsize=1)

    ready = threading.Event()
    found = {}
    lines: list = []

    def reader():
        # Keeps draining stdout for the whole session so the server never blocks on it.
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith(READY_PREFIX) and not ready.is_set():
                found["url"] = line[len(READY_PREFIX):].strip()
                ready.set()
        ready.set()

    threading.Thread(target=reader, name="devserver-stdout", daemon=True).start()
    if not ready.wait(STARTUP_TIMEOUT) or "url" not in found:
        proc.kill()
        proc.wait()
        log_file.close()
        pytest.fail(
            f"the devserver did not print {READY_PREFIX.strip()} within {STARTUP_TIMEOUT} s "
            f"(exit {proc.returncode}); stdout: {lines[-10:]}\nstderr:\n"
            + log_path.read_text(errors="replace")[-4000:], pytrace=False)

    server = DevServer(proc, found["url"], record_dir, log_path)
    server.stdout_lines = lines
    return server, log_file


def _stop_devserver(server: DevServer, log_file) -> None:
    proc = server.proc
    crashed = proc.poll()
    if crashed is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log_file.close()
    if crashed is not None:
        pytest.fail(f"the devserver crashed during the tests (exit {crashed}):\n"
                    + server.log_tail(), pytrace=False)


@pytest.fixture(scope="session")
def devserver(tmp_path_factory, repo_root: Path):
    server, log_file = _start_devserver(tmp_path_factory, repo_root)
    yield server
    _stop_devserver(server, log_file)


@pytest.fixture(scope="session")
def devserver_factory(tmp_path_factory, repo_root: Path):
    started = []

    def start(*extra_args) -> DevServer:
        server, log_file = _start_devserver(tmp_path_factory, repo_root, extra_args)
        started.append((server, log_file))
        return server

    yield start
    for server, log_file in started:
        _stop_devserver(server, log_file)


@pytest.fixture(scope="session")
def devserver_variant(devserver, devserver_factory):
    started = {(): devserver}

    def get(*extra_args) -> DevServer:
        key = tuple(map(str, extra_args))
        if key not in started:
            started[key] = devserver_factory(*key)
        return started[key]

    return get


@pytest.fixture(scope="session")
def burst_devserver(devserver_variant):
    return devserver_variant("--agent-audio", "burst")


@pytest.fixture(scope="session")
def recorder(millis):
    from millis_testkit import Recorder

    def make(client, pump=None):
        rec = Recorder(client, pump)
        for name in ("onreconnecting", "onreconnected"):
            client.on(name, rec._make(name))
        return rec

    return make


def _fd_targets() -> dict:
    targets = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            targets[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass  # the fd of the listdir itself, closed meanwhile
    return targets


def _task_names() -> dict:
    names = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            names[tid] = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
        except OSError:
            pass
    return names


class ProcessHealth:
    """fds and threads of this process before a test, compared by check()."""

    def __init__(self) -> None:
        self.fds = _fd_targets()
        self.tasks = _task_names()
        self.threads = threading.active_count()

    def check(self, settle: float = 3.0) -> None:
        deadline = time.monotonic() + settle
        while True:
            fds, tasks, threads = _fd_targets(), _task_names(), threading.active_count()
            if len(fds) <= len(self.fds) and len(tasks) <= len(self.tasks) and threads <= self.threads:
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        new_fds = {fd: t for fd, t in fds.items() if self.fds.get(fd) != t}
        new_tasks = {tid: n for tid, n in tasks.items() if tid not in self.tasks}
        raise AssertionError(
            f"resources left over after the client was closed: fds {len(self.fds)} -> "
            f"{len(fds)} (new: {new_fds}), OS threads {len(self.tasks)} -> {len(tasks)} "
            f"(new: {new_tasks}), Python threads {self.threads} -> {threads} "
            f"({[t.name for t in threading.enumerate()]})")


@pytest.fixture(scope="session")
def _engine_warm(millis, devserver):
    """Starts the engine's process-wide network thread once, so that it is part of the
    baseline of process_health (it lives as long as the process)."""
    client = millis.Client("test-public-key", devserver.url)
    try:
        ready = threading.Event()
        client.on("onready", lambda *a: ready.set())
        client.start(agent_id="quick-agent")
        ready.wait(10)
        client.stop()
        client.wait_closed(10)
    finally:
        client.close()
    time.sleep(0.2)


@pytest.fixture
def process_health(_engine_warm):
    return ProcessHealth()


class Pacer(threading.Thread):
    """Sends 20 ms frames (640 bytes) in real time from start() until stop(): the
    PCM given to feed() first, silence (or `filler`) otherwise. Unlike
    millis_testkit.Streamer it keeps going when the client refuses audio (a
    reconnection gap), and notes every frame as (monotonic time, accepted)."""

    FRAME = 640

    def __init__(self, client, filler: bytes = b""):
        super().__init__(name="test-pacer", daemon=True)
        self.client = client
        self.filler = filler or bytes(self.FRAME)
        assert len(self.filler) == self.FRAME
        self._pending = bytearray()
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self.frames: list = []  # (t, accepted)
        self.error = None

    def feed(self, pcm: bytes) -> None:
        with self._lock:
            self._pending += pcm

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout)

    def accepted_between(self, t0: float, t1: float) -> list:
        return [ok for t, ok in self.frames if t0 <= t <= t1]

    def run(self) -> None:
        start = time.monotonic()
        i = 0
        try:
            while not self._stop_event.is_set() and not self.client.closed:
                with self._lock:
                    data = bytes(self._pending[:self.FRAME])
                    del self._pending[:self.FRAME]
                if len(data) < self.FRAME:
                    data = data + self.filler[len(data):]
                t = time.monotonic()
                self.frames.append((t, self.client.send_audio(data)))
                i += 1
                delay = start + i * 0.02 - time.monotonic()
                if delay > 0:
                    self._stop_event.wait(delay)
        except Exception as exc:  # the client was closed under it, or a real failure
            if not self.client.closed:
                self.error = exc


class StateSampler(threading.Thread):
    """Samples client.connection_state every few ms: [(monotonic time, state)]."""

    def __init__(self, client, period: float = 0.003):
        super().__init__(name="test-state-sampler", daemon=True)
        self.client = client
        self.period = period
        self.samples: list = []
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(5)

    def between(self, t0: float, t1: float) -> list:
        return [s for t, s in self.samples if t0 <= t <= t1]

    def run(self) -> None:
        while not self._stop_event.is_set() and not self.client.closed:
            try:
                self.samples.append((time.monotonic(), self.client.connection_state))
            except Exception:
                return
            self._stop_event.wait(self.period)


@pytest.fixture(scope="session")
def pacer():
    """The Pacer class: pacer(client) -> a real-time audio sender thread."""
    return Pacer


@pytest.fixture(scope="session")
def state_sampler():
    """The StateSampler class: state_sampler(client) -> a connection-state sampler."""
    return StateSampler
