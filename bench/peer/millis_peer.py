#!/usr/bin/env python3
"""millis_peer: N Millis sessions in one process, on asyncio and `websockets`.

    python3 bench/peer/millis_peer.py --url ws://127.0.0.1:8766/millis \\
        --sessions 100 --seconds 20 --json out.json

The Python peer of the libmillis benchmark: the same protocol workload as a libmillis
client, done the way a reasonable asyncio program would do it. Each session connects,
sends `initiate` (public key "test-public-key", agent "demo-agent") and waits for
`onready`. Once every session is ready (and --settle-s has passed), all of them send
640-byte (20 ms) PCM16 frames in real time for --seconds: frame k of session i is due at
t0 + k * 20 ms + (i % slots) * 20 ms / slots; its first 8 bytes are that due time
(CLOCK_MONOTONIC ns, little-endian uint64: time.monotonic_ns() is that clock) for a
server run with --stamped to measure its lateness on arrival; the peer's own view is the
time its `send` returned minus the due time. A `ping` text goes after every 1000
frames. Everything is received (agent audio counted, every control message parsed with
json.loads and dispatched by method). After --drain-s, each session closes.

Before the measured sessions, ONE warm-up session connects, initiates, gets onready and
closes (1000, the receiver ended); it counts in no frame or loss figure (its server-side
session id is reported, so that the benchmark can leave its connection out of the
server's totals). Then the RSS baseline is taken: the interpreter, its imports and
what the first connection leaves behind (the websockets and asyncio machinery, the
loop's selector) are one-time costs, not charged to the sessions, as libmillis' library
initialisation is not in millis_scale.

CPU and RSS are measured over the sending window only (the steady state): CPU from
getrusage, RSS as VmRSS at the end of the window minus VmRSS after the warm-up.

One task sends and one task receives per session; nothing is logged per frame. The
summary goes to --json (and a few lines to stderr). See README.md in this folder.
"""

from __future__ import annotations


def _rss_kib_now() -> int:
    """VmRSS now (before the imports below: the interpreter alone)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


RSS_KIB_AT_START = _rss_kib_now()

import argparse  # noqa: E402
import asyncio  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import struct  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any, Callable, Dict, List, Optional  # noqa: E402

import websockets  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

FRAME_S = 0.020
FRAME_NS = 20_000_000
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
            return {"count": 0, "p50": None, "p99": None, "p999": None, "max": None, "mean": None}
        return {"count": self.count, "p50": round(self.quantile(0.5), 3),
                "p99": round(self.quantile(0.99), 3), "p999": round(self.quantile(0.999), 3),
                "max": round(self.max, 3),
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


def proc_cpu_s(pid: int) -> Optional[float]:
    """utime + stime of another process (the server), from /proc/PID/stat."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def proc_runqueue_wait_s(pid: int) -> Optional[float]:
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def machine_cpu() -> List[float]:
    """The machine's CPU seconds by kind (/proc/stat: user nice system idle iowait irq softirq steal)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        return [x / os.sysconf("SC_CLK_TCK") for x in v]
    except (OSError, ValueError):
        return [0.0] * 8


class Totals:
    """What all sessions add up to (one asyncio thread: no locking needed)."""

    def __init__(self) -> None:
        self.lateness = Histogram()          # outgoing frames: send returned - due time
        self.agent_lateness = Histogram()    # agent frame k: arrival - (start_answering + k*20 ms)
        self.agent_delivery = Histogram()    # arrival - the server's send stamp (stamped server)
        self.agent_stamped = 0
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
        self.settled = 0                     # sessions ready or failed
        self.all_settled = asyncio.Event()
        self.start = asyncio.Event()         # set with t0_ns when the window begins
        self.t0_ns = 0
        self.senders_left = 0                # sessions still sending in the window
        self.window_end: Optional[Callable[[], None]] = None


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
        if len(data) >= 8:
            d = time.monotonic_ns() - int.from_bytes(data[:8], "little")
            if -1_000_000_000 < d < 10_000_000_000:     # a plausible stamp: the server's send time
                self.t.agent_delivery.add(d / 1e6)
                self.t.agent_stamped += 1
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
        args = self.args
        nframes = max(0, round(args.seconds / FRAME_S))
        t.frames_scheduled += nframes
        # loop.time() is time.monotonic() (CLOCK_MONOTONIC), the stamps' clock
        offset = loop.time() - time.monotonic_ns() / 1e9
        start_ns = t.t0_ns + (self.index % args.slots) * FRAME_NS // args.slots
        stamp = args.stamp
        tail = FRAME[8:]
        sent = 0
        try:
            for k in range(nframes):
                due_ns = start_ns + k * FRAME_NS
                due = due_ns / 1e9 + offset
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                await ws.send(struct.pack("<Q", due_ns) + tail if stamp else FRAME)
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
            self.sender_done()

    def sender_done(self) -> None:
        t = self.t
        t.senders_left -= 1
        if t.senders_left == 0 and t.window_end is not None:
            t.window_end()

    def settle(self) -> None:
        t = self.t
        t.settled += 1
        if t.settled == self.args.sessions:
            t.all_settled.set()

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
            self.settle()
            return
        receiver = asyncio.create_task(self.receive(ws))
        try:
            await ws.send(json.dumps({"method": "initiate", "data": {
                "agent": {"agent_id": AGENT_ID}, "public_key": PUBLIC_KEY}}))
            remaining = self.args.ready_timeout - (self.loop.time() - t0)
            await asyncio.wait_for(self.ready.wait(), max(0.0, remaining))
        except Exception as e:  # noqa: BLE001
            self.fail(e)
            self.settle()
            receiver.cancel()
            await ws.close()
            return
        t.ready_ms.append((self.loop.time() - t0) * 1000)
        t.sessions_ready += 1
        t.senders_left += 1
        self.settle()
        await t.start.wait()
        await self.send(ws)
        await asyncio.sleep(self.args.drain_s)     # agent audio in flight arrives
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


async def warm_up(args: argparse.Namespace) -> Dict[str, Any]:
    """ONE session: connect, initiate, onready, close (1000), the receiver ended. Counted
    nowhere but here."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    w: Dict[str, Any] = {"done": False, "session_id": None, "ready_ms": None, "close_code": None}
    ready = asyncio.Event()

    async def receive(ws) -> None:
        try:
            async for msg in ws:
                if isinstance(msg, bytes):
                    continue
                try:
                    m = json.loads(msg)
                except ValueError:
                    continue
                if isinstance(m, dict) and m.get("method") == "onready":
                    payload = m.get("payload") or {}
                    w["session_id"] = payload.get("session_id") if isinstance(payload, dict) else None
                    ready.set()
        except ConnectionClosed:
            pass

    try:
        ws = await asyncio.wait_for(connect(args.url, open_timeout=None), args.ready_timeout)
    except Exception as e:  # noqa: BLE001
        w["error"] = f"{type(e).__name__}: {e}"
        return w
    receiver = asyncio.create_task(receive(ws))
    try:
        await ws.send(json.dumps({"method": "initiate", "data": {
            "agent": {"agent_id": AGENT_ID}, "public_key": PUBLIC_KEY}}))
        await asyncio.wait_for(ready.wait(), args.ready_timeout)
        w["ready_ms"] = round((loop.time() - t0) * 1000, 3)
    except Exception as e:  # noqa: BLE001
        w["error"] = f"{type(e).__name__}: {e}"
    await ws.close()
    await receiver
    w["close_code"] = ws.close_code
    w["done"] = "error" not in w
    w["wall_s"] = round(loop.time() - t0, 4)
    return w


async def amain(args: argparse.Namespace) -> Dict[str, Any]:
    loop = asyncio.get_running_loop()
    rss_before_warmup = vm_status_kib("VmRSS")
    warm = await warm_up(args) if args.warmup else {"done": False, "skipped": True}
    if args.warmup and not warm["done"]:
        raise SystemExit(f"millis_peer: the warm-up session failed: {warm.get('error')}")
    totals = Totals()
    totals.t0 = loop.time()
    rss_baseline = vm_status_kib("VmRSS")     # after the warm-up
    cpu_start, wall_start = cpu_seconds(), time.monotonic()
    stop = asyncio.Event()
    rss: Dict[str, int] = {}
    sampler = asyncio.create_task(sample_rss(stop, rss))
    gc_watch = GcWatch()
    gc.callbacks.append(gc_watch)
    n, secs = args.sessions, args.seconds
    sessions = [Session(i, args, totals) for i in range(n)]
    ramp = args.ramp_s
    runs = asyncio.gather(*(s.run(ramp * i / n if n else 0) for i, s in enumerate(sessions)))

    # Connect phase: every session ready or failed; then the window.
    await totals.all_settled.wait()
    setup_wall = time.monotonic() - wall_start
    await asyncio.sleep(args.settle_s)
    setup_cpu = cpu_seconds() - cpu_start
    rss_ready = vm_status_kib("VmRSS")
    pid = args.server_pid
    w: Dict[str, Any] = {}
    done = asyncio.Event()

    def window_end() -> None:
        w["t1"], w["ru1"], w["wait1"], w["m1"] = time.monotonic_ns(), resource.getrusage(resource.RUSAGE_SELF), \
            runqueue_wait_s(), machine_cpu()
        w["srv1"], w["srv_wait1"] = (proc_cpu_s(pid), proc_runqueue_wait_s(pid)) if pid else (None, None)
        w["rss_end"], w["hwm"] = vm_status_kib("VmRSS"), vm_status_kib("VmHWM")
        done.set()

    totals.window_end = window_end
    w["srv0"], w["srv_wait0"] = (proc_cpu_s(pid), proc_runqueue_wait_s(pid)) if pid else (None, None)
    w["wait0"], w["m0"], w["ru0"] = runqueue_wait_s(), machine_cpu(), resource.getrusage(resource.RUSAGE_SELF)
    totals.t0_ns = time.monotonic_ns() + 2_000_000          # the first frames are due 2 ms from now
    w["t0"] = totals.t0_ns
    if totals.senders_left == 0:
        window_end()
    totals.start.set()
    await runs
    await done.wait()
    stop.set()
    await sampler
    gc.callbacks.remove(gc_watch)

    ru = resource.getrusage(resource.RUSAGE_SELF)
    wall = max(1e-9, (w["t1"] - w["t0"]) / 1e9)
    r0, r1 = w["ru0"], w["ru1"]
    cpu_user, cpu_sys = r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime
    cpu = cpu_user + cpu_sys
    m0, m1 = w["m0"], w["m1"]
    busy = sum(m1[k] - m0[k] for k in (0, 1, 2, 5, 6, 7))
    window: Dict[str, Any] = {
        "wall_s": round(wall, 4), "cpu_s": round(cpu, 4), "cpu_user_s": round(cpu_user, 4),
        "cpu_sys_s": round(cpu_sys, 4), "cpu_cores": round(cpu / wall, 4),
        "cpu_ms_per_session_second": round(1000 * cpu / (n * wall), 5) if n else None,
        "runqueue_wait_s": round(w["wait1"] - w["wait0"], 4) if w["wait0"] is not None and w["wait1"] is not None
        else None,
        "machine_busy_cores": round(busy / wall, 4), "machine_softirq_cores": round((m1[6] - m0[6]) / wall, 4),
        "machine_cores": os.cpu_count(),
    }
    if pid and w["srv0"] is not None and w["srv1"] is not None:
        window.update(server_pid=pid, server_cpu_s=round(w["srv1"] - w["srv0"], 4),
                      server_cpu_cores=round((w["srv1"] - w["srv0"]) / wall, 4),
                      server_runqueue_wait_s=round(w["srv_wait1"] - w["srv_wait0"], 4)
                      if w["srv_wait0"] is not None and w["srv_wait1"] is not None else None)
    frames_per_session = max(0, round(secs / FRAME_S))
    frames_not_sent = totals.frames_scheduled - totals.frames_sent + (n - totals.sessions_ready) * frames_per_session
    rss_end = w["rss_end"] or 0
    return {
        "client": "millis_peer",
        "implementation": f"python {platform.python_version()} asyncio + websockets {websockets.__version__}",
        "url": args.url,
        "sessions": n,
        "seconds": secs,
        "ramp_s": ramp,
        "settle_s": args.settle_s,
        "drain_s": args.drain_s,
        "slots": args.slots,
        "stamped": args.stamp,
        "sessions_ready": totals.sessions_ready,
        "connect_failures": totals.connect_failures,
        "connect_failure_reasons": totals.failure_reasons,
        "sessions_dropped": totals.sessions_dropped,
        "sessions_ended_by_server": totals.sessions_ended_by_server,
        "frames_due": n * frames_per_session,
        "frames_expected": n * frames_per_session,
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
        "agent_frames_stamped": totals.agent_stamped,
        "agent_delivery_ms": totals.agent_delivery.summary(),
        "agent_frame_arrival_lateness_ms": totals.agent_lateness.summary(),
        "control_messages_received": totals.methods,
        "ready_latency_ms": quantiles(totals.ready_ms),
        "gc": gc_watch.summary(),
        "setup_wall_s": round(setup_wall, 3),
        "setup_cpu_s": round(setup_cpu, 4),
        "window": window,
        "cpu_process_s": round(ru.ru_utime + ru.ru_stime, 3),
        "ru_maxrss_kib": ru.ru_maxrss,
        "vm_hwm_kib": w["hwm"],
        "warmup": warm,
        "rss_kib_at_start": RSS_KIB_AT_START,
        "rss_kib_before_warmup": rss_before_warmup,
        "rss_kib_after_warmup": rss_baseline,
        "rss_kib_ready": rss_ready,
        "rss_kib_window_end": rss_end,
        "rss_kib_added": rss_end - (rss_baseline or 0),
        "rss_peak_sampled_kib": rss.get("max", rss_end),
        "rss_kib_per_session": round((rss_end - (rss_baseline or 0)) / n, 2) if n else None,
    }


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="ws://HOST:PORT/millis")
    p.add_argument("--sessions", type=int, default=1, help="concurrent sessions (default 1)")
    p.add_argument("--seconds", type=float, default=10.0,
                   help="audio each session sends in the window (default 10)")
    p.add_argument("--ramp-s", type=float, default=1.0,
                   help="session i starts connecting at i * RAMP / N seconds (default 1.0)")
    p.add_argument("--settle-s", type=float, default=1.0,
                   help="from the last onready to the start of the window (default 1.0)")
    p.add_argument("--drain-s", type=float, default=3.0,
                   help="after its last frame, a session waits this long for agent audio before closing (default 3)")
    p.add_argument("--slots", type=int, default=20,
                   help="sessions' frames are due in this many phases spread over 20 ms (default 20; 1: all at once)")
    p.add_argument("--no-stamp", dest="stamp", action="store_false",
                   help="do not write the due time into the first 8 bytes of each frame")
    p.add_argument("--no-warmup", dest="warmup", action="store_false",
                   help="no warm-up session before the baseline (the baseline is then before the first connect)")
    p.add_argument("--server-pid", type=int, help="the server's pid: its CPU over the window goes into the summary")
    p.add_argument("--ready-timeout", type=float, default=30.0,
                   help="seconds from connecting to onready before a session counts as failed")
    p.add_argument("--json", help="write the summary there")
    args = p.parse_args(argv)
    if args.sessions < 1 or args.seconds < 0 or args.ramp_s < 0 or args.settle_s < 0 or args.drain_s < 0 \
            or args.slots < 1:
        p.error("--sessions and --slots must be at least 1; --seconds, --ramp-s, --settle-s, --drain-s not negative")
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
    win = result["window"]
    print(f"millis_peer: {result['sessions_ready']}/{result['sessions']} sessions ready, "
          f"{result['frames_sent']} frames sent, {result['frames_late_or_lost']} late or lost, "
          f"lateness p50 {lat['p50']} p99 {lat['p99']} max {lat['max']} ms, "
          f"{result['agent_frames_received']} agent frames, window cpu {win['cpu_s']} s "
          f"({win['cpu_ms_per_session_second']} ms per session-second), "
          f"rss +{result['rss_kib_added']} KiB "
          f"({result['rss_kib_per_session']} KiB per session)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
