#!/usr/bin/env python3
"""A test bot: talks to a Millis agent from an audio file and reports how it went.

    python3 bindings/python/examples/file_bot.py \\
        --endpoint ws://127.0.0.1:8765/millis --agent-id demo-agent \\
        --input bindings/audio/user.wav --output agent.wav --record call.opus

The library streams --input (WAV or Ogg Opus, any rate and channel count) as the
microphone, writes the agent's answer to --output (16 kHz mono; WAV for .wav, Ogg Opus
for .opus/.ogg) with the silences between answers kept, and records both sides of the
call to --record (user left, agent right) with a JSON Lines timeline beside it
(`millis replay call.jsonl` prints it). No sound card is involved: the files are the
devices (without --output the agent goes to --playback-device, by default ALSA's
"null" device, which discards it).

It prints the transcript as it goes and, per agent turn, the latency breakdown (end of
the user's speech -> start_answering -> first agent audio -> played). It stops once
the input has ended and the agent has been idle for --idle-grace seconds (or the server
ends the session, or --timeout passes), then prints a summary. The public key comes from
$MILLIS_PUBLIC_KEY (default "test-public-key", which the devserver accepts).

Exit status: 0 when the input was sent to the end and the conversation closed normally
(close code 1000), 1 otherwise, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing

import millis  # noqa: E402

REPO = HERE.parents[2]
STEPS = (("end_of_speech_to_start_answering", "speech end -> start_answering"),
         ("start_answering_to_first_audio", "-> first audio"),
         ("first_audio_to_played", "-> played"),
         ("total", "total"))


def ms(value: Any) -> str:
    return "   -  " if value is None else f"{value:6.0f}"


class Bot:
    """The bot's state, fed by the client's handlers (on the dispatcher thread) and
    watched by the main thread."""

    def __init__(self, idle_grace: float) -> None:
        self.t0 = time.monotonic()
        self.idle_grace = idle_grace
        self.cv = threading.Condition()
        self.input_ended_at: Optional[float] = None
        self.agent_idle = True
        self.last_activity = self.t0
        self.close: Optional[Tuple[int, str]] = None
        self.transcript: List[Tuple[float, str, str]] = []  # (t, "user"|"agent"|"tool", text)
        self.turns: List[Dict[str, Any]] = []
        self.errors: List[millis.MillisError] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    def say(self, *parts: Any) -> None:
        print(f"[{self.now():7.3f}]", *parts, flush=True)

    def activity(self, idle: Optional[bool] = None) -> None:
        with self.cv:
            self.last_activity = time.monotonic()
            if idle is not None:
                self.agent_idle = idle
            self.cv.notify_all()

    def done(self) -> bool:
        """The server closed, or the input is over and the agent has been quiet."""
        if self.close is not None:
            return True
        if self.input_ended_at is None or not self.agent_idle:
            return False
        quiet_since = max(self.last_activity, self.input_ended_at)
        return time.monotonic() - quiet_since >= self.idle_grace

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cv:
            while not self.done():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.cv.wait(min(remaining, 0.1))
        return True

    # --- handlers ---------------------------------------------------------------------

    def attach(self, client: millis.Client, verbose: bool) -> None:
        client.on("onready", lambda session_id: self.say("ready, session", session_id))
        client.on("ontranscript", self.ontranscript)
        client.on("onresponsetext", self.onresponsetext)
        client.on("onfunction", self.onfunction)
        client.on("onagentstate", self.onagentstate)
        client.on("oninputended", self.oninputended)
        client.on("onturn", self.onturn)
        client.on("onerror", self.onerror)
        client.on("onclose", self.onclose)
        client.on("onsessionended", lambda: self.say("the server ended the session"))
        if verbose:
            client.on("onlog", lambda level, message: self.say("log", level.name, message))

    def ontranscript(self, text: str, payload: Dict[str, Any]) -> None:
        self.activity()
        if payload["is_final"]:
            self.transcript.append((self.now(), "user", text))
            self.say("user: ", text)

    def onresponsetext(self, text: str, payload: Dict[str, Any]) -> None:
        self.activity()
        if payload["is_final"]:
            self.transcript.append((self.now(), "agent", text))
            self.say("agent:", text)

    def onfunction(self, text: str, payload: Dict[str, Any]) -> None:
        self.activity()
        call = f"{payload['name']}({payload['params']})"
        self.transcript.append((self.now(), "tool", call))
        self.say("tool: ", call)

    def onagentstate(self, state: millis.AgentState) -> None:
        self.activity(idle=(state == "idle"))

    def oninputended(self) -> None:
        with self.cv:
            self.input_ended_at = time.monotonic()
            self.cv.notify_all()
        self.say("the input file ended; silence follows")

    def onturn(self, turn: Dict[str, Any]) -> None:
        self.turns.append(turn)
        latency = turn.get("latency_ms") or {}
        self.say(f"turn {turn.get('turn')}: " + ", ".join(
            f"{label} {ms(latency.get(key)).strip()} ms" for key, label in STEPS))

    def onerror(self, err: millis.MillisError) -> None:
        self.errors.append(err)
        self.say("error:", err)

    def onclose(self, code: int, reason: str) -> None:
        with self.cv:
            self.close = (code, reason)
            self.cv.notify_all()
        self.say("closed", code, repr(reason))

    # --- report -----------------------------------------------------------------------

    def report(self) -> None:
        print("\nTranscript")
        for t, who, text in self.transcript:
            print(f"  {t:7.3f}  {who:5}  {text}")
        print("\nLatency per agent turn (ms)")
        print("  turn  " + "  ".join(f"{label:>{max(6, len(label))}}" for _, label in STEPS))
        for turn in self.turns:
            latency = turn.get("latency_ms") or {}
            print(f"  {turn.get('turn', '?'):>4}  " + "  ".join(
                f"{ms(latency.get(key)):>{max(6, len(label))}}" for key, label in STEPS))
        totals = [t["latency_ms"]["total"] for t in self.turns
                  if isinstance(t.get("latency_ms"), dict) and t["latency_ms"].get("total") is not None]
        if totals:
            print(f"  median total {statistics.median(totals):.0f} ms over {len(totals)} turn(s)")
        elif self.turns:
            # Read fast, every utterance is on the wire before the first answer: which end
            # of speech an answer follows is unknowable, and the library does not guess.
            print("  (no end-of-speech times: the input was read faster than real time)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", default="ws://127.0.0.1:8765/millis",
                        help="ws:// or wss:// URL (default: a local devserver)")
    parser.add_argument("--agent-id", default="demo-agent")
    parser.add_argument("--input", type=Path, default=REPO / "bindings" / "audio" / "user.wav",
                        help="WAV or Ogg Opus file spoken to the agent")
    parser.add_argument("--output", type=Path, default=None,
                        help="file receiving the agent's audio (.wav, .opus or .ogg)")
    parser.add_argument("--playback-device", default=None,
                        help="without --output: the ALSA device that plays the agent "
                             "(default \"null\": discarded; \"default\" to hear it)")
    parser.add_argument("--record", type=Path, default=None,
                        help="recording of the call (.wav, .opus or .ogg) + a .jsonl timeline")
    parser.add_argument("--mono", action="store_true", help="record both sides in one channel")
    parser.add_argument("--fast", action="store_true",
                        help="stream the input as fast as the server takes it (devserver)")
    parser.add_argument("--idle-grace", type=float, default=4.0,
                        help="seconds the agent must stay idle after the input ended (default 4)")
    parser.add_argument("--timeout", type=float, default=180.0,
                        help="seconds before giving up (default 180)")
    parser.add_argument("--verbose", action="store_true", help="print library logs (debug)")
    args = parser.parse_args()

    key = os.environ.get("MILLIS_PUBLIC_KEY", "test-public-key")
    bot = Bot(args.idle_grace)
    try:
        client = millis.Client(
            key, args.endpoint,
            log_level=millis.LogLevel.DEBUG if args.verbose else millis.LogLevel.WARN,
            input_file=args.input,
            input_pacing=millis.FilePacing.FAST if args.fast else millis.FilePacing.REALTIME,
            output_file=args.output,
            playback_device=None if args.output else (args.playback_device or "null"),
            recording=args.record, recording_mono=args.mono if args.record else False)
    except millis.MillisError as exc:
        print(f"file_bot: {exc}", file=sys.stderr)
        return 2

    with client:
        bot.attach(client, args.verbose)
        try:
            client.start(agent_id=args.agent_id)
        except millis.MillisError as exc:  # FILE: the input could not be opened, ...
            print(f"file_bot: start failed: {exc}", file=sys.stderr)
            return 1
        bot.say(f"started: {args.input.name} -> {args.agent_id}"
                + (" (fast)" if args.fast else ""))
        finished = bot.wait(args.timeout)
        if bot.close is None:
            bot.say("stopping" if finished else f"no end within {args.timeout} s; stopping")
            client.stop()
        if not client.wait_closed(10):
            bot.say("no close within 10 s")
        client.stop_recording()  # returns once the recording's files are complete
        stats = client.stats()

    bot.report()
    print(f"\nframes sent {stats['frames_sent']}, dropped "
          f"{stats['audio_frames_dropped'] + stats['audio_frames_dropped_backpressure']}")
    if args.output:
        print(f"agent audio: {args.output}")
    if args.record:
        print(f"recording:   {args.record} (timeline {args.record.with_suffix('.jsonl')})")
    ok = bot.input_ended_at is not None and bot.close is not None and bot.close[0] == 1000
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
