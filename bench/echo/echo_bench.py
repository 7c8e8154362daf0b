#!/usr/bin/env python3
"""Echo cancellers side by side on a simulated room (bench/README.md, "Echo
cancellation"):

    python3 bench/echo/echo_bench.py [--json build/bench/echo.json] [--couplings 0 -10 -20]

The bed: an agent voice (espeak-ng) as the speaker plays it; the speaker's mild soft
clipping; a room (a generated impulse response: a direct path, early reflections and a
reverberant tail, RT60 0.4 s); the echo at a coupling of 0, -10 or -20 dB against the
played level; the capture clock 100 ppm fast against the playback clock; a second voice
as the user, alone and over the agent (double-talk) at known times; a noise floor. Every
configuration of bench/echo/echo_cancellers.cpp runs on the same pair, and the figures
are computed against the clean parts the bed keeps (bench/README.md defines each one).
Deterministic: the same seed gives the same bed.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
RATE = 16_000
FRAME = 160  # 10 ms: the cancellers' frame
# The devserver's default --barge-in-ms: speech over the agent this long clears it.
BARGE_IN_SAMPLES = int(0.3 * RATE)
MODES = ["speex", "speex-300", "webrtc", "webrtc-extended", "webrtc-moderate", "webrtc-low", "webrtc-aecm",
         "webrtc+speex"]

AGENT_TURNS = [
    "Hello, thanks for calling. I can help you book a table, change a booking, or tell you "
    "about tonight's menu. Most evenings we have room after eight, and the terrace opens "
    "when the weather allows it.",
    "Tonight the kitchen suggests the roasted vegetables with lemon and herbs, then the "
    "slow cooked lamb. There is a fish of the day as well, which the waiter will describe "
    "at your table. Would you like me to hold a table for you, and for how many people?",
    "Perfect. I have a table for four at half past eight, near the window. I will send a "
    "confirmation by message in a minute, and if your plans change you can call this "
    "number again, at any time of the day.",
]
USER_PHRASES = [
    "Yes, for four people please.",
    "Wait, can we make it nine?",
    "Actually, is the terrace open?",
    "Thank you very much.",
    "No, that is fine.",
]


# ---------------------------------------------------------------------------------
# The bed
# ---------------------------------------------------------------------------------

def speak(text: str, voice: str, tmp: Path, name: str) -> np.ndarray:
    wav = tmp / f"{name}.wav"
    raw = tmp / f"{name}.raw"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "165", "-w", str(wav), text], check=True)
    subprocess.run(["sox", str(wav), "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed-integer", "-t", "raw",
                    str(raw)], check=True)
    x = np.fromfile(raw, dtype="<i2").astype(np.float64) / 32768
    active = np.flatnonzero(np.abs(x) > 1e-3)
    return x[active[0]:active[-1] + 1] if len(active) else x


def rms_db(x: np.ndarray) -> float:
    return 10 * math.log10(max(float(np.mean(x * x)), 1e-20))


def set_level(x: np.ndarray, db: float) -> np.ndarray:
    """Scales speech so that its active part (20 ms windows within 30 dB of the loudest)
    has the RMS level `db` dBFS."""
    w = x[:len(x) // 320 * 320].reshape(-1, 320)
    p = np.mean(w * w, axis=1)
    active = p > p.max() * 1e-3
    return x * 10 ** ((db - 10 * math.log10(np.mean(p[active]))) / 20)


def room_impulse_response(rng: np.random.Generator, rt60: float = 0.4) -> np.ndarray:
    """A direct path 2 ms after the reference (speaker 0.7 m from the microphone),
    early reflections over the next 20 ms, and a diffuse tail decaying 60 dB in rt60
    seconds; unit energy (the coupling sets the echo's level)."""
    n = int(rt60 * RATE)
    t = np.arange(n) / RATE
    h = rng.standard_normal(n) * 10 ** (-3 * t / rt60) * 0.08
    h[:int(0.004 * RATE)] = 0
    h[int(0.002 * RATE)] = 1.0
    for delay_ms, gain in [(3.1, -0.5), (5.7, 0.35), (8.3, -0.3), (12.9, 0.25), (17.4, -0.2), (21.0, 0.15)]:
        h[int(delay_ms * RATE / 1000)] += gain
    return h / math.sqrt(float(np.sum(h * h)))


def soft_clip(x: np.ndarray, drive: float = 2.0) -> np.ndarray:
    """A small loudspeaker's compression near full scale: tanh, unity gain at low level."""
    return np.tanh(drive * x) / drive


def resample_drift(x: np.ndarray, ppm: float, taps: int = 32) -> np.ndarray:
    """The capture clock `ppm` fast: sample n is taken at playback time n·(1 + ppm·1e-6),
    by windowed-sinc interpolation (error far below the figures measured)."""
    pos = np.arange(len(x)) * (1 + ppm * 1e-6)
    base = np.floor(pos).astype(np.int64)
    frac = pos - base
    out = np.zeros(len(x))
    half = taps // 2
    for k in range(-half + 1, half + 1):
        idx = base + k
        valid = (idx >= 0) & (idx < len(x))
        d = k - frac
        weight = np.sinc(d) * (0.5 + 0.5 * np.cos(np.pi * d / half))
        out[valid] += weight[valid] * x[idx[valid]]
    return out


class Bed:
    """One scenario: the reference (as played), the microphone, and its clean parts."""

    def __init__(self, coupling_db: float, tmp: Path, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        turns = [set_level(speak(t, "en-us", tmp, f"agent{i}"), -18) for i, t in enumerate(AGENT_TURNS)]
        phrases = [set_level(speak(t, "en+f3", tmp, f"user{i}"), -24) for i, t in enumerate(USER_PHRASES)]
        # Agent turns with pauses; the user alone in the first pause and after the end,
        # and over the agent (double-talk) from the second turn on, never within the
        # first 3 s of agent speech.
        gap = int(2.5 * RATE)
        starts, t = [], int(1.0 * RATE)
        for turn in turns:
            starts.append(t)
            t += len(turn) + gap
        length = t + int(1.0 * RATE)
        played = np.zeros(length)
        self.agent_intervals = []
        for s, turn in zip(starts, turns):
            played[s:s + len(turn)] += turn
            self.agent_intervals.append((s, s + len(turn)))
        user_at = [
            starts[0] + len(turns[0]) + int(0.5 * RATE),  # alone, in the first pause
            starts[1] + int(2.0 * RATE),  # double-talk
            starts[1] + int(6.5 * RATE),  # double-talk
            starts[2] + int(3.0 * RATE),  # double-talk
            starts[2] + len(turns[2]) + int(0.4 * RATE),  # alone, at the end
        ]
        user = np.zeros(length)
        self.user_intervals = []
        for at, phrase in zip(user_at, phrases):
            end = min(length, at + len(phrase))
            user[at:end] += phrase[:end - at]
            self.user_intervals.append((at, end))

        echo = np.convolve(soft_clip(played), room_impulse_response(rng))[:length] * 10 ** (coupling_db / 20)
        noise = rng.standard_normal(length) * 10 ** (-62 / 20)
        self.coupling_db = coupling_db
        self.reference = played
        # Everything the microphone takes runs on the capture clock.
        self.echo = resample_drift(echo, 100)
        self.user = resample_drift(user, 100)
        self.mic = self.echo + self.user + resample_drift(noise, 100)
        self.frames = length // FRAME

        def frame_energy(x):
            w = x[:self.frames * FRAME].reshape(-1, FRAME)
            return np.sum(w * w, axis=1)

        self.mic_energy = frame_energy(self.mic)
        agent_active = frame_energy(played) > FRAME * 10 ** (-50 / 10)
        user_active = frame_energy(self.user) > FRAME * 10 ** (-60 / 10)
        # 100 ms either side of the user's voice: echo-only frames hold none of it.
        near = np.convolve(user_active.astype(int), np.ones(21, dtype=int), mode="same") > 0
        self.echo_only = agent_active & ~near
        self.double_talk = user_active & agent_active
        self.user_alone = user_active & ~(np.convolve(agent_active.astype(int), np.ones(41, dtype=int), "same") > 0)
        # Seconds of agent speech heard so far, at each frame: the canceller's training.
        self.agent_seconds = np.cumsum(agent_active) * FRAME / RATE

    def write(self, tmp: Path) -> tuple[Path, Path]:
        def pcm(x):
            return np.clip(np.round(x * 32768), -32768, 32767).astype("<i2")
        ref, mic = tmp / f"ref{self.coupling_db:+.0f}.raw", tmp / f"mic{self.coupling_db:+.0f}.raw"
        pcm(self.reference).tofile(ref)
        pcm(self.mic).tofile(mic)
        return ref, mic


# ---------------------------------------------------------------------------------
# The figures
# ---------------------------------------------------------------------------------

def erle_db(mic_energy: np.ndarray, out_energy: np.ndarray, mask: np.ndarray) -> float | None:
    if not mask.any():
        return None
    return 10 * math.log10(max(mic_energy[mask].sum(), 1e-12) / max(out_energy[mask].sum(), 1e-12))


def echo_figures(bed: Bed, out: np.ndarray) -> dict:
    w = out[:bed.frames * FRAME].reshape(-1, FRAME)
    out_energy = np.sum(w * w, axis=1)
    trained = bed.agent_seconds
    figures = {
        "erle_first_second_db": erle_db(bed.mic_energy, out_energy, bed.echo_only & (trained <= 1.0)),
        "erle_overall_db": erle_db(bed.mic_energy, out_energy, bed.echo_only),
    }
    for at in (0.5, 1.0, 2.0):
        figures[f"erle_at_{at:g}s_db"] = erle_db(bed.mic_energy, out_energy,
                                                 bed.echo_only & (trained > at) & (trained <= at + 0.5))
    # Half-second blocks of agent speech after the first second: the median block.
    blocks = []
    edge = 1.0
    while edge < trained[-1]:
        e = erle_db(bed.mic_energy, out_energy, bed.echo_only & (trained > edge) & (trained <= edge + 0.5))
        if e is not None:
            blocks.append(e)
        edge += 0.5
    figures["erle_median_after_1s_db"] = float(np.median(blocks)) if blocks else None
    figures["erle_p10_after_1s_db"] = float(np.percentile(blocks, 10)) if blocks else None
    # Time to 20 dB: the agent speech heard before a half-second block first reaches it.
    figures["time_to_20db_s"] = None
    edge = 0.0
    while edge < trained[-1]:
        e = erle_db(bed.mic_energy, out_energy, bed.echo_only & (trained > edge) & (trained <= edge + 0.5))
        if e is not None and e >= 20:
            figures["time_to_20db_s"] = round(edge, 2)
            break
        edge += 0.1
    return figures


def near_end_snr_db(bed: Bed, out: np.ndarray, mask: np.ndarray, lag: int) -> float | None:
    """The processed user voice against the clean one, over the frames in `mask`: each
    phrase's clean voice scaled by its least-squares gain g (a gain is not damage), and
    10·log10(Σ|g·user|² / Σ|out − g·user|²) over all of them. Residual echo, noise and
    what the processing took from the voice all count as error."""
    signal = error = 0.0
    for s, e in bed.user_intervals:
        idx = np.flatnonzero(np.repeat(mask, FRAME))
        idx = idx[(idx >= s) & (idx < e) & (idx + lag < len(out))]
        if len(idx) == 0:
            continue
        u, o = bed.user[idx], out[idx + lag]
        g = float(np.dot(o, u) / max(np.dot(u, u), 1e-12))
        signal += float(np.sum((g * u) ** 2))
        error += float(np.sum((o - g * u) ** 2))
    if signal == 0:
        return None
    return 10 * math.log10(max(signal, 1e-12) / max(error, 1e-12))


def output_lag(bed: Bed, out: np.ndarray) -> int:
    """The processing's delay, 0 to 40 ms: the lag at which the output best matches the
    user's voice where the user speaks alone."""
    idx = np.flatnonzero(np.repeat(bed.user_alone, FRAME))
    idx = idx[idx + 640 < len(out)]
    scores = [abs(float(np.dot(bed.user[idx], out[idx + lag]))) for lag in range(0, 641)]
    return int(np.argmax(scores))


def near_end_level_db(bed: Bed, out: np.ndarray, mask: np.ndarray, lag: int) -> float | None:
    """How much of the user's voice passes, over the frames in `mask`: each 10 ms
    frame's least-squares gain g of the clean voice in the output, as
    10·log10(Σ|g·user|² / Σ|user|²); 0 dB is all of it (suppression shows here, not in
    a per-frame SNR)."""
    passed = total = 0.0
    for f in np.flatnonzero(mask):
        a, b = f * FRAME, f * FRAME + FRAME
        if b + lag > len(out):
            continue
        u, o = bed.user[a:b], out[a + lag:b + lag]
        uu = float(np.dot(u, u))
        if uu == 0:
            continue
        g = max(0.0, float(np.dot(o, u)) / uu)
        passed += g * g * uu
        total += uu
    if total == 0:
        return None
    return 10 * math.log10(max(passed, 1e-12) / total)


def load_devserver_vad():
    sys.path.insert(0, str(ROOT / "devserver"))
    import millis_devserver
    return millis_devserver


def barge_in_figures(bed: Bed, out: np.ndarray, devserver) -> dict:
    """The devserver's barge-in decisions on the processed microphone, as if the agent
    kept talking: its energy VAD (-40 dBFS, 20 ms windows) starts a turn over the agent,
    and 300 ms later the turn stands (a clear) if speech came within the hangover. A
    clear with no user voice in it is caused by echo; a double-talk phrase with no clear
    is missed."""
    vad = devserver.EnergyVad(-40.0, 0.6)
    pcm = np.clip(np.round(out * 32768), -32768, 32767).astype("<i2").tobytes()
    step = devserver.FRAME_BYTES
    decisions = []  # (onset sample, cleared)
    pending = None
    for i in range(0, len(pcm) - step + 1, step):
        now = (i // 2) / RATE
        events = vad.feed(pcm[i:i + step], now)
        speaking = any(s <= i // 2 < e + int(0.3 * RATE) for s, e in bed.agent_intervals)
        if "start" in events and speaking and pending is None:
            pending = i // 2
        if pending is not None and (i // 2) - pending >= BARGE_IN_SAMPLES:
            cleared = vad.last_speech_at is not None and now - vad.last_speech_at <= devserver.BARGE_IN_HANGOVER
            decisions.append((pending, cleared))
            if not cleared:
                vad.discard_turn()
            pending = None
    trained = bed.agent_seconds
    echo_clears = {"first_second": 0, "after": 0}
    heard = set()
    for onset, cleared in decisions:
        if not cleared:
            continue
        window = (onset - int(0.1 * RATE), onset + int(0.3 * RATE))
        users = [k for k, (s, e) in enumerate(bed.user_intervals) if s < window[1] and e > window[0]]
        if users:
            heard.update(users)
        else:
            echo_clears["first_second" if trained[min(onset // FRAME, bed.frames - 1)] <= 1.0 else "after"] += 1
    over_agent = [k for k, (s, e) in enumerate(bed.user_intervals)
                  if any(a < e and s < b for a, b in bed.agent_intervals)]
    return {"echo_barge_ins_first_second": echo_clears["first_second"],
            "echo_barge_ins_after_1s": echo_clears["after"],
            "double_talk_phrases": len(over_agent),
            "double_talk_barge_ins_missed": len([k for k in over_agent if k not in heard])}


# ---------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--couplings", type=float, nargs="*", default=[0, -10, -20])
    ap.add_argument("--modes", nargs="*", default=MODES)
    ap.add_argument("--runner", default=str(ROOT / "build" / "bench" / "echo_cancellers"))
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--keep", action="store_true", help="keep the bed's audio (printed path)")
    args = ap.parse_args()
    if not os.access(args.runner, os.X_OK):
        print(f"echo_bench: {args.runner} is missing: make bench-audio builds it", file=sys.stderr)
        return 2
    devserver = load_devserver_vad()
    tmp = Path(tempfile.mkdtemp(prefix="echo-bench-"))
    results = []
    try:
        for coupling in args.couplings:
            bed = Bed(coupling, tmp)
            ref, mic = bed.write(tmp)
            unprocessed = barge_in_figures(bed, bed.mic, devserver)
            print(f"coupling {coupling:+.0f} dB: {bed.frames / 100:.1f} s, echo-only {bed.echo_only.sum() / 100:.1f} s, "
                  f"double-talk {bed.double_talk.sum() / 100:.1f} s, user alone {bed.user_alone.sum() / 100:.1f} s; "
                  f"unprocessed: {unprocessed['echo_barge_ins_after_1s']} echo barge-ins", flush=True)
            for mode in args.modes:
                out_path = tmp / f"out-{mode}{coupling:+.0f}.raw"
                # Quality with the gain control off (a gain is not an echo figure); CPU
                # with everything on, as device mode runs by default.
                run = subprocess.run([args.runner, mode, str(ref), str(mic), str(out_path), "--ns", "1", "--agc", "0"],
                                     capture_output=True, text=True, check=True)
                full = subprocess.run([args.runner, mode, str(ref), str(mic), str(tmp / "full.raw"), "--ns", "1",
                                       "--agc", "1"], capture_output=True, text=True, check=True)
                cost = json.loads(full.stdout)
                out = np.fromfile(out_path, dtype="<i2").astype(np.float64) / 32768
                lag = output_lag(bed, out)
                row = {"coupling_db": coupling, "mode": mode, **echo_figures(bed, out),
                       "double_talk_snr_db": near_end_snr_db(bed, out, bed.double_talk, lag),
                       "user_alone_snr_db": near_end_snr_db(bed, out, bed.user_alone, lag),
                       "double_talk_level_db": near_end_level_db(bed, out, bed.double_talk, lag),
                       "user_alone_level_db": near_end_level_db(bed, out, bed.user_alone, lag),
                       "unprocessed_double_talk_snr_db": near_end_snr_db(bed, bed.mic, bed.double_talk, 0),
                       "processing_lag_ms": lag / 16,
                       **barge_in_figures(bed, out, devserver),
                       "cpu_ms_per_s": cost["cpu_ms_per_s"],
                       "cpu_ms_per_s_no_agc": json.loads(run.stdout)["cpu_ms_per_s"],
                       "state_kib": round(cost["state_bytes"] / 1024, 1)}
                results.append(row)
                print("  " + ", ".join(f"{k} {round(v, 2) if isinstance(v, float) else v}" for k, v in row.items()
                                       if k != "coupling_db"), flush=True)
    finally:
        if args.keep:
            print("bed audio kept in", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(markdown_table(results))
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results}, indent=1))
    return 0


TABLE = [("ERLE 1st s", "erle_first_second_db"), ("ERLE at 0.5 s", "erle_at_0.5s_db"),
         ("at 1 s", "erle_at_1s_db"), ("at 2 s", "erle_at_2s_db"),
         ("ERLE median after 1 s", "erle_median_after_1s_db"), ("p10 after 1 s", "erle_p10_after_1s_db"),
         ("to 20 dB (s)", "time_to_20db_s"), ("double-talk SNR", "double_talk_snr_db"),
         ("double-talk level", "double_talk_level_db"), ("user alone SNR", "user_alone_snr_db"),
         ("echo barge-ins 1st s / after", None), ("double-talk missed", "double_talk_barge_ins_missed"),
         ("CPU ms/s", "cpu_ms_per_s"), ("state KiB", "state_kib")]


def markdown_table(results: list) -> str:
    """The figures as BENCHMARKS.md shows them: one row per coupling and canceller."""
    def cell(row, key):
        if key is None:
            return f"{row['echo_barge_ins_first_second']} / {row['echo_barge_ins_after_1s']}"
        value = row[key]
        return "–" if value is None else f"{value:.1f}" if isinstance(value, float) else str(value)
    lines = ["| coupling | canceller | " + " | ".join(name for name, _ in TABLE) + " |",
             "|---|---|" + "---:|" * len(TABLE)]
    for row in results:
        lines.append(f"| {row['coupling_db']:+.0f} dB | {row['mode']} | "
                     + " | ".join(cell(row, key) for _, key in TABLE) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
