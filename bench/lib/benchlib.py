"""Shared pieces of the benchmark (bench/run.py) and its smoke test
(Tests/python/test_bench_smoke.py): building the programs, running the load server,
running one client against it (millis_scale, the Python peer, or millis_loadgen: the
`floor`, a C client with no library), and the accounting of one run (frames lost,
lateness, CPU and RSS per session) from the client's JSON and the server's stats file.

Every client runs one warm-up session before its RSS baseline; its server-side session
id is in the client's JSON (`warmup.session_id`), and server_summary() leaves that
connection out of the frame figures the accounting uses.

Nothing here asserts a timing: the smoke test checks only the counts.
"""

from __future__ import annotations

import json
import os
import resource
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[2]
SERVER_DIR = REPO / "bench" / "server"
SERVER = SERVER_DIR / "millis_loadserver"
SCALE_SOURCE = REPO / "bench" / "scale" / "millis_scale.c"
LOADGEN_SOURCE = SERVER_DIR / "millis_loadgen.c"
PEER = REPO / "bench" / "peer" / "millis_peer.py"
PKGCONFIG_DIR = REPO / "build" / "pkgconfig"
READY_PREFIX = "MILLIS_LOADSERVER_READY "
FRAME_BYTES = 640
SERVER_CPU_LIMIT_CORES = 0.8     # above this, a run's server may have been the bottleneck
LATE_MS = 20.0                   # "sustained": p99 lateness below one frame


class BenchError(RuntimeError):
    pass


# ------------------------------------------------------------------------- building

def build_server() -> Path:
    """`make -C bench/server millis_loadserver` (the load server's own Makefile)."""
    r = subprocess.run(["make", "-s", "-C", str(SERVER_DIR), "millis_loadserver"],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0 or not SERVER.exists():
        raise BenchError(f"make -C bench/server failed:\n{r.stdout}{r.stderr}")
    return SERVER


def pkg_env() -> Dict[str, str]:
    env = dict(os.environ)
    env["PKG_CONFIG_PATH"] = os.pathsep.join(
        [str(PKGCONFIG_DIR)] + ([env["PKG_CONFIG_PATH"]] if env.get("PKG_CONFIG_PATH") else []))
    return env


def build_scale(out: Path) -> Path:
    """cc -O2 bench/scale/millis_scale.c $(pkg-config --cflags --libs millis) against the
    build tree (build/pkgconfig/millis.pc; its rpath finds build/libmillis.so)."""
    if not (PKGCONFIG_DIR / "millis.pc").exists():
        raise BenchError(f"{PKGCONFIG_DIR / 'millis.pc'} is missing: run `make build` first")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "millis"], capture_output=True, text=True,
                           env=pkg_env(), timeout=30)
    if flags.returncode != 0:
        raise BenchError(f"pkg-config millis failed: {flags.stderr}")
    tmp = out.with_name(f".{out.name}.{os.getpid()}")
    cmd = ["cc", "-O2", "-g", "-std=c11", "-Wall", "-Wextra", "-Wshadow", str(SCALE_SOURCE),
           *shlex.split(flags.stdout), "-lpthread", "-lm", "-o", str(tmp)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise BenchError(f"{shlex.join(cmd)} failed:\n{r.stderr}")
    os.replace(tmp, out)
    return out


def build_loadgen(out: Path) -> Path:
    """cc -O2 bench/server/millis_loadgen.c -lm (the `floor` client: no library), into `out`
    (not into bench/server, whose Makefile builds its own copy)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}")
    cmd = ["cc", "-O2", "-g", "-std=c11", "-Wall", "-Wextra", "-Wshadow", "-Wformat=2", str(LOADGEN_SOURCE),
           "-lm", "-o", str(tmp)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise BenchError(f"{shlex.join(cmd)} failed:\n{r.stderr}")
    os.replace(tmp, out)
    return out


def raise_fd_limit(want: int = 20000) -> int:
    """Raises RLIMIT_NOFILE (children inherit it) to `want`, or the hard limit. Returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(max(soft, want), hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


# ------------------------------------------------------------------------- the server

def server_help(server: Path = SERVER) -> str:
    r = subprocess.run([str(server), "--help"], capture_output=True, text=True, timeout=10)
    return r.stdout + r.stderr


def prefix(nice: int = 0, wrap: Sequence[str] = ()) -> List[str]:
    """What goes before a command (the server's or a client's): `nice -n N` and/or a wrapper such as
    `perf record ... --` (bench/profile/profile.py)."""
    return ([] if not nice else ["nice", "-n", str(nice)]) + list(wrap)


class LoadServer:
    """One bench/server/millis_loadserver on a free port, with a stats file.

        with LoadServer(tmp / "server.json", stamped=True) as srv:
            ... srv.url, srv.pid ...
        srv.stats      # the stats file written at SIGTERM
    """

    def __init__(self, stats_path: Path, *, stamped: bool = False, extra: Sequence[str] = (),
                 server: Path = SERVER, env: Optional[Dict[str, str]] = None, nice: int = 0) -> None:
        self.stats_path = Path(stats_path)
        self.cmd = prefix(nice) + [
            str(server), "--port", "0", "--quiet", "--stats", str(self.stats_path)] + \
            (["--stamped"] if stamped else []) + list(extra)
        self.env = env
        self.proc: Optional[subprocess.Popen] = None
        self.url = ""
        self.stats: Dict[str, Any] = {}

    def start(self) -> "LoadServer":
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=self.env)
        line = self.proc.stdout.readline()
        if not line.startswith(READY_PREFIX):
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
            raise BenchError(f"{shlex.join(self.cmd)} did not start: {line!r} {err.strip()}")
        self.url = line.split()[1]
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> Dict[str, Any]:
        if self.proc is None:
            return self.stats
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc.stdout.close()
        self.proc.stderr.close()
        self.proc = None
        try:
            self.stats = json.loads(self.stats_path.read_text())
        except (OSError, ValueError) as e:
            raise BenchError(f"no stats from the server ({self.stats_path}): {e}")
        return self.stats

    def __enter__(self) -> "LoadServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            try:
                self.stop()
            except BenchError:
                if exc[0] is None:
                    raise


# ------------------------------------------------------------------------- the clients

def _run_json(cmd: List[str], json_path: Path, timeout: float, env: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        raise BenchError(f"{shlex.join(cmd)} did not finish within {timeout:.0f} s:\n"
                         f"{(e.stderr or '')[-3000:] if isinstance(e.stderr, str) else ''}")
    if r.returncode != 0:
        raise BenchError(f"{shlex.join(cmd)} exited {r.returncode}:\n{r.stderr[-3000:]}")
    try:
        out = json.loads(Path(json_path).read_text())
    except (OSError, ValueError) as e:
        raise BenchError(f"{shlex.join(cmd)} wrote no JSON ({e}):\n{r.stderr[-3000:]}")
    out["stderr_tail"] = r.stderr[-2000:]
    return out


def client_timeout(sessions: int, seconds: float, ramp_s: float, settle_s: float, drain_s: float) -> float:
    return 30 + ramp_s + 30 + settle_s + seconds + drain_s + 15 + sessions / 100


def run_scale(exe: Path, url: str, sessions: int, seconds: float, json_path: Path, *, server_pid: Optional[int] = None,
              ramp_s: float = 1.0, settle_s: float = 1.0, drain_s: float = 3.0, slots: int = 20,
              mode: str = "application", extra: Sequence[str] = (), env: Optional[Dict[str, str]] = None,
              nice: int = 0, wrap: Sequence[str] = ()) -> Dict[str, Any]:
    cmd = prefix(nice, wrap) + [
        str(exe), "--url", url, "--sessions", str(sessions), "--seconds", str(seconds),
        "--ramp-s", str(ramp_s), "--settle-s", str(settle_s), "--drain-s", str(drain_s), "--slots", str(slots),
        "--mode", mode, "--json", str(json_path), *extra]
    if server_pid:
        cmd += ["--server-pid", str(server_pid)]
    return _run_json(cmd, json_path, client_timeout(sessions, seconds, ramp_s, settle_s, drain_s), env)


def run_floor(exe: Path, url: str, sessions: int, seconds: float, json_path: Path, *,
              server_pid: Optional[int] = None, ramp_s: float = 1.0, settle_s: float = 1.0, drain_s: float = 3.0,
              slots: int = 20, nice: int = 0, wrap: Sequence[str] = ()) -> Dict[str, Any]:
    """bench/server/millis_loadgen with the benchmark's workload (the `floor` series)."""
    cmd = prefix(nice, wrap) + [
        str(exe), "--url", url, "--sessions", str(sessions), "--seconds", str(seconds),
        "--ramp-s", str(ramp_s), "--settle-s", str(settle_s), "--drain-s", str(drain_s), "--slots", str(slots),
        "--json", str(json_path)]
    if server_pid:
        cmd += ["--server-pid", str(server_pid)]
    return _run_json(cmd, json_path, client_timeout(sessions, seconds, ramp_s, settle_s, drain_s))


def run_peer(url: str, sessions: int, seconds: float, json_path: Path, *, server_pid: Optional[int] = None,
             ramp_s: float = 1.0, settle_s: float = 1.0, drain_s: float = 3.0, slots: int = 20,
             python: str = sys.executable, nice: int = 0, wrap: Sequence[str] = ()) -> Dict[str, Any]:
    cmd = prefix(nice, wrap) + [
        python, str(PEER), "--url", url, "--sessions", str(sessions), "--seconds", str(seconds),
        "--ramp-s", str(ramp_s), "--settle-s", str(settle_s), "--drain-s", str(drain_s), "--slots", str(slots),
        "--json", str(json_path)]
    if server_pid:
        cmd += ["--server-pid", str(server_pid)]
    return _run_json(cmd, json_path, client_timeout(sessions, seconds, ramp_s, settle_s, drain_s))


# ------------------------------------------------------------------------- accounting

def warmup_session_ids(client: Dict[str, Any]) -> List[str]:
    """The server-side session id of a client's warm-up session (none without one)."""
    w = client.get("warmup") or {}
    sid = w.get("session_id") if isinstance(w, dict) else None
    return [sid] if isinstance(sid, str) and sid else []


def server_summary(stats: Dict[str, Any], exclude_session_ids: Iterable[str] = ()) -> Dict[str, Any]:
    """The server's stats without the per-connection list (kept small in results.json),
    plus what the list adds up to. Connections of `exclude_session_ids` (the clients'
    warm-up sessions) are summed apart, in "excluded", and left out of the rest of the
    summary; account() subtracts their frames from the server's totals."""
    s = {k: v for k, v in stats.items() if k != "connections"}
    skip = set(exclude_session_ids)
    all_conns = stats.get("connections") or []
    conns = [c for c in all_conns if c.get("session_id") not in skip]
    gone = [c for c in all_conns if c.get("session_id") in skip]
    s["excluded"] = {
        "why": "warm-up sessions (before the RSS baseline): in no frame or loss figure",
        "session_ids": sorted(skip),
        "connections": len(gone),
        "user_frames_in": sum(int(c.get("user_frames_in") or 0) for c in gone),
        "agent_frames_out": sum(int(c.get("agent_frames_out") or 0) for c in gone),
    }
    over = [c.get("user_frames_stamp_over_20ms") for c in conns]
    over = [v for v in over if isinstance(v, (int, float))]
    by: Dict[str, int] = {}
    codes: Dict[str, int] = {}
    for c in conns:
        by[str(c.get("close_by"))] = by.get(str(c.get("close_by")), 0) + 1
        codes[str(c.get("close_code"))] = codes.get(str(c.get("close_code")), 0) + 1
    s["connections_summary"] = {
        "count": len(conns),
        "user_frames_stamp_over_20ms": sum(over) if over else None,
        "connections_with_stamp_over_20ms": sum(1 for v in over if v > 0) if over else None,
        "user_frames_over_20ms_late": sum(int(c.get("user_frames_over_20ms_late") or 0) for c in conns),
        "close_by": by,
        "close_code": codes,
    }
    return s


def _num(v: Any) -> Optional[float]:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def account(client: Dict[str, Any], server: Dict[str, Any]) -> Dict[str, Any]:
    """The figures of one run, from a client's JSON (millis_scale or millis_peer) and the
    server's stats (server_summary() or the raw file). Loss:

      user frames lost = frames due - frames the server received, broken down into
        frames not handed to the client (not ready, refused), frames the library dropped
        (audio_frames_dropped + audio_frames_dropped_backpressure), frames handed but not
        written, frames written but not received by the server;
      agent frames lost = the server's agent_frames_out - frames delivered to the
        application (on_audio bytes / 640; the peer: binary messages received).
    zero_loss: nothing lost either way, nothing dropped, every session ready and none
    closed early.
    """
    is_floor = client.get("client") == "millis_loadgen"
    is_peer = client.get("client") == "millis_peer"
    device = client.get("mode") == "device"
    lib = client.get("library") or {}
    win = client.get("window") or {}
    if "excluded" not in server and "connections" in server:   # the raw stats file
        server = server_summary(server, warmup_session_ids(client))
    excluded = server.get("excluded") or {}
    srv_in = int(server.get("user_frames_in", 0)) - int(excluded.get("user_frames_in") or 0)
    agent_out = int(server.get("agent_frames_out", 0)) - int(excluded.get("agent_frames_out") or 0)
    f: Dict[str, Any] = {"client": "floor" if is_floor else "peer" if is_peer else
                         ("libmillis-device" if device else "libmillis"),
                         "sessions": client.get("sessions"), "sessions_ready": client.get("sessions_ready"),
                         "warmup_excluded_user_frames": int(excluded.get("user_frames_in") or 0),
                         "warmup_excluded_agent_frames": int(excluded.get("agent_frames_out") or 0)}
    if is_peer or is_floor:
        due = int(client.get("frames_due", client.get("frames_expected", 0)))
        sent = int(client.get("frames_sent", 0))
        handed = sent
        dropped = 0
        delivered = int(client.get("agent_frames_received", 0))
        closed_early = int(client.get("sessions_dropped", 0))
    else:
        sent = int(lib.get("frames_sent", 0))
        dropped = int(lib.get("audio_frames_dropped", 0)) + int(lib.get("audio_frames_dropped_backpressure", 0))
        if device:
            # The microphone decides what is due: every frame it produced from onready on.
            # Its frames before onready are dropped by design (audio_frames_dropped), not lost.
            f["frames_dropped_before_ready"] = int(lib.get("audio_frames_dropped", 0))
            dropped = int(lib.get("audio_frames_dropped_backpressure", 0))
            due = sent + dropped + int(lib.get("capture_frames_dropped", 0))
            handed = due
        else:
            due = int(client.get("frames_due", 0))
            handed = int(client.get("frames_handed", 0))
        delivered = int(client.get("agent_bytes", 0)) // FRAME_BYTES
        closed_early = int(client.get("sessions_closed_early", 0))
    f.update({
        "frames_due": due,
        "frames_sent": sent,
        "frames_received_by_server": srv_in,
        "frames_not_handed": due - handed,
        "frames_dropped_by_library": dropped,
        "frames_not_written": handed - dropped - sent,
        "frames_not_received": sent - srv_in,
        "frames_lost": due - srv_in,
        "agent_frames_out": agent_out,
        "agent_frames_delivered": delivered,
        "agent_frames_lost": agent_out - delivered,
        "sessions_closed_early": closed_early,
    })
    if device:
        f["capture_overruns"] = int(lib.get("capture_overruns", 0))
        f["capture_frames_dropped"] = int(lib.get("capture_frames_dropped", 0))
        f["playback_underruns"] = int(lib.get("playback_underruns", 0))
        f["playback_xruns"] = int(lib.get("playback_xruns", 0))
    f["zero_loss"] = (f["frames_lost"] == 0 and dropped == 0 and f["frames_not_received"] == 0
                      and f["agent_frames_lost"] == 0 and f["sessions_ready"] == f["sessions"]
                      and closed_early == 0)
    # lateness of outgoing frames against their schedule: the server's measurement of
    # the stamps (primary), else its arrival-relative view (fallback), and the client's own
    stamp = server.get("user_frame_stamp_lateness_ms")
    if isinstance(stamp, dict) and stamp.get("count"):
        f["lateness_source"] = "server-stamp"
        lat = stamp
    else:
        f["lateness_source"] = "server-arrival"
        lat = server.get("user_frame_lateness_ms") or {}
    for q in ("p50", "p99", "p999", "max"):
        f[f"server_lateness_{q}_ms"] = _num(lat.get(q))
    f["server_lateness_count"] = lat.get("count")
    cs = server.get("connections_summary") or {}
    f["server_frames_stamp_over_20ms"] = cs.get("user_frames_stamp_over_20ms")
    own = client.get("lateness_ms") if is_peer or is_floor else client.get("feed_lateness_ms")
    own = own or {}
    f["client_lateness_source"] = "send returned" if is_peer or is_floor else "send_audio call (feeding thread)"
    for q in ("p50", "p99", "max"):
        f[f"client_lateness_{q}_ms"] = _num(own.get(q))
    ad = client.get("agent_delivery_ms") or {}
    f["agent_delivery_p50_ms"] = _num(ad.get("p50"))
    f["agent_delivery_p99_ms"] = _num(ad.get("p99"))
    # cost, steady state
    n = int(client.get("sessions") or 0)
    wall = _num(win.get("wall_s")) or 0.0
    f["window_s"] = wall
    f["cpu_cores"] = _num(win.get("cpu_cores"))
    f["cpu_ms_per_session_second"] = _num(win.get("cpu_ms_per_session_second"))
    # RSS: the baseline is after the warm-up session (rss_kib_before: older clients, before the first)
    f["rss_kib_per_session"] = _num(client.get("rss_kib_per_session"))
    start, pre = _num(client.get("rss_kib_at_start")), _num(client.get("rss_kib_before_warmup"))
    base = _num(client.get("rss_kib_after_warmup"))
    if base is None:
        base = _num(client.get("rss_kib_before"))
    end = _num(client.get("rss_kib_window_end"))
    f["rss_kib_at_start"], f["rss_kib_before_warmup"], f["rss_kib_after_warmup"] = start, pre, base
    f["rss_kib_window_end"] = end
    f["rss_kib_added"] = (end - base) if base is not None and end is not None else None
    # one-time: everything the process holds at the baseline; split into the process at its
    # start (interpreter / program and shared libraries), up to just before the warm-up
    # (imports, library set-up), and the warm-up session itself (the first connection)
    f["rss_kib_one_time"] = base
    f["rss_kib_init"] = (pre - start) if pre is not None and start is not None else None
    f["rss_kib_first_connection"] = (base - pre) if base is not None and pre is not None else None
    f["rss_kib_since_start"] = (base - start) if base is not None and start is not None else None
    f["vm_hwm_kib"] = _num(client.get("vm_hwm_kib"))
    f["server_cpu_cores"] = _num(win.get("server_cpu_cores"))
    if f["server_cpu_cores"] is None and wall and _num(server.get("cpu_percent_of_core")) is not None:
        f["server_cpu_cores"] = _num(server.get("cpu_percent_of_core")) / 100   # whole run: a fallback
    f["server_cpu_ms_per_session_second"] = (1000 * f["server_cpu_cores"] / n
                                             if f["server_cpu_cores"] is not None and n else None)
    f["server_bottleneck_suspect"] = bool(f["server_cpu_cores"] is not None
                                          and f["server_cpu_cores"] > SERVER_CPU_LIMIT_CORES)
    f["machine_busy_cores"] = _num(win.get("machine_busy_cores"))
    f["machine_softirq_cores"] = _num(win.get("machine_softirq_cores"))
    f["client_runqueue_wait_s"] = _num(win.get("runqueue_wait_s"))
    f["server_runqueue_wait_s"] = _num(win.get("server_runqueue_wait_s"))
    rl = client.get("ready_latency_ms") or {}
    f["ready_p50_ms"], f["ready_p99_ms"] = _num(rl.get("p50")), _num(rl.get("p99"))
    p99 = f["server_lateness_p99_ms"]
    f["sustained"] = bool(f["zero_loss"] and p99 is not None and p99 < LATE_MS)
    return f


# ------------------------------------------------------------------------- statistics

def spread(values: Iterable[Any]) -> Optional[Dict[str, float]]:
    v = [float(x) for x in values if isinstance(x, (int, float)) and not isinstance(x, bool)]
    if not v:
        return None
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}


def median_run(runs: List[Dict[str, Any]], key: str = "server_lateness_p99_ms") -> Optional[int]:
    """Index of the median run by `key` (with an even count, the worse of the two middle
    ones); runs without the key rank last."""
    if not runs:
        return None
    order = sorted(range(len(runs)), key=lambda i: (runs[i].get(key) is None, runs[i].get(key) or 0.0))
    return order[len(order) // 2]


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> Optional[Dict[str, float]]:
    """Least-squares y = a + b x, and R^2."""
    pts = [(float(x), float(y)) for x, y in zip(xs, ys) if x is not None and y is not None]
    if len(pts) < 2 or len({p[0] for p in pts}) < 2:
        return None
    n = len(pts)
    mx = sum(p[0] for p in pts) / n
    my = sum(p[1] for p in pts) / n
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    sxy = sum((p[0] - mx) * (p[1] - my) for p in pts)
    b = sxy / sxx
    a = my - b * mx
    ss_tot = sum((p[1] - my) ** 2 for p in pts)
    ss_res = sum((p[1] - (a + b * p[0])) ** 2 for p in pts)
    return {"intercept": a, "slope": b, "r2": 1 - ss_res / ss_tot if ss_tot > 0 else 1.0, "points": n}


def write_json(path: Path, data: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1, default=str)
        f.write("\n")
    os.replace(tmp, path)


def now_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
