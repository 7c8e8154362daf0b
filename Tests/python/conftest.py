"""Shared fixtures of the Python test suite (also used by test_c_programs.py).

Fixtures:
  repo_root     the repository root (pathlib.Path).
  library_path  <repo>/build/libmillis.so; fails with "run make build" when missing.
                Sets MILLIS_LIBRARY and puts bindings/python on sys.path.
  millis        the imported binding (depends on library_path).
  devserver     one devserver for the session: .url, .base, .record_dir,
                .record(session_id, timeout=15).
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
        path = self.record_dir / f"{session_id}.json"
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
            f"records present: {sorted(p.name for p in self.record_dir.glob('*.json'))}")

    def user_wav(self, record: dict) -> Path:
        """The WAV of the user's audio that the devserver wrote for a record."""
        assert record.get("user_audio_wav"), "the record names no user WAV"
        return self.record_dir / record["user_audio_wav"]


@pytest.fixture(scope="session")
def devserver(tmp_path_factory, repo_root: Path):
    if not DEVSERVER.exists():
        pytest.fail(f"{DEVSERVER} does not exist", pytrace=False)
    workdir = tmp_path_factory.mktemp("devserver")
    record_dir = workdir / "records"
    record_dir.mkdir()
    log_path = workdir / "devserver.stderr"
    log_file = open(log_path, "wb")
    proc = subprocess.Popen(
        [sys.executable, str(DEVSERVER), "--host", "127.0.0.1", "--port", "0",
         "--record-dir", str(record_dir), "--think-ms", "100"],
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
    yield server

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
