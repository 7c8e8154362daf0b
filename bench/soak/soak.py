#!/usr/bin/env python3
"""Soak test: one long spoken conversation between libmillis and the devserver.

    python3 bench/soak/soak.py --minutes 30

Not part of CI. Needs build/libmillis.so (`make build`) and the devserver's
requirements. What it does:

  * starts the devserver (devserver/millis_devserver.py) with bench/soak/long_script.json
    (400 scripted turns; `--write-script` regenerates it) and a record directory;
  * puts a small TCP proxy of its own between the client and the devserver, which
    counts the WebSocket frames crossing it and, every --kill-every seconds, cuts the
    live connection the way a dying network path does (no close frame) so that the
    client must reconnect and resume the session (session_continuation);
  * holds ONE conversation through the Python binding (demo-agent): it streams the
    utterances of bindings/audio/user.wav in real time (20 ms frames, silence between
    turns), waits for the agent's answer, and every --barge-every turns barges in,
    i.e. starts the next utterance while the agent is still talking. When the script
    runs out the session ends and a new one is started (counted as "sessions");
  * reports every --report-every seconds (default 60): RSS of this process, frames
    sent / received, frames lost so far, reconnects survived;
  * at the end prints a summary and, with --json, writes it as JSON.

Frame accounting (zero lost frames expected):
  user frames lost  = frames the client sent (stats "frames_sent")
                      - frames the devserver recorded (sum of "audio_frames_received"
                        over every connection's record, a resumed session's records
                        included: each version of the record file is captured)
  agent frames lost = frames the devserver sent (sum of "agent_audio_frames_sent")
                      - frames the proxy dropped because their connection was cut
                      - frames the client received (stats "frames_received")
                      - frames that reached the client after its stop(): it has sent
                        its close frame and, like a browser's WebSocket, delivers
                        nothing more (reported as agent_frames_after_stop)
A cut is made "cleanly": the proxy first hands the client every whole agent frame it
already forwarded, half-closes towards the client (FIN, no close frame) and keeps
forwarding the client's bytes to the server until the client closes, so no user frame
handed to the socket may be lost; agent frames the server sends after the cut are
dropped by the proxy and counted as such.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import wave
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FRAME_BYTES = 640          # 20 ms of PCM16 at 16 kHz
FRAME_S = 0.020
READY_PREFIX = "MILLIS_DEVSERVER_READY "

TRANSCRIPTS = ["Hello, what is the weather like today?", "Thank you, goodbye."]
RESPONSES = [
    "It's sunny and twenty two degrees in Paris.",
    "Sure, I can help you with that right away.",
    "Let me check that for you, one moment please.",
    "You're welcome, is there anything else I can do?",
]


def write_script(path: Path, turns: int) -> None:
    script = []
    for i in range(turns):
        turn = {"transcript": TRANSCRIPTS[i % 2], "response": RESPONSES[i % len(RESPONSES)]}
        if i % 10 == 0:
            turn["function"] = {"name": "get_weather", "params": {"city": "Paris", "turn": i}}
        script.append(turn)
    path.write_text(json.dumps(script, indent=0) + "\n")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def malloc_in_use_kib() -> int:
    """Bytes glibc's malloc has handed out and not got back (all arenas, mmapped chunks
    included): libmillis, libcurl and Python's objects over 512 bytes; Python's small
    objects live in its own arenas and are not in it."""
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return (info.uordblks + info.hblkhd) // 1024


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def utterances(path: Path) -> list:
    """The speech segments of a 16 kHz mono PCM16 WAV, as lists of 640-byte frames."""
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (1, 16000, 2), path
        pcm = w.readframes(w.getnframes())
    frames = [pcm[i:i + FRAME_BYTES] for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES)]

    def loud(frame: bytes) -> bool:
        samples = struct.unpack(f"<{len(frame) // 2}h", frame)
        rms = (sum(s * s for s in samples) / len(samples)) ** 0.5
        return rms > 32768 * 10 ** (-40 / 20)

    flags = [loud(f) for f in frames]
    segments, start, quiet = [], None, 0
    for i, is_loud in enumerate(flags + [False] * 40):
        if is_loud:
            if start is None:
                start = i
            quiet = 0
        elif start is not None:
            quiet += 1
            if quiet >= 25:  # 500 ms of quiet ends an utterance
                end = i - quiet + 1
                if end - start >= 15:  # at least 300 ms
                    segments.append(frames[max(0, start - 5):min(len(frames), end + 5)])
                start, quiet = None, 0
    assert segments, f"no speech found in {path}"
    return segments


# ------------------------------------------------------------------------------------
# The proxy
# ------------------------------------------------------------------------------------

class FrameCounter:
    """Splits a WebSocket byte stream (after the HTTP upgrade) into whole frames."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.in_http = True

    def feed(self, data: bytes) -> list:
        """Returns [(raw_bytes, opcode)] of the complete units (the HTTP head is opcode -1)."""
        self.buf += data
        out = []
        while True:
            if self.in_http:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return out
                out.append((bytes(self.buf[:end + 4]), -1))
                del self.buf[:end + 4]
                self.in_http = False
                continue
            if len(self.buf) < 2:
                return out
            b0, b1 = self.buf[0], self.buf[1]
            n, head = b1 & 0x7F, 2
            if n == 126:
                if len(self.buf) < 4:
                    return out
                n, head = struct.unpack_from("!H", self.buf, 2)[0], 4
            elif n == 127:
                if len(self.buf) < 10:
                    return out
                n, head = struct.unpack_from("!Q", self.buf, 2)[0], 10
            if b1 & 0x80:
                head += 4
            if len(self.buf) < head + n:
                return out
            out.append((bytes(self.buf[:head + n]), b0 & 0x0F))
            del self.buf[:head + n]


class Proxy:
    """127.0.0.1:<port> -> the devserver, counting binary frames, able to cut connections."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.loop = asyncio.new_event_loop()
        self.lock = threading.Lock()
        self.user_frames_forwarded = 0
        self.agent_frames_forwarded = 0
        self.agent_frames_dropped_at_cut = 0
        self.connections = 0
        self.connections_done = 0
        self.cuts = 0
        self.live: list = []
        self.port = 0
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), name="soak-proxy", daemon=True)
        self.thread.start()
        started.wait(10)

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        started.set()
        self.loop.run_forever()

    async def _handle(self, c_reader, c_writer) -> None:
        try:
            s_reader, s_writer = await asyncio.open_connection(*self.target)
        except OSError:
            c_writer.close()
            return
        conn = {"cut": False, "c_writer": c_writer, "s_writer": s_writer}
        with self.lock:
            self.connections += 1
            self.live.append(conn)

        async def client_to_server() -> None:
            counter = FrameCounter()
            try:
                while data := await c_reader.read(65536):
                    s_writer.write(data)
                    n = sum(1 for _, op in counter.feed(data) if op == 2)
                    with self.lock:
                        self.user_frames_forwarded += n
                    await s_writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                # The client closed: let the server see EOF (no close frame after a cut).
                try:
                    if s_writer.can_write_eof():
                        s_writer.write_eof()
                except (ConnectionError, OSError, RuntimeError):
                    pass

        async def server_to_client() -> None:
            counter = FrameCounter()
            try:
                while data := await s_reader.read(65536):
                    for raw, op in counter.feed(data):
                        if conn["cut"]:
                            if op == 2:
                                with self.lock:
                                    self.agent_frames_dropped_at_cut += 1
                            continue
                        c_writer.write(raw)
                        if op == 2:
                            with self.lock:
                                self.agent_frames_forwarded += 1
                    if not conn["cut"]:
                        await c_writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                if not conn["cut"]:
                    try:
                        if c_writer.can_write_eof():
                            c_writer.write_eof()
                    except (ConnectionError, OSError, RuntimeError):
                        pass

        try:
            await asyncio.gather(client_to_server(), server_to_client())
        finally:
            for w in (c_writer, s_writer):
                w.close()
            with self.lock:
                self.live.remove(conn)
                self.connections_done += 1

    async def _cut(self) -> int:
        cut = 0
        for conn in list(self.live):
            if conn["cut"]:
                continue
            conn["cut"] = True  # server_to_client forwards nothing from now on
            w = conn["c_writer"]
            try:
                await w.drain()  # whole frames already forwarded reach the client
                if w.can_write_eof():
                    w.write_eof()  # FIN without a close frame
            except (ConnectionError, OSError, RuntimeError):
                pass
            cut += 1
        with self.lock:
            self.cuts += cut
        return cut

    def cut(self) -> int:
        return asyncio.run_coroutine_threadsafe(self._cut(), self.loop).result(10)

    def snapshot(self) -> dict:
        with self.lock:
            return {"user_frames_forwarded": self.user_frames_forwarded,
                    "agent_frames_forwarded": self.agent_frames_forwarded,
                    "agent_frames_dropped_at_cut": self.agent_frames_dropped_at_cut,
                    "connections": self.connections, "connections_done": self.connections_done,
                    "cuts": self.cuts}


# ------------------------------------------------------------------------------------
# Devserver records: every version of every record file
# ------------------------------------------------------------------------------------

class RecordWatcher:
    """A resumed session rewrites <session_id>.json: keep every version, polled at 50 ms."""

    def __init__(self, record_dir: Path) -> None:
        self.dir = record_dir
        self.versions: dict = {}
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._run, name="soak-records", daemon=True)
        self.thread.start()

    def _scan(self) -> None:
        for path in self.dir.glob("*.json"):
            try:
                st = path.stat()
                key = (path.name, st.st_ino, st.st_mtime_ns, st.st_size)
                if key in self.versions:
                    continue
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            with self.lock:
                self.versions[key] = record

    def _run(self) -> None:
        while self.running:
            self._scan()
            time.sleep(0.05)

    def stop(self) -> None:
        self.running = False
        self.thread.join()
        self._scan()

    def totals(self) -> dict:
        with self.lock:
            records = [r for r in self.versions.values() if r.get("session_id")]
        return {
            "records": len(records),
            "user_frames_received": sum(r.get("audio_frames_received", 0) for r in records),
            "user_bytes_received": sum(r.get("audio_bytes_received", 0) for r in records),
            "agent_frames_sent": sum(r.get("agent_audio_frames_sent", 0) for r in records),
            "user_turns": sum(len(r.get("user_turns", [])) for r in records),
            "barge_ins_clear": sum(1 for r in records for b in r.get("barge_ins", []) if b.get("outcome") == "clear"),
            "barge_ins_unpause": sum(1 for r in records for b in r.get("barge_ins", [])
                                     if b.get("outcome") == "unpause"),
            "abrupt_closes": sum(1 for r in records if (r.get("close") or {}).get("by") == "abrupt"),
        }


# ------------------------------------------------------------------------------------
# The conversation
# ------------------------------------------------------------------------------------

class Conversation:
    def __init__(self, millis, url: str, segments: list, barge_every: int) -> None:
        self.millis = millis
        self.segments = segments
        self.barge_every = barge_every
        self.lock = threading.Lock()
        self.ready = False
        self.session_open = False
        self.closed = threading.Event()
        self.counts = {"sessions": 0, "onready": 0, "reconnecting": 0, "reconnected": 0, "errors": 0,
                       "transcripts_final": 0, "responses_final": 0, "agent_frames": 0, "functions": 0,
                       "session_ended": 0, "closes": 0, "send_not_ready": 0, "user_turns_spoken": 0,
                       "barge_ins": 0}
        self.close_codes: dict = {}
        self.errors: list = []
        self.last_agent_audio = 0.0
        self.agent_frames_this_turn = 0
        self.client = millis.Client("test-public-key", url, reconnect=(20, 250, 2000), dispatch="thread")
        on = self.client.on
        on("onready", self._ready)
        on("onaudio", self._audio)
        on("ontranscript", lambda text, p: self._count("transcripts_final") if p["is_final"] else None)
        on("onresponsetext", lambda text, p: self._count("responses_final") if p["is_final"] else None)
        on("onfunction", lambda *a: self._count("functions"))
        on("onsessionended", lambda: self._count("session_ended"))
        on("onreconnecting", self._reconnecting)
        on("onreconnected", self._reconnected)
        on("onerror", self._error)
        on("onclose", self._close)

    def _count(self, key: str) -> None:
        with self.lock:
            self.counts[key] += 1

    def _ready(self, session_id: str) -> None:
        with self.lock:
            self.counts["onready"] += 1
            self.ready = True

    def _audio(self, pcm: bytes) -> None:
        with self.lock:
            self.counts["agent_frames"] += 1
            self.agent_frames_this_turn += 1
            self.last_agent_audio = time.monotonic()

    def _reconnecting(self, attempt: int, delay_ms: int) -> None:
        with self.lock:
            self.counts["reconnecting"] += 1
            self.ready = False

    def _reconnected(self, session_id: str) -> None:
        with self.lock:
            self.counts["reconnected"] += 1
            self.ready = True

    def _error(self, err) -> None:
        with self.lock:
            self.counts["errors"] += 1
            if len(self.errors) < 50:
                self.errors.append(f"{err.name}: {err.message}")
        print(f"  onerror {err.name}: {err.message}", flush=True)

    def _close(self, code: int, reason: str) -> None:
        with self.lock:
            self.counts["closes"] += 1
            self.close_codes[code] = self.close_codes.get(code, 0) + 1
            self.ready = False
            self.session_open = False
        self.closed.set()

    def start_session(self) -> None:
        self.closed.clear()
        with self.lock:
            self.session_open = True
            self.counts["sessions"] += 1
        self.client.start(agent_id="demo-agent")

    def feed(self, deadline: float, stop: threading.Event) -> None:
        """Streams audio in real time until the deadline: one utterance per turn."""
        silence = bytes(FRAME_BYTES)
        next_t = time.monotonic()
        speaking: list = []  # frames left of the current utterance
        turn = 0
        state = "gap"        # gap -> speak -> wait -> gap ...
        state_since = next_t
        while not stop.is_set() and time.monotonic() < deadline:
            now = time.monotonic()
            with self.lock:
                ready = self.ready
                agent_frames = self.agent_frames_this_turn
                last_agent = self.last_agent_audio
            if not ready:
                state, state_since, speaking = "gap", now, []
            elif state == "gap" and now - state_since >= 0.3:
                speaking = list(self.segments[turn % len(self.segments)])
                turn += 1
                with self.lock:
                    self.agent_frames_this_turn = 0
                    self.counts["user_turns_spoken"] += 1
                state, state_since = "speak", now
            elif state == "speak" and not speaking:
                state, state_since = "wait", now
            elif state == "wait":
                barge = self.barge_every > 0 and turn % self.barge_every == 0
                if barge and agent_frames >= 25:  # 0.5 s into the answer: talk over it
                    with self.lock:
                        self.counts["barge_ins"] += 1
                    state, state_since = "gap", now - 1.0
                elif agent_frames > 0 and now - last_agent > 0.7:
                    state, state_since = "gap", now  # the answer is over
                elif agent_frames == 0 and now - state_since > 10.0:
                    state, state_since = "gap", now  # no answer (turn lost): speak again
            if ready:
                frame = speaking.pop(0) if state == "speak" and speaking else silence
                try:
                    if not self.client.send_audio(frame):
                        with self.lock:
                            self.counts["send_not_ready"] += 1
                except self.millis.MillisError as exc:
                    print(f"  send_audio: {exc}", flush=True)
            next_t += FRAME_S
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_t = time.monotonic()  # fell behind (a stall): do not burst


# ------------------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------------------

def start_devserver(workdir: Path, script: Path) -> tuple:
    record_dir = workdir / "records"
    record_dir.mkdir()
    log = open(workdir / "devserver.stderr", "wb")
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "devserver" / "millis_devserver.py"), "--host", "127.0.0.1", "--port", "0",
         "--record-dir", str(record_dir), "--script", str(script), "--think-ms", "200", "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith(READY_PREFIX):
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            return proc, line[len(READY_PREFIX):].strip(), record_dir
    proc.kill()
    raise SystemExit(f"the devserver did not start; see {workdir / 'devserver.stderr'}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30.0, help="how long to talk (default 30)")
    p.add_argument("--kill-every", type=float, default=60.0,
                   help="cut the connection every N seconds, +-20%% (0: never; default 60)")
    p.add_argument("--barge-every", type=int, default=3, help="barge in on every Nth turn (0: never)")
    p.add_argument("--report-every", type=float, default=60.0, help="seconds between reports")
    p.add_argument("--script", type=Path, default=HERE / "long_script.json")
    p.add_argument("--wav", type=Path, default=REPO / "bindings" / "audio" / "user.wav")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--json", type=Path, help="write the summary here")
    p.add_argument("--heap-top", type=int, default=8, metavar="N",
                   help="print the N places whose Python allocations grew most after the first minute")
    p.add_argument("--keep", action="store_true", help="keep the work directory (records, devserver log)")
    p.add_argument("--write-script", type=int, metavar="TURNS", help="write --script with TURNS turns and exit")
    args = p.parse_args(argv)
    tracemalloc.start()

    if args.write_script:
        write_script(args.script, args.write_script)
        print(f"wrote {args.script} ({args.write_script} turns)")
        return 0

    os.environ.setdefault("MILLIS_LIBRARY", str(REPO / "build" / "libmillis.so"))
    sys.path.insert(0, str(REPO / "bindings" / "python"))
    import millis

    seed = args.seed if args.seed is not None else int(time.time())
    rng = random.Random(seed)
    segments = utterances(args.wav)
    workdir = Path(tempfile.mkdtemp(prefix="millis-soak-"))
    proc, ds_url, record_dir = start_devserver(workdir, args.script)
    host_port = ds_url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    proxy = Proxy(host, int(port))
    url = f"ws://127.0.0.1:{proxy.port}/millis"
    watcher = RecordWatcher(record_dir)
    conv = Conversation(millis, url, segments, args.barge_every)
    print(f"libmillis {millis.version()} ({millis.library_path}); devserver {ds_url} via proxy {url}")
    print(f"{args.minutes:g} min, cut every {args.kill_every:g} s, barge-in every {args.barge_every} turns, "
          f"{len(segments)} utterances in {args.wav.name}, seed {seed}, work dir {workdir}", flush=True)

    t0 = time.monotonic()
    deadline = t0 + args.minutes * 60
    stop = threading.Event()
    rss_start = rss_kib()
    rss_samples = [(0.0, rss_start)]
    conv.start_session()
    feeder = threading.Thread(target=conv.feed, args=(deadline, stop), name="soak-feeder", daemon=True)
    feeder.start()

    def stats_line(elapsed: float) -> dict:
        s = conv.client.stats()
        rec = watcher.totals()
        px = proxy.snapshot()
        with conv.lock:
            c = dict(conv.counts)
        # The soak's own bookkeeping (records, counters) lives in this process too: the
        # Python heap is reported beside RSS so that growth can be told apart.
        row = {"t_min": round(elapsed / 60, 2), "rss_kib": rss_kib(),
               "py_heap_kib": tracemalloc.get_traced_memory()[0] // 1024,
               "malloc_kib": malloc_in_use_kib(), "frames_sent": s["frames_sent"],
               "frames_received": s["frames_received"], "proxy_user_frames": px["user_frames_forwarded"],
               "proxy_agent_frames": px["agent_frames_forwarded"],
               "agent_dropped_at_cut": px["agent_frames_dropped_at_cut"],
               "audio_frames_dropped": s["audio_frames_dropped"],
               "dropped_backpressure": s["audio_frames_dropped_backpressure"],
               "reconnects": s["reconnects"], "cuts": px["cuts"], "sessions": c["sessions"],
               "turns": c["transcripts_final"], "barge_ins": c["barge_ins"], "errors": c["errors"],
               "records": rec["records"]}
        # In flight: frames between the library's counters and the proxy; only the
        # final figures (after onclose) are exact.
        row["user_lost_vs_proxy"] = row["frames_sent"] - row["proxy_user_frames"]
        row["agent_lost_vs_proxy"] = row["proxy_agent_frames"] - row["frames_received"]
        return row

    print("  t(min)  RSS(KiB) pyheap malloc  sent   recv  | proxy user agent cut-drop | lost u/a (in flight) | reconn cuts "
          "sessions turns barge errors", flush=True)

    def print_row(r: dict) -> None:
        print(f"  {r['t_min']:6.2f} {r['rss_kib']:9d} {r['py_heap_kib']:6d} {r['malloc_kib']:6d} {r['frames_sent']:6d} {r['frames_received']:6d} | "
              f"{r['proxy_user_frames']:10d} {r['proxy_agent_frames']:5d} {r['agent_dropped_at_cut']:8d} | "
              f"{r['user_lost_vs_proxy']:8d} {r['agent_lost_vs_proxy']:4d}         | {r['reconnects']:6d} "
              f"{r['cuts']:4d} {r['sessions']:8d} {r['turns']:5d} {r['barge_ins']:5d} {r['errors']:6d}", flush=True)

    rows = []
    heap_baseline = None
    next_report = t0 + args.report_every
    next_cut = t0 + args.kill_every * rng.uniform(0.8, 1.2) if args.kill_every > 0 else float("inf")
    interrupted = False

    def on_sigint(signum, frame):
        nonlocal interrupted
        interrupted = True
    signal.signal(signal.SIGINT, on_sigint)

    try:
        while time.monotonic() < deadline and not interrupted:
            now = time.monotonic()
            if conv.closed.is_set() and now < deadline - 5:
                # The script ran out (or the session failed): start the next one.
                time.sleep(0.5)
                conv.start_session()
            if now >= next_cut:
                with conv.lock:
                    ready = conv.ready
                if ready:
                    proxy.cut()
                next_cut = now + args.kill_every * rng.uniform(0.8, 1.2)
            if now >= next_report:
                row = stats_line(now - t0)
                rows.append(row)
                if len(rows) == 1:
                    heap_baseline = tracemalloc.take_snapshot()
                rss_samples.append((now - t0, row["rss_kib"]))
                print_row(row)
                next_report += args.report_every
            time.sleep(0.05)
    finally:
        stop.set()
        feeder.join(5)
        feeder_stopped_at = [time.monotonic()]
        # Let the agent finish its answer first: frames that arrive after stop() are the
        # closing session's, not a loss (measured: one could go missing here).
        until = time.monotonic() + 20
        while time.monotonic() < until:
            with conv.lock:
                quiet = time.monotonic() - max(conv.last_agent_audio, feeder_stopped_at[0]) > 1.5
            if quiet:
                break
            time.sleep(0.05)
        final_before_stop = stats_line(time.monotonic() - t0)
        conv.client.stop()
        conv.client.wait_closed(timeout=15)
        # Every connection ended: wait for the proxy, then for the last records.
        until = time.monotonic() + 15
        while time.monotonic() < until and proxy.snapshot()["connections_done"] < proxy.snapshot()["connections"]:
            time.sleep(0.05)
        time.sleep(1.5)
        watcher.stop()
        final = stats_line(time.monotonic() - t0)
        print_row(final)
        rec = watcher.totals()
        s = conv.client.stats()
        conv.client.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()

    px = proxy.snapshot()
    summary = {
        "minutes": round((time.monotonic() - t0) / 60, 2), "seed": seed, "kill_every_s": args.kill_every,
        "barge_every": args.barge_every, "rss_kib_start": rss_start, "rss_kib_end": final["rss_kib"],
        "rss_kib_after_1_min": rows[0]["rss_kib"] if rows else None,
        "python_heap_kib_after_1_min": rows[0]["py_heap_kib"] if rows else None,
        "python_heap_kib_end": final["py_heap_kib"],
        "malloc_in_use_kib_after_1_min": rows[0]["malloc_kib"] if rows else None,
        "malloc_in_use_kib_end": final["malloc_kib"],
        # RSS less the Python heap: libmillis, libcurl, the interpreter's fixed part.
        "rss_minus_python_heap_growth_kib_after_1_min": (
            (final["rss_kib"] - final["py_heap_kib"]) - (rows[0]["rss_kib"] - rows[0]["py_heap_kib"])
            if rows else None),
        "user_frames_sent": s["frames_sent"], "user_frames_recorded_by_devserver": rec["user_frames_received"],
        "user_frames_lost": s["frames_sent"] - rec["user_frames_received"],
        "user_frames_forwarded_by_proxy": px["user_frames_forwarded"],
        "user_frames_dropped_not_ready": s["audio_frames_dropped"],
        "user_frames_dropped_backpressure": s["audio_frames_dropped_backpressure"],
        "agent_frames_sent_by_devserver": rec["agent_frames_sent"],
        "agent_frames_dropped_at_cut": px["agent_frames_dropped_at_cut"],
        "agent_frames_received": s["frames_received"],
        "agent_frames_proxy_minus_client_before_stop": final_before_stop["agent_lost_vs_proxy"],
        # After stop() the client has sent its close frame and, like a browser's WebSocket,
        # delivers no more messages: frames the server sent in the meantime (an answer
        # it had begun) are the closing session's, counted apart, not lost.
        "agent_frames_after_stop": px["agent_frames_forwarded"] - final_before_stop["proxy_agent_frames"],
        "agent_frames_lost": (final_before_stop["agent_lost_vs_proxy"]
                              + rec["agent_frames_sent"] - px["agent_frames_dropped_at_cut"]
                              - px["agent_frames_forwarded"]),
        "cuts": px["cuts"], "reconnects": s["reconnects"], "connections": px["connections"],
        "devserver_records": rec["records"], "abrupt_closes_recorded": rec["abrupt_closes"],
        "sessions": conv.counts["sessions"], "user_turns_spoken": conv.counts["user_turns_spoken"],
        "user_turns_recorded": rec["user_turns"], "transcripts_final": conv.counts["transcripts_final"],
        "barge_ins_attempted": conv.counts["barge_ins"], "barge_ins_cleared": rec["barge_ins_clear"],
        "barge_ins_unpaused": rec["barge_ins_unpause"], "functions": conv.counts["functions"],
        "errors": conv.counts["errors"], "error_messages": conv.errors, "close_codes": conv.close_codes,
        "reconnecting_events": conv.counts["reconnecting"], "reconnected_events": conv.counts["reconnected"],
        "ping_rtt_ms_last": s.get("last_ping_rtt_ms"), "latency_ms_last": s.get("last_latency_ms"),
    }
    if heap_baseline is not None and args.heap_top > 0:
        print("\nPython heap growth after the first minute, by place:")
        for stat in tracemalloc.take_snapshot().compare_to(heap_baseline, "lineno")[:args.heap_top]:
            print(f"  {stat}")
    print("\nsummary")
    for k, v in summary.items():
        print(f"  {k:36s} {v}")
    ok = (summary["user_frames_lost"] == 0 and summary["agent_frames_lost"] == 0
          and summary["reconnects"] == summary["cuts"] and summary["errors"] == 0)
    print(f"\nsoak: {'OK' if ok else 'FAILED'}: user frames lost {summary['user_frames_lost']}, agent frames lost "
          f"{summary['agent_frames_lost']}, reconnects survived {summary['reconnects']}/{summary['cuts']} cuts, "
          f"errors {summary['errors']}")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "reports": rows}, indent=2) + "\n")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"work dir kept: {workdir}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
