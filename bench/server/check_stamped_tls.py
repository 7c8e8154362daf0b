#!/usr/bin/env python3
"""Checks millis_loadserver's --stamped and --tls-cert/--tls-key (python3 + websockets).

    python3 bench/server/check_stamped_tls.py [path/to/millis_loadserver]

Starts its own servers on free ports (a throw-away certificate from `openssl`), then:
  1. stamped frames over ws:// and wss://: 150 stamped user frames (every tenth stamped
     5 ms in the past) and one 3-byte frame; the SIGUSR2 interval must count 150
     stamped, 1 unstamped, max >= 5 ms; every agent frame carries a plausible stamp;
  2. wss:// backpressure: 20 pongs of 1 MB requested without reading (the server's
     SSL_write blocks and retries from a moved buffer), read back byte for byte;
  3. a plain-text client against the TLS port: a counted handshake failure, no crash.
Exits 0 when everything holds, 1 otherwise.
"""
import asyncio
import base64
import json
import os
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "millis_loadserver")


def start(tmp, name, *args):
    stats = os.path.join(tmp, name + ".json")
    p = subprocess.Popen([SERVER, "--port", "0", "--quiet", "--stats", stats, *args],
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().split()
    if len(line) != 2 or line[0] != "MILLIS_LOADSERVER_READY":
        raise SystemExit(f"{name}: no READY line: {line}")
    return p, line[1], stats


def interval(p, stats):
    """SIGUSR2, then the new stats file."""
    old = json.load(open(stats))["seq"] if os.path.exists(stats) else 0
    p.send_signal(signal.SIGUSR2)
    for _ in range(500):
        time.sleep(0.01)
        try:
            d = json.load(open(stats))
        except (OSError, ValueError):
            continue
        if d["pid"] == p.pid and d["seq"] > old:
            return d
    raise SystemExit("no interval stats file")


async def stamped_session(url, ca):
    ctx = ssl.create_default_context(cafile=ca) if url.startswith("wss") else None
    agent = []
    async with websockets.connect(url, ssl=ctx, compression=None) as ws:
        await ws.send(json.dumps({"method": "initiate", "data": {"public_key": "k", "agent": {"agent_id": "a"}}}))
        r = json.loads(await ws.recv())
        assert r["method"] == "onready", r

        async def reader():
            async for m in ws:
                if isinstance(m, bytes):
                    agent.append((time.monotonic_ns(), struct.unpack("<Q", m[:8])[0], len(m)))

        task = asyncio.create_task(reader())
        t0 = time.monotonic_ns()
        for k in range(150):
            await asyncio.sleep(max(0, (t0 + k * 20_000_000 - time.monotonic_ns()) / 1e9))
            stamp = time.monotonic_ns() - (5_000_000 if k % 10 == 1 else 0)
            await ws.send(struct.pack("<Q", stamp) + bytes(632))
        await ws.send(b"\1\2\3")
        await asyncio.sleep(0.3)
        task.cancel()
    return r["payload"]["session_id"], agent


def check_stamped(p, url, stats, ca):
    interval(p, stats)
    sid, agent = asyncio.run(stamped_session(url, ca))
    time.sleep(0.2)
    d = interval(p, stats)
    h = d["user_frame_stamp_lateness_ms"]
    c = next(c for c in d["connections"] if c["session_id"] == sid)
    assert h["count"] == 150 and d["unstamped_user_frames"] == 1, (h, d["unstamped_user_frames"])
    assert 5.0 <= h["max"] < 100 and h["min"] >= 0, h
    assert c["user_frames_in"] == 151 and c["user_stamp_lateness_max_ms"] >= 5.0, c
    assert c["accept_to_ready_written_ms"] is not None and c["accept_to_upgrade_written_ms"] is not None, c
    assert (c["accept_to_tls_ms"] is not None) == url.startswith("wss"), c
    lat = sorted((now - st) / 1e6 for now, st, _ in agent)
    assert agent and all(n == 640 for _, _, n in agent), "agent frames"
    assert 0 <= lat[0] and lat[-1] < 100, (lat[0], lat[-1])
    print(f"{url.split(':')[0]}: user stamps p50 {h['p50']} ms max {h['max']} ms over {h['count']} frames; "
          f"{len(agent)} agent frames, now - stamp p50 {lat[len(lat) // 2]:.3f} ms; "
          f"accept -> ready {c['accept_to_ready_written_ms']} ms")


def ws_frame(op, payload):
    m, n = os.urandom(4), len(payload)
    if n < 126:
        h = bytes([0x80 | op, 0x80 | n])
    elif n < 65536:
        h = bytes([0x80 | op, 0x80 | 126]) + struct.pack(">H", n)
    else:
        h = bytes([0x80 | op, 0x80 | 127]) + struct.pack(">Q", n)
    return h + m + bytes(b ^ m[i & 3] for i, b in enumerate(payload))


def check_tls_backpressure(url, ca):
    host, port = url.split("//")[1].split("/")[0].split(":")
    s = ssl.create_default_context(cafile=ca).wrap_socket(socket.create_connection((host, int(port))), server_hostname=host)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(f"GET /millis HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    head, buf = buf.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101"), head

    def read_frame():
        nonlocal buf

        def need(n):
            nonlocal buf
            while len(buf) < n:
                d = s.recv(1 << 16)
                if not d:
                    raise EOFError
                buf += d
        need(2)
        op, n, p = buf[0] & 15, buf[1] & 127, 2
        if n == 126:
            need(4); n = struct.unpack(">H", buf[2:4])[0]; p = 4
        elif n == 127:
            need(10); n = struct.unpack(">Q", buf[2:10])[0]; p = 10
        need(p + n)
        d, buf = buf[p:p + n], buf[p + n:]
        return op, d

    s.sendall(ws_frame(1, b'{"method":"initiate"}'))
    assert b"onready" in read_frame()[1]
    blob = "x" * 1_000_000
    for i in range(20):
        s.sendall(ws_frame(1, json.dumps({"method": "ping", "data": f"{i}-{blob}"}).encode()))
    time.sleep(1.0)
    for i in range(20):
        op, d = read_frame()
        assert op == 1 and d == f'{{"method":"pong","data":"{i}-{blob}"}}'.encode(), (i, d[:60])
    s.sendall(ws_frame(8, struct.pack(">H", 1000)))
    assert read_frame()[0] == 8
    s.close()
    print("wss: 20 pongs of 1 MB requested without reading, read back intact")


def check_plaintext_to_tls(p, url, stats):
    host, port = url.split("//")[1].split("/")[0].split(":")
    s = socket.create_connection((host, int(port)))
    s.sendall(b"GET /millis HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        s.recv(100)
    except ConnectionResetError:
        pass
    s.close()
    time.sleep(0.1)
    d = interval(p, stats)
    assert d["tls_failures"] == 1 and p.poll() is None, d["tls_failures"]
    print("wss: a plain-text client is a counted handshake failure")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", cert], check=True, capture_output=True)
        procs = []
        try:
            common = ["--stamped", "--batch-us", "0", "--turn-ms", "1000", "--answer-ms", "1000"]
            p, url, stats = start(tmp, "ws", *common)
            procs.append(p)
            check_stamped(p, url, stats, cert)
            p, url, stats = start(tmp, "wss", *common, "--tls-cert", cert, "--tls-key", key,
                                  "--max-message-bytes", "2000000")
            procs.append(p)
            check_stamped(p, url, stats, cert)
            check_tls_backpressure(url, cert)
            check_plaintext_to_tls(p, url, stats)
        finally:
            for p in procs:
                p.terminate()
                p.wait()
    print("OK")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e!r}", file=sys.stderr)
        sys.exit(1)
