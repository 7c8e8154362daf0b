#!/usr/bin/env python3
"""Does reconnection cost memory? One client, cut again and again, nothing else here.

    python3 bench/soak/reconnect_memory.py --seconds 120

Not part of CI. A demo-agent session through soak.py's proxy, fed silence in real time
(so no turn ever starts and the session never ends); whenever the client is ready the
proxy cuts the connection (no close frame) and the client resumes the session. Every
10 s it prints the reconnections so far, glibc malloc's bytes in use (libmillis and
libcurl allocate there; Python's small objects do not) and RSS. Flat columns while
the reconnections count up mean a reconnection leaves nothing behind.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "bindings" / "python"))
sys.path.insert(0, str(HERE))

import millis  # noqa: E402
from soak import READY_PREFIX, Proxy, malloc_in_use_kib, rss_kib  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=120.0)
    args = p.parse_args()
    server = subprocess.Popen([sys.executable, str(REPO / "devserver" / "millis_devserver.py"), "--port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = server.stdout.readline()
        if not line.startswith(READY_PREFIX):
            print(f"the devserver did not start: {line!r}", file=sys.stderr)
            return 1
        target = urlsplit(line.split()[1])
        proxy = Proxy(target.hostname, target.port)
        reconnects = [0]
        client = millis.Client("test-public-key", f"ws://127.0.0.1:{proxy.port}/millis", reconnect=(5, 10, 20))
        client.on("onreconnected", lambda session_id: reconnects.__setitem__(0, reconnects[0] + 1))
        client.on("onclose", lambda code, reason: print(f"closed {code} {reason}", flush=True))
        client.start(agent_id="demo-agent")
        stop = threading.Event()

        def feed() -> None:
            while not stop.is_set():
                client.send_audio(bytes(640))
                time.sleep(0.02)

        threading.Thread(target=feed, daemon=True).start()
        t0 = time.monotonic()
        next_report = t0 + 10
        print(f"{'t(s)':>6} {'reconnects':>10} {'malloc(KiB)':>11} {'RSS(KiB)':>9}", flush=True)
        while time.monotonic() - t0 < args.seconds:
            if client.connection_state == "ready":
                proxy.cut()
            time.sleep(0.3)
            if time.monotonic() >= next_report:
                print(f"{time.monotonic() - t0:6.0f} {reconnects[0]:10d} {malloc_in_use_kib():11d} {rss_kib():9d}",
                      flush=True)
                next_report += 10
        stop.set()
        client.close()
        return 0
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    sys.exit(main())
