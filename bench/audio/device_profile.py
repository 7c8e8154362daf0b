#!/usr/bin/env python3
"""Where device mode's CPU and memory go (BENCHMARKS.md, "Device mode: where the CPU and
the memory go"):

    python3 bench/audio/device_profile.py [--runs 3] [--seconds 8] [--json out.json]

One device-mode session of bench/scale/millis_scale against the load server (the agent's
audio streamed, the microphone sent), echo cancellation, noise suppression and AGC on,
on each of run.py's beds: PulseAudio's null sink through ALSA's pulse plugin, and a paced
48 kHz stereo card with no sound server (speech as its microphone).

- CPU per thread, from the kernel's own accounting (/proc/PID/task/TID/schedstat: time
  on a CPU) over a window that starts once the session runs, and the thread's context
  switches a second: the library's capture, playback and network threads, and the
  threads the sound server's client library starts in the process (`threaded-ml`).
- Memory per session: the process's resident pages by mapping (/proc/PID/smaps), with 5
  sessions less with 1, over 4: the heap, anonymous mappings (thread stacks and the
  threads' malloc arenas), the sound server's shared memory, libraries.

Medians over the runs. Needs what `make bench` needs (bench/README.md).
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "bench" / "lib"))
sys.path.insert(0, str(ROOT / "Tests" / "python"))
import audio_bed  # noqa: E402
import benchlib as B  # noqa: E402
import run as bench_run  # noqa: E402


def threads(pid: int) -> Dict[str, tuple]:
    """tid → (name, ms on a CPU, context switches)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            ran_ns = int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
            status = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/task/{tid}/status").read_text()
                          .splitlines() if ":\t" in line)
            switches = int(status["voluntary_ctxt_switches"]) + int(status["nonvoluntary_ctxt_switches"])
            out[tid] = (name, ran_ns / 1e6, switches)
        except (OSError, ValueError, KeyError):
            continue  # a thread that ended between the listing and the read
    return out


def resident(pid: int) -> Dict[str, int]:
    """KiB resident by kind of mapping."""
    kinds: Dict[str, int] = collections.Counter()
    kind = "anonymous"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            parts = line.split(None, 5)
            name = parts[5].strip() if len(parts) > 5 else ""
            if name == "[heap]":
                kind = "heap (malloc's main arena)"
            elif "pulse-shm" in name or "memfd:pulseaudio" in name:
                kind = "sound server's shared memory"
            elif name.startswith("/"):
                kind = "files (libraries)"
            elif name.startswith("["):
                kind = "other"
            else:
                kind = "anonymous (thread stacks, threads' arenas)"
        elif line.startswith("Rss:"):
            kinds[kind] += int(line.split()[1])
    return kinds


class Profiler:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.exe = B.build_scale(work / "millis_scale")
        self.runner = bench_run.Bench.__new__(bench_run.Bench)  # only its bed()
        self.runner.args = argparse.Namespace(seconds=args.seconds + 6, ramp_s=0.5, settle_s=0.5, drain_s=0.5,
                                              capture="pulse", playback="pulse")
        self.runner.bin = work

    def session(self, bed: str, sessions: int, sample) -> None:
        with tempfile.TemporaryDirectory(prefix=f"device-profile-{bed}-") as tmp:
            with self.runner.bed(audio_bed, bed, Path(tmp)) as (env, (capture, playback)):
                with B.LoadServer(Path(tmp) / "server.json") as srv:
                    proc = subprocess.Popen(
                        [str(self.exe), "--url", srv.url, "--sessions", str(sessions), "--seconds",
                         str(self.args.seconds + 6), "--ramp-s", "0.5", "--settle-s", "0.5", "--drain-s", "0.5",
                         "--mode", "device", "--capture", capture, "--playback", playback, "--prebuffer-ms", "0",
                         "--json", str(Path(tmp) / "client.json")],
                        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    try:
                        time.sleep(4)  # the warm-up session and the ramp are over
                        sample(proc.pid)
                    finally:
                        proc.wait(self.args.seconds + 60)

    def cpu(self, bed: str) -> Dict[str, Dict[str, float]]:
        """name → {ms_per_s, switches_per_s}, summed over the threads of that name."""
        got: Dict[str, Dict[str, float]] = {}

        def sample(pid: int) -> None:
            before, t0 = threads(pid), time.monotonic()
            time.sleep(self.args.seconds)
            after, dt = threads(pid), time.monotonic() - t0
            for tid, (name, ms, switches) in after.items():
                if tid in before:
                    row = got.setdefault(name, {"ms_per_s": 0.0, "switches_per_s": 0.0})
                    row["ms_per_s"] += (ms - before[tid][1]) / dt
                    row["switches_per_s"] += (switches - before[tid][2]) / dt

        self.session(bed, 1, sample)
        return got

    def memory(self, bed: str) -> Dict[str, float]:
        def at(n: int) -> Dict[str, int]:
            box: List[Dict[str, int]] = []
            self.session(bed, n, lambda pid: box.append(resident(pid)))
            return box[0]
        one, five = at(1), at(5)
        return {k: (five.get(k, 0) - one.get(k, 0)) / 4 for k in set(one) | set(five)}


def median_rows(rows: List[Dict[str, Dict[str, float]]]) -> Dict[str, Dict[str, float]]:
    names = {n for r in rows for n in r}
    return {n: {k: statistics.median(r.get(n, {}).get(k, 0.0) for r in rows) for k in ("ms_per_s", "switches_per_s")}
            for n in names}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=8, help="the CPU window (default 8)")
    ap.add_argument("--beds", nargs="+", choices=sorted(bench_run.DEVICE_BEDS), default=["pulse", "card48"])
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    if "pulse" in args.beds and not audio_bed.pulseaudio_available():
        print("pulseaudio is not installed: the pulse bed is left out")
        args.beds.remove("pulse")
    results = {}
    with tempfile.TemporaryDirectory(prefix="device-profile-") as work:
        prof = Profiler(args, Path(work))
        for bed in args.beds:
            cpu = median_rows([prof.cpu(bed) for _ in range(args.runs)])
            mems = [prof.memory(bed) for _ in range(args.runs)]
            memory = {k: statistics.median(m.get(k, 0.0) for m in mems) for k in {k for m in mems for k in m}}
            results[bed] = {"cpu": cpu, "memory_kib_per_session": memory}
            print(f"\n{bed}: CPU by thread, one session (median of {args.runs} runs of {args.seconds:g} s)")
            total = 0.0
            for name, row in sorted(cpu.items(), key=lambda kv: -kv[1]["ms_per_s"]):
                total += row["ms_per_s"]
                print(f"  {name:18} {row['ms_per_s']:6.2f} ms/s  {row['switches_per_s']:6.0f} switches/s")
            print(f"  {'total':18} {total:6.2f} ms/s")
            print(f"{bed}: resident memory per session ((5 sessions − 1) / 4, median of {args.runs})")
            for kind, kib in sorted(memory.items(), key=lambda kv: -kv[1]):
                if abs(kib) >= 1:
                    print(f"  {kib:8.0f} KiB  {kind}")
            print(f"  {sum(memory.values()):8.0f} KiB  total")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
