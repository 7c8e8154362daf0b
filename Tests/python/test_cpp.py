"""The C++ side of libmillis: include/millis.hpp, its test program, the C++ example.

As for the C programs (test_c_programs.py, whose helpers and fixtures are used here):
each program is compiled with the system's C++ compiler against the build tree's
pkg-config file into a pytest temporary directory, then run; the ones that hold a
conversation talk to the devserver fixture. Tests/sanitizers/sanitize.py also runs
Tests/cpp/test_millis_hpp.cpp under ASan and TSan.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from test_c_programs import (  # noqa: F401  (pkg_env and millis_flags are fixtures)
    WARNINGS, _show, check_example_events, millis_flags, pkg_env, read_wav_checked, run, tool, user_wav)

STANDARDS = ["c++17", "c++20"]
# Beyond what the docs promise (-Wall -Wextra -Werror -pedantic): what stricter projects
# turn on, so that including the header never breaks their build.
STRICT = ["-Wshadow", "-Wconversion", "-Wsign-conversion", "-Wold-style-cast", "-Wnon-virtual-dtor",
          "-Wzero-as-null-pointer-constant"]


def compilers() -> list:
    """c++ (the one the docs name), and clang++ when there is one."""
    found = [tool("c++")]
    clang = shutil.which("clang++")
    if clang:
        found.append(clang)
    return found


@pytest.fixture(scope="module")
def cpp_build_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cpp-programs")


def compiler_env(env: dict) -> dict:
    """The compilers without the sanitizer runtime that Tests/sanitizers/sanitize.py preloads
    into every process: they are not what is tested (the programs link it through millis.pc)."""
    return {k: v for k, v in env.items() if k != "LD_PRELOAD"}


def compile_cpp(source: Path, out: Path, flags: list, env: dict, *, std: str = "c++17",
                extra: list | None = None, compiler: str | None = None) -> Path:
    cmd = [compiler or tool("c++"), f"-std={std}"] + WARNINGS + (extra or []) + [source] + flags + ["-o", out]
    run(cmd, timeout=180, env=compiler_env(env))
    return out


@pytest.fixture(scope="module")
def test_hpp_exe(repo_root, cpp_build_dir, millis_flags, pkg_env) -> Path:
    return compile_cpp(repo_root / "Tests" / "cpp" / "test_millis_hpp.cpp", cpp_build_dir / "test_millis_hpp",
                       millis_flags + ["-pthread"], pkg_env)


@pytest.fixture(scope="module")
def cpp_example_exe(repo_root, cpp_build_dir, millis_flags, pkg_env) -> Path:
    """Built as its header comment says: c++ -std=c++17 millis_example.cpp $(pkg-config ...)."""
    return compile_cpp(repo_root / "bindings" / "cpp" / "millis_example.cpp", cpp_build_dir / "millis_example",
                       millis_flags, pkg_env)


# ------------------------------------------------------------------------------------
# Compilation
# ------------------------------------------------------------------------------------

@pytest.mark.parametrize("std", STANDARDS + ["c++23"])
def test_header_alone_compiles_warning_free(std, repo_root, millis_flags, pkg_env, tmp_path):
    """millis.hpp by itself (twice: its include guard), with every compiler at hand, as
    C++17, C++20 and C++23, under -Wall -Wextra -Werror -pedantic and stricter warnings."""
    source = tmp_path / "only.cpp"
    source.write_text("#include <millis.hpp>\n#include <millis.hpp>\nint main() { return 0; }\n")
    cflags = [f for f in millis_flags if f.startswith("-I")]
    for compiler in compilers():
        run([compiler, f"-std={std}"] + WARNINGS + STRICT + ["-fsyntax-only", source] + cflags,
            timeout=120, env=compiler_env(pkg_env))


@pytest.mark.parametrize("std", STANDARDS)
def test_cpp_sources_compile_warning_free(std, repo_root, millis_flags, pkg_env, cpp_build_dir):
    """The test program and the example, as C++17 and C++20, with every compiler at hand."""
    sources = [repo_root / "Tests" / "cpp" / "test_millis_hpp.cpp", repo_root / "bindings" / "cpp" / "millis_example.cpp"]
    for compiler in compilers():
        for source in sources:
            compile_cpp(source, cpp_build_dir / f"{source.stem}.{Path(compiler).name}.{std}",
                        millis_flags + ["-pthread"], pkg_env, std=std, compiler=compiler)


# ------------------------------------------------------------------------------------
# Tests/cpp/test_millis_hpp.cpp
# ------------------------------------------------------------------------------------

def test_cpp_api(test_hpp_exe, pkg_env):
    """Errors as millis::Error (status and the library's message), moved-from and closed
    objects (poll and run throw), send_audio's false for "not ready", the event queue every
    client keeps (0 refused), run() refused with no conversation to wait for."""
    result = run([test_hpp_exe, "api"], timeout=60, env=pkg_env)
    assert "test_millis_hpp: api:" in result.stdout, _show(result)


def test_cpp_conversation(test_hpp_exe, devserver, repo_root, pkg_env):
    """The devserver's conversation through every handler, all run on the thread that
    polls, none lost before the first poll; a handler's exception out of poll(); events()
    and dispatch(), and run_for(), against an unreachable server."""
    mark = devserver.log_mark()
    result = run([test_hpp_exe, "conversation", devserver.url, user_wav(repo_root)], timeout=180, env=pkg_env)
    assert "test_millis_hpp: conversation:" in result.stdout, _show(result)
    devserver.assert_healthy(mark)


def test_cpp_destruction_order(test_hpp_exe, devserver, repo_root, pkg_env):
    """Objects whose Client is declared before the mutex, condition variable and vector
    its handlers use through `this`, with no close() in their destructors, destroyed while
    the conversation goes on (handlers run by poll() on the main thread, or by run() on a
    thread of the object's); close() from inside a handler; a Client destroyed from inside
    its own handler. Under Tests/sanitizers/sanitize.py this runs with ASan and TSan."""
    result = run([test_hpp_exe, "order", devserver.url, user_wav(repo_root)], timeout=240, env=pkg_env)
    assert "test_millis_hpp: order:" in result.stdout, _show(result)
    assert result.stdout.count("destroyed 10 times during the connection") == 2, _show(result)


# ------------------------------------------------------------------------------------
# The example
# ------------------------------------------------------------------------------------

def test_cpp_example_conversation(cpp_example_exe, devserver, repo_root, pkg_env, tmp_path):
    """The example holds the devserver's two-turn conversation and prints each event."""
    out_wav = tmp_path / "agent.wav"
    result = run([cpp_example_exe, "--endpoint", devserver.url, "--agent-id", "demo-agent",
                  "--input", user_wav(repo_root), "--output", out_wav],
                 timeout=120, env=pkg_env, cwd=tmp_path)
    text = check_example_events(result)
    session = re.search(r"^session id: (\S+)$", text, re.M)
    assert session, _show(result)
    assert re.search(r'^stats: \{"frames_sent":\d+', text, re.M), _show(result)
    assert devserver.record(session.group(1), timeout=15)["close"]["code"] == 1000
    assert f"the agent's voice: {out_wav}" in text, _show(result)
    assert any(read_wav_checked(out_wav)), "the agent's audio is all zeros"


def test_cpp_example_errors(cpp_example_exe, pkg_env, tmp_path, repo_root):
    """A refused call is told with millis::Error's what(); an unreachable server through
    the error and close handlers; exit 1 for both."""
    help_ = run([cpp_example_exe, "--help"], timeout=30, env=pkg_env)
    assert "--endpoint" in help_.stdout and "MILLIS_PUBLIC_KEY" in help_.stdout
    bogus = run([cpp_example_exe, "--bogus", "x"], timeout=30, env=pkg_env, expect=1)
    assert "usage:" in bogus.stderr, _show(bogus)
    missing = run([cpp_example_exe, "--input", tmp_path / "nope.wav", "--output", tmp_path / "agent.wav"],
                  timeout=30, env=pkg_env, expect=1)
    assert "error: file error: " in missing.stderr and "nope.wav" in missing.stderr, _show(missing)
    unreachable = run([cpp_example_exe, "--endpoint", "ws://127.0.0.1:1/millis", "--input", user_wav(repo_root),
                       "--output", tmp_path / "none.wav"], timeout=60, env=pkg_env, cwd=tmp_path, expect=1)
    assert "onerror could not connect: " in unreachable.stdout, _show(unreachable)
    assert "onclose 1006" in unreachable.stdout, _show(unreachable)


def test_cpp_example_makefile_respects_pkg_config_path(repo_root, pkg_env, tmp_path):
    """bindings/cpp/Makefile builds with nothing but pkg-config, found via PKG_CONFIG_PATH."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    for name in ("Makefile", "millis_example.cpp"):
        shutil.copy(repo_root / "bindings" / "cpp" / name, tmp_path / name)
    result = run(["make", "-C", tmp_path, "millis_example"], timeout=180, env=pkg_env)
    assert "pkg-config --cflags --libs millis" in result.stdout, _show(result)
    run([tmp_path / "millis_example", "--help"], timeout=30, env=pkg_env)
