"""A smoke run of the scale benchmark (bench/, `make bench`): it builds the load server
(make -C bench/server) and millis_scale (against build/pkgconfig), runs 20
application-mode sessions for 3 s against the server, and checks only that it ran and
that no frame was lost either way. No timing is asserted: the benchmark's figures are
for `make bench`, not for the test suite.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "bench" / "lib"))
import benchlib as B  # noqa: E402

SESSIONS = 20
SECONDS = 3


@pytest.fixture(scope="module")
def programs(library_path, tmp_path_factory):
    if os.environ.get("MILLIS_SANITIZER"):
        # bench/lib builds against the release library of the real tree, which a
        # sanitizer's preloaded runtime would only slow down; the suite covers the paths.
        pytest.skip("the benchmark smoke run is for the release build")
    out = tmp_path_factory.mktemp("bench")
    try:
        server = B.build_server()
        scale = B.build_scale(out / "millis_scale")
    except B.BenchError as e:
        pytest.fail(str(e), pytrace=False)
    return server, scale


def test_scale_runs_and_loses_no_frame(programs, tmp_path):
    server, scale = programs
    B.raise_fd_limit(4 * SESSIONS + 256)
    stamped = "--stamped" in B.server_help(server)
    # Short turns, so that agent audio flows within the 3 s.
    with B.LoadServer(tmp_path / "server.json", stamped=stamped, server=server,
                      extra=["--turn-ms", "1000", "--answer-ms", "500"]) as srv:
        try:
            client = B.run_scale(scale, srv.url, SESSIONS, SECONDS, tmp_path / "client.json",
                                 server_pid=srv.pid, ramp_s=0.2, settle_s=0.2, drain_s=1.5)
        except B.BenchError as e:
            pytest.fail(str(e), pytrace=False)
    figures = B.account(client, B.server_summary(srv.stats))
    shown = {k: figures[k] for k in ("frames_due", "frames_sent", "frames_received_by_server",
                                     "frames_dropped_by_library", "agent_frames_out", "agent_frames_delivered")}

    assert client["sessions_ready"] == SESSIONS, client
    assert client["sessions_closed_early"] == 0 and client["errors"] == 0, client
    due = SESSIONS * SECONDS * 50
    assert figures["frames_due"] == due, shown
    assert client["frames_handed"] == due, (client["frames_handed"], client["frames_refused"],
                                            client["frames_not_ready"])
    assert figures["frames_dropped_by_library"] == 0, shown
    assert figures["frames_sent"] == due, shown
    assert figures["frames_received_by_server"] == due, shown
    assert figures["agent_frames_out"] > 0, shown
    assert figures["agent_frames_delivered"] == figures["agent_frames_out"], shown
    assert figures["zero_loss"], figures
    if stamped:
        # every frame carried its due time (the value of the lateness is not checked)
        assert figures["server_lateness_count"] == due, figures
