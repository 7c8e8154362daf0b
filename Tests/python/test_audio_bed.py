"""Proves the audio test bed (audio_bed.py): constrained file-backed ALSA
devices (unpaced path) and a private PulseAudio daemon (paced path)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import audio_bed  # noqa: E402
from audio_bed import FileDevices, PulseBed  # noqa: E402

TIMEOUT = 30


def need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: install alsa-utils and gcc "
                    "(the ALSA test devices need them)", pytrace=False)


def numpy():
    try:
        import numpy as np
    except ImportError:
        pytest.fail("numpy is missing: python3 -m pip install numpy", pytrace=False)
    return np


@pytest.fixture(scope="session")
def constrain_plugin(tmp_path_factory) -> Path:
    need("gcc")
    if not Path("/usr/include/alsa/pcm_external.h").exists():
        pytest.fail("ALSA headers missing: install libasound2-dev", pytrace=False)
    return audio_bed.build_constrain_plugin(tmp_path_factory.mktemp("alsa-plugin"))


@pytest.fixture
def devs(tmp_path, constrain_plugin) -> FileDevices:
    need("arecord", "aplay")
    return FileDevices(tmp_path, plugin=constrain_plugin)


def run(cmd, env, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, **kw)


def random_bytes(n: int) -> bytes:
    # random, but never a run of zeros long enough to pass for silence
    return os.urandom(n)


def hw_params_dump(devs: FileDevices, name: str, stream: str, *args: str) -> str:
    tool = "arecord" if stream == "capture" else "aplay"
    target = os.devnull
    cmd = [tool, "-D", name, "--dump-hw-params", "-t", "raw", "-s", "1", *args, target]
    r = run(cmd, devs.env())
    return r.stderr


# Runs in a child process (ALSA_CONFIG_PATH is read per process): opens a PCM
# with alsa-lib through ctypes and reports what hw_refine allows.
PROBE = textwrap.dedent(r"""
    import ctypes, json, sys
    name, stream = sys.argv[1], int(sys.argv[2])
    probe_rates = [int(x) for x in sys.argv[3].split(",")]
    probe_formats = sys.argv[4].split(",")
    force_rate = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    a = ctypes.CDLL("libasound.so.2")
    a.snd_strerror.restype = ctypes.c_char_p
    pcm = ctypes.c_void_p(); hw = ctypes.c_void_p()
    u = ctypes.c_uint; i = ctypes.c_int
    err = a.snd_pcm_open(ctypes.byref(pcm), name.encode(), stream, 0)
    if err < 0:
        print(json.dumps({"open": err})); sys.exit(0)
    a.snd_pcm_hw_params_malloc(ctypes.byref(hw))
    a.snd_pcm_hw_params_any(pcm, hw)
    out = {"open": 0}
    v = u(); d = i()
    a.snd_pcm_hw_params_get_rate_min(hw, ctypes.byref(v), ctypes.byref(d)); out["rate_min"] = v.value
    a.snd_pcm_hw_params_get_rate_max(hw, ctypes.byref(v), ctypes.byref(d)); out["rate_max"] = v.value
    a.snd_pcm_hw_params_get_channels_min(hw, ctypes.byref(v)); out["channels_min"] = v.value
    a.snd_pcm_hw_params_get_channels_max(hw, ctypes.byref(v)); out["channels_max"] = v.value
    out["test_rate"] = {r: a.snd_pcm_hw_params_test_rate(pcm, hw, r, 0) for r in probe_rates}
    a.snd_pcm_format_value.restype = ctypes.c_int
    out["test_format"] = {f: a.snd_pcm_hw_params_test_format(pcm, hw, a.snd_pcm_format_value(f.encode()))
                          for f in probe_formats}
    if force_rate:
        # bypass refine limits where there are none and apply hw_params
        a.snd_pcm_hw_params_set_access(pcm, hw, 3)  # RW_INTERLEAVED
        a.snd_pcm_hw_params_set_format(pcm, hw, a.snd_pcm_format_value(probe_formats[0].encode()))
        a.snd_pcm_hw_params_set_channels_first(pcm, hw, ctypes.byref(v))
        out["set_rate"] = a.snd_pcm_hw_params_set_rate(pcm, hw, force_rate, 0)
        out["hw_params"] = a.snd_pcm_hw_params(pcm, hw)
    else:
        r = u(probe_rates[0]); d = i(0)
        out["set_rate_near"] = [a.snd_pcm_hw_params_set_rate_near(pcm, hw, ctypes.byref(r), ctypes.byref(d)), r.value]
    a.snd_pcm_hw_params_free(hw)
    a.snd_pcm_close(pcm)
    print(json.dumps(out))
""")


def probe(devs: FileDevices, name: str, stream: str, rates, formats, force_rate=0) -> dict:
    args = [sys.executable, "-c", PROBE, name, "1" if stream == "capture" else "0",
            ",".join(map(str, rates)), ",".join(formats)]
    if force_rate:
        args.append(str(force_rate))
    r = run(args, devs.env())
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


EINVAL = -22

# ---------------------------------------------------------------------------
# constrained capture, 44100 Hz stereo S16_LE
# ---------------------------------------------------------------------------


@pytest.fixture
def cap44(devs, tmp_path):
    data = random_bytes(44100 * 4 * 3 // 2)  # 1.5 s of 44100/2/S16_LE
    infile = tmp_path / "in.raw"
    infile.write_bytes(data)
    devs.capture("cap44", infile, rate=44100, channels=2, formats=["S16_LE"])
    return devs, data


@pytest.mark.parametrize("extra", [
    [],
    ["-M"],
    ["--period-size=441", "--buffer-size=4410"],
    ["-M", "--period-size=1000", "--buffer-size=3000"],
], ids=["rw-default", "mmap-default", "rw-10ms", "mmap-odd"])
def test_capture_reads_the_input_file_exactly(cap44, tmp_path, extra):
    devs, data = cap44
    out = tmp_path / "rec.raw"
    frames = len(data) // 4
    r = run(["arecord", "-q", "-D", "cap44", "-r", "44100", "-c", "2", "-f", "S16_LE",
             "-t", "raw", "-s", str(frames), *extra, str(out)], devs.env())
    assert r.returncode == 0, r.stderr
    got = out.read_bytes()
    assert len(got) == len(data)
    assert got == data, "capture differs from the input file"


def test_capture_hw_params_are_one_rate_two_channels_s16(cap44):
    devs, _ = cap44
    dump = hw_params_dump(devs, "cap44", "capture", "-r", "44100", "-c", "2", "-f", "S16_LE")
    assert "RATE: 44100\n" in dump, dump
    assert "CHANNELS: 2\n" in dump, dump
    assert "FORMAT:  S16_LE\n" in dump, dump


def test_capture_refuses_mono(cap44, tmp_path):
    devs, _ = cap44
    r = run(["arecord", "-D", "cap44", "--dump-hw-params", "-r", "44100", "-c", "1",
             "-f", "S16_LE", "-t", "raw", "-s", "100", str(tmp_path / "x.raw")], devs.env())
    assert r.returncode != 0
    assert "Channels count non available" in r.stderr, r.stderr
    assert "CHANNELS: 2\n" in r.stderr and "RATE: 44100\n" in r.stderr, r.stderr


def test_capture_rate_is_fixed_at_44100(cap44, tmp_path):
    """A board that only opens 44.1 kHz: hw_refine refuses 16 kHz
    (snd_pcm_hw_params_test_rate fails, set_rate_near gives 44100). arecord
    itself, like on real hardware, does not exit: it warns and records at
    44100 (its set_rate_near), which this checks too."""
    devs, data = cap44
    p = probe(devs, "cap44", "capture", [16000, 48000, 44100], ["S16_LE", "S32_LE", "FLOAT_LE"])
    assert p["open"] == 0
    assert (p["rate_min"], p["rate_max"]) == (44100, 44100)
    assert (p["channels_min"], p["channels_max"]) == (2, 2)
    assert p["test_rate"] == {"16000": EINVAL, "48000": EINVAL, "44100": 0}
    assert p["test_format"] == {"S16_LE": 0, "S32_LE": EINVAL, "FLOAT_LE": EINVAL}
    assert p["set_rate_near"] == [0, 44100]

    out = tmp_path / "rec16k.raw"
    r = run(["arecord", "-D", "cap44", "--dump-hw-params", "-r", "16000", "-c", "2",
             "-f", "S16_LE", "-t", "raw", "-s", "4410", str(out)], devs.env())
    assert "RATE: 44100\n" in r.stderr, r.stderr
    assert "requested = 16000Hz, got = 44100Hz" in r.stderr, r.stderr
    assert out.read_bytes() == data[: 4410 * 4]


def test_capture_past_the_end_of_the_input_is_silence(cap44, tmp_path):
    devs, data = cap44
    out = tmp_path / "long.raw"
    frames = len(data) // 4 + 44100  # one second more than the file holds
    r = run(["arecord", "-q", "-D", "cap44", "-r", "44100", "-c", "2", "-f", "S16_LE",
             "-t", "raw", "-s", str(frames), str(out)], devs.env())
    assert r.returncode == 0, r.stderr
    got = out.read_bytes()
    assert len(got) == frames * 4
    assert got[: len(data)] == data
    assert got[len(data):] == bytes(frames * 4 - len(data)), "not silence after the end"


# ---------------------------------------------------------------------------
# constrained playback, 48000 Hz mono S16_LE
# ---------------------------------------------------------------------------


@pytest.fixture
def play48(devs, tmp_path):
    out = tmp_path / "play.raw"
    devs.playback("play48", out, rate=48000, channels=1, formats="S16_LE")
    return devs, out


@pytest.mark.parametrize("extra", [[], ["-M"]], ids=["rw", "mmap"])
def test_playback_writes_exactly_what_aplay_sent(play48, tmp_path, extra):
    devs, out = play48
    data = random_bytes(48000 * 2)  # 1 s, a whole number of 10 ms periods
    src = tmp_path / "src.raw"
    src.write_bytes(data)
    r = run(["aplay", "-q", "-D", "play48", "-r", "48000", "-c", "1", "-f", "S16_LE",
             "-t", "raw", "--period-size=480", "--buffer-size=1920", "-s", "48000", *extra,
             str(src)], devs.env())
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == data


def test_playback_of_a_partial_period_is_padded_by_aplay_only(play48, tmp_path):
    """aplay fills its last chunk up to a period with silence (and, without
    -s, writes one more period of silence at the end of its input when the
    input ends on a period boundary); the device adds nothing else."""
    devs, out = play48
    data = random_bytes(48000 * 2 + 2 * 100)
    src = tmp_path / "src.raw"
    src.write_bytes(data)
    r = run(["aplay", "-q", "-D", "play48", "-r", "48000", "-c", "1", "-f", "S16_LE",
             "-t", "raw", "--period-size=480", "--buffer-size=1920", str(src)], devs.env())
    assert r.returncode == 0, r.stderr
    got = out.read_bytes()
    assert got[: len(data)] == data
    assert len(got) == (48000 + 480) * 2
    assert got[len(data):] == bytes(len(got) - len(data))


def test_playback_refuses_stereo_and_fixes_the_rate(play48, tmp_path):
    devs, out = play48
    src = tmp_path / "src.raw"
    src.write_bytes(bytes(4800))
    r = run(["aplay", "-D", "play48", "-r", "48000", "-c", "2", "-f", "S16_LE", "-t", "raw",
             str(src)], devs.env())
    assert r.returncode != 0
    assert "Channels count non available" in r.stderr, r.stderr
    p = probe(devs, "play48", "playback", [44100, 48000], ["S16_LE"])
    assert (p["rate_min"], p["rate_max"], p["channels_min"], p["channels_max"]) == (48000, 48000, 1, 1)
    assert p["test_rate"] == {"44100": EINVAL, "48000": 0}


# ---------------------------------------------------------------------------
# other formats
# ---------------------------------------------------------------------------


def test_float_only_capture_works_and_refuses_s16(devs, tmp_path):
    np = numpy()
    data = np.linspace(-1, 1, 16000 * 2, dtype="<f4").tobytes()  # 1 s, 16 kHz mono
    infile = tmp_path / "in.f32"
    infile.write_bytes(data)
    devs.capture("capf", infile, rate=16000, channels=1, formats=["FLOAT_LE"])
    out = tmp_path / "rec.f32"
    r = run(["arecord", "-q", "-D", "capf", "-r", "16000", "-c", "1", "-f", "FLOAT_LE",
             "-t", "raw", "-s", str(len(data) // 4), str(out)], devs.env())
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == data
    r = run(["arecord", "-D", "capf", "-r", "16000", "-c", "1", "-f", "S16_LE", "-t", "raw",
             "-s", "10", str(tmp_path / "x.raw")], devs.env())
    assert r.returncode != 0
    assert "Sample format non available" in r.stderr, r.stderr
    assert "- FLOAT_LE" in r.stderr  # arecord lists what the device offers


def test_s32_only_playback_works_and_refuses_s16(devs, tmp_path):
    out = tmp_path / "out.s32"
    devs.playback("play32", out, rate=44100, channels=2, formats="S32_LE")
    data = random_bytes(441 * 8 * 50)  # 50 periods of 441 frames
    src = tmp_path / "src.s32"
    src.write_bytes(data)
    r = run(["aplay", "-q", "-D", "play32", "-r", "44100", "-c", "2", "-f", "S32_LE", "-t", "raw",
             "--period-size=441", "--buffer-size=1764", "-s", str(441 * 50), str(src)], devs.env())
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == data
    r = run(["aplay", "-D", "play32", "-r", "44100", "-c", "2", "-f", "S16_LE", "-t", "raw",
             str(src)], devs.env())
    assert r.returncode != 0
    assert "Sample format non available" in r.stderr, r.stderr


def test_device_with_two_formats_offers_both(devs, tmp_path):
    infile = tmp_path / "in.raw"
    data = random_bytes(48000 * 8)
    infile.write_bytes(data)
    devs.capture("cap2f", infile, rate=48000, channels=2, formats=["S32_LE", "FLOAT_LE"])
    dump = hw_params_dump(devs, "cap2f", "capture", "-r", "48000", "-c", "2", "-f", "S32_LE")
    assert "FORMAT:  S32_LE FLOAT_LE\n" in dump, dump
    p = probe(devs, "cap2f", "capture", [48000], ["S16_LE", "S32_LE", "FLOAT_LE", "S24_LE"])
    assert p["test_format"] == {"S16_LE": EINVAL, "S32_LE": 0, "FLOAT_LE": 0, "S24_LE": EINVAL}
    for fmt in ("S32_LE", "FLOAT_LE"):
        out = tmp_path / f"rec-{fmt}.raw"
        r = run(["arecord", "-q", "-D", "cap2f", "-r", "48000", "-c", "2", "-f", fmt, "-t", "raw",
                 "-s", "48000", str(out)], devs.env())
        assert r.returncode == 0, r.stderr
        assert out.read_bytes() == data


def test_constrain_alone_refuses_a_wrong_rate_at_hw_params(devs, tmp_path):
    """Over a slave without a rate limit (stock null) the extplug cannot
    refine RATE, but snd_pcm_hw_params() with another rate fails."""
    devs.add_text(textwrap.dedent("""
        pcm.bare44 {
            type constrain
            slave.pcm "null"
            rate 44100
            channels 2
            formats [ "S16_LE" ]
        }
    """))
    bad = probe(devs, "bare44", "capture", [16000], ["S16_LE"], force_rate=16000)
    assert bad["set_rate"] == 0  # refine allowed it: no rate limit below
    assert bad["hw_params"] == EINVAL
    good = probe(devs, "bare44", "capture", [44100], ["S16_LE"], force_rate=44100)
    assert good["hw_params"] == 0


def test_constrain_passes_playback_audio_through_unchanged(devs, tmp_path):
    """In the devices FileDevices writes, `file` faces the client, so the
    bytes in the files never pass through the extplug. Here it is the other
    way round (constrain over file over constrain_null): what reaches the
    output file went through the extplug's transfer."""
    out = tmp_path / "through.raw"
    devs.add_text(textwrap.dedent(f"""
        pcm.pt_end {{
            type constrain_null
            rate 44100
        }}
        pcm.pt_file {{
            type file
            slave.pcm "pt_end"
            file {audio_bed.alsa_quote(out)}
            format "raw"
        }}
        pcm.pt {{
            type constrain
            slave.pcm "pt_file"
            rate 44100
            channels 2
            formats [ "S16_LE" "FLOAT_LE" ]
        }}
    """))
    for fmt, frame in (("S16_LE", 4), ("FLOAT_LE", 8)):
        data = random_bytes(441 * frame * 40)
        src = tmp_path / f"src-{fmt}.raw"
        src.write_bytes(data)
        for extra in ([], ["-M"]):
            r = run(["aplay", "-q", "-D", "pt", "-r", "44100", "-c", "2", "-f", fmt, "-t", "raw",
                     "--period-size=441", "--buffer-size=1764", "-s", str(441 * 40), *extra,
                     str(src)], devs.env())
            assert r.returncode == 0, r.stderr
            assert out.read_bytes() == data, (fmt, extra)


def test_the_plugin_is_rebuilt_only_when_the_source_changes(tmp_path, constrain_plugin):
    lib = audio_bed.build_constrain_plugin(constrain_plugin.parent)
    assert lib == constrain_plugin
    before = lib.stat().st_mtime_ns
    assert audio_bed.build_constrain_plugin(constrain_plugin.parent).stat().st_mtime_ns == before

    src = tmp_path / "pcm_constrain.c"
    src.write_bytes(audio_bed.PLUGIN_SOURCE.read_bytes())
    built = audio_bed.build_constrain_plugin(tmp_path / "b", source=src)
    old = src.stat().st_mtime - 100
    os.utime(built, (old, old))  # the library is now older than its source
    rebuilt = audio_bed.build_constrain_plugin(tmp_path / "b", source=src)
    assert rebuilt == built
    assert rebuilt.stat().st_mtime >= src.stat().st_mtime


# ---------------------------------------------------------------------------
# paced path: private PulseAudio
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pulse(tmp_path_factory):
    if not audio_bed.pulseaudio_available():
        pytest.skip("pulseaudio (and pactl) not installed: apt-get install pulseaudio pulseaudio-utils")
    need("arecord", "aplay")
    with PulseBed(tmp_path_factory.mktemp("pulse")) as bed:
        yield bed
    assert not bed.running


def record_while_playing(env, play_dev, rec_dev, tone: bytes, rate: int, seconds: float,
                         tmp_path: Path):
    out = tmp_path / f"rec-{rec_dev}.raw"
    rec = subprocess.Popen(["arecord", "-q", "-D", rec_dev, "-r", str(rate), "-c", "1",
                            "-f", "S16_LE", "-t", "raw", "--buffer-time=50000",
                            "-d", str(int(seconds)), str(out)],
                           env=env, stderr=subprocess.PIPE, text=True)
    try:
        r = subprocess.run(["aplay", "-q", "-D", play_dev, "-r", str(rate), "-c", "1",
                            "-f", "S16_LE", "-t", "raw", "--buffer-time=50000"],
                           input=tone, env=env, capture_output=True, timeout=TIMEOUT)
        assert r.returncode == 0, r.stderr
        _, err = rec.communicate(timeout=TIMEOUT)
    finally:
        if rec.poll() is None:
            rec.kill()
            rec.wait()
    assert rec.returncode == 0, err
    return out.read_bytes()


@pytest.mark.parametrize("play_dev,rec_dev", [("pulse", "pulse"), ("pulse_play", "pulse_rec")])
def test_tone_played_into_the_null_sink_is_recorded_from_its_monitor(pulse, tmp_path,
                                                                     play_dev, rec_dev):
    np = numpy()
    rate = 48000
    tone = audio_bed.sine_s16(1000, 1.5, rate, amplitude=0.5)
    env = pulse.env()
    if play_dev != "pulse":  # the named PCMs carry their own sink/source
        env.pop("PULSE_SINK")
        env.pop("PULSE_SOURCE")
    rec = record_while_playing(env, play_dev, rec_dev, tone, rate, 2, tmp_path)
    x = np.frombuffer(rec, dtype="<i2").astype(float)
    assert len(x) >= rate * 1.9, f"recorded only {len(x)} frames"
    loud = np.abs(x) > 1000
    assert loud.sum() > rate, "less than a second of tone in the recording"
    idx = np.nonzero(loud)[0]
    seg = x[idx[0]: idx[-1] + 1]
    rms = float(np.sqrt(np.mean(seg ** 2)))
    assert rms > 0.5 * 32767 / np.sqrt(2) * 0.8, f"level too low: rms {rms:.0f}"
    f = audio_bed.dominant_frequency(seg, rate)
    assert abs(f - 1000) < 5, f"dominant frequency {f:.1f} Hz"


def test_silence_when_nothing_plays(pulse, tmp_path):
    np = numpy()
    out = tmp_path / "quiet.raw"
    r = run(["arecord", "-q", "-D", "pulse", "-r", "48000", "-c", "1", "-f", "S16_LE",
             "-t", "raw", "--buffer-time=50000", "-d", "1", str(out)], pulse.env())
    assert r.returncode == 0, r.stderr
    x = np.frombuffer(out.read_bytes(), dtype="<i2")
    assert len(x) >= 47000
    assert int(np.abs(x).max()) == 0


def test_loop_latency_and_start_time(pulse, record_property):
    m = audio_bed.measure_loop_latency(pulse, extra_args=["--buffer-time=20000",
                                                          "--period-time=5000"])
    record_property("loop_latency", m)
    record_property("start_seconds", pulse.start_seconds)
    print(f"pulse start {pulse.start_seconds:.3f}s ready {pulse.ready_seconds:.3f}s "
          f"loop {m}")
    # Figures, not bounds: how fast the daemon starts and the loop answers depends on
    # the machine's load (PulseBed's own start timeout guards against a hang).
    assert pulse.start_seconds > 0
    assert m["launch_to_arrival"] > 0, m


def test_bed_stops_only_its_own_daemon(tmp_path):
    if not audio_bed.pulseaudio_available():
        pytest.skip("pulseaudio (and pactl) not installed")
    with PulseBed(tmp_path, keepalive_ms=None) as a, PulseBed(tmp_path / "b", keepalive_ms=None) as b:
        assert a.socket != b.socket
        pid_a = a.proc.pid
        a.stop()
        assert not a.running
        assert b.running and b.pactl("info").returncode == 0
        with pytest.raises(ProcessLookupError):
            os.kill(pid_a, 0)
