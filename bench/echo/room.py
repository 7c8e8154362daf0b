"""The echo bed's room in real time (bench/README.md, "Echo cancellation"): a microphone
that records the speaker through the same room echo_bench.py computes, paced by
PulseAudio. Tests/alsa/pcm_room.c, over the null sink's monitor, applies the
loudspeaker's soft clipping, the room's impulse response (reverberation, RT60 0.4 s) at
the coupling, a 100 ppm clock drift, and adds the user's voice from the stream's start.

    with PulseBed(tmp) as bed:
        room = Room(bed, tmp, coupling_db=-10, user=wav, user_at_s=1.0)
        subprocess.run([... "--capture", room.capture, "--playback", "pulse"], env=room.env())
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tests" / "python"))
from audio_bed import DEFAULT_BUILD_DIR, alsa_quote, build_alsa_plugin  # noqa: E402

from echo_bench import RATE, room_impulse_response  # noqa: E402

SOURCE = ROOT / "Tests" / "alsa" / "pcm_room.c"
DRIFT_PPM = 100


class Room:
    capture = "room_mic"

    def __init__(self, bed, tmp: Path, coupling_db: float, user: Optional[Path] = None, user_at_s: float = 1.0,
                 seed: int = 7) -> None:
        self.bed = bed
        tmp = Path(tmp)
        plugin = build_alsa_plugin(DEFAULT_BUILD_DIR, SOURCE, "libasound_module_pcm_room.so",
                                   ("-O3", "-ffast-math"))
        ir = tmp / "room-ir.f32"
        h = room_impulse_response(np.random.default_rng(seed)) * 10 ** (coupling_db / 20)
        h.astype("<f4").tofile(ir)
        near = ""
        if user is not None:
            pcm = subprocess.run(["sox", str(user), "-t", "raw", "-r", str(RATE), "-c", "1", "-b", "16",
                                  "-e", "signed", "-"], check=True, capture_output=True, timeout=60).stdout
            track = tmp / "room-user.raw"
            track.write_bytes(bytes(2 * int(user_at_s * RATE)) + pcm)
            near = f"    near {alsa_quote(track)}\n"
        self.conf = tmp / "room-asoundrc"
        self.conf.write_text(
            bed.alsa_conf_text()
            + f"pcm_type.room {{ lib {alsa_quote(plugin)} }}\n"
            + f"pcm.{self.capture} {{\n    type room\n    slave.pcm \"plug:pulse\"\n    ir {alsa_quote(ir)}\n"
            + near + f"    drift_ppm {DRIFT_PPM}\n    drive 2.0\n}}\n")

    def env(self) -> dict:
        return self.bed.env(alsa_conf=self.conf)
