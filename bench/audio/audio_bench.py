#!/usr/bin/env python3
"""Device-audio figures with medians over repeated conversations, on the paced
PulseAudio echo loop that the audio tests set up (Tests/python/audio_bed.py):

    python3 bench/audio/audio_bench.py [--runs 5] [--json results.json]

Each run is one conversation of the devserver's demo agent through ALSA's `pulse`
device: the user's speech is played into the null sink, whose monitor is the
microphone, so the agent's voice comes back as a real echo. Reported:

- ERLE (echo return loss enhancement), over the whole conversation and over the last
  2 s of speaker activity (the converged canceller);
- barge-in: from the `clear` being read to the speaker's buffer being dropped
  (`last_clear_ms`; the target is one 10 ms audio period). This figure lives here, not
  in the tests: Tests/python/test_audio_device.py::test_clear_silences_the_speaker
  checks that the clear happened and silenced the agent, without a wall-clock bound
  that a loaded machine breaks. A run in which no barge-in happened reports none;
- capture -> wire: from a microphone frame's last sample being captured to the frame
  being written to the socket (the 10 ms processing delay of the preprocessor comes on
  top: it is algorithmic, inside the frame);
- underruns, xruns, overruns, realignments of the echo reference;
- echo barge-ins: the devserver's barge-in decisions during the agent's answers (the
  user speaks once, before the first answer, so each was caused by echo).

`--echo-canceller webrtc speex` runs both side by side (interleaved). `--room COUPLING_DB`
puts the echo bed's room between the speaker and the microphone (bench/echo/room.py:
reverberation, soft clipping, 100 ppm drift, at that coupling), and the user's voice
goes into the microphone only, not through the room.
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tests" / "python"))
from audio_bed import PulseBed  # noqa: E402

sys.path.insert(0, str(ROOT / "bench" / "echo"))
from room import Room  # noqa: E402

DRIVER = ROOT / "Tests" / "python" / "device_session.py"
USER_WAV = ROOT / "bindings" / "audio" / "user.wav"
KEYS = ["echo_erle_db", "echo_erle_recent_db", "last_clear_ms", "capture_to_wire_ms", "wire_to_device_ms",
        "wire_to_device_beyond_queue_ms", "wire_to_device_beyond_queue_max_ms", "clears",
        "playback_underruns", "playback_xruns", "capture_overruns", "echo_realignments"]


def start_devserver(tmp: Path):
    proc = subprocess.Popen([sys.executable, str(ROOT / "devserver" / "millis_devserver.py"), "--host", "127.0.0.1",
                             "--port", "0", "--think-ms", "100", "--record-dir", str(tmp / "records")],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:
        if "ws://" in line:
            return proc, line[line.index("ws://"):].strip()
    raise RuntimeError("the devserver did not start")


def server_record(tmp: Path, session_id, timeout: float = 15.0) -> dict:
    """The devserver's record of a session (its barge-in decisions), once written."""
    path = tmp / "records" / f"{session_id}.json"
    deadline = time.monotonic() + timeout
    while session_id and time.monotonic() < deadline:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            time.sleep(0.1)
    return {}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--library", default=str(ROOT / "build" / "libmillis.so"))
    ap.add_argument("--json", help="write the per-run figures and medians here")
    ap.add_argument("--prebuffer-ms", type=int, nargs="*", default=[None],
                    help="playout prebuffers to compare (a sweep: underruns against latency)")
    ap.add_argument("--echo-canceller", nargs="*", default=[None], choices=[None, "webrtc", "speex"],
                    help="echo cancellers to compare, side by side (default: the library's)")
    ap.add_argument("--room", type=float, metavar="COUPLING_DB",
                    help="the echo bed's room between the speaker and the microphone, at this coupling "
                         "(bench/echo/room.py)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="audio-bench-"))
    server, url = start_devserver(tmp)
    results = {}
    configs = [(canceller, prebuffer) for canceller in args.echo_canceller for prebuffer in args.prebuffer_ms]

    def config_name(canceller, prebuffer):
        parts = ([] if canceller is None else [canceller]) + ([] if prebuffer is None else [f"prebuffer {prebuffer} ms"])
        return ", ".join(parts) or "default"

    try:
        # Interleaved (run i of every configuration, then run i + 1): a change in the
        # machine's load spreads over all of them instead of biasing one.
        for i in range(args.runs):
            for canceller, prebuffer in configs:
                name = config_name(canceller, prebuffer)
                runs = results.setdefault(name, [])
                where = tmp / f"pulse{len(runs)}-{name.replace(' ', '_').replace(',', '')}"
                with PulseBed(where) as bed:
                    if args.room is None:
                        env, capture = bed.env(), "pulse"
                        player = subprocess.Popen(["sh", "-c", f"sleep 1; exec paplay --device={bed.sink} {USER_WAV}"],
                                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    else:
                        room = Room(bed, where, args.room, user=USER_WAV, user_at_s=1.0)
                        env, capture, player = room.env(), room.capture, None
                    cmd = [sys.executable, str(DRIVER), "--library", args.library, "--endpoint", url,
                           "--capture", capture, "--playback", "pulse", "--seconds", "14"]
                    if prebuffer is not None:
                        cmd += ["--prebuffer-ms", str(prebuffer)]
                    if canceller is not None:
                        cmd += ["--echo-canceller", canceller]
                    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
                    if player:
                        player.wait(30)
                session = json.loads(done.stdout.strip().splitlines()[-1])
                stats = session["stats"]
                row = {k: stats.get(k) for k in KEYS}
                # The user speaks once, before the agent's first answer: every barge-in
                # the devserver decided during an answer was the agent's own echo.
                row["echo_barge_ins"] = len(server_record(tmp, session.get("session_id")).get("barge_ins", []))
                runs.append(row)
                print(f"{name}, run {i + 1}: " + ", ".join(f"{k} {v}" for k, v in row.items()), flush=True)
    finally:
        server.terminate()
        server.wait(10)
    summary = {}
    for label, runs in results.items():
        summary[label] = {}
        print(f"\n{label}: {'figure':24} {'median':>8} {'min':>8} {'max':>8}   ({args.runs} runs)")
        for k in KEYS + ["echo_barge_ins"]:
            values = [r[k] for r in runs if r[k] is not None]
            if not values:
                continue
            summary[label][k] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
            print(f"{'':{len(label) + 2}}{k:24} {summary[label][k]['median']:8.2f} "
                  f"{summary[label][k]['min']:8.2f} {summary[label][k]['max']:8.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": results, "summary": summary,
                                               "when": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
