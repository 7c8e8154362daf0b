#!/usr/bin/env python3
"""Capacity runs of the Python peer against millis_loadserver.

    python3 bench/peer/capacity.py --sessions 10 100 500 --seconds 20 --json out.json

For each session count: starts a fresh bench/server/millis_loadserver (niced like the
peer with --nice), runs bench/peer/millis_peer.py against it, samples the server's CPU
time from /proc/PID/stat around the peer's run, stops the server (SIGTERM) and reads
its stats file. Prints one line per run and a Markdown table (each count is run once:
repeat the command for medians). Needs `make -C bench/server` first.

`--hold N` instead opens N raw WebSocket sessions (initiate, onready) that each send one
20 ms frame per second for --seconds, and reports the server's RSS and CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SERVER = REPO / "bench" / "server" / "millis_loadserver"
PEER = HERE / "millis_peer.py"
TICKS = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS   # utime, stime


def proc_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def start_server(nice: int, stats: str, extra: List[str]) -> tuple:
    cmd = ["nice", "-n", str(nice), str(SERVER), "--port", "0", "--stats", stats, "--quiet", *extra]
    srv = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    line = srv.stdout.readline()
    if not line.startswith("MILLIS_LOADSERVER_READY "):
        srv.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return srv, line.split()[1]


def stop_server(srv: subprocess.Popen) -> None:
    srv.send_signal(signal.SIGTERM)
    srv.wait(10)


def run_one(n: int, args: argparse.Namespace, tmp: str) -> Dict[str, Any]:
    stats = os.path.join(tmp, f"server-{n}.json")
    out = os.path.join(tmp, f"peer-{n}.json")
    srv, url = start_server(args.nice, stats, args.server_arg)
    try:
        c0, t0 = proc_cpu_s(srv.pid), time.monotonic()
        peer = subprocess.run(["nice", "-n", str(args.nice), sys.executable, str(PEER), "--url", url,
                               "--sessions", str(n), "--seconds", str(args.seconds), "--json", out,
                               "--server-pid", str(srv.pid)],
                              stderr=subprocess.PIPE, text=True)
        c1, t1 = proc_cpu_s(srv.pid), time.monotonic()
        rss = proc_kib(srv.pid, "VmHWM")
    finally:
        stop_server(srv)
    if peer.returncode != 0:
        raise SystemExit(f"peer failed: {peer.stderr}")
    p = json.load(open(out))
    s = json.load(open(stats))
    s.pop("connections", None)
    return {
        "sessions": n,
        "server_cpu_percent_of_core": round(100 * (c1 - c0) / (t1 - t0), 2),
        "server_max_rss_kib": rss,
        "server_runqueue_wait_s": s.get("runqueue_wait_s"),
        "peer_runqueue_wait_s": p["window"].get("runqueue_wait_s"),
        "peer_cpu_ms_per_session_second": p["window"]["cpu_ms_per_session_second"],
        "peer_cpu_percent_of_core": round(100 * p["window"]["cpu_cores"], 2),
        "peer_rss_kib_per_session": p["rss_kib_per_session"],
        "peer_rss_peak_kib": p["rss_peak_sampled_kib"],
        "lateness_p50_ms": p["lateness_ms"]["p50"],
        "lateness_p99_ms": p["lateness_ms"]["p99"],
        "lateness_max_ms": p["lateness_ms"]["max"],
        "frames_late_or_lost": p["frames_late_or_lost"],
        "user_frames_sent": p["frames_sent"],
        "user_frames_received_by_server": s["user_frames_in"],
        "agent_frames_sent_by_server": s["agent_frames_out"],
        "agent_frames_received": p["agent_frames_received"],
        "connect_failures": p["connect_failures"],
        "ready_p99_ms": p["ready_latency_ms"]["p99"],
        "server_agent_send_lateness_p99_ms": s["agent_frame_send_lateness_ms"]["p99"],
        "peer": p,
        "server": s,
    }


async def hold(n: int, seconds: float, url: str) -> Dict[str, Any]:
    """n raw sessions, one frame per second each (no websockets library: cheap)."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    frame = bytes([0x82, 0xFE, 0x02, 0x80, 0, 0, 0, 0]) + bytes(640)   # masked, key 0
    init = json.dumps({"method": "initiate", "data": {"agent": {"agent_id": "demo-agent"},
                                                     "public_key": "test-public-key"}}).encode()
    init_frame = bytes([0x81, 0x80 | len(init), 0, 0, 0, 0]) + init
    ready = 0
    failures = 0
    go = asyncio.Event()

    async def session(i: int) -> None:
        nonlocal ready, failures
        try:
            r, w = await asyncio.open_connection(host, int(port))
            key = base64.b64encode(os.urandom(16)).decode()
            w.write(f"GET /millis HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
            await r.readuntil(b"\r\n\r\n")
            w.write(init_frame)
            await r.readexactly(2)          # onready's header; the rest is drained below
            ready += 1
        except Exception:  # noqa: BLE001
            failures += 1
            return

        async def drain() -> None:
            while await r.read(65536):
                pass
        d = asyncio.create_task(drain())
        await go.wait()
        await asyncio.sleep(i % 50 / 50)
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            w.write(frame)
            await asyncio.sleep(1.0)
        w.close()
        d.cancel()

    tasks = [asyncio.create_task(session(i)) for i in range(n)]
    while ready + failures < n:
        await asyncio.sleep(0.1)
    go.set()
    await asyncio.sleep(seconds / 2)
    mid = {"ready": ready, "failures": failures}
    await asyncio.gather(*tasks)
    return mid


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", type=int, nargs="+", default=[10, 100, 500])
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--nice", type=int, default=19)
    p.add_argument("--hold", type=int, help="hold this many low-rate raw sessions instead")
    p.add_argument("--server-arg", action="append", default=[], help="extra server option (repeatable)")
    p.add_argument("--json", help="write all results there")
    args = p.parse_args()
    if not SERVER.exists():
        raise SystemExit(f"{SERVER} is missing: run make -C bench/server")
    with tempfile.TemporaryDirectory(prefix="millis-capacity-") as tmp:
        if args.hold:
            stats = os.path.join(tmp, "server.json")
            srv, url = start_server(args.nice, stats, args.server_arg)
            try:
                rss0 = proc_kib(srv.pid, "VmRSS")
                c0, t0 = proc_cpu_s(srv.pid), time.monotonic()
                box: Dict[str, Any] = {}

                async def run() -> None:
                    task = asyncio.create_task(hold(args.hold, args.seconds, url))
                    await asyncio.sleep(0)
                    while not task.done():
                        await asyncio.sleep(0.5)
                        box["rss_max"] = max(box.get("rss_max", 0), proc_kib(srv.pid, "VmRSS"))
                    box["mid"] = task.result()
                asyncio.run(run())
                c1, t1 = proc_cpu_s(srv.pid), time.monotonic()
                hwm = proc_kib(srv.pid, "VmHWM")
            finally:
                stop_server(srv)
            s = json.load(open(stats))
            result = {"hold_sessions": args.hold, "ready": box["mid"]["ready"], "failures": box["mid"]["failures"],
                      "server_rss_idle_kib": rss0, "server_rss_max_kib": box.get("rss_max"),
                      "server_vm_hwm_kib": hwm, "server_cpu_percent_of_core": round(100 * (c1 - c0) / (t1 - t0), 2),
                      "server_max_connections_open": s["max_connections_open"],
                      "server_user_frames_in": s["user_frames_in"]}
            print(json.dumps(result, indent=2))
            if args.json:
                json.dump(result, open(args.json, "w"), indent=2)
            return 0
        rows = []
        for n in args.sessions:
            r = run_one(n, args, tmp)
            rows.append(r)
            print(f"N={n}: server {r['server_cpu_percent_of_core']} % of a core, peer "
                  f"{r['peer_cpu_ms_per_session_second']} ms CPU per session-second, "
                  f"{r['peer_rss_kib_per_session']} KiB per session, p99 {r['lateness_p99_ms']} ms, "
                  f"late or lost {r['frames_late_or_lost']}; waited for a CPU: server "
                  f"{r['server_runqueue_wait_s']} s, peer {r['peer_runqueue_wait_s']} s", file=sys.stderr)
    print("| sessions | server CPU (% of a core) | server max RSS (KiB) | peer CPU (% of a core) "
          "| peer CPU per session-second (ms) | peer RSS per session (KiB) | lateness p50 / p99 / max (ms) "
          "| frames late or lost | user frames sent / received | agent frames sent / received |")
    print("|---:|---:|---:|---:|---:|---:|---|---:|---|---|")
    for r in rows:
        print(f"| {r['sessions']} | {r['server_cpu_percent_of_core']} | {r['server_max_rss_kib']} "
              f"| {r['peer_cpu_percent_of_core']} | {r['peer_cpu_ms_per_session_second']} "
              f"| {r['peer_rss_kib_per_session']} | {r['lateness_p50_ms']} / {r['lateness_p99_ms']} / "
              f"{r['lateness_max_ms']} | {r['frames_late_or_lost']} | {r['user_frames_sent']} / "
              f"{r['user_frames_received_by_server']} | {r['agent_frames_sent_by_server']} / "
              f"{r['agent_frames_received']} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
