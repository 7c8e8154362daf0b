#!/usr/bin/env python3
"""Holds one conversation with a Millis agent, streaming a WAV file as the microphone.

    python3 bindings/python/examples/conversation.py \
        --endpoint ws://127.0.0.1:8765/millis --agent-id demo-agent \
        --input bindings/audio/user.wav --output agent.wav

The public key comes from $MILLIS_PUBLIC_KEY (default "test-public-key", which the
devserver accepts). The input must be 16 kHz mono PCM16; it is sent in real time in
20 ms chunks from onready on, followed by silence until the conversation closes. Every
event is printed as it arrives; the agent's audio is written to --output. Exits 0 on a
normal close (1000), 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import wave
from pathlib import Path
from typing import Any, Dict, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing

import millis  # noqa: E402

REPO = HERE.parents[2]
CHUNK_MS = 20
RATE = 16000
CHUNK_BYTES = RATE * 2 * CHUNK_MS // 1000


def read_input(path: Path) -> bytes:
    with wave.open(str(path), "rb") as w:
        if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, RATE):
            sys.exit(f"{path}: expected 16 kHz mono 16-bit PCM, got {w.getnchannels()} ch, "
                     f"{8 * w.getsampwidth()} bit, {w.getframerate()} Hz")
        return w.readframes(w.getnframes())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", default="ws://127.0.0.1:8765/millis")
    parser.add_argument("--agent-id", default="demo-agent")
    parser.add_argument("--input", type=Path, default=REPO / "bindings" / "audio" / "user.wav",
                        help="16 kHz mono PCM16 WAV sent as the microphone")
    parser.add_argument("--output", type=Path, default=None,
                        help="WAV file receiving the agent's audio")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds before giving up (default 120)")
    parser.add_argument("--verbose", action="store_true", help="print library logs (debug)")
    args = parser.parse_args()

    pcm = read_input(args.input)
    key = os.environ.get("MILLIS_PUBLIC_KEY", "test-public-key")
    t0 = time.monotonic()

    def say(*parts: object) -> None:
        print(f"[{time.monotonic() - t0:7.3f}]", *parts, flush=True)

    out: Optional[wave.Wave_write] = None
    if args.output:
        out = wave.open(str(args.output), "wb")
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)

    ready = threading.Event()
    finished = threading.Event()
    result: Dict[str, Optional[int]] = {"code": None}
    audio_bytes = 0

    log_level = millis.LogLevel.DEBUG if args.verbose else millis.LogLevel.WARN
    # The example pushes a file's audio itself: application audio, whatever sound
    # devices the machine has (the default mode would pick them when they open).
    with millis.Client(key, args.endpoint, log_level=log_level,
                       audio_mode=millis.AudioMode.APPLICATION) as client:
        @client.on("onopen")
        def onopen() -> None:
            say("onopen")

        @client.on("onready")
        def onready(session_id: str) -> None:
            say("onready", f"session_id={session_id!r}")
            ready.set()

        @client.on("onsessionended")
        def onsessionended() -> None:
            say("onsessionended")

        @client.on("onaudio")
        def onaudio(audio: bytes) -> None:
            nonlocal audio_bytes
            if audio_bytes == 0:
                say("onaudio", f"first chunk: {len(audio)} bytes")
            audio_bytes += len(audio)
            if out is not None:
                out.writeframes(audio)

        @client.on("onresponsetext")
        def onresponsetext(text: str, payload: Dict[str, Any]) -> None:
            say("onresponsetext", repr(text), payload)

        @client.on("ontranscript")
        def ontranscript(text: str, payload: Dict[str, Any]) -> None:
            say("ontranscript", repr(text), payload)

        @client.on("onfunction")
        def onfunction(text: str, payload: Dict[str, Any]) -> None:
            say("onfunction", repr(text), payload)

        @client.on("onlatency")
        def onlatency(ms: float) -> None:
            say("onlatency", f"{ms:.1f} ms")

        @client.on("onagentstate")
        def onagentstate(state: millis.AgentState) -> None:
            say("onagentstate", state)

        @client.on("onmessage")
        def onmessage(method: str, message: Dict[str, Any]) -> None:
            say("onmessage", method, message)

        @client.on("onerror")
        def onerror(err: millis.MillisError) -> None:
            say("onerror", err)

        @client.on("onlog")
        def onlog(level: millis.LogLevel, message: str) -> None:
            say("onlog", level.name, message)

        @client.on("onclose")
        def onclose(code: int, reason: str) -> None:
            say("onclose", code, repr(reason))
            result["code"] = code
            finished.set()

        def stream() -> None:
            if not ready.wait(args.timeout):
                return
            silence = bytes(CHUNK_BYTES)
            start = time.monotonic()
            for i in range(1_000_000):
                if finished.is_set():
                    return
                offset = i * CHUNK_BYTES
                chunk = pcm[offset:offset + CHUNK_BYTES] if offset < len(pcm) else silence
                if len(chunk) < CHUNK_BYTES:
                    chunk += bytes(CHUNK_BYTES - len(chunk))
                try:
                    client.send_audio(chunk)
                except millis.MillisError as exc:
                    if not finished.is_set():
                        say("send_audio failed:", exc)
                    return
                delay = start + (i + 1) * CHUNK_MS / 1000 - time.monotonic()
                if delay > 0:
                    finished.wait(delay)

        sender = threading.Thread(target=stream, name="mic", daemon=True)
        sender.start()
        try:
            client.start(agent_id=args.agent_id)
        except millis.MillisError as exc:
            say("start failed:", exc)
            return 1
        if not client.wait_closed(args.timeout):
            say(f"no close within {args.timeout} s; stopping")
            client.stop()
            client.wait_closed(5)
        finished.set()
        sender.join(2)
        say("stats", client.stats())

    if out is not None:
        out.close()
        say(f"wrote {audio_bytes} bytes of agent audio to {args.output}")
    return 0 if result["code"] == 1000 else 1


if __name__ == "__main__":
    sys.exit(main())
