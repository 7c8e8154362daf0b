"""millis_audio_test (`millis audio-test`, `millis.audio_test`): a speaker and a
microphone checked without a server.

On the paced PulseAudio loop (the null sink's monitor is the microphone: a real echo at
0 dB, PulseAudio's real latency), and on ALSA file devices (exact content: silence, a
clipping microphone, no echo at all)."""
import ctypes as C
import json
import subprocess
import sys

import numpy as np
import pytest

from test_audio_device import files, pulse  # noqa: F401  (fixtures)
from test_cli import cli  # noqa: F401  (the fixture)

PROBE_SECONDS = 2


@pytest.fixture
def native(library_path):
    lib = C.CDLL(str(library_path))
    lib.millis_config_create.restype = C.c_void_p
    lib.millis_config_destroy.argtypes = [C.c_void_p]
    lib.millis_config_last_error.restype = C.c_char_p
    lib.millis_config_last_error.argtypes = [C.c_void_p]
    lib.millis_config_set_audio_devices.argtypes = [C.c_void_p, C.c_char_p, C.c_char_p]
    lib.millis_config_set_audio_input_file.argtypes = [C.c_void_p, C.c_char_p, C.c_int]
    lib.millis_audio_test.argtypes = [C.c_void_p, C.c_uint, C.POINTER(C.c_void_p)]
    lib.millis_free.argtypes = [C.c_void_p]
    return lib


def run_cli(cli, env, *args, timeout=90):
    return subprocess.run([str(cli), "audio-test", *args], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("canceller", ["webrtc", "speex"])
def test_echo_loop_report(cli, pulse, canceller):  # noqa: F811
    """The monitor loop: the echo is heard at about 0 dB, a short delay (the devices'
    buffers), and the canceller removes it; the devices are named as opened."""
    done = run_cli(cli, pulse.env(), "--device", "pulse", "--echo-canceller", canceller,
                   "--seconds", str(PROBE_SECONDS), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    print(report)
    assert report["capture"]["device"] == "pulse" and report["playback"]["device"] == "pulse"
    assert report["capture"]["rate"] > 0 and report["playback"]["format"]
    assert report["echo_canceller"] == canceller
    assert report["echo_heard"] is True
    assert 0 <= report["echo_delay_ms"] < 500
    assert -6 <= report["echo_level_db"] <= 3
    assert report["clipped_samples"] == 0
    # Floors well under what was measured (WebRTC 25 to 115 dB over the last 2 s, speexdsp
    # 15 to 23 dB; convergence is part of a 2 s probe).
    assert report["erle_recent_db"] is not None and report["erle_recent_db"] >= 5
    assert isinstance(report["advice"], list)


def test_a_filter_plugin_over_the_sound_server_is_heard(cli, pulse, files, tmp_path):  # noqa: F811
    """A microphone behind an ALSA filter plugin (an extplug, as alsa-plugins' speex and
    a52 are) over the sound server: the plugin reports nothing available until it is
    read, then only what its last read left. The engine reads it anyway once a wait by
    the clock has passed; before, it never read, and the microphone was silent."""
    conf = tmp_path / "filter-asoundrc"
    conf.write_text(pulse.alsa_conf_text()
                    + f'pcm_type.constrain {{ lib "{files.plugin}" }}\n'
                    + 'pcm.filtered { type constrain slave.pcm "plug:pulse" channels 1 formats [ "S16_LE" ] }\n')
    done = run_cli(cli, pulse.env(alsa_conf=conf), "--capture", "filtered", "--playback", "pulse",
                   "--seconds", str(PROBE_SECONDS), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    print(report)
    assert report["capture"]["device"] == "filtered"
    assert report["microphone_peak_dbfs"] > -30
    assert report["echo_heard"] is True
    assert -6 <= report["echo_level_db"] <= 3
    assert report["capture_overruns"] == 0


def test_human_report(cli, pulse):  # noqa: F811
    done = run_cli(cli, pulse.env(), "--device", "pulse", "--seconds", "1")
    assert done.returncode == 0, done.stderr
    for words in ("microphone", "speaker", "echo delay", "ERLE (webrtc)", "clipping"):
        assert words in done.stdout, done.stdout
    assert "Playing a probe" in done.stderr


def test_silent_microphone_hears_no_echo(cli, files, tmp_path):  # noqa: F811
    """A microphone that hears nothing of the speaker (a headset, a muted one): no echo,
    no delay, no ERLE, and the advice says so."""
    silence = tmp_path / "silence.raw"
    silence.write_bytes(np.zeros(16000 * 20, "<i2").tobytes())
    files.capture("cap", silence, rate=16000, channels=1, formats=["S16_LE"])
    files.playback("play", tmp_path / "out.raw", rate=48000, channels=2, formats=["S16_LE"])
    done = run_cli(cli, files.env(), "--capture", "cap", "--playback", "play", "--seconds", "1", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["echo_heard"] is False
    assert report["echo_delay_ms"] is None and report["erle_db"] is None
    assert (report["playback"]["rate"], report["playback"]["channels"]) == (48000, 2)
    assert any("did not hear the speaker" in a for a in report["advice"]), report["advice"]
    # The probe itself went to the speaker: speech-shaped noise at about -20 dBFS.
    played = np.frombuffer((tmp_path / "out.raw").read_bytes(), "<i2").astype(np.float64)
    loud = played[np.abs(played) > 0]
    assert len(loud) > 48000 * 2 * 0.5
    assert -26 < 20 * np.log10(np.sqrt(np.mean(loud ** 2)) / 32768) < -14


def test_clipping_microphone_is_reported(cli, files, tmp_path):  # noqa: F811
    loud = tmp_path / "loud.raw"
    t = np.arange(16000 * 20) / 16000
    loud.write_bytes(np.clip(40000 * np.sin(2 * np.pi * 440 * t), -32768, 32767).astype("<i2").tobytes())
    files.capture("cap", loud, rate=16000, channels=1, formats=["S16_LE"])
    files.playback("play", tmp_path / "out.raw", rate=16000, channels=1, formats=["S16_LE"])
    done = run_cli(cli, files.env(), "--capture", "cap", "--playback", "play", "--seconds", "1", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["clipped_samples"] > 1000
    assert report["microphone_peak_dbfs"] == 0
    assert any("clips" in a for a in report["advice"]), report["advice"]


def test_missing_device_exit_1(cli, files, tmp_path):  # noqa: F811
    done = run_cli(cli, files.env(), "--device", "hw:9", "--seconds", "1")
    assert done.returncode == 1
    assert "hw:9" in done.stderr and "millis devices" in done.stderr, done.stderr
    assert "millis_" not in done.stderr


@pytest.mark.parametrize("args, words", [
    (["--seconds", "0"], "--seconds '0'"),
    (["--seconds", "31"], "--seconds '31'"),
    (["--echo-canceller", "browser"], "--echo-canceller 'browser'"),
    (["--capture", ""], "capture device name is empty"),
    (["extra"], "unexpected argument 'extra'"),
])
def test_usage_errors(cli, args, words):  # noqa: F811
    done = run_cli(cli, None, *args)
    assert done.returncode == 2, done
    assert words in done.stderr, done.stderr


def test_c_api_errors(native, tmp_path):
    """Bad arguments get a status and a message; the report stays NULL."""
    lib = native
    report = C.c_void_p(1234)
    assert lib.millis_audio_test(None, 1000, C.byref(report)) == 1  # INVALID_ARGUMENT
    cfg = C.c_void_p(lib.millis_config_create())
    try:
        assert lib.millis_audio_test(cfg, 1000, None) == 1
        assert b"report is NULL" in lib.millis_config_last_error(cfg)
        for ms in (999, 30001):
            report = C.c_void_p(1234)
            assert lib.millis_audio_test(cfg, ms, C.byref(report)) == 1
            assert report.value is None
            assert b"1000 to 30000" in lib.millis_config_last_error(cfg)
        wav = tmp_path / "in.wav"
        wav.write_bytes(b"")  # never opened: the check comes first
        assert lib.millis_config_set_audio_input_file(cfg, str(wav).encode(), 0) == 0
        assert lib.millis_audio_test(cfg, 1000, C.byref(report)) == 3  # INVALID_STATE
        assert b"audio file" in lib.millis_config_last_error(cfg)
    finally:
        lib.millis_config_destroy(cfg)


def test_python_audio_test(millis, pulse, repo_root):  # noqa: F811
    """millis.audio_test in a child with the bed's environment (ALSA's configuration is
    read once per process)."""
    code = ("import json, millis; print(json.dumps(millis.audio_test('pulse', 'pulse', "
            "echo_canceller='speex', seconds=1)))")
    done = subprocess.run([sys.executable, "-c", code],
                          env={**pulse.env(), "PYTHONPATH": str(repo_root / "bindings" / "python")},
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["echo_canceller"] == "speex" and report["echo_heard"] is True
    with pytest.raises(ValueError):
        millis.audio_test(seconds=0.5)
    with pytest.raises(ValueError):
        millis.audio_test(echo_canceller="browser")
    with pytest.raises(millis.MillisError) as info:
        millis.audio_test(capture_device="")
    assert info.value.status == millis.Status.INVALID_ARGUMENT

