#!/usr/bin/env python3
"""Where a client's CPU goes, on the scale benchmark's workload (bench/README.md).

    python3 bench/profile/profile.py                          # libmillis, 1000 sessions, 15 s
    python3 bench/profile/profile.py --client floor --sessions 1000
    python3 bench/profile/profile.py --client peer --sessions 200
    make bench-profile                                        # the three, as in BENCHMARKS.md

One client run against a fresh `millis_loadserver --stamped`, exactly as `make bench` runs
it, but under `perf record -e cpu-clock` (a software clock: it works in virtual machines
with no hardware counters; every thread of the client is sampled, the server is not).
Prints the share of the samples by thread, by object (the kernel, libmillis, libc, libcurl, the
interpreter, ...) and the hottest symbols, and writes both, with the run's figures (so a
profile of a run that lost frames is seen as such), under --out. Kernel symbols need
root (or kernel.kptr_restrict=0); without them the kernel is one line.

Needs perf (Debian: linux-perf) and build/libmillis.so (`make build`).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import benchlib as B  # noqa: E402


def demangle(text: str) -> str:
    """Swift's mangled names, readable (swift-demangle from the toolchain, when there is one)."""
    toolchain = Path("/opt/swift/usr/bin/swift-demangle")
    tool = shutil.which("swift-demangle") or (str(toolchain) if toolchain.exists() else None)
    if not tool:
        return text
    r = subprocess.run([tool, "--simplified"], input=text, capture_output=True, text=True, timeout=120)
    return r.stdout if r.returncode == 0 else text


def report(data: Path, sort: str, limit: float) -> str:
    r = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--no-children", "--sort", sort,
                        "--percent-limit", str(limit)], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise B.BenchError(f"perf report failed: {r.stderr.strip()[-2000:]}")
    return demangle("\n".join(line for line in r.stdout.splitlines() if line.strip() and not line.startswith("#")))


def main(argv: List[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--client", choices=("libmillis", "peer", "floor"), default="libmillis")
    p.add_argument("--sessions", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument("--frequency", type=int, default=999, help="samples per second per thread (default 999)")
    p.add_argument("--symbols", type=int, default=25, help="hottest symbols printed (default 25)")
    p.add_argument("--out", type=Path, default=B.REPO / "build" / "profile")
    a = p.parse_args(argv)
    if a.sessions < 1 or a.seconds <= 0 or a.frequency < 1:
        p.error("--sessions, --seconds and --frequency must be positive")
    if shutil.which("perf") is None:
        print("profile: perf is not installed (Debian: apt-get install linux-perf)", file=sys.stderr)
        return 1

    a.out.mkdir(parents=True, exist_ok=True)
    B.raise_fd_limit()
    B.build_server()
    tag = f"{a.client}-{a.sessions}"
    data = a.out / f"{tag}.perf.data"
    wrap = ["perf", "record", "-q", "-e", "cpu-clock", "-F", str(a.frequency), "-o", str(data), "--"]
    try:
        with tempfile.TemporaryDirectory(prefix="millis-profile-") as tmp:
            out = Path(tmp) / "client.json"
            with B.LoadServer(Path(tmp) / "server.json", stamped=True) as srv:
                if a.client == "libmillis":
                    exe = B.build_scale(a.out / "bin" / "millis_scale")
                    c = B.run_scale(exe, srv.url, a.sessions, a.seconds, out, server_pid=srv.pid, wrap=wrap)
                elif a.client == "floor":
                    exe = B.build_loadgen(a.out / "bin" / "millis_loadgen")
                    c = B.run_floor(exe, srv.url, a.sessions, a.seconds, out, server_pid=srv.pid, wrap=wrap)
                else:
                    c = B.run_peer(srv.url, a.sessions, a.seconds, out, server_pid=srv.pid, wrap=wrap)
            figures = B.account(c, B.server_summary(srv.stats, B.warmup_session_ids(c)))
        by_thread = report(data, "comm", 0.5)
        by_object = report(data, "dso", 0.5)
        by_symbol = report(data, "dso,sym", 0.3)
    except B.BenchError as e:
        print(f"profile: {e}", file=sys.stderr)
        return 1

    def num(key: str, digits: int) -> str:
        v = figures.get(key)
        return "–" if v is None else f"{v:.{digits}f}"

    head = (f"{a.client}, {a.sessions} sessions, {a.seconds:g} s window: client CPU "
            f"{num('cpu_cores', 3)} cores ({num('cpu_ms_per_session_second', 3)} ms per session-second), "
            f"frames lost {figures['frames_lost']} user / {figures['agent_frames_lost']} agent, "
            f"p99 lateness {num('server_lateness_p99_ms', 2)} ms "
            f"(the whole run is sampled: connecting and the drain too)")
    symbols = "\n".join(by_symbol.splitlines()[:a.symbols])
    parts = f"{head}\n\n## samples by thread\n{by_thread}\n\n## samples by object\n{by_object}\n\n"
    text = f"{parts}## hottest symbols\n{symbols}\n"
    (a.out / f"{tag}.txt").write_text(f"{parts}## symbols\n{by_symbol}\n")
    B.write_json(a.out / f"{tag}.json", {"client": a.client, "sessions": a.sessions, "seconds": a.seconds,
                                         "figures": figures})
    print(text)
    print(f"wrote {a.out / (tag + '.txt')}, {a.out / (tag + '.json')}, {data}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
