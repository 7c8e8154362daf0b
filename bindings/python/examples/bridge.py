#!/usr/bin/env python3
"""A telephony bridge: many calls of G.711 µ-law at 8 kHz in one asyncio event loop.

    python3 bindings/python/examples/bridge.py \\
        --endpoint ws://127.0.0.1:8765/millis --agent-id demo-agent --calls 20

Each call is a millis.aio.AsyncClient with audio_encoding="mulaw", as a trunk delivers
the caller's audio; here a tone stands in for each caller (one turn of speech, in real
time 20 ms chunks). A call ends once the agent's answer has been played, and the bridge
prints, per call, what the agent said and how much µ-law audio came back. There is no
thread per call: the loop watches each client's event descriptor. The public key comes
from $MILLIS_PUBLIC_KEY (default "test-public-key", which the devserver accepts).

Exit status: 0 when every call was answered and closed normally, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing

import millis  # noqa: E402
from millis.aio import AsyncClient  # noqa: E402

RATE = 8000
CHUNK = RATE * 20 // 1000  # 20 ms of µ-law: one byte per sample


def mulaw(sample: int) -> int:
    """G.711 µ-law of one 16-bit sample."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32635) + 0x84
    exponent = max(e for e in range(8) if magnitude >> (e + 7) or e == 0)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | exponent << 4 | mantissa) & 0xFF


def caller_turn() -> bytes:
    """0.5 s of a 440 Hz tone, then 0.8 s of silence: one turn to a voice detector."""
    tone = bytes(mulaw(int(12000 * math.sin(2 * math.pi * 440 * i / RATE)))
                 for i in range(RATE // 2))
    return tone + bytes([mulaw(0)]) * (RATE * 8 // 10)


@dataclass
class Call:
    number: int
    said: str = ""
    audio_bytes: int = 0
    close_code: int = 0
    error: str = ""


async def run_call(call: Call, endpoint: str, key: str, agent_id: str, turn: bytes) -> None:
    async with AsyncClient(key, endpoint, audio_mode="application",
                           audio_encoding="mulaw", audio_sample_rate=RATE) as client:
        try:
            await client.start(agent={"agent_id": agent_id}, metadata={"call": call.number})
        except millis.MillisError as exc:
            call.error = str(exc)
            return
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for i in range(0, len(turn), CHUNK):
            client.send_audio(turn[i:i + CHUNK])
            await asyncio.sleep(max(0.0, t0 + (i // CHUNK + 1) * 0.02 - loop.time()))
        async for event in client:
            if isinstance(event, millis.Audio):
                call.audio_bytes += len(event.pcm)
            elif isinstance(event, millis.ResponseText) and event.is_final:
                call.said = event.text
            elif isinstance(event, millis.AgentStateChanged):
                if event.state == millis.AgentState.IDLE and call.said:
                    closed = await client.stop()
                    call.close_code = closed.code if closed else 0
                    break
            elif isinstance(event, millis.Close):
                call.close_code = event.code
            elif isinstance(event, millis.Error):
                call.error = str(event.error)


async def bridge(args: argparse.Namespace) -> List[Call]:
    key = os.environ.get("MILLIS_PUBLIC_KEY", "test-public-key")
    turn = caller_turn()
    calls = [Call(n) for n in range(args.calls)]
    await asyncio.wait_for(
        asyncio.gather(*(run_call(c, args.endpoint, key, args.agent_id, turn) for c in calls)),
        args.timeout)
    return calls


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--endpoint", default="ws://127.0.0.1:8765/millis")
    parser.add_argument("--agent-id", default="demo-agent")
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds before giving up (default 60)")
    args = parser.parse_args()
    if args.calls < 1:
        parser.error("--calls must be at least 1")
    start = time.monotonic()
    try:
        calls = asyncio.run(bridge(args))
    except asyncio.TimeoutError:
        print(f"the calls did not end within {args.timeout} s", file=sys.stderr)
        return 1
    failed = 0
    for call in calls:
        ok = call.said != "" and call.close_code == 1000 and not call.error
        failed += not ok
        print(f"call {call.number:2}: {'ok  ' if ok else 'FAIL'} close {call.close_code} "
              f"{call.audio_bytes / RATE:4.1f} s of agent audio, said {call.said!r}"
              + (f" error: {call.error}" if call.error else ""))
    print(f"{len(calls) - failed} of {len(calls)} calls answered in "
          f"{time.monotonic() - start:.1f} s, in one thread")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
