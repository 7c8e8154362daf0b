"""The event queue of the C ABI (millis.h "Event queue"): Tests/c/test_events.c, a
program that takes its clients' events in its own poll() loop, against the devserver.

Compiled like every C program of the suite: the system compiler, -std=c99 and -std=c11
with -Wall -Wextra -Werror -pedantic, through the build tree's pkg-config file.
"""

from __future__ import annotations

import pytest

from test_c_programs import compile_c, run, user_wav, _show  # noqa: F401 (fixtures below)
from test_c_programs import pkg_env, millis_flags, build_dir  # noqa: F401


@pytest.fixture(scope="module")
def test_events_exe(repo_root, build_dir, millis_flags, pkg_env):  # noqa: F811
    source = repo_root / "Tests" / "c" / "test_events.c"
    compile_c(source, build_dir / "test_events.c11", millis_flags, pkg_env, std="c11")
    return compile_c(source, build_dir / "test_events", millis_flags, pkg_env)


def test_c_event_queue_in_a_poll_loop(test_events_exe, devserver, repo_root, pkg_env):  # noqa: F811
    result = run([test_events_exe, devserver.url, user_wav(repo_root)], timeout=150, env=pkg_env)
    assert "test_events:" in result.stdout, _show(result)
    assert "dropped here" in result.stdout, _show(result)
