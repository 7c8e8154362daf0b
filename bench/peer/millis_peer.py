#!/usr/bin/env python3
"""millis_peer: N Millis sessions in one process, on asyncio and `websockets`.

    python3 bench/peer/millis_peer.py --url ws://127.0.0.1:8766/millis \\
        --sessions 100 --seconds 20 --json out.json

The Python peer of the libmillis benchmark: the same protocol workload as a libmillis
client, done the way a reasonable asyncio program would do it. Each session connects,
sends `initiate` (public key "test-public-key", agent "demo-agent"), waits for
`onready`, then for --seconds sends 640-byte (20 ms) PCM16 frames in real time (frame k
is due at onready + k * 20 ms; its lateness is the time its `send` returned minus that),
a `ping` text after every 1000 frames, receives everything (agent audio counted, every
control message parsed with json.loads and dispatched by method), and closes.

One task sends and one task receives per session; nothing is logged per frame. The
summary goes to --json (and a few lines to stderr). See README.md in this folder.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import platform
import resource
import sys
import time
from typing import Any, Callable, Dict, List, Optional

import websockets
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

FRAME_S = 0.020
FRAME_BYTES = 640
PING_EVERY = 1000
PUBLIC_KEY = "test-public-key"
AGENT_ID = "demo-agent"

# A fixed, non-silent frame: 400 Hz, 20 ms = 8 whole periods (the content does not matter
# to the load server; a real client would send its microphone here).
FRAME = b"".join(
    int(8000 * math.sin(2 * math.pi * 400 * i / 16000)).to_bytes(2, "little", signed=True)
    for i in range(FRAME_BYTES // 2))


class Histogram:
    """Fixed-bin latency histogram (0.05 ms bins up to 2 s), so that memory does not
    grow with the number of frames (that would show up in the RSS being measured)."""

    BIN_MS = 0.05
    BINS = 40000

    def __init__(self) -> None:
        self.bins = [0] * self.BINS
        self.count = 0
        self.over = 0
        self.max = float("-inf")
        self.min = float("inf")
        self.sum = 0.0

    def add(self, ms: float) -> None:
        self.count += 1
        self.sum += ms
        if ms > self.max:
            self.max = ms
        if ms < self.min:
            self.min = ms
        i = int(ms / self.BIN_MS) if ms > 0 else 0
        if i >= self.BINS:
            self.over += 1
        else:
            self.bins[i] += 1

    def quantile(self, p: float) -> float:
        """Upper edge of the bin holding the p-quantile (the max beyond the range)."""
        if not self.count:
            return 0.0
        rank = max(1, math.ceil(p * self.count))
        acc = 0
        for i, n in enumerate(self.bins):
            acc += n
            if acc >= rank:
                return min((i + 1) * self.BIN_MS, self.max)
        return self.max

    def summary(self) -> Dict[str, Any]:
        if not self.count:
            return {"count": 0, "p50": None, "p99": None, "max": None, "mean": None}
        return {"count": self.count, "p50": round(self.quantile(0.5), 3),
                "p99": round(self.quantile(0.99), 3), "max": round(self.max, 3),
                "min": round(self.min, 3), "mean": round(self.sum / self.count, 3)}


def quantiles(values: List[float]) -> Dict[str, Any]:
    if not values:
        return {"count": 0, "p50": None, "p99": None, "max": None}
    v = sorted(values)

    def q(p: float) -> float:
        return v[min(len(v) - 1, max(0, math.ceil(p * len(v)) - 1))]
    return {"count": len(v), "p50": round(q(0.5), 3), "p99": round(q(0.99), 3), "max": round(v[-1], 3)}


def vm_status_kib(field: str) -> Optional[int]:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def runqueue_wait_s() -> Optional[float]:
    """Time this process was runnable but waiting for a CPU (/proc/self/schedstat)."""
    try:
        with open("/proc/self/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class Totals:
    """What all sessions add up to (one asyncio thread: no locking needed)."""

    def __init__(self) -> None:
        self.lateness = Histogram()          # outgoing frames: send returned - due time
        self.agent_lateness = Histogram()    # agent frame k: arrival - (start_answering + k*20 ms)
        self.frames_scheduled = 0
        self.frames_sent = 0
        self.frames_late = 0                 # sent more than one frame (20 ms) late
        self.late_by_second: Dict[int, int] = {}   # late frames per second of the run
        self.t0 = 0.0                        # loop time at the start of the run
        self.pings_sent = 0
        self.pongs = 0
        self.rtt_ms: List[float] = []
        self.agent_frames = 0
        self.agent_bytes = 0
        self.methods: Dict[str, int] = {}
        self.ready_ms: List[float] = []
        self.connect_failures = 0
        self.failure_reasons: Dict[str, int] = {}
        self.sessions_ready = 0
        self.sessions_dropped = 0            # closed by the other side before the end
        self.sessions_ended_by_server = 0    # onsessionended received


class Session:
    def __init__(self, index: int, args: argparse.Namespace, totals: Totals) -> None:
        self.index = index
        self.args = args
        self.t = totals
        self.ready = asyncio.Event()
        self.session_id: Optional[str] = None
        self.agent_state = "idle"
        self.answer_start: Optional[float] = None
        self.answer_frames = 0
        self.transcripts = 0
        self.response_texts = 0
        self.ended_by_server = False
        self.loop = asyncio.get_running_loop()
        # dispatch table: every control message the protocol defines has a handler
        self.handlers: Dict[str, Callable[[Dict[str, Any]], None]] = {
            "onready": self.on_ready,
            "ontranscript": self.on_transcript,
            "onresponsetext": self.on_response_text,
            "start_answering": self.on_start_answering,
            "pong": self.on_pong,
            "clear": self.on_clear,
            "pause": self.on_pause,
            "unpause": self.on_unpause,
            "onfunction": self.on_function,
            "onsessionended": self.on_session_ended,
        }

    # --- control messages

    def on_ready(self, m: Dict[str, Any]) -> None:
        payload = m.get("payload") or {}
        self.session_id = payload.get("session_id") if isinstance(payload, dict) else None
        self.ready.set()

    def on_transcript(self, m: Dict[str, Any]) -> None:
        self.transcripts += 1

    def on_response_text(self, m: Dict[str, Any]) -> None:
        self.response_texts += 1

    def on_start_answering(self, m: Dict[str, Any]) -> None:
        self.agent_state = "prepare_answer"
        self.answer_start = self.loop.time()
        self.answer_frames = 0

    def on_pong(self, m: Dict[str, Any]) -> None:
        self.t.pongs += 1
        try:
            self.t.rtt_ms.append(time.time() * 1000 - float(m.get("data")))
        except (TypeError, ValueError):
            pass

    def on_clear(self, m: Dict[str, Any]) -> None:
        self.agent_state = "idle"
        self.answer_start = None

    def on_pause(self, m: Dict[str, Any]) -> None:
        self.agent_state = "pause"

    def on_unpause(self, m: Dict[str, Any]) -> None:
        self.agent_state = "answer"

    def on_function(self, m: Dict[str, Any]) -> None:
        pass

    def on_session_ended(self, m: Dict[str, Any]) -> None:
        self.ended_by_server = True
        self.t.sessions_ended_by_server += 1

    def on_audio(self, data: bytes) -> None:
        now = self.loop.time()
        self.t.agent_frames += 1
        self.t.agent_bytes += len(data)
        if self.answer_start is not None:
            due = self.answer_start + self.answer_frames * FRAME_S
            self.t.agent_lateness.add((now - due) * 1000)
            self.answer_frames += 1
        self.agent_state = "answer"

    # --- tasks

    async def receive(self, ws) -> None:
        methods = self.t.methods
        try:
            async for msg in ws:
                if isinstance(msg, bytes):
                    self.on_audio(msg)
                    continue
                try:
                    m = json.loads(msg)
                except ValueError:
                    methods["<invalid json>"] = methods.get("<invalid json>", 0) + 1
                    continue
                method = m.get("method") if isinstance(m, dict) else None
                methods[method] = methods.get(method, 0) + 1
                handler = self.handlers.get(method)
                if handler is not None:
                    handler(m)
        except ConnectionClosed:
            pass

    async def send(self, ws) -> None:
        loop = self.loop
        t = self.t
        nframes = max(0, round(self.args.seconds / FRAME_S))
        t.frames_scheduled += nframes
        start = loop.time()
        sent = 0
        try:
            for k in range(nframes):
                due = start + k * FRAME_S
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                await ws.send(FRAME)
                late = loop.time() - due
                sent += 1
                t.lateness.add(late * 1000)
                if late > FRAME_S:
                    t.frames_late += 1
                    sec = int(due - t.t0)
                    t.late_by_second[sec] = t.late_by_second.get(sec, 0) + 1
                if sent % PING_EVERY == 0:
                    await ws.send(json.dumps({"method": "ping", "data": str(int(time.time() * 1000))}))
                    t.pings_sent += 1
        except ConnectionClosed:
            t.sessions_dropped += 1
        finally:
            t.frames_sent += sent

    async def run(self, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        t = self.t
        t0 = self.loop.time()
        try:
            ws = await asyncio.wait_for(connect(self.args.url, open_timeout=None),
                                        self.args.ready_timeout)
        except Exception as e:  # noqa: BLE001 - every failure to connect is counted
            self.fail(e)
            return
        receiver = asyncio.create_task(self.receive(ws))
        try:
            await ws.send(json.dumps({"method": "initiate", "data": {
                "agent": {"agent_id": AGENT_ID}, "public_key": PUBLIC_KEY}}))
            remaining = self.args.ready_timeout - (self.loop.time() - t0)
            await asyncio.wait_for(self.ready.wait(), max(0.0, remaining))
        except Exception as e:  # noqa: BLE001
            self.fail(e)
            receiver.cancel()
            await ws.close()
            return
        t.ready_ms.append((self.loop.time() - t0) * 1000)
        t.sessions_ready += 1
        await self.send(ws)
        await ws.close()
        await receiver

    def fail(self, e: BaseException) -> None:
        self.t.connect_failures += 1
        reason = type(e).__name__
        self.t.failure_reasons[reason] = self.t.failure_reasons.get(reason, 0) + 1


class GcWatch:
    """Times the interpreter's garbage collections (a pause of the whole event loop)."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.total_ms = 0.0
        self.max_ms = 0.0
        self.max_gen = None
        self._t = 0.0

    def __call__(self, phase: str, info: Dict[str, Any]) -> None:
        if phase == "start":
            self._t = time.perf_counter()
            return
        ms = (time.perf_counter() - self._t) * 1000
        gen = info.get("generation", 0)
        self.count[gen] += 1
        self.total_ms += ms
        if ms > self.max_ms:
            self.max_ms, self.max_gen = ms, gen

    def summary(self) -> Dict[str, Any]:
        return {"collections_by_generation": self.count, "total_ms": round(self.total_ms, 3),
                "max_pause_ms": round(self.max_ms, 3), "max_pause_generation": self.max_gen}


async def sample_rss(stop: asyncio.Event, out: Dict[str, int]) -> None:
    while not stop.is_set():
        rss = vm_status_kib("VmRSS") or 0
        out["max"] = max(out.get("max", 0), rss)
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
        except asyncio.TimeoutError:
            pass


async def amain(args: argparse.Namespace) -> Dict[str, Any]:
    totals = Totals()
    totals.t0 = asyncio.get_running_loop().time()
    rss_baseline = vm_status_kib("VmRSS")
    cpu0, wall0, wait0 = cpu_seconds(), time.monotonic(), runqueue_wait_s()
    stop = asyncio.Event()
    rss: Dict[str, int] = {}
    sampler = asyncio.create_task(sample_rss(stop, rss))
    gc_watch = GcWatch()
    gc.callbacks.append(gc_watch)
    sessions = [Session(i, args, totals) for i in range(args.sessions)]
    ramp = args.ramp_s
    await asyncio.gather(*(s.run(ramp * i / args.sessions if args.sessions else 0)
                           for i, s in enumerate(sessions)))
    cpu1, wall1, wait1 = cpu_seconds(), time.monotonic(), runqueue_wait_s()
    rss_end = vm_status_kib("VmRSS")
    stop.set()
    await sampler
    gc.callbacks.remove(gc_watch)

    ru = resource.getrusage(resource.RUSAGE_SELF)
    n, secs = args.sessions, args.seconds
    run_cpu = cpu1 - cpu0
    frames_not_sent = totals.frames_scheduled - totals.frames_sent + \
        (n - totals.sessions_ready) * max(0, round(secs / FRAME_S))
    rss_peak = rss.get("max", rss_end or 0)
    return {
        "client": "millis_peer",
        "implementation": f"python {platform.python_version()} asyncio + websockets {websockets.__version__}",
        "url": args.url,
        "sessions": n,
        "seconds": secs,
        "ramp_s": ramp,
        "sessions_ready": totals.sessions_ready,
        "connect_failures": totals.connect_failures,
        "connect_failure_reasons": totals.failure_reasons,
        "sessions_dropped": totals.sessions_dropped,
        "sessions_ended_by_server": totals.sessions_ended_by_server,
        "frames_expected": n * max(0, round(secs / FRAME_S)),
        "frames_sent": totals.frames_sent,
        "frames_not_sent": frames_not_sent,
        "frames_late": totals.frames_late,
        "frames_late_or_lost": totals.frames_late + frames_not_sent,
        "lateness_ms": totals.lateness.summary(),
        "late_frames_by_second": {str(k): v for k, v in sorted(totals.late_by_second.items())},
        "pings_sent": totals.pings_sent,
        "pongs_received": totals.pongs,
        "ping_rtt_ms": quantiles(totals.rtt_ms),
        "agent_frames_received": totals.agent_frames,
        "agent_bytes_received": totals.agent_bytes,
        "agent_frame_arrival_lateness_ms": totals.agent_lateness.summary(),
        "control_messages_received": totals.methods,
        "ready_latency_ms": quantiles(totals.ready_ms),
        "gc": gc_watch.summary(),
        "wall_run_s": round(wall1 - wall0, 3),
        "cpu_run_s": round(run_cpu, 3),
        "cpu_process_s": round(ru.ru_utime + ru.ru_stime, 3),
        "runqueue_wait_run_s": round(wait1 - wait0, 3) if wait0 is not None and wait1 is not None else None,
        "cpu_percent_of_core_run": round(100 * run_cpu / (wall1 - wall0), 2) if wall1 > wall0 else None,
        "cpu_ms_per_session_second": round(1000 * run_cpu / (n * secs), 4) if n and secs else None,
        "ru_maxrss_kib": ru.ru_maxrss,
        "vm_hwm_kib": vm_status_kib("VmHWM"),
        "rss_baseline_kib": rss_baseline,
        "rss_peak_sampled_kib": rss_peak,
        "rss_end_kib": rss_end,
        "rss_kib_per_session": round((rss_peak - (rss_baseline or 0)) / n, 2) if n else None,
    }


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="ws://HOST:PORT/millis")
    p.add_argument("--sessions", type=int, default=1, help="concurrent sessions (default 1)")
    p.add_argument("--seconds", type=float, default=10.0,
                   help="audio each session sends, from its onready (default 10)")
    p.add_argument("--ramp-s", type=float, default=1.0,
                   help="session i starts connecting at i * RAMP / N seconds (default 1.0)")
    p.add_argument("--ready-timeout", type=float, default=30.0,
                   help="seconds from connecting to onready before a session counts as failed")
    p.add_argument("--json", help="write the summary there")
    args = p.parse_args(argv)
    if args.sessions < 0 or args.seconds < 0 or args.ramp_s < 0:
        p.error("--sessions, --seconds and --ramp-s must not be negative")
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass
    result = asyncio.run(amain(args))
    if args.json:
        tmp = f"{args.json}.tmp.{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
        os.replace(tmp, args.json)
    lat = result["lateness_ms"]
    print(f"millis_peer: {result['sessions_ready']}/{result['sessions']} sessions ready, "
          f"{result['frames_sent']} frames sent, {result['frames_late_or_lost']} late or lost, "
          f"lateness p50 {lat['p50']} p99 {lat['p99']} max {lat['max']} ms, "
          f"{result['agent_frames_received']} agent frames, cpu {result['cpu_run_s']} s "
          f"({result['cpu_ms_per_session_second']} ms per session-second), "
          f"rss {result['rss_peak_sampled_kib']} KiB ({result['rss_kib_per_session']} KiB per session)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
