"""Misuse and life cycle of the C API: Tests/c/test_lifecycle.c, one section per test.

The program is compiled like the other C tests (C99, -Wall -Wextra -Werror -pedantic,
nothing but `pkg-config --cflags --libs millis` from build/pkgconfig) and run against
the devserver fixture (agents quick-agent, demo-agent and the fault-* ids).

  null              NULL for every pointer parameter of every function of millis.h
  connecting        destroy while connecting
  talking           destroy while talking
  in-callback       destroy / stop from inside each callback
  demo              the same for onsessionended / onfunction (demo-agent, ~15 s)
  cycles            1000 create/converse/destroy cycles: no fd, thread or RSS growth
  many              200 clients ready at once, destroyed in random order; no growth
  many-connecting   200 clients destroyed while connecting; no growth

MILLIS_LIFECYCLE_SEED=N replays a random destroy order (every run prints its seed).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from test_c_programs import (  # noqa: F401  (fixtures are used by name)
    _show, build_dir, compile_c, millis_flags, pkg_env, run, user_wav)

SOURCE = Path(__file__).resolve().parents[2] / "Tests" / "c" / "test_lifecycle.c"


@pytest.fixture(scope="module")
def lifecycle_exe(repo_root, build_dir, millis_flags, pkg_env) -> Path:
    return compile_c(repo_root / "Tests" / "c" / "test_lifecycle.c", build_dir / "test_lifecycle",
                     millis_flags, pkg_env)


# Set by Tests/sanitizers/sanitize.py. ASan keeps freed memory in quarantine and TSan
# in its shadow, so RSS says nothing there: growth is reported, not bounded, and
# LeakSanitizer checks the lifecycle program's leaks instead (sanitize.py runs it with
# leak detection). Threads and descriptors are checked in every build.
SANITIZER = os.environ.get("MILLIS_SANITIZER")


def run_section(exe: Path, devserver, env: dict, section: str, *extra, timeout: float = 120):
    seed = os.environ.get("MILLIS_LIFECYCLE_SEED")
    args = [exe, devserver.url, section, *extra] + (["--seed", seed] if seed else [])
    if SANITIZER:
        args += ["--rss-bound-kb", "0"]
        timeout *= 4
    result = run(args, timeout=timeout, env=env)
    assert f"test_lifecycle: {section}:" in result.stdout, _show(result)
    print(result.stdout)  # the measured figures, with -s
    return result.stdout


def test_lifecycle_compiles_as_c11(repo_root, build_dir, millis_flags, pkg_env):
    compile_c(repo_root / "Tests" / "c" / "test_lifecycle.c", build_dir / "test_lifecycle.c11",
              millis_flags, pkg_env, std="c11")


def test_null_table_covers_every_function(repo_root):
    """Every function of millis.h that takes a pointer has a row in the NULL table."""
    header = re.sub(r"/\*.*?\*/", "", (repo_root / "include" / "millis.h").read_text(), flags=re.S)
    source = SOURCE.read_text()
    table = source[source.index("#define ROWS(X)"):source.index("#define ROW_DATA")]
    decls = re.findall(r"^[a-z_ ]+?\s*\**(millis_\w+)\(([^;]*)\);", header, re.M)
    assert len(decls) > 40, decls
    missing = [name for name, params in decls
               if "*" in params or "_cb cb" in params
               if f'X("{name}(' not in table]
    assert not missing, f"no NULL row for: {missing}"


def test_null_arguments(lifecycle_exe, devserver, pkg_env):
    run_section(lifecycle_exe, devserver, pkg_env, "null")


def test_destroy_while_connecting(lifecycle_exe, devserver, pkg_env):
    run_section(lifecycle_exe, devserver, pkg_env, "connecting")


def test_destroy_while_talking(lifecycle_exe, devserver, pkg_env):
    run_section(lifecycle_exe, devserver, pkg_env, "talking")


def test_destroy_and_stop_inside_each_callback(lifecycle_exe, devserver, pkg_env):
    out = run_section(lifecycle_exe, devserver, pkg_env, "in-callback")
    for cb in ("onopen", "onready", "onaudio", "ontranscript", "onresponsetext", "onlatency",
               "onagentstate", "onlog", "onclose", "onerror", "onmessage", "onreconnecting",
               "onreconnected"):
        for act in ("destroy", "stop"):
            assert re.search(rf"^\s+{act}\s+in {cb}\s.*: ok", out, re.M), (act, cb, out)


def test_destroy_and_stop_in_session_end_and_function(lifecycle_exe, devserver, pkg_env, repo_root):
    out = run_section(lifecycle_exe, devserver, pkg_env, "demo", "--wav", user_wav(repo_root))
    for cb in ("onsessionended", "onfunction"):
        for act in ("destroy", "stop"):
            assert re.search(rf"^\s+{act}\s+in {cb}\s.*: ok", out, re.M), (act, cb, out)


def test_1000_cycles_without_growth(lifecycle_exe, devserver, pkg_env):
    out = run_section(lifecycle_exe, devserver, pkg_env, "cycles", "--cycles", "1000", "--warmup", "50",
                      timeout=180)
    session = re.search(r"^\s+last session: (\w+)$", out, re.M)
    assert session, out
    record = devserver.record(session.group(1), timeout=15)
    assert record["agent_id"] == "quick-agent"
    assert record["audio_bytes_received"] == 5 * 640, record
    assert record["agent_audio_bytes_sent"] == 5 * 640, record
    assert record["close"]["code"] == 1000 and record["close"]["by"] == "client", record["close"]


def test_200_clients_at_once(lifecycle_exe, devserver, pkg_env):
    run_section(lifecycle_exe, devserver, pkg_env, "many", "--clients", "200", timeout=180)


def test_200_clients_destroyed_while_connecting(lifecycle_exe, devserver, pkg_env):
    run_section(lifecycle_exe, devserver, pkg_env, "many-connecting", "--clients", "200", timeout=180)
