"""The benchmark's verdicts (bench/run.py: ratios(), targets()) on synthetic figures, on
both sides of each threshold: a target table that always said "yes" would pass every
`make bench` unnoticed. No benchmark runs here and no timing is measured.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "bench"))
sys.path.insert(0, str(REPO_ROOT / "bench" / "lib"))
import run as bench  # noqa: E402


def fit(slope: float) -> Dict[str, Any]:
    return {"intercept": 0.0, "slope": slope, "r2": 1.0, "points": 3}


def results(*, lib_cpu: float, peer_cpu: float, floor_cpu: float, lib_rss: float, peer_rss: float,
            sustained_1000: bool = True, sdk_out_ms: float = 0.05, w2d_ms: float = 5.0, clear_ms: float = 0.7,
            connect_extra_ms: float = 0.1) -> Dict[str, Any]:
    """CPU slopes in ms per session-second, RSS slopes in KiB per session."""
    def point(n: int, cpu_ms: float, sustained: bool = True) -> Dict[str, Any]:
        return {"sessions": n, "runs": [{}], "sustained": sustained,
                "summary": {"cpu_cores": {"median": cpu_ms * n / 1000},
                            "cpu_ms_per_session_second": {"median": cpu_ms},
                            "rss_kib_per_session": {"median": 4.0}}}
    r: Dict[str, Any] = {
        "scale": {
            "libmillis": {"200": point(200, lib_cpu), "1000": point(1000, lib_cpu, sustained_1000)},
            "peer": {"200": point(200, peer_cpu)},
            "floor": {"200": point(200, floor_cpu)},
        },
        "sustainable": {"libmillis": {"largest_sustained": 1000 if sustained_1000 else 200}},
        "fits": {c: {"cpu_cores_vs_sessions": fit(cpu / 1000), "rss_kib_vs_sessions": fit(rss)}
                 for c, cpu, rss in (("libmillis", lib_cpu, lib_rss), ("peer", peer_cpu, peer_rss),
                                     ("floor", floor_cpu, 1.0))},
        "latency": {"summary": {k: {"median": v} for k, v in {
            "sdk_latency.outgoing.added_p50_ms": sdk_out_ms, "sdk_latency.outgoing.added_p99_ms": sdk_out_ms,
            "sdk_latency.incoming.added_p50_ms": 0.01, "sdk_latency.incoming.added_p99_ms": 0.02,
            "connect.ws.client_minus_server_ms.p50": connect_extra_ms, "connect.ws.start_to_ready_ms.p50": 0.3,
            "connect.wss.client_minus_server_ms.p50": connect_extra_ms, "connect.wss.start_to_ready_ms.p50": 1.5,
        }.items()}},
        "device": {"0": {"1": {"summary": {"wire_to_device_beyond_queue_ms": {"median": w2d_ms},
                                           "wire_to_device_beyond_queue_max_ms": {"median": w2d_ms * 2},
                                           "capture_to_wire_ms": {"median": 1.0}}}}},
        "audio": {"summary": {"default": {"last_clear_ms": {"median": clear_ms, "min": clear_ms, "max": clear_ms}}}},
    }
    r["ratios"] = bench.ratios(r)
    return r


def verdicts(r: Dict[str, Any]) -> Dict[str, Any]:
    return {t["target"]: t["met"] for t in bench.targets(r)}


def find(v: Dict[str, Any], start: str) -> Any:
    keys = [k for k in v if k.startswith(start)]
    assert len(keys) == 1, (start, list(v))
    return v[keys[0]]


def test_ratios_against_the_peer_and_the_floor():
    m = results(lib_cpu=0.6, peer_cpu=2.4, floor_cpu=0.5, lib_rss=4.0, peer_rss=24.0)["ratios"]["marginal"]
    assert m["cpu_marginal_ratio"] == pytest.approx(4.0)
    assert m["rss_marginal_ratio"] == pytest.approx(6.0)
    assert m["peer_over_floor_cpu"] == pytest.approx(4.8)                 # the ceiling
    assert m["libmillis_above_floor_cpu"] == pytest.approx(0.1 / 1000)
    assert m["cpu_above_floor_ratio"] == pytest.approx(19.0)              # (2.4 - 0.5) / (0.6 - 0.5)


@pytest.mark.parametrize("lib_cpu, lib_rss, cpu_met, rss_met", [
    (0.6, 4.0, False, True),       # 4x and 6x
    (0.2, 5.0, True, False),       # 12x and 4.8x
])
def test_ratio_targets_follow_the_marginal_ratio(lib_cpu, lib_rss, cpu_met, rss_met):
    v = verdicts(results(lib_cpu=lib_cpu, peer_cpu=2.4, floor_cpu=0.1, lib_rss=lib_rss, peer_rss=24.0))
    assert find(v, "CPU per session-second >= 10x") is cpu_met
    assert find(v, "RSS per session >= 5x") is rss_met


def test_the_cpu_row_names_the_ceiling():
    rows = bench.targets(results(lib_cpu=0.6, peer_cpu=2.4, floor_cpu=0.5, lib_rss=4.0, peer_rss=24.0))
    cpu = next(t for t in rows if t["target"].startswith("CPU per session-second"))
    assert "4.8× cheaper than the peer" in cpu["measured"]


def test_scale_targets():
    ok = verdicts(results(lib_cpu=0.6, peer_cpu=2.4, floor_cpu=0.5, lib_rss=4.0, peer_rss=24.0))
    assert find(ok, ">= 1000 application-mode sessions") is True
    assert find(ok, "client CPU <= 1 core") is True                      # 0.6 cores at 1000
    heavy = verdicts(results(lib_cpu=1.2, peer_cpu=2.4, floor_cpu=0.5, lib_rss=4.0, peer_rss=24.0,
                             sustained_1000=False))
    assert find(heavy, ">= 1000 application-mode sessions") is False
    assert find(heavy, "client CPU <= 1 core") is False                  # 1.2 cores at 1000


@pytest.mark.parametrize("field, good, bad, target", [
    ("sdk_out_ms", 0.9, 1.1, "SDK-added latency <= 1 ms each way (application"),
    ("w2d_ms", 10.9, 11.1, "SDK-added latency <= 1 ms each way beyond the audio period"),
    ("clear_ms", 9.9, 10.1, "barge-in"),
    ("connect_extra_ms", 1.9, 2.1, "start → onready within 2 ms of the server's own time (ws://"),
])
def test_latency_targets_on_both_sides_of_the_bound(field, good, bad, target):
    base = dict(lib_cpu=0.6, peer_cpu=2.4, floor_cpu=0.5, lib_rss=4.0, peer_rss=24.0)
    assert find(verdicts(results(**base, **{field: good})), target) is True
    assert find(verdicts(results(**base, **{field: bad})), target) is False


def test_missing_parts_are_not_judged():
    r = results(lib_cpu=0.6, peer_cpu=2.4, floor_cpu=0.5, lib_rss=4.0, peer_rss=24.0)
    for part in ("latency", "device", "audio"):
        del r[part]
    targets = [t["target"] for t in bench.targets(r)]
    assert not [t for t in targets if "latency" in t or "barge-in" in t or "onready" in t]
