#!/usr/bin/env python3
"""The libmillis benchmark (`make bench`): medians over repeated runs, a results file,
Markdown tables and a plot. See bench/README.md.

    python3 bench/run.py [--quick] [--only scale,peer,latency,device,audio] [--runs 3]
        [--seconds 15] [--sessions 1 10 100 500 1000 2000] [--peer-sessions 1 10 100 200 500]
        [--device-sessions 1 4] [--out build/bench]

Writes OUT/results.json (every run's raw figures, medians/min/max per point, the machine),
OUT/tables.md (also printed) and OUT/scale.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE / "lib"))
import benchlib as B  # noqa: E402

PARTS = ["scale", "peer", "latency", "device", "audio"]
LATENCY_DIR = REPO / "bench" / "latency"
AUDIO_BENCH = REPO / "bench" / "audio" / "audio_bench.py"

# Figures summarised per point (median [min-max] over the runs).
FIGURES = ["cpu_cores", "cpu_ms_per_session_second", "rss_kib_per_session", "rss_kib_added", "vm_hwm_kib",
           "server_lateness_p50_ms", "server_lateness_p99_ms", "server_lateness_p999_ms", "server_lateness_max_ms",
           "client_lateness_p50_ms", "client_lateness_p99_ms", "client_lateness_max_ms",
           "agent_delivery_p50_ms", "agent_delivery_p99_ms",
           "frames_lost", "frames_dropped_by_library", "agent_frames_lost", "server_frames_stamp_over_20ms",
           "server_cpu_cores", "server_cpu_ms_per_session_second", "machine_busy_cores", "machine_softirq_cores",
           "client_runqueue_wait_s", "server_runqueue_wait_s", "ready_p50_ms", "ready_p99_ms",
           "capture_overruns", "capture_frames_dropped", "playback_underruns", "playback_xruns",
           "capture_to_wire_ms", "wire_to_device_ms", "last_clear_ms"]


# The latency program's figures shown in the table (all of them are in results.json).
LATENCY_KEYS = [f"connect.{t}.{k}" for t in ("ws", "wss", "ws_baseline")
                for k in ("start_to_open_ms.p50", "start_to_ready_ms.p50", "server_accept_to_ready_ms.p50",
                          "client_minus_server_ms.p50", "cold_start_to_ready_ms")] + \
               [f"sdk_latency.{d}.{w}_{q}_ms" for d in ("outgoing", "incoming")
                for w in ("millis", "baseline", "added") for q in ("p50", "p99")]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------- machine

def machine_info() -> Dict[str, Any]:
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def git(*a: str) -> Optional[str]:
        r = subprocess.run(["git", "-C", str(REPO), *a], capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else None

    status = git("status", "--porcelain", "--untracked-files=no")
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1])
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "os": platform.platform(), "mem_total_kib": mem, "python": platform.python_version(),
            "date_utc": B.now_utc(), "git_commit": git("rev-parse", "HEAD"),
            "git_dirty": bool(status) if status is not None else None,
            "load_average_before": list(os.getloadavg())}


# ------------------------------------------------------------------------- runs

class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = Path(args.out).resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        self.raw = self.out / "raw"
        self.raw.mkdir(exist_ok=True)
        self.bin = self.out / "bin"
        self.results: Dict[str, Any] = {
            "benchmark": "libmillis bench/run.py", "machine": machine_info(),
            "config": {k: v for k, v in vars(args).items()}, "notes": [], "scale": {}, "device": {},
        }
        self.scale_exe: Optional[Path] = None
        self.server = B.SERVER
        self.stamped = False

    def note(self, msg: str) -> None:
        log(f"note: {msg}")
        self.results["notes"].append(msg)

    def save(self) -> None:
        B.write_json(self.out / "results.json", self.results)

    # -- building
    def build(self) -> None:
        a = self.args
        if {"scale", "peer", "device"} & set(a.only):
            if a.server:
                self.server = Path(a.server).resolve()
            else:
                log("building bench/server (make -C bench/server) ...")
                self.server = B.build_server()
            self.stamped = "--stamped" in B.server_help(self.server)
            if not self.stamped:
                self.note("this millis_loadserver has no --stamped: outgoing-frame lateness falls back to the "
                          "server's arrival-relative view (user_frame_lateness_ms), not the frames' schedule")
        if {"scale", "device"} & set(a.only):
            log("building millis_scale ...")
            self.scale_exe = B.build_scale(self.bin / "millis_scale")
        self.results["server_stamped"] = self.stamped

    # -- one client run against a fresh server
    def one(self, client: str, n: int, run: int, *, mode: str = "application",
            env: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
        a = self.args
        tag = f"{client}-{n}-run{run}"
        stamped = self.stamped and mode == "application"
        with tempfile.TemporaryDirectory(prefix="millis-bench-") as tmp:
            stats = Path(tmp) / "server.json"
            out = self.raw / f"{tag}.json"
            with B.LoadServer(stats, stamped=stamped, nice=a.nice, server=self.server) as srv:
                if client == "peer":
                    c = B.run_peer(srv.url, n, a.seconds, out, server_pid=srv.pid, ramp_s=a.ramp_s,
                                   settle_s=a.settle_s, drain_s=a.drain_s, slots=a.slots, nice=a.nice)
                else:
                    extra = ["--capture", a.capture, "--playback", a.playback] if mode == "device" else []
                    c = B.run_scale(self.scale_exe, srv.url, n, a.seconds, out, server_pid=srv.pid,
                                    ramp_s=a.ramp_s, settle_s=a.settle_s, drain_s=a.drain_s, slots=a.slots,
                                    mode=mode, extra=extra, env=env, nice=a.nice)
            server = B.server_summary(srv.stats)
        figures = B.account(c, server)
        per = c.get("library_per_session") or {}
        for k in ("capture_to_wire_ms", "wire_to_device_ms", "last_clear_ms"):
            d = per.get(k)
            figures[k] = d.get("p50") if isinstance(d, dict) else None
        B.write_json(self.raw / f"{tag}-server.json", server)
        return {"run": run, "figures": figures, "client": c, "server": server}

    def describe(self, client: str, n: int, r: Dict[str, Any]) -> str:
        f = r["figures"]
        flag = " SERVER>80%" if f["server_bottleneck_suspect"] else ""
        return (f"{client:9} n={n:5} run {r['run']}: cpu {fmt(f['cpu_cores'], 3)} cores "
                f"({fmt(f['cpu_ms_per_session_second'], 3)} ms/session-s), rss {fmt(f['rss_kib_per_session'], 1)} "
                f"KiB/session, lateness ({f['lateness_source']}) p50 {fmt(f['server_lateness_p50_ms'])} "
                f"p99 {fmt(f['server_lateness_p99_ms'])} ms, lost {f['frames_lost']}/{f['agent_frames_lost']}, "
                f"server {fmt(f['server_cpu_cores'], 3)} cores, machine {fmt(f['machine_busy_cores'], 2)}{flag}")

    def point(self, section: Dict[str, Any], n: int) -> Dict[str, Any]:
        return section.setdefault(str(n), {"sessions": n, "runs": [], "errors": []})

    # -- the scale sweep and the peer, interleaved run by run
    def clients(self) -> None:
        a = self.args
        plan = []
        for run in range(1, a.runs + 1):
            if "scale" in a.only:
                plan += [("libmillis", n, run) for n in a.sessions]
            if "peer" in a.only:
                plan += [("peer", n, run) for n in a.peer_sessions]
        for i, (client, n, run) in enumerate(plan, 1):
            section = self.results["scale"].setdefault(client, {})
            pt = self.point(section, n)
            log(f"[{i}/{len(plan)}] {client} {n} sessions, run {run} ...")
            try:
                r = self.one(client, n, run)
            except Exception as e:  # noqa: BLE001 - one failed run must not lose the others
                text = str(e) if isinstance(e, B.BenchError) else f"{type(e).__name__}: {e}"
                pt["errors"].append(f"run {run}: {text}")
                self.note(f"{client} at {n} sessions, run {run} failed: {(text.splitlines() or [''])[0]}")
                continue
            pt["runs"].append(r)
            log("  " + self.describe(client, n, r))
            self.save()

    def device(self) -> None:
        a = self.args
        sys.path.insert(0, str(REPO / "Tests" / "python"))
        try:
            from audio_bed import PulseBed, pulseaudio_available
        except ImportError as e:
            self.note(f"device mode skipped: Tests/python/audio_bed.py not importable ({e})")
            return
        if not pulseaudio_available():
            self.note("device mode skipped: pulseaudio is not installed")
            return
        section = self.results["device"]
        for run in range(1, a.runs + 1):
            for n in a.device_sessions:
                pt = self.point(section, n)
                log(f"device mode, {n} sessions, run {run} ...")
                try:
                    with tempfile.TemporaryDirectory(prefix="millis-bench-pulse-") as tmp:
                        with PulseBed(Path(tmp)) as bed:
                            r = self.one("libmillis-device", n, run, mode="device", env=bed.env())
                except Exception as e:  # noqa: BLE001 - the bed or the devices may fail; say so, go on
                    pt["errors"].append(f"run {run}: {type(e).__name__}: {e}")
                    self.note(f"device mode at {n} sessions, run {run} failed: {type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''}")
                    continue
                pt["runs"].append(r)
                f = r["figures"]
                log(f"  {self.describe('device', n, r)}; capture->wire {fmt(f['capture_to_wire_ms'])} ms, "
                    f"wire->device {fmt(f['wire_to_device_ms'])} ms, underruns {f.get('playback_underruns')}, "
                    f"overruns {f.get('capture_overruns')}")
                self.save()

    def latency(self) -> None:
        """bench/latency (the connect and SDK-latency program, its own servers started by
        its run.sh), run --latency-runs times; its JSON kept as it is, medians of every
        numeric figure."""
        a = self.args
        sec: Dict[str, Any] = {"runs": []}
        self.results["latency"] = sec
        script = LATENCY_DIR / "run.sh"
        if not (LATENCY_DIR / "Makefile").exists() or not script.exists():
            sec["skipped"] = "bench/latency (millis_latency and its run.sh) is not there"
            self.note(f"latency skipped: {sec['skipped']}")
            return
        exe = self.bin / "millis_latency"
        r = subprocess.run(["make", "-s", "-C", str(LATENCY_DIR), f"OUT={self.bin}"], capture_output=True,
                           text=True, timeout=600)
        if r.returncode != 0 or not exe.exists():
            sec["skipped"] = f"make -C bench/latency OUT={self.bin} failed: {(r.stdout + r.stderr)[-2000:]}"
            self.note("latency skipped: make -C bench/latency failed")
            return
        extra = list(a.latency_arg or [])
        if a.quick and not extra:
            extra = ["--seconds", "3", "--runs", "5"]
        sec["command"] = [str(script), *extra]
        env = dict(os.environ, MILLIS_LATENCY=str(exe))
        for run in range(1, a.latency_runs + 1):
            log(f"latency (bench/latency/run.sh {' '.join(extra)}), run {run} ...")
            try:
                p = subprocess.run(["sh", str(script), *extra], capture_output=True, text=True, timeout=900,
                                   cwd=str(REPO), env=env)
                obj = last_json_object(p.stdout)
                if p.returncode != 0 or obj is None:
                    raise B.BenchError(f"exit {p.returncode}: {p.stderr[-1500:]}")
            except (B.BenchError, subprocess.TimeoutExpired) as e:
                sec.setdefault("errors", []).append(f"run {run}: {e}")
                self.note(f"latency run {run} failed: {str(e).splitlines()[0]}")
                continue
            sec["runs"].append(obj)
            self.save()
        sec["summary"] = summarise_leaves(sec["runs"])

    def audio(self) -> None:
        a = self.args
        out = self.out / "audio.json"
        log(f"device audio figures: bench/audio/audio_bench.py --runs {a.audio_runs} ...")
        cmd = [sys.executable, str(AUDIO_BENCH), "--runs", str(a.audio_runs), "--json", str(out)]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=120 + 90 * a.audio_runs, cwd=str(REPO))
        except subprocess.TimeoutExpired:
            self.results["audio"] = {"skipped": "audio_bench.py timed out"}
            self.note("audio skipped: audio_bench.py timed out")
            return
        if r.returncode != 0 or not out.exists():
            self.results["audio"] = {"skipped": f"audio_bench.py exited {r.returncode}: {r.stderr[-2000:]}"}
            self.note(f"audio skipped: audio_bench.py exited {r.returncode}")
            return
        self.results["audio"] = json.loads(out.read_text())
        self.save()

    # -- summaries
    def summarise(self) -> None:
        for client, section in list(self.results["scale"].items()) + [("device", self.results["device"])]:
            for pt in section.values():
                runs = [r["figures"] for r in pt["runs"]]
                pt["summary"] = {k: B.spread(r.get(k) for r in runs) for k in FIGURES}
                pt["summary"] = {k: v for k, v in pt["summary"].items() if v is not None}
                m = B.median_run(runs)
                pt["median_run"] = None if m is None else pt["runs"][m]["run"]
                pt["sustained"] = None if m is None else runs[m]["sustained"]
                pt["sustained_all_runs"] = bool(runs) and all(r["sustained"] for r in runs)
                pt["zero_loss_all_runs"] = bool(runs) and all(r["zero_loss"] for r in runs)
                pt["server_bottleneck_suspect"] = any(r["server_bottleneck_suspect"] for r in runs)
                pt["lateness_source"] = runs[0]["lateness_source"] if runs else None
        sus: Dict[str, Any] = {}
        fits: Dict[str, Any] = {}
        for client, section in self.results["scale"].items():
            pts = sorted(section.values(), key=lambda p: p["sessions"])
            ok = [p["sessions"] for p in pts if p.get("sustained")]
            failed = [p["sessions"] for p in pts if p.get("runs") and not p.get("sustained")]
            largest = max(ok) if ok else None
            sus[client] = {"largest_sustained": largest, "sustained_counts": ok, "not_sustained_counts": failed,
                           "all_smaller_sustained": bool(largest) and all(n > largest for n in failed),
                           "rule": "largest tested count whose median run (by server p99 lateness) lost no frame "
                                   "and had p99 lateness < 20 ms"}
            use = [p for p in pts if p.get("sustained")] if len(ok) >= 2 else [p for p in pts if p.get("runs")]

            def med(p: Dict[str, Any], k: str) -> Optional[float]:
                return (p["summary"].get(k) or {}).get("median")
            fits[client] = {
                "over_counts": [p["sessions"] for p in use],
                "cpu_cores_vs_sessions": B.fit_line([p["sessions"] for p in use], [med(p, "cpu_cores") for p in use]),
                "rss_kib_vs_sessions": B.fit_line([p["sessions"] for p in use], [med(p, "rss_kib_added") for p in use]),
                "server_cpu_cores_vs_sessions": B.fit_line([p["sessions"] for p in use],
                                                           [med(p, "server_cpu_cores") for p in use]),
            }
        self.results["sustainable"] = sus
        self.results["fits"] = fits
        self.results["ratios"] = ratios(self.results)
        self.results["targets"] = targets(self.results)
        self.results["machine"]["load_average_after"] = list(os.getloadavg())
        self.results["machine"]["date_utc_end"] = B.now_utc()


def last_json_object(text: str) -> Optional[Dict[str, Any]]:
    text = text.strip()
    try:
        obj = json.loads(text)
        return obj if isinstance(obj, dict) else None
    except ValueError:
        pass
    for line in reversed(text.splitlines()):
        try:
            obj = json.loads(line)
            if isinstance(obj, dict):
                return obj
        except ValueError:
            continue
    return None


def summarise_leaves(objs: List[Dict[str, Any]]) -> Dict[str, Any]:
    """median/min/max of every numeric leaf (dotted paths) over several JSON objects."""
    values: Dict[str, List[float]] = {}

    def walk(o: Any, path: str) -> None:
        if isinstance(o, dict):
            for k, v in o.items():
                walk(v, f"{path}.{k}" if path else str(k))
        elif isinstance(o, (int, float)) and not isinstance(o, bool):
            values.setdefault(path, []).append(o)
    for o in objs:
        walk(o, "")
    return {k: B.spread(v) for k, v in values.items()}


def med(results: Dict[str, Any], client: str, n: int, key: str) -> Optional[float]:
    pt = results["scale"].get(client, {}).get(str(n))
    if not pt or not pt.get("summary"):
        return None
    return (pt["summary"].get(key) or {}).get("median")


def ratios(results: Dict[str, Any]) -> Dict[str, Any]:
    lib = results["scale"].get("libmillis", {})
    peer = results["scale"].get("peer", {})
    rows = []
    for n in sorted({int(k) for k in lib} & {int(k) for k in peer}):
        row: Dict[str, Any] = {"sessions": n}
        for key in ("cpu_ms_per_session_second", "rss_kib_per_session"):
            a, b = med(results, "libmillis", n, key), med(results, "peer", n, key)
            row[f"libmillis_{key}"], row[f"peer_{key}"] = a, b
            row[f"{key}_ratio"] = (b / a) if a and b and a > 0 else None
        row["peer_sustained"] = peer[str(n)].get("sustained")
        rows.append(row)
    fits = results.get("fits", {})
    marg = {}
    for key, label in (("cpu_cores_vs_sessions", "cpu"), ("rss_kib_vs_sessions", "rss")):
        fl, fp = (fits.get("libmillis") or {}).get(key), (fits.get("peer") or {}).get(key)
        if fl and fp and fl["slope"] > 0:
            marg[f"{label}_marginal_ratio"] = fp["slope"] / fl["slope"]
        marg[f"libmillis_{label}_slope"] = fl["slope"] if fl else None
        marg[f"peer_{label}_slope"] = fp["slope"] if fp else None
    return {"per_count": rows, "marginal": marg,
            "note": "ratio = peer / libmillis (higher: libmillis cheaper); marginal = ratio of the slopes of "
                    "linear fits over the counts each client sustains (CPU cores per session, KiB per session)"}


def targets(results: Dict[str, Any]) -> List[Dict[str, Any]]:
    sus = results.get("sustainable", {})
    lib = sus.get("libmillis", {}).get("largest_sustained")
    rows = []
    tested = [int(k) for k, p in results["scale"].get("libmillis", {}).items() if p.get("runs")]
    rows.append({"target": ">= 1000 application-mode sessions, zero loss, p99 lateness <= 20 ms",
                 "measured": f"largest sustained: {lib} (tested up to {max(tested) if tested else '–'})",
                 "met": (True if lib and lib >= 1000 else
                         None if not tested or (max(tested) < 1000 and lib == max(tested)) else False)})
    cores = med(results, "libmillis", 1000, "cpu_cores")
    rows.append({"target": "client CPU <= 1 core at 1000 sessions", "measured": fmt(cores, 3) + " cores",
                 "met": None if cores is None else cores <= 1.0})
    r = results.get("ratios", {})
    common = [row for row in r.get("per_count", []) if row.get("peer_sustained")]
    best = max(common, key=lambda row: row["sessions"]) if common else None
    for key, want, label in (("cpu_ms_per_session_second", 10, "CPU per session-second"),
                             ("rss_kib_per_session", 5, "RSS per session")):
        ratio = best.get(f"{key}_ratio") if best else None
        marginal = r.get("marginal", {}).get(f"{'cpu' if key.startswith('cpu') else 'rss'}_marginal_ratio")
        rows.append({"target": f"{label} >= {want}x lower than the peer",
                     "measured": (f"{fmt(ratio, 1)}x at {best['sessions']} sessions (the peer's largest sustained "
                                  f"common count); marginal {fmt(marginal, 1)}x") if best else "no common count",
                     "met": None if ratio is None else ratio >= want})
    return rows


# ------------------------------------------------------------------------- output

def fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def cell(pt: Dict[str, Any], key: str, digits: int = 2, scale: float = 1.0) -> str:
    s = (pt.get("summary") or {}).get(key)
    if not s:
        return "–"
    m, lo, hi = s["median"] * scale, s["min"] * scale, s["max"] * scale
    if s["n"] == 1 or (abs(hi - lo) < 10 ** -digits):
        return fmt(m, digits)
    return f"{fmt(m, digits)} [{fmt(lo, digits)}–{fmt(hi, digits)}]"


def tables(results: Dict[str, Any]) -> str:
    cfg = results["config"]
    m = results["machine"]
    out = [f"# libmillis benchmark ({m['date_utc']})", "",
           f"{m['nproc']} × {m['cpu_model']}, kernel {m['kernel']}, load average before "
           f"{' '.join(f'{x:.2f}' for x in m['load_average_before'])}, after "
           f"{' '.join(f'{x:.2f}' for x in m.get('load_average_after', []))}; commit {m['git_commit']}"
           f"{' (dirty)' if m.get('git_dirty') else ''}. {cfg['runs']} run{'s' if cfg['runs'] != 1 else ''} per point, "
           f"a window of {cfg['seconds']} s each; "
           "cells: median [min–max].", ""]
    for note in results["notes"]:
        out.append(f"- note: {note}")
    if results["notes"]:
        out.append("")
    for client, section in results["scale"].items():
        if not section:
            continue
        src = next((p.get("lateness_source") for p in section.values() if p.get("lateness_source")), None)
        out += [f"## Scale: {client} ({'libmillis, application mode' if client == 'libmillis' else 'Python asyncio + websockets peer'})",
                "",
                f"Lateness of outgoing frames against their schedule: {src} (server-side); "
                "client's own view: " + ("the feeding thread's send_audio call" if client == "libmillis"
                                          else "when send() returned") + ".", "",
                "| sessions | client CPU (cores) | CPU ms / session-s | RSS KiB / session | VmHWM MiB "
                "| lateness p50 / p99 (ms) | client-side p99 (ms) | user frames lost | agent frames lost "
                "| server CPU (cores) | machine busy (cores) | sustained |",
                "|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|"]
        for key in sorted(section, key=int):
            pt = section[key]
            if not pt.get("runs"):
                out.append(f"| {key} | failed: {'; '.join(e.splitlines()[0] for e in pt['errors'])[:200]} |")
                continue
            sus = "yes" if pt.get("sustained") else "no"
            if pt.get("sustained") and not pt.get("sustained_all_runs"):
                sus += " (not every run)"
            if pt.get("server_bottleneck_suspect"):
                sus += "; server > 80 % of a core"
            out.append(
                f"| {key} | {cell(pt, 'cpu_cores', 3)} | {cell(pt, 'cpu_ms_per_session_second', 3)} "
                f"| {cell(pt, 'rss_kib_per_session', 1)} | {cell(pt, 'vm_hwm_kib', 1, 1 / 1024)} "
                f"| {cell(pt, 'server_lateness_p50_ms')} / {cell(pt, 'server_lateness_p99_ms')} "
                f"| {cell(pt, 'client_lateness_p99_ms')} | {cell(pt, 'frames_lost', 0)} "
                f"| {cell(pt, 'agent_frames_lost', 0)} | {cell(pt, 'server_cpu_cores', 3)} "
                f"| {cell(pt, 'machine_busy_cores')} | {sus} |")
        out.append("")
    r = results.get("ratios") or {}
    if r.get("per_count"):
        out += ["## libmillis against the peer (peer / libmillis; medians)", "",
                "| sessions | CPU ms / session-s: libmillis | peer | ratio | RSS KiB / session: libmillis | peer "
                "| ratio | peer sustained |", "|---:|---:|---:|---:|---:|---:|---:|---|"]
        for row in r["per_count"]:
            out.append(f"| {row['sessions']} | {fmt(row['libmillis_cpu_ms_per_session_second'], 3)} "
                       f"| {fmt(row['peer_cpu_ms_per_session_second'], 3)} "
                       f"| {fmt(row['cpu_ms_per_session_second_ratio'], 1)}× "
                       f"| {fmt(row['libmillis_rss_kib_per_session'], 1)} | {fmt(row['peer_rss_kib_per_session'], 1)} "
                       f"| {fmt(row['rss_kib_per_session_ratio'], 1)}× | {'yes' if row['peer_sustained'] else 'no'} |")
        mg = r.get("marginal") or {}
        out += ["", f"Marginal cost (slope of a linear fit over the sustained counts): CPU per session "
                f"libmillis {fmt(ms(mg.get('libmillis_cpu_slope')), 3)} ms/s, peer {fmt(ms(mg.get('peer_cpu_slope')), 3)} "
                f"ms/s ({fmt(mg.get('cpu_marginal_ratio'), 1)}×); RSS per session libmillis "
                f"{fmt(mg.get('libmillis_rss_slope'), 1)} KiB, peer {fmt(mg.get('peer_rss_slope'), 1)} KiB "
                f"({fmt(mg.get('rss_marginal_ratio'), 1)}×).", ""]
    sus = results.get("sustainable") or {}
    if sus:
        out += ["## Largest sustainable session count", "",
                "Largest tested count whose median run (by server-side p99 lateness) lost no frame either way "
                "and had p99 lateness < 20 ms.", "",
                "| client | largest sustained | sustained | not sustained |", "|---|---:|---|---|"]
        for client, s in sus.items():
            out.append(f"| {client} | {fmt(s['largest_sustained'])} | {', '.join(map(str, s['sustained_counts']))} "
                       f"| {', '.join(map(str, s['not_sustained_counts']))} |")
        out.append("")
    fits = results.get("fits") or {}
    if fits:
        out += ["## Linearity (client CPU in cores = a + b × sessions)", "",
                "| client | counts fitted | b (ms CPU per session-s) | a (cores) | R² | server b (ms per session-s) |",
                "|---|---|---:|---:|---:|---:|"]
        for client, f in fits.items():
            c, s = f.get("cpu_cores_vs_sessions"), f.get("server_cpu_cores_vs_sessions")
            out.append(f"| {client} | {', '.join(map(str, f['over_counts']))} | {fmt(ms(c and c['slope']), 3)} "
                       f"| {fmt(c and c['intercept'], 4)} | {fmt(c and c['r2'], 4)} | {fmt(ms(s and s['slope']), 3)} |")
        out.append("")
    dev = results.get("device") or {}
    if dev:
        out += ["## Device mode (echo cancellation, noise suppression, AGC on; PulseAudio null sink, agent audio "
                "from the load server)", "",
                "| sessions | client CPU (cores) | CPU ms / session-s | RSS KiB / session | capture→wire (ms) "
                "| wire→device (ms) | frames lost | agent frames lost | underruns | capture overruns |",
                "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for key in sorted(dev, key=int):
            pt = dev[key]
            if not pt.get("runs"):
                out.append(f"| {key} | failed: {'; '.join(e.splitlines()[0] for e in pt['errors'])[:200]} |")
                continue
            out.append(f"| {key} | {cell(pt, 'cpu_cores', 3)} | {cell(pt, 'cpu_ms_per_session_second', 3)} "
                       f"| {cell(pt, 'rss_kib_per_session', 1)} | {cell(pt, 'capture_to_wire_ms')} "
                       f"| {cell(pt, 'wire_to_device_ms')} | {cell(pt, 'frames_lost', 0)} "
                       f"| {cell(pt, 'agent_frames_lost', 0)} | {cell(pt, 'playback_underruns', 0)} "
                       f"| {cell(pt, 'capture_overruns', 0)} |")
        out.append("")
    lat = results.get("latency")
    if lat:
        out += ["## Connect and SDK-added latency (bench/latency/millis_latency)", ""]
        if lat.get("skipped"):
            out += [f"Skipped: {lat['skipped']}", ""]
        elif lat.get("summary"):
            summary = lat["summary"]
            keys = [k for k in LATENCY_KEYS if summary.get(k)] or [k for k in summary if summary[k]]
            out += [f"{len(lat['runs'])} runs of `{'/'.join(Path(lat['command'][0]).parts[-3:])} "
                    f"{' '.join(lat['command'][1:])}`; median, min, max over the runs of each run's figure "
                    "(all figures: results.json, latency.summary):", "",
                    "| figure (ms) | median | min | max |", "|---|---:|---:|---:|"]
            for k in keys:
                s = summary[k]
                out.append(f"| {k} | {fmt(s['median'], 3)} | {fmt(s['min'], 3)} | {fmt(s['max'], 3)} |")
            out.append("")
    audio = results.get("audio")
    if audio:
        out += ["## Device audio (bench/audio/audio_bench.py: devserver conversations on the paced PulseAudio echo "
                "loop)", ""]
        if audio.get("skipped"):
            out += [f"Skipped: {audio['skipped'][:300]}", ""]
        else:
            for label, figs in (audio.get("summary") or {}).items():
                out += [f"{label}:", "", "| figure | median | min | max |", "|---|---:|---:|---:|"]
                for k, s in figs.items():
                    out.append(f"| {k} | {fmt(s['median'])} | {fmt(s['min'])} | {fmt(s['max'])} |")
                out.append("")
    tg = results.get("targets")
    if tg and results["scale"]:
        out += ["## The issue's targets", "", "| target | measured | met |", "|---|---|---|"]
        for t in tg:
            out.append(f"| {t['target']} | {t['measured']} | "
                       f"{'–' if t['met'] is None else ('yes' if t['met'] else 'no')} |")
        out.append("")
    return "\n".join(out)


def ms(cores_per_session: Optional[float]) -> Optional[float]:
    return None if cores_per_session is None else cores_per_session * 1000


def plot(results: Dict[str, Any], path: Path) -> Optional[str]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        return f"no plot: matplotlib is not installed ({e})"
    scale = results["scale"]
    if not any(scale.values()):
        return None
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.2))
    styles = {"libmillis": ("C0", "o", "libmillis (C, application mode)"),
              "peer": ("C1", "s", "Python peer (asyncio + websockets)")}

    def series(section: Dict[str, Any], key: str):
        xs, ys, lo, hi, sus = [], [], [], [], []
        for k in sorted(section, key=int):
            s = (section[k].get("summary") or {}).get(key)
            if s:
                xs.append(int(k)); ys.append(s["median"]); lo.append(s["median"] - s["min"])
                hi.append(s["max"] - s["median"]); sus.append(bool(section[k].get("sustained")))
        return xs, ys, lo, hi, sus

    for client, section in scale.items():
        color, marker, label = styles.get(client, ("C2", "^", client))
        for ax, key in ((ax1, "cpu_ms_per_session_second"), (ax2, "cpu_cores")):
            xs, ys, lo, hi, sus = series(section, key)
            if not xs:
                continue
            ax.errorbar(xs, ys, yerr=[lo, hi], color=color, marker=marker, capsize=3, label=label)
            bad = [(x, y) for x, y, s in zip(xs, ys, sus) if not s]
            if bad:
                ax.scatter([b[0] for b in bad], [b[1] for b in bad], s=160, facecolors="none", edgecolors="red",
                           zorder=5, label=f"{client}: not sustained (loss or p99 ≥ 20 ms)")
            if key == "cpu_cores":
                f = (results.get("fits", {}).get(client) or {}).get("cpu_cores_vs_sessions")
                if f:
                    xmax = max(xs)
                    ax.plot([0, xmax], [f["intercept"], f["intercept"] + f["slope"] * xmax], color=color,
                            linestyle="--", linewidth=1,
                            label=f"{client} fit: {f['slope'] * 1000:.3f} ms/s per session, R² {f['r2']:.3f}")
        # the server's CPU, in the runs of this client
        xs, ys, lo, hi, _ = series(section, "server_cpu_ms_per_session_second")
        if xs:
            ax1.plot(xs, ys, color=color, marker="x", linestyle=":", label=f"server CPU ({client} runs)")
        xs, ys, lo, hi, _ = series(section, "server_cpu_cores")
        if xs:
            ax2.plot(xs, ys, color=color, marker="x", linestyle=":", label=f"server CPU ({client} runs)")
    ax1.set_xscale("log")
    ax1.set_xlabel("concurrent sessions (log)")
    ax1.set_ylabel("CPU ms per session-second")
    ax1.set_title("CPU per second of conversation")
    ax1.grid(True, which="both", alpha=0.3)
    ax1.legend(fontsize=7)
    top = max([(pt.get("summary") or {}).get("cpu_cores", {}).get("max", 0) for sec in scale.values()
               for pt in sec.values()] + [0])
    if top > 0.4:
        ax2.axhline(1.0, color="grey", linewidth=0.8, linestyle="-.", label="one core")
    ax2.set_xlabel("concurrent sessions")
    ax2.set_ylabel("client CPU (cores)")
    ax2.set_title("Total CPU against sessions (linearity)")
    ax2.grid(True, alpha=0.3)
    ax2.legend(fontsize=7)
    m = results["machine"]
    fig.suptitle(f"libmillis scale benchmark — {m['nproc']} × {m['cpu_model']}, {m['date_utc']}, "
                 f"median of {results['config']['runs']} runs (bars: min–max)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None


# ------------------------------------------------------------------------- main

def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="a few seconds per run, small counts, one run (a check that everything works)")
    p.add_argument("--only", action="append", help=f"parts to run (comma-separated, repeatable): {', '.join(PARTS)}")
    p.add_argument("--runs", type=int, help="runs per point (default 3)")
    p.add_argument("--seconds", type=float, help="steady-state window per run (default 15)")
    p.add_argument("--sessions", type=int, nargs="+", help="libmillis counts (default 1 10 100 500 1000 2000)")
    p.add_argument("--peer-sessions", type=int, nargs="+", help="peer counts (default 1 10 100 200 500)")
    p.add_argument("--device-sessions", type=int, nargs="+", help="device-mode counts (default 1 4)")
    p.add_argument("--latency-runs", type=int, help="runs of bench/latency/millis_latency (default: --runs)")
    p.add_argument("--audio-runs", type=int, help="runs of bench/audio/audio_bench.py (default: --runs)")
    p.add_argument("--latency-arg", action="append",
                   help="an option for bench/latency/run.sh (repeatable; e.g. --latency-arg=--seconds "
                        "--latency-arg=20); --quick gives --seconds 3 --runs 5")
    p.add_argument("--ramp-s", type=float, default=1.0, help="connections spread over this many seconds (default 1)")
    p.add_argument("--settle-s", type=float, default=1.0, help="from the last onready to the window (default 1)")
    p.add_argument("--drain-s", type=float, default=3.0, help="after the window, for agent audio in flight (default 3)")
    p.add_argument("--slots", type=int, default=20, help="phases of the sessions' 20 ms schedules (default 20)")
    p.add_argument("--capture", default="pulse", help="device mode's ALSA capture device (default pulse)")
    p.add_argument("--playback", default="pulse", help="device mode's ALSA playback device (default pulse)")
    p.add_argument("--nice", type=int, default=0, help="run the server and the clients under nice -n N")
    p.add_argument("--server", help="a millis_loadserver to use instead of building bench/server's")
    p.add_argument("--out", default=str(REPO / "build" / "bench"), help="output directory (default build/bench)")
    a = p.parse_args(argv)
    only: List[str] = []
    for o in a.only or PARTS:
        only += [x.strip() for x in o.split(",") if x.strip()]
    bad = [o for o in only if o not in PARTS]
    if bad:
        p.error(f"--only: unknown part(s) {bad}; choose from {PARTS}")
    a.only = only
    if a.quick:
        a.runs = a.runs or 1
        a.seconds = a.seconds or 5
        a.sessions = a.sessions or [1, 10, 50]
        a.peer_sessions = a.peer_sessions or [1, 10, 50]
        a.device_sessions = a.device_sessions or [1]
    a.runs = a.runs or 3
    a.seconds = a.seconds or 15
    a.sessions = a.sessions or [1, 10, 100, 500, 1000, 2000]
    a.peer_sessions = a.peer_sessions or [1, 10, 100, 200, 500]
    a.device_sessions = a.device_sessions or [1, 4]
    a.latency_runs = a.latency_runs or a.runs
    a.audio_runs = a.audio_runs or a.runs
    if a.runs < 1 or a.seconds <= 0 or min(a.sessions + a.peer_sessions + a.device_sessions) < 1:
        p.error("--runs, --seconds and the session counts must be positive")
    return a


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    fds = B.raise_fd_limit(20000)
    need = 2 * max(args.sessions + args.peer_sessions) + 100
    bench = Bench(args)
    if fds < need:
        bench.note(f"open-file limit {fds} < {need}: the largest counts may fail (ulimit -n 20000)")
    t0 = time.monotonic()
    try:
        bench.build()
        if {"scale", "peer"} & set(args.only):
            bench.clients()
        if "device" in args.only:
            bench.device()
        if "latency" in args.only:
            bench.latency()
        if "audio" in args.only:
            bench.audio()
    except B.BenchError as e:
        bench.note(f"stopped: {e}")
        bench.summarise()
        bench.save()
        log(str(e))
        return 1
    except KeyboardInterrupt:
        bench.note("interrupted")
    finally:
        bench.results["wall_s"] = round(time.monotonic() - t0, 1)
    bench.summarise()
    problem = plot(bench.results, bench.out / "scale.png")
    if problem:
        bench.note(problem)
    bench.save()
    text = tables(bench.results)
    (bench.out / "tables.md").write_text(text + "\n")
    print(text)
    log(f"wrote {bench.out / 'results.json'}, {bench.out / 'tables.md'}"
        + ("" if problem or not bench.results["scale"] else f", {bench.out / 'scale.png'}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
