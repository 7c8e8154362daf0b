#!/usr/bin/env python3
"""The libmillis benchmark (`make bench`): medians over repeated runs, a results file,
Markdown tables and a plot. See bench/README.md.

    python3 bench/run.py [--quick] [--only scale,peer,floor,latency,device,audio] [--runs 3]
        [--seconds 15] [--sessions 1 10 100 200 500 1000 2000] [--peer-sessions 1 10 100 200 500]
        [--floor-sessions (the --sessions counts)] [--device-sessions 1 4]
        [--device-prebuffer-ms default 0] [--out build/bench]

Writes OUT/results.json (every run's raw figures, medians/min/max per point, the machine),
OUT/tables.md (also printed) and OUT/scale.png.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE / "lib"))
import benchlib as B  # noqa: E402

PARTS = ["scale", "peer", "floor", "latency", "device", "audio"]
# Device mode's beds and where their results go.
DEVICE_BEDS = {"pulse": "device", "card48": "device_card"}
CARD_SPEECH = ("The card plays this sentence as the microphone, over and over, so that the echo canceller, "
               "the noise suppressor and the gain control work on speech, as they do in a conversation.")
CLIENT_PARTS = {"scale": "libmillis", "peer": "peer", "floor": "floor"}
LATENCY_DIR = REPO / "bench" / "latency"
AUDIO_BENCH = REPO / "bench" / "audio" / "audio_bench.py"

# Figures summarised per point (median [min-max] over the runs).
FIGURES = ["cpu_cores", "cpu_ms_per_session_second", "rss_kib_per_session", "rss_kib_added", "vm_hwm_kib",
           "rss_kib_at_start", "rss_kib_before_warmup", "rss_kib_after_warmup", "rss_kib_window_end",
           "rss_kib_one_time", "rss_kib_init", "rss_kib_first_connection", "rss_kib_since_start",
           "server_lateness_p50_ms", "server_lateness_p99_ms", "server_lateness_p999_ms", "server_lateness_max_ms",
           "client_lateness_p50_ms", "client_lateness_p99_ms", "client_lateness_max_ms",
           "agent_delivery_p50_ms", "agent_delivery_p99_ms",
           "frames_lost", "frames_dropped_by_library", "agent_frames_lost", "server_frames_stamp_over_20ms",
           "server_cpu_cores", "server_cpu_ms_per_session_second", "machine_busy_cores", "machine_softirq_cores",
           "client_runqueue_wait_s", "server_runqueue_wait_s", "ready_p50_ms", "ready_p99_ms",
           "capture_overruns", "capture_frames_dropped", "playback_underruns", "playback_xruns",
           "capture_to_wire_ms", "wire_to_device_ms", "wire_to_device_max_ms", "wire_to_device_beyond_queue_ms",
           "wire_to_device_beyond_queue_max_ms", "last_clear_ms"]
# The library's per-session stats taken into each device run's figures (the median over sessions).
DEVICE_KEYS = ["capture_to_wire_ms", "wire_to_device_ms", "wire_to_device_max_ms", "wire_to_device_beyond_queue_ms",
               "wire_to_device_beyond_queue_max_ms", "last_clear_ms"]
TITLES = {"libmillis": "libmillis, application mode",
          "peer": "Python asyncio + websockets peer",
          "floor": "bench/server/millis_loadgen: a minimal C epoll WebSocket client, no library"}


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


def portable(value: Any) -> Any:
    """A path inside the repository as a path relative to it: results name no machine's
    directories."""
    if isinstance(value, str) and os.path.isabs(value):
        try:
            return str(Path(value).resolve().relative_to(REPO))
        except ValueError:
            return value
    return value


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
            "config": {k: portable(v) for k, v in vars(args).items()}, "notes": [], "scale": {}, "device": {},
            "device_card": {},
        }
        self.scale_exe: Optional[Path] = None
        self.floor_exe: Optional[Path] = None
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
        if {"scale", "peer", "floor", "device"} & set(a.only):
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
        if "floor" in a.only:
            log("building millis_loadgen (the floor) ...")
            self.floor_exe = B.build_loadgen(self.bin / "millis_loadgen")
        self.results["server_stamped"] = self.stamped

    # -- one client run against a fresh server
    def one(self, client: str, n: int, run: int, *, mode: str = "application",
            env: Optional[Dict[str, str]] = None, prebuffer: str = "default",
            devices: Optional[Tuple[str, str]] = None) -> Dict[str, Any]:
        a = self.args
        tag = f"{client}-{n}-run{run}" if mode != "device" else f"{client}-prebuffer-{prebuffer}-{n}-run{run}"
        stamped = self.stamped and mode == "application"
        with tempfile.TemporaryDirectory(prefix="millis-bench-") as tmp:
            stats = Path(tmp) / "server.json"
            out = self.raw / f"{tag}.json"
            with B.LoadServer(stats, stamped=stamped, nice=a.nice, server=self.server) as srv:
                if client == "peer":
                    c = B.run_peer(srv.url, n, a.seconds, out, server_pid=srv.pid, ramp_s=a.ramp_s,
                                   settle_s=a.settle_s, drain_s=a.drain_s, slots=a.slots, nice=a.nice)
                elif client == "floor":
                    c = B.run_floor(self.floor_exe, srv.url, n, a.seconds, out, server_pid=srv.pid, ramp_s=a.ramp_s,
                                    settle_s=a.settle_s, drain_s=a.drain_s, slots=a.slots, nice=a.nice)
                else:
                    capture, playback = devices or (a.capture, a.playback)
                    extra = ["--capture", capture, "--playback", playback] if mode == "device" else []
                    if mode == "device" and prebuffer != "default":
                        extra += ["--prebuffer-ms", prebuffer]
                    c = B.run_scale(self.scale_exe, srv.url, n, a.seconds, out, server_pid=srv.pid,
                                    ramp_s=a.ramp_s, settle_s=a.settle_s, drain_s=a.drain_s, slots=a.slots,
                                    mode=mode, extra=extra, env=env, nice=a.nice)
            server = B.server_summary(srv.stats, B.warmup_session_ids(c))
        figures = B.account(c, server)
        per = c.get("library_per_session") or {}
        for k in DEVICE_KEYS:
            d = per.get(k)
            figures[k] = d.get("p50") if isinstance(d, dict) else None   # the median over sessions
        if mode == "device":
            figures["prebuffer_ms"] = prebuffer
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
            if "floor" in a.only:
                plan += [("floor", n, run) for n in a.floor_sessions]
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
            import audio_bed
        except ImportError as e:
            self.note(f"device mode skipped: Tests/python/audio_bed.py not importable ({e})")
            return
        beds = list(a.device_beds)
        if "pulse" in beds and not audio_bed.pulseaudio_available():
            self.note("device mode on PulseAudio skipped: pulseaudio is not installed")
            beds.remove("pulse")
        # results["device"] (PulseAudio) and results["device_card"] (48 kHz stereo card),
        # each [prebuffer][sessions]: prebuffer "default" (the library's) or ms
        for run in range(1, a.runs + 1):
            for bed_name in beds:
                for pb in a.device_prebuffer_ms:
                    section = self.results[DEVICE_BEDS[bed_name]].setdefault(pb, {})
                    for n in a.device_sessions:
                        pt = self.point(section, n)
                        pt["prebuffer_ms"] = pb
                        log(f"device mode ({bed_name}), prebuffer {pb}, {n} sessions, run {run} ...")
                        try:
                            with tempfile.TemporaryDirectory(prefix=f"millis-bench-{bed_name}-") as tmp:
                                with self.bed(audio_bed, bed_name, Path(tmp)) as (env, devices):
                                    r = self.one(f"libmillis-device-{bed_name}", n, run, mode="device", env=env,
                                                 prebuffer=pb, devices=devices)
                        except Exception as e:  # noqa: BLE001 - the bed or the devices may fail; say so, go on
                            pt["errors"].append(f"run {run}: {type(e).__name__}: {e}")
                            self.note(f"device mode ({bed_name}, prebuffer {pb}) at {n} sessions, run {run} failed: "
                                      f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
                            continue
                        pt["runs"].append(r)
                        f = r["figures"]
                        log(f"  {self.describe('device', n, r)}; prebuffer {pb}: capture->wire "
                            f"{fmt(f['capture_to_wire_ms'])} ms, wire->device {fmt(f['wire_to_device_ms'])} "
                            f"(max {fmt(f['wire_to_device_max_ms'])}) ms, beyond the queue "
                            f"{fmt(f['wire_to_device_beyond_queue_ms'])} (max {fmt(f['wire_to_device_beyond_queue_max_ms'])}) "
                            f"ms, underruns {f.get('playback_underruns')}, overruns {f.get('capture_overruns')}")
                        self.save()

    @contextlib.contextmanager
    def bed(self, audio_bed: Any, name: str, tmp: Path) -> Iterator[Tuple[Dict[str, str], Tuple[str, str]]]:
        """The devices of one device-mode run: PulseAudio's null sink (ALSA's pulse
        plugin, 16 kHz mono as the sound server offers), or a card: a paced 48 kHz
        stereo microphone and speaker with no sound server (Tests/alsa/pcm_constrain.c,
        as a program that opens hw: or plughw: directly meets them), the microphone
        playing speech."""
        if name == "pulse":
            with audio_bed.PulseBed(tmp) as pulse:
                yield pulse.env(), (self.args.capture, self.args.playback)
            return
        speech = tmp / "speech.wav"
        mic = tmp / "mic.raw"
        subprocess.run(["espeak-ng", "-w", str(speech), CARD_SPEECH], check=True, capture_output=True, timeout=60)
        # Long enough for the whole run (the speech is about 8 s; after it, the card
        # records silence).
        repeats = int((self.args.seconds + self.args.ramp_s + self.args.settle_s + self.args.drain_s) / 5) + 2
        subprocess.run(["sox", str(speech), "-r", "48000", "-c", "2", "-b", "16", "-e", "signed", str(mic),
                        "pad", "0", "1", "repeat", str(repeats)], check=True, capture_output=True, timeout=120)
        card = audio_bed.FileDevices(tmp / "alsa", build_dir=self.bin)
        card.capture("card_mic", mic, rate=48000, channels=2, formats="S16_LE", paced=True)
        card.add("card_speaker", "playback", rate=48000, channels=2, formats="S16_LE", path=tmp / "speaker.raw",
                 paced=True)
        yield card.env(), ("card_mic", "card_speaker")

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
        sec["command"] = [portable(str(script)), *extra]
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
        sections = list(self.results["scale"].items()) + [
            (f"{key}-{pb}", sec) for key in DEVICE_BEDS.values() for pb, sec in self.results.get(key, {}).items()]
        for client, section in sections:
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
        self.results["one_time_rss"] = one_time_rss(self.results)
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


def one_time_rss(results: Dict[str, Any]) -> Dict[str, Any]:
    """Each client's one-time RSS (medians over every run of every count): the process at
    its start, what it added up to just before the warm-up session (imports; library
    set-up), what the warm-up session left (the first connection), and the baseline (all
    of it: not charged to the sessions)."""
    out: Dict[str, Any] = {}
    for client, section in results["scale"].items():
        runs = [r["figures"] for pt in section.values() for r in pt.get("runs", [])]
        if not runs:
            continue
        out[client] = {k: B.spread(r.get(k) for r in runs) for k in
                       ("rss_kib_at_start", "rss_kib_before_warmup", "rss_kib_after_warmup", "rss_kib_init",
                        "rss_kib_first_connection", "rss_kib_since_start")}
    return out


def slope(results: Dict[str, Any], client: str, key: str) -> Optional[float]:
    f = (results.get("fits", {}).get(client) or {}).get(key)
    return f["slope"] if f else None


def ratios(results: Dict[str, Any]) -> Dict[str, Any]:
    lib = results["scale"].get("libmillis", {})
    peer = results["scale"].get("peer", {})
    floor = results["scale"].get("floor", {})
    rows = []
    for n in sorted({int(k) for k in lib} & {int(k) for k in peer}):
        row: Dict[str, Any] = {"sessions": n}
        for key in ("cpu_ms_per_session_second", "rss_kib_per_session"):
            a, b = med(results, "libmillis", n, key), med(results, "peer", n, key)
            row[f"libmillis_{key}"], row[f"peer_{key}"] = a, b
            row[f"{key}_ratio"] = (b / a) if a and b and a > 0 else None
            row[f"floor_{key}"] = med(results, "floor", n, key) if str(n) in floor else None
        row["peer_sustained"] = peer[str(n)].get("sustained")
        row["libmillis_sustained"] = lib[str(n)].get("sustained")
        rows.append(row)
    marg: Dict[str, Any] = {}
    for key, label in (("cpu_cores_vs_sessions", "cpu"), ("rss_kib_vs_sessions", "rss")):
        sl, sp, sf = (slope(results, c, key) for c in ("libmillis", "peer", "floor"))
        marg[f"libmillis_{label}_slope"], marg[f"peer_{label}_slope"], marg[f"floor_{label}_slope"] = sl, sp, sf
        if sl and sp and sl > 0:
            marg[f"{label}_marginal_ratio"] = sp / sl
        if sf and sf > 0:
            marg[f"libmillis_over_floor_{label}"] = sl / sf if sl is not None else None
            marg[f"peer_over_floor_{label}"] = sp / sf if sp is not None else None
        if sf is not None and sl is not None and sp is not None:
            # What each client adds to the kernel's work, which every client pays (the floor):
            # the part of the cost a library decides.
            marg[f"libmillis_above_floor_{label}"], marg[f"peer_above_floor_{label}"] = sl - sf, sp - sf
            if sl - sf > 0:
                marg[f"{label}_above_floor_ratio"] = (sp - sf) / (sl - sf)
    return {"per_count": rows, "marginal": marg,
            "note": "ratio = peer / libmillis (higher: libmillis cheaper); marginal = ratio of the slopes of "
                    "linear fits over the counts each client sustains (CPU cores per session, KiB per session); "
                    "over_floor = a client's slope / the floor's (millis_loadgen: no library), and peer_over_floor "
                    "is the largest marginal ratio any client could reach against this peer on this machine; "
                    "above_floor = a client's slope − the floor's (what the client itself adds)"}


def targets(results: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Each target with its per-count figure and, for the ratio targets, the marginal
    (fitted-slope) ratio; a ratio target counts as met when the marginal ratio meets it."""
    sus = results.get("sustainable", {})
    lib = sus.get("libmillis", {}).get("largest_sustained")
    rows = []
    tested = [int(k) for k, p in results["scale"].get("libmillis", {}).items() if p.get("runs")]
    rows.append({"target": ">= 1000 application-mode sessions, zero loss, p99 lateness <= 20 ms",
                 "per_count": None, "marginal": None,
                 "measured": f"largest sustained: {lib} (tested up to {max(tested) if tested else '–'})",
                 "met": (True if lib and lib >= 1000 else
                         None if not tested or (max(tested) < 1000 and lib == max(tested)) else False)})
    cores = med(results, "libmillis", 1000, "cpu_cores")
    rows.append({"target": "client CPU <= 1 core at 1000 sessions", "per_count": None, "marginal": None,
                 "measured": fmt(cores, 3) + " cores", "met": None if cores is None else cores <= 1.0})
    r = results.get("ratios", {})
    common = [row for row in r.get("per_count", []) if row.get("peer_sustained") and row.get("libmillis_sustained")]
    best = max(common, key=lambda row: row["sessions"]) if common else None
    for key, want, label, unit in (("cpu_ms_per_session_second", 10, "CPU per session-second", "cpu"),
                                   ("rss_kib_per_session", 5, "RSS per session", "rss")):
        ratio = best.get(f"{key}_ratio") if best else None
        marginal = r.get("marginal", {}).get(f"{unit}_marginal_ratio")
        met = None if marginal is None else marginal >= want
        per = (f"per-count ratio {fmt(ratio, 1)}× at {best['sessions']} sessions (the largest count both sustain; "
               f"medians per session at that count)") if best else "per-count ratio: no count both sustain"
        verdict = ("judged on the marginal ratio (peer slope / libmillis slope of the linear fits): "
                   f"{fmt(marginal, 1)}× {'≥' if met else '<'} {want}×, so {'met' if met else 'not met'}"
                   if marginal is not None else "no marginal ratio (fewer than two fitted counts): not judged")
        m = r.get("marginal", {})
        ceiling, above = m.get(f"peer_over_floor_{unit}"), m.get(f"{unit}_above_floor_ratio")
        bound = ""
        if ceiling is not None and unit == "cpu":
            bound = (f"; the floor (a client with no library) is only {fmt(ceiling, 1)}× cheaper than the peer: "
                     f"no client can reach more on this machine. Above the floor, the peer adds "
                     f"{fmt(above, 1)}× what libmillis adds")
        rows.append({"target": f"{label} >= {want}x lower than the peer", "per_count": ratio,
                     "per_count_sessions": best["sessions"] if best else None, "marginal": marginal,
                     "measured": f"{verdict}; {per}{bound}", "met": met})
    rows += latency_targets(results)
    return rows


def latency_targets(results: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The latency targets, from the latency, device and audio parts (medians over runs).
    Device mode is judged at prebuffer 0: a jitter buffer is latency the application asked
    for, not latency the library adds."""
    period_ms = 10.0      # the library's default ALSA period (millis_config_set_audio_period_ms)
    rows: List[Dict[str, Any]] = []

    def lat(key: str) -> Optional[float]:
        return ((results.get("latency") or {}).get("summary") or {}).get(key, {}).get("median")

    def row(target: str, measured: str, met: Optional[bool]) -> None:
        rows.append({"target": target, "per_count": None, "marginal": None, "measured": measured, "met": met})

    out_p50, in_p50 = lat("sdk_latency.outgoing.added_p50_ms"), lat("sdk_latency.incoming.added_p50_ms")
    out_p99, in_p99 = lat("sdk_latency.outgoing.added_p99_ms"), lat("sdk_latency.incoming.added_p99_ms")
    if out_p50 is not None and in_p50 is not None:
        row("SDK-added latency <= 1 ms each way (application mode: over a raw-socket client)",
            f"mic frame → socket +{fmt(out_p50, 3)} ms p50 (+{fmt(out_p99, 3)} p99); socket → onaudio "
            f"+{fmt(in_p50, 3)} ms p50 (+{fmt(in_p99, 3)} p99)",
            max(out_p50, in_p50) <= 1.0)
    dev = ((results.get("device") or {}).get("0") or {})
    if dev:
        n = min(dev, key=int)
        summ = dev[n].get("summary") or {}
        w2d = (summ.get("wire_to_device_beyond_queue_ms") or {}).get("median")
        w2d_max = (summ.get("wire_to_device_beyond_queue_max_ms") or {}).get("median")
        c2w = (summ.get("capture_to_wire_ms") or {}).get("median")
        if w2d is not None and c2w is not None:
            row(f"SDK-added latency <= 1 ms each way beyond the audio period ({period_ms:g} ms; device mode, "
                f"{n} session, prebuffer 0)",
                f"socket → device {fmt(w2d)} ms mean (max {fmt(w2d_max)}) beyond the audio queued ahead; "
                f"capture → socket {fmt(c2w)} ms (from the sample's entry into the device, its wait in the sound "
                f"server's and ALSA's buffers included); judged on the means",
                max(w2d, c2w) <= period_ms + 1.0)
    clear = (((results.get("audio") or {}).get("summary") or {}).get("default") or {}).get("last_clear_ms")
    if clear:
        row(f"barge-in <= one audio period ({period_ms:g} ms): clear read → speaker silent",
            f"{fmt(clear['median'])} ms [{fmt(clear['min'])}–{fmt(clear['max'])}]", clear["median"] <= period_ms)
    for scheme in ("ws", "wss"):
        d = lat(f"connect.{scheme}.client_minus_server_ms.p50")
        total = lat(f"connect.{scheme}.start_to_ready_ms.p50")
        if d is not None:
            row(f"start → onready within 2 ms of the server's own time ({scheme}://, loopback)",
                f"start → onready {fmt(total, 3)} ms p50, of which {fmt(d, 3)} ms outside the server's accept → "
                f"onready", d <= 2.0)
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
        out += [f"## Scale: {client} ({TITLES.get(client, client)})",
                "",
                f"Lateness of outgoing frames against their schedule: {src} (server-side); "
                "client's own view: " + ("the feeding thread's send_audio call" if client == "libmillis"
                                          else "when send() returned") + ". RSS per session: (VmRSS at the end "
                "of the window − VmRSS after the warm-up session) / N.", "",
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
        ot = (results.get("one_time_rss") or {}).get(client)
        if ot:
            out += ["", f"One-time RSS (in the baseline, not charged to the sessions; medians over all runs): "
                    f"{mib(ot, 'rss_kib_at_start')} MiB at the process's start "
                    f"({'the program, libmillis and its shared libraries mapped' if client == 'libmillis' else 'the interpreter' if client == 'peer' else 'the program'}), "
                    f"+ {mib(ot, 'rss_kib_init')} MiB up to the warm-up "
                    f"({'the library configured' if client == 'libmillis' else 'the imports, the event loop' if client == 'peer' else 'buffers'}), "
                    f"+ {mib(ot, 'rss_kib_first_connection')} MiB the warm-up session: "
                    f"{mib(ot, 'rss_kib_after_warmup')} MiB at the baseline."]
        out.append("")
    r = results.get("ratios") or {}
    mg = r.get("marginal") or {}
    if r.get("per_count") or mg.get("floor_cpu_slope") is not None:
        out += ["## libmillis against the peer and the floor (ratio: peer / libmillis; medians)", ""]
    if r.get("per_count"):
        out += ["| sessions | CPU ms / session-s: libmillis | peer | ratio | floor | RSS KiB / session: libmillis "
                "| peer | ratio | floor | peer sustained |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for row in r["per_count"]:
            out.append(f"| {row['sessions']} | {fmt(row['libmillis_cpu_ms_per_session_second'], 3)} "
                       f"| {fmt(row['peer_cpu_ms_per_session_second'], 3)} "
                       f"| {fmt(row['cpu_ms_per_session_second_ratio'], 1)}× "
                       f"| {fmt(row.get('floor_cpu_ms_per_session_second'), 3)} "
                       f"| {fmt(row['libmillis_rss_kib_per_session'], 1)} | {fmt(row['peer_rss_kib_per_session'], 1)} "
                       f"| {fmt(row['rss_kib_per_session_ratio'], 1)}× | {fmt(row.get('floor_rss_kib_per_session'), 1)} "
                       f"| {'yes' if row['peer_sustained'] else 'no'} |")
        out += ["", f"Marginal cost (slope of a linear fit over the sustained counts): CPU per session "
                f"libmillis {fmt(ms(mg.get('libmillis_cpu_slope')), 3)} ms/s, peer {fmt(ms(mg.get('peer_cpu_slope')), 3)} "
                f"ms/s ({fmt(mg.get('cpu_marginal_ratio'), 1)}×); RSS per session libmillis "
                f"{fmt(mg.get('libmillis_rss_slope'), 1)} KiB, peer {fmt(mg.get('peer_rss_slope'), 1)} KiB "
                f"({fmt(mg.get('rss_marginal_ratio'), 1)}×)."]
    if mg.get("floor_cpu_slope") is not None:
        out += ["", f"The floor: a client with no library (millis_loadgen: the kernel's loopback TCP work, which "
                f"every client pays, and little else) costs {fmt(ms(mg.get('floor_cpu_slope')), 3)} ms per "
                f"session-second (marginal); libmillis {fmt(ms(mg.get('libmillis_cpu_slope')), 3)} "
                f"({fmt(mg.get('libmillis_over_floor_cpu'), 1)}× the floor); peer "
                f"{fmt(ms(mg.get('peer_cpu_slope')), 3)} ({fmt(mg.get('peer_over_floor_cpu'), 1)}× the floor). "
                f"Above the floor (what the client itself adds): libmillis "
                f"{fmt(ms(mg.get('libmillis_above_floor_cpu')), 3)} ms per session-second, peer "
                f"{fmt(ms(mg.get('peer_above_floor_cpu')), 3)} ({fmt(mg.get('cpu_above_floor_ratio'), 1)}×). "
                f"Marginal RSS: floor {fmt(mg.get('floor_rss_slope'), 1)} KiB per session"
                + (f", libmillis {fmt(mg.get('libmillis_over_floor_rss'), 1)}×, peer "
                   f"{fmt(mg.get('peer_over_floor_rss'), 1)}× that." if (mg.get('floor_rss_slope') or 0) >= 0.5
                   else " (too small for a ratio).")]
    ot = results.get("one_time_rss") or {}
    if ot:
        parts = []
        if ot.get("libmillis"):
            o = ot["libmillis"]
            parts.append(f"libmillis {mib(o, 'rss_kib_since_start')} MiB (library initialisation: network thread, "
                         f"curl and OpenSSL set-up, buffers, the first session; on top of "
                         f"{mib(o, 'rss_kib_at_start')} MiB at the process's start)")
        if ot.get("peer"):
            o = ot["peer"]
            parts.append(f"peer {mib(o, 'rss_kib_before_warmup')} MiB (interpreter, imports; "
                         f"{mib(o, 'rss_kib_at_start')} MiB of it the bare interpreter) + "
                         f"{mib(o, 'rss_kib_first_connection')} MiB (first connection)")
        if ot.get("floor"):
            o = ot["floor"]
            parts.append(f"floor {mib(o, 'rss_kib_after_warmup')} MiB in all")
        out += ["", "One-time RSS (medians; in each client's baseline, taken after one warm-up session, so not "
                "charged to the sessions): " + "; ".join(parts) + "."]
    if r.get("per_count") or mg.get("floor_cpu_slope") is not None:
        out.append("")
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
    titles = {"device": "PulseAudio null sink: ALSA's pulse plugin, 16 kHz mono as the sound server offers",
              "device_card": "a paced 48 kHz stereo card, no sound server (Tests/alsa/pcm_constrain.c), "
                             "speech as the microphone"}
    for key, title in titles.items():
        dev = {pb: sec for pb, sec in (results.get(key) or {}).items() if sec}
        if not dev:
            continue
        out += [f"## Device mode (echo cancellation, noise suppression, AGC on; {title}; agent audio "
                "from the load server)", "",
                "Library stats per session (millis_client_stats_json), median over the sessions of a run, then "
                "median [min–max] over the runs: capture→wire (`capture_to_wire_ms`), wire→device mean and max "
                "(`wire_to_device_ms`, `wire_to_device_max_ms`), the part beyond the playout queue mean and max "
                "(`wire_to_device_beyond_queue_ms`, `..._max_ms`), the last barge-in (`last_clear_ms`; – when no "
                "clear came: the load server sends none). Prebuffer: the playout prebuffer "
                "(`millis_config_set_playout_prebuffer_ms`; default: the library's, 60 ms).", "",
                "| prebuffer (ms) | sessions | client CPU (cores) | CPU ms / session-s | RSS KiB / session "
                "| capture→wire (ms) | wire→device (ms) | wire→device max (ms) | beyond queue (ms) "
                "| beyond queue max (ms) | last clear (ms) | frames lost | agent frames lost | underruns "
                "| capture overruns |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for pb in sorted(dev, key=lambda x: (x != "default", int(x) if x.isdigit() else 0)):
            for n in sorted(dev[pb], key=int):
                pt = dev[pb][n]
                if not pt.get("runs"):
                    out.append(f"| {pb} | {n} | failed: "
                               f"{'; '.join(e.splitlines()[0] for e in pt['errors'])[:200]} |")
                    continue
                out.append(f"| {pb} | {n} | {cell(pt, 'cpu_cores', 3)} | {cell(pt, 'cpu_ms_per_session_second', 3)} "
                           f"| {cell(pt, 'rss_kib_per_session', 1)} | {cell(pt, 'capture_to_wire_ms')} "
                           f"| {cell(pt, 'wire_to_device_ms')} | {cell(pt, 'wire_to_device_max_ms')} "
                           f"| {cell(pt, 'wire_to_device_beyond_queue_ms')} "
                           f"| {cell(pt, 'wire_to_device_beyond_queue_max_ms')} | {cell(pt, 'last_clear_ms')} "
                           f"| {cell(pt, 'frames_lost', 0)} | {cell(pt, 'agent_frames_lost', 0)} "
                           f"| {cell(pt, 'playback_underruns', 0)} | {cell(pt, 'capture_overruns', 0)} |")
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
        out += ["## The issue's targets", "",
                "Per-count ratio: peer / libmillis of the per-session medians at the largest count both clients "
                "sustain. Marginal ratio: peer / libmillis of the slopes of the linear fits (the cost of one more "
                "session). A ratio target counts as met when its marginal ratio meets it.", "",
                "| target | per-count ratio | marginal ratio | measured | met |", "|---|---:|---:|---|---|"]
        for t in tg:
            pc = t.get("per_count")
            out.append(f"| {t['target']} "
                       f"| {'–' if pc is None else fmt(pc, 1) + '× at ' + str(t.get('per_count_sessions'))} "
                       f"| {'–' if t.get('marginal') is None else fmt(t['marginal'], 1) + '×'} | {t['measured']} | "
                       f"{'–' if t['met'] is None else ('yes' if t['met'] else 'no')} |")
        out.append("")
    return "\n".join(out)


def mib(summary: Dict[str, Any], key: str) -> str:
    s = summary.get(key)
    return fmt(s["median"] / 1024, 1) if s else "–"


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
              "peer": ("C1", "s", "Python peer (asyncio + websockets)"),
              "floor": ("C2", "^", "floor: C epoll client, no library (millis_loadgen)")}

    def series(section: Dict[str, Any], key: str):
        xs, ys, lo, hi, sus = [], [], [], [], []
        for k in sorted(section, key=int):
            s = (section[k].get("summary") or {}).get(key)
            if s:
                xs.append(int(k)); ys.append(s["median"]); lo.append(s["median"] - s["min"])
                hi.append(s["max"] - s["median"]); sus.append(bool(section[k].get("sustained")))
        return xs, ys, lo, hi, sus

    marked_unsustained = set()       # one legend entry per panel for the red rings
    for client, section in scale.items():
        color, marker, label = styles.get(client, ("C2", "^", client))
        for ax, key in ((ax1, "cpu_ms_per_session_second"), (ax2, "cpu_cores")):
            xs, ys, lo, hi, sus = series(section, key)
            if not xs:
                continue
            ax.errorbar(xs, ys, yerr=[lo, hi], color=color, marker=marker, capsize=3, label=label)
            bad = [(x, y) for x, y, s in zip(xs, ys, sus) if not s]
            if bad:
                ring = None if ax in marked_unsustained else "not sustained (loss, or p99 lateness ≥ 20 ms)"
                marked_unsustained.add(ax)
                ax.scatter([b[0] for b in bad], [b[1] for b in bad], s=160, facecolors="none", edgecolors="red",
                           zorder=5, label=ring)
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
    # Log y too: the per-session cost spans 0.4 to 25 ms/s, and the gap between libmillis and
    # the floor at high counts is the point of the panel.
    ax1.set_yscale("log")
    ax1.set_xlabel("concurrent sessions (log)")
    ax1.set_ylabel("CPU ms per session-second (log)")
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
    ax2.legend(fontsize=7, loc="upper left")
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
    p.add_argument("--sessions", type=int, nargs="+", help="libmillis counts (default 1 10 100 200 500 1000 2000)")
    p.add_argument("--peer-sessions", type=int, nargs="+", help="peer counts (default 1 10 100 200 500)")
    p.add_argument("--floor-sessions", type=int, nargs="+",
                   help="floor (millis_loadgen) counts (default: the libmillis counts)")
    p.add_argument("--device-sessions", type=int, nargs="+", help="device-mode counts (default 1 4)")
    p.add_argument("--device-prebuffer-ms", nargs="+",
                   help="device mode's playout prebuffers: 'default' (the library's) and/or ms (default: default 0)")
    p.add_argument("--latency-runs", type=int, help="runs of bench/latency/millis_latency (default: --runs)")
    p.add_argument("--audio-runs", type=int, help="runs of bench/audio/audio_bench.py (default: --runs)")
    p.add_argument("--latency-arg", action="append",
                   help="an option for bench/latency/run.sh (repeatable; e.g. --latency-arg=--seconds "
                        "--latency-arg=20); --quick gives --seconds 3 --runs 5")
    p.add_argument("--ramp-s", type=float, default=1.0, help="connections spread over this many seconds (default 1)")
    p.add_argument("--settle-s", type=float, default=1.0, help="from the last onready to the window (default 1)")
    p.add_argument("--drain-s", type=float, default=3.0, help="after the window, for agent audio in flight (default 3)")
    p.add_argument("--slots", type=int, default=20, help="phases of the sessions' 20 ms schedules (default 20)")
    p.add_argument("--device-beds", nargs="+", choices=sorted(DEVICE_BEDS), default=["pulse", "card48"],
                   help="device mode's beds: pulse (PulseAudio's null sink) and/or card48 (a paced 48 kHz "
                        "stereo card, no sound server); default both")
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
    # 200 is shared with the peer: the largest count both sustain, for the per-count ratio.
    a.sessions = a.sessions or [1, 10, 100, 200, 500, 1000, 2000]
    a.peer_sessions = a.peer_sessions or [1, 10, 100, 200, 500]
    a.floor_sessions = a.floor_sessions or list(a.sessions)
    a.device_sessions = a.device_sessions or [1, 4]
    a.device_prebuffer_ms = a.device_prebuffer_ms or ["default", "0"]
    bad = [x for x in a.device_prebuffer_ms if x != "default" and not (x.isdigit() and int(x) <= 2000)]
    if bad:
        p.error(f"--device-prebuffer-ms: 'default' or 0 to 2000, not {bad}")
    a.device_prebuffer_ms = [x if x == "default" else str(int(x)) for x in a.device_prebuffer_ms]
    a.latency_runs = a.latency_runs or a.runs
    a.audio_runs = a.audio_runs or a.runs
    if a.runs < 1 or a.seconds <= 0 or min(a.sessions + a.peer_sessions + a.floor_sessions + a.device_sessions) < 1:
        p.error("--runs, --seconds and the session counts must be positive")
    return a


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    fds = B.raise_fd_limit(20000)
    need = 2 * max(args.sessions + args.peer_sessions + args.floor_sessions) + 100
    bench = Bench(args)
    if fds < need:
        bench.note(f"open-file limit {fds} < {need}: the largest counts may fail (ulimit -n 20000)")
    t0 = time.monotonic()
    try:
        bench.build()
        if {"scale", "peer", "floor"} & set(args.only):
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
