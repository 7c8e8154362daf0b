"""The Python binding's device-audio and analyser surface, as far as it needs no sound
device: enums, the new Client settings and their errors, audio_devices(), standalone and
client analysers (numpy and pure-Python results), and the analyser events."""

from __future__ import annotations

import array
import gc
import math
import re
import threading
import weakref

import pytest

from millis_testkit import FRAME_BYTES, PUBLIC_KEY, Recorder

INVALID_ARGUMENT, INVALID_STATE = 1, 3


def mentions(message: str, *words: str) -> bool:
    low = message.lower()
    return any(w.lower() in low for w in words)


def sine_pcm16(freq: float, rate: float, n: int, amplitude: float = 0.5) -> array.array:
    return array.array("h", (int(round(amplitude * 32767 * math.sin(2 * math.pi * freq * i / rate)))
                             for i in range(n)))


@pytest.fixture(params=["numpy", "pure"])
def data_mode(request, millis, monkeypatch):
    """Runs a test with the numpy results and again with bytes / array('f')."""
    from millis import analyser as module
    if request.param == "numpy":
        if module._np is None:
            pytest.skip("numpy is not installed")
    else:
        monkeypatch.setattr(module, "_np", None)
    return request.param


def as_list(values) -> list:
    return [float(v) for v in values]


# --- enums --------------------------------------------------------------------------

def test_audio_enums_match_header(millis, repo_root):
    header = (repo_root / "include" / "millis.h").read_text()
    # MILLIS_AUDIO_<NAME> without the MILLIS_AUDIO_MODE_ members (another enum), and
    # with digits allowed (PCM16).
    found = {m.group(1): int(m.group(2))
             for m in re.finditer(r"\bMILLIS_AUDIO_(?!MODE_)([A-Z0-9_]+)\s*=\s*(\d+)", header)}
    assert found == {"PCM16": 0, "MULAW": 1, "ALAW": 2}, found
    assert {m.name: int(m) for m in millis.AudioEncoding} == found
    assert "AudioEncoding" in millis.__all__ and "Analyser" in millis.__all__
    assert "audio_devices" in millis.__all__
    assert millis.Status.AUDIO_DEVICE == 17 and millis.Status(17).name == "AUDIO_DEVICE"
    assert millis.MillisError(17).name == "AUDIO_DEVICE"
    assert millis.AudioMode.DEVICE == 2
    assert {m.name: int(m) for m in millis.EchoCanceller} == {"WEBRTC": 0, "SPEEX": 1}
    assert str(millis.EchoCanceller.SPEEX) == "speex" and "EchoCanceller" in millis.__all__
    assert "analyzer" in millis.EVENTS and "useraudioready" in millis.EVENTS
    assert millis.ALIASES == {"onanalyzer": "analyzer", "onuseraudioready": "useraudioready"}


# --- Client settings -----------------------------------------------------------------

@pytest.mark.parametrize("kwargs, words", [
    ({"audio_period_ms": 7}, ("period",)),
    ({"audio_period_ms": 0}, ("period",)),
    ({"audio_period_ms": -1}, ("period",)),
    ({"audio_encoding": "mulaw", "audio_sample_rate": 16000}, ("8000",)),
    ({"audio_encoding": 1, "audio_sample_rate": 16000}, ("8000",)),
    ({"audio_encoding": "alaw", "audio_sample_rate": 48000}, ("8000",)),
    ({"audio_encoding": "pcm16", "audio_sample_rate": 44100}, ("44100",)),
    ({"audio_sample_rate": 11025}, ("11025",)),
    ({"audio_encoding": 3}, ("encoding",)),
    ({"playout_prebuffer_ms": 5000}, ("prebuffer",)),
    ({"playout_prebuffer_ms": 2001}, ("prebuffer",)),
    ({"capture_device": ""}, ("capture",)),
    ({"playback_device": "a\nb"}, ("playback",)),
    ({"audio_mode": 3}, ("mode",)),
    ({"echo_canceller": 2}, ("canceller", "MILLIS_ECHO_CANCELLER_WEBRTC")),
    ({"echo_canceller": -1}, ("canceller",)),
])
def test_audio_settings_out_of_range(millis, kwargs, words):
    with pytest.raises(millis.MillisError) as info:
        millis.Client(PUBLIC_KEY, dispatch="manual", **kwargs)
    err = info.value
    assert err.status == millis.Status.INVALID_ARGUMENT, err
    assert err.message and mentions(err.message, *words), f"{err.message!r} names none of {words}"


def test_audio_settings_type_errors(millis):
    with pytest.raises(TypeError):
        millis.Client(PUBLIC_KEY, dispatch="manual", capture_device=1)
    with pytest.raises(ValueError):
        millis.Client(PUBLIC_KEY, dispatch="manual", audio_encoding="opus")
    with pytest.raises(ValueError, match="echo_canceller.*webrtc, speex"):
        millis.Client(PUBLIC_KEY, dispatch="manual", echo_canceller="browser")


def test_audio_settings_accepted(millis):
    for kwargs in ({"audio_period_ms": 5}, {"audio_period_ms": 10}, {"audio_period_ms": 20},
                   {"playout_prebuffer_ms": 0}, {"playout_prebuffer_ms": 2000},
                   {"audio_encoding": millis.AudioEncoding.MULAW},  # rate defaults to 8000
                   {"audio_encoding": "alaw", "audio_sample_rate": 8000},
                   {"audio_encoding": "pcm16", "audio_sample_rate": 48000},
                   {"audio_sample_rate": 24000},
                   {"echo_cancellation": False},
                   {"echo_cancellation": True, "noise_suppression": False, "auto_gain_control": False},
                   {"capture_device": "null", "playback_device": "null"},
                   {"capture_device": "null"},
                   {"echo_canceller": "speex"}, {"echo_canceller": "WebRTC"},
                   {"echo_canceller": millis.EchoCanceller.SPEEX}, {"echo_canceller": 0}):
        with millis.Client(PUBLIC_KEY, dispatch="manual", audio_mode="application", **kwargs) as c:
            assert c.audio_mode == millis.AudioMode.APPLICATION, kwargs


def test_audio_mode_property(millis):
    with millis.Client(PUBLIC_KEY, dispatch="manual", audio_mode=millis.AudioMode.APPLICATION) as c:
        assert c.audio_mode is millis.AudioMode.APPLICATION
        assert c.stats()["audio_mode"] == "application"
    assert c.audio_mode == millis.AudioMode.DEFAULT  # closed
    # Device mode opens the devices at start, not at creation.
    with millis.Client(PUBLIC_KEY, dispatch="manual", audio_mode="device",
                       capture_device="null", playback_device="null") as c:
        assert c.audio_mode is millis.AudioMode.DEVICE
        assert c.stats()["audio_mode"] == "device"
        with pytest.raises(millis.MillisError) as info:
            c.send_audio(bytes(FRAME_BYTES))
        assert info.value.status == millis.Status.INVALID_STATE
    # The default mode is resolved when the client is created.
    with millis.Client(PUBLIC_KEY, dispatch="manual") as c:
        assert c.audio_mode in (millis.AudioMode.APPLICATION, millis.AudioMode.DEVICE)


def test_stats_carry_device_audio_counters(millis):
    with millis.Client(PUBLIC_KEY, dispatch="manual", audio_mode="application") as c:
        stats = c.stats()
    for key in ("audio_mode", "capture_periods", "capture_overruns", "capture_frames_dropped",
                "playback_periods", "playback_underruns", "playback_xruns",
                "playout_samples_dropped", "playout_queue_ms", "clears", "last_clear_ms",
                "echo_erle_db", "frames_sent"):
        assert key in stats, key
    assert stats["capture_periods"] == 0 and stats["last_clear_ms"] is None


# --- audio_devices() -----------------------------------------------------------------

def test_audio_devices(millis):
    devices = millis.audio_devices()
    assert isinstance(devices, dict)
    for direction in ("capture", "playback"):
        assert isinstance(devices[direction], list), devices
        for entry in devices[direction]:
            assert isinstance(entry["name"], str) and entry["name"]
            assert isinstance(entry["description"], str)
        assert "null" in [e["name"] for e in devices[direction]], devices[direction]


# --- standalone analysers ------------------------------------------------------------

def test_standalone_analyser_sine(millis, data_mode):
    rate, freq, fft = 16000, 1000, 64
    expected_bin = round(freq / rate * fft)  # 4
    pcm = sine_pcm16(freq, rate, 1024)
    with millis.Analyser.create(rate) as a:
        a.fft_size = fft
        assert a.fft_size == fft and a.frequency_bin_count == fft // 2
        a.write_pcm16(pcm)

        spectrum = a.float_frequency_data()
        assert len(spectrum) == fft // 2
        values = as_list(spectrum)
        peak = max(range(len(values)), key=values.__getitem__)
        assert peak == expected_bin, values
        assert values[expected_bin] > values[expected_bin + 4] + 20  # a clear peak

        spectrum_bytes = a.byte_frequency_data()
        assert len(spectrum_bytes) == fft // 2
        assert spectrum_bytes[expected_bin] == max(spectrum_bytes)

        time_bytes = a.byte_time_domain_data()
        assert len(time_bytes) == fft
        time_floats = a.float_time_domain_data()
        assert len(time_floats) == fft
        # Oldest first: exactly the last fft samples written.
        assert as_list(time_floats) == pytest.approx([v / 32768 for v in pcm[-fft:]], abs=1e-6)
        assert [int(b) for b in time_bytes] == [
            max(0, min(255, math.floor(128 * (1 + v / 32768)))) for v in pcm[-fft:]]

        # amplitude 0.5: -3.01 dB (sine) - 6.02 dB
        assert a.rms_dbfs == pytest.approx(-9.03, abs=0.05)

        if data_mode == "numpy":
            import numpy as np
            assert isinstance(spectrum, np.ndarray) and spectrum.dtype == np.float32
            assert isinstance(time_floats, np.ndarray) and time_floats.dtype == np.float32
            assert isinstance(time_bytes, np.ndarray) and time_bytes.dtype == np.uint8
            assert isinstance(spectrum_bytes, np.ndarray) and spectrum_bytes.dtype == np.uint8
        else:
            assert isinstance(spectrum, array.array) and spectrum.typecode == "f"
            assert isinstance(time_floats, array.array) and time_floats.typecode == "f"
            assert type(time_bytes) is bytes and type(spectrum_bytes) is bytes

        a.write_pcm16(bytes(2 * fft))  # silence pushes the sine out
        assert a.rms_dbfs == -120.0
        assert set(int(b) for b in a.byte_time_domain_data()) == {128}


def test_standalone_analyser_defaults_and_errors(millis):
    with millis.Analyser.create(16000) as a:
        assert a.kind == "standalone" and a.sample_rate == 16000.0
        assert a.fft_size == 2048 and a.frequency_bin_count == 1024
        assert (a.min_decibels, a.max_decibels) == (-100.0, -30.0)
        assert a.smoothing_time_constant == pytest.approx(0.8)
        assert a.rms_dbfs == -120.0  # nothing written yet

        a.fft_size = 64
        for bad in (48, 16, 65536, 0, -64):
            with pytest.raises(millis.MillisError) as info:
                a.fft_size = bad
            err = info.value
            assert err.status == millis.Status.INVALID_ARGUMENT, err
            assert mentions(err.message, "fft"), err.message
        assert a.fft_size == 64 and a.frequency_bin_count == 32

        a.set_decibel_range(-90, -10)
        assert (a.min_decibels, a.max_decibels) == (-90.0, -10.0)
        a.min_decibels = -80
        a.max_decibels = -20
        assert (a.min_decibels, a.max_decibels) == (-80.0, -20.0)
        for lo, hi in ((-10, -90), (-30, -30), (float("nan"), -30), (-100, float("inf"))):
            with pytest.raises(millis.MillisError) as info:
                a.set_decibel_range(lo, hi)
            assert info.value.status == millis.Status.INVALID_ARGUMENT
            assert mentions(info.value.message, "decibel"), info.value.message
        with pytest.raises(millis.MillisError):
            a.min_decibels = -20  # not below max
        assert (a.min_decibels, a.max_decibels) == (-80.0, -20.0)

        a.smoothing_time_constant = 0
        assert a.smoothing_time_constant == 0.0
        with pytest.raises(millis.MillisError) as info:
            a.smoothing_time_constant = 1.5
        assert info.value.status == millis.Status.INVALID_ARGUMENT
        assert mentions(info.value.message, "smoothing"), info.value.message

    for rate in (0, -16000, float("nan"), float("inf")):
        with pytest.raises(millis.MillisError) as info:
            millis.Analyser.create(rate)
        assert info.value.status == millis.Status.INVALID_ARGUMENT


def test_standalone_analyser_write_pcm16_inputs(millis):
    with millis.Analyser(8000) as a:
        a.fft_size = 32
        a.write_pcm16(b"")  # nothing: fine
        a.write_pcm16(bytes(64))
        a.write_pcm16(bytearray(64))
        a.write_pcm16(memoryview(bytes(64)))
        a.write_pcm16(array.array("h", [16384] * 32))
        assert list(a.byte_time_domain_data()) == [192] * 32
        try:
            import numpy as np
        except ImportError:
            np = None
        if np is not None:
            a.write_pcm16(np.full(32, -16384, dtype=np.int16))
            assert list(a.byte_time_domain_data()) == [64] * 32
            a.write_pcm16(np.full(64, 16384, dtype=np.int16)[::2])  # not contiguous: copied
            assert list(a.byte_time_domain_data()) == [192] * 32
            with pytest.raises(TypeError):
                a.write_pcm16(np.zeros(32, dtype=np.float64))
        with pytest.raises(millis.MillisError) as info:
            a.write_pcm16(b"\x00\x01\x02")
        assert info.value.status == millis.Status.INVALID_ARGUMENT
        with pytest.raises(TypeError):
            a.write_pcm16(array.array("f", [0.5] * 32))
        with pytest.raises(TypeError):
            a.write_pcm16("not audio")


def test_standalone_analyser_close(millis):
    a = millis.Analyser.create(16000)
    assert not a.closed
    a.close()
    a.close()  # idempotent
    assert a.closed
    for use in (lambda: a.fft_size, lambda: a.rms_dbfs, a.float_frequency_data,
                lambda: a.write_pcm16(bytes(2))):
        with pytest.raises(millis.MillisError) as info:
            use()
        assert info.value.status == millis.Status.INVALID_STATE
    with millis.Analyser.create(16000) as b:
        pass
    assert b.closed


# --- a client's analysers ------------------------------------------------------------

def test_client_analysers(millis, data_mode):
    client = millis.Client(PUBLIC_KEY, dispatch="manual", audio_mode=millis.AudioMode.APPLICATION)
    agent, user = client.agent_analyser, client.user_analyser
    assert (agent.kind, user.kind) == ("agent", "user")
    assert agent == client.agent_analyser and user == client.user_analyser and agent != user
    assert agent.sample_rate == 16000.0
    assert agent.fft_size == 2048 and user.fft_size == 2048
    # Settings belong to the native analyser: a second wrapper sees them.
    agent.fft_size = 256
    assert client.agent_analyser.fft_size == 256 and user.fft_size == 2048
    with pytest.raises(millis.MillisError) as info:
        client.user_analyser.fft_size = 48
    assert info.value.status == millis.Status.INVALID_ARGUMENT and mentions(info.value.message, "fft")
    assert len(agent.byte_frequency_data()) == 128
    assert len(agent.float_time_domain_data()) == 256
    assert set(agent.byte_time_domain_data()) == {128}  # nothing received: silence
    assert agent.rms_dbfs == -120.0 and user.rms_dbfs == -120.0
    assert all(v == -math.inf for v in as_list(user.float_frequency_data()))

    # The analyser keeps its client alive ...
    ref = weakref.ref(client)
    del client
    gc.collect()
    assert ref() is not None and not ref().closed
    assert agent.fft_size == 256
    # ... and closing the client invalidates it.
    ref().close()
    assert agent.closed and user.closed
    with pytest.raises(millis.MillisError) as info:
        agent.float_frequency_data()
    assert info.value.status == millis.Status.INVALID_STATE
    with pytest.raises(millis.MillisError):
        ref().agent_analyser
    del agent, user, info  # (the traceback in info references the analyser)
    gc.collect()
    assert ref() is None


def test_client_analyser_close_only_detaches(millis):
    with millis.Client(PUBLIC_KEY, dispatch="manual", audio_mode="application") as client:
        a = client.agent_analyser
        a.fft_size = 512
        a.close()
        assert a.closed
        with pytest.raises(millis.MillisError):
            a.rms_dbfs
        assert client.agent_analyser.fft_size == 512  # the native analyser lives on


def test_analyser_calls_race_close(millis):
    """Readers on other threads while the client closes: errors, never a crash."""
    client = millis.Client(PUBLIC_KEY, dispatch="manual", audio_mode="application")
    analysers = [client.agent_analyser, client.user_analyser]
    for a in analysers:
        a.fft_size = 32768
    stop = threading.Event()
    outcomes = []

    def reader(a):
        while not stop.is_set():
            try:
                a.float_frequency_data()
                a.byte_time_domain_data()
            except millis.MillisError as exc:
                outcomes.append(exc.status)
                return

    threads = [threading.Thread(target=reader, args=(a,)) for a in analysers * 2]
    for t in threads:
        t.start()
    client.close()
    stop.set()
    for t in threads:
        t.join(10)
    assert outcomes and set(outcomes) == {millis.Status.INVALID_STATE}


# --- events --------------------------------------------------------------------------

def test_analyser_events_in_a_conversation(millis, devserver):
    with millis.Client(PUBLIC_KEY, devserver.url, audio_mode="application",
                       audio_encoding="pcm16", audio_sample_rate=16000) as client:
        rec = Recorder(client)
        order = []
        got = {}
        done = threading.Event()

        @client.on("onopen")
        def onopen():
            order.append("onopen")

        @client.on("onanalyzer")
        def onanalyzer(analyser):
            order.append("onanalyzer")
            got["agent"] = analyser

        @client.on("onuseraudioready")
        def onuseraudioready(analyser, stream):
            order.append("onuseraudioready")
            got["user"], got["stream"] = analyser, stream
            done.set()

        client.start(agent_id="demo-agent")
        rec.wait_for("onready")
        assert done.wait(10), order
        assert order[:3] == ["onopen", "onanalyzer", "onuseraudioready"], order
        assert isinstance(got["agent"], millis.Analyser) and got["agent"] == client.agent_analyser
        assert isinstance(got["user"], millis.Analyser) and got["user"] == client.user_analyser
        stream = got["stream"]
        assert stream["source"] == "application" and stream["rate"] == 16000, stream
        assert stream["channels"] == 1 and "encoding" in stream, stream

        # What the application sends feeds the user's analyser.
        pcm = sine_pcm16(1000, 16000, 16000 // 10).tobytes()  # 100 ms
        for i in range(0, len(pcm), FRAME_BYTES):
            assert client.send_audio(pcm[i:i + FRAME_BYTES])
        user = got["user"]
        user.fft_size = 1024
        deadline = threading.Event()
        for _ in range(50):
            if user.rms_dbfs > -20:
                break
            deadline.wait(0.05)
        # amplitude 0.5 sine: -3.01 - 6.02 = -9.03 dBFS
        assert user.rms_dbfs == pytest.approx(-9.03, abs=0.5)
        client.stop()
        assert client.wait_closed(15)
