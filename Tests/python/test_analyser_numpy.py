"""The analyser against a numpy reference of the Web Audio specification's
AnalyserNode definitions (Blackman window α = 0.16, |FFT|/N, smoothing over time,
20·log10, byte mapping), through the C ABI and the Python binding."""
import numpy as np
import pytest


def reference_frames(x: np.ndarray, n: int, tau: float, calls: int, min_db: float, max_db: float):
    a = 0.16
    k = np.arange(n)
    window = (1 - a) / 2 - 0.5 * np.cos(2 * np.pi * k / n) + a / 2 * np.cos(4 * np.pi * k / n)
    block = np.zeros(n)
    tail = x[-n:] / 32768.0
    block[n - len(tail):] = tail
    magnitude = np.abs(np.fft.fft(block * window))[: n // 2] / n
    smoothed = np.zeros(n // 2)
    for _ in range(calls):
        smoothed = tau * smoothed + (1 - tau) * magnitude
    with np.errstate(divide="ignore"):
        db = 20 * np.log10(smoothed)
    byte = np.clip(np.floor(255 / (max_db - min_db) * (db - min_db)), 0, 255)
    return db, byte, block


@pytest.mark.parametrize("fft_size,tau", [(32, 0.0), (256, 0.5), (2048, 0.8), (32768, 0.3)])
def test_frequency_and_time_domain_match_numpy(millis, fft_size, tau):
    rng = np.random.default_rng(fft_size)
    t = np.arange(40_000) / 16_000
    x = (8000 * np.sin(2 * np.pi * 440 * t) + 3000 * np.sin(2 * np.pi * 3100 * t)
         + rng.normal(0, 500, t.size)).astype(np.int16)
    with millis.Analyser(16_000) as a:
        a.fft_size = fft_size
        a.smoothing_time_constant = tau
        a.set_decibel_range(-90, -20)
        for start in range(0, x.size, 160):          # as the audio threads write it
            a.write_pcm16(x[start:start + 160])
        a.float_frequency_data()                    # one smoothing step
        got = np.asarray(a.float_frequency_data(), dtype=np.float64)
        got_byte = np.asarray(a.byte_frequency_data())
        got_time = np.asarray(a.float_time_domain_data(), dtype=np.float64)
        got_time_byte = np.asarray(a.byte_time_domain_data())
        rms = a.rms_dbfs
    db, byte, block = reference_frames(x.astype(np.float64), fft_size, tau, 2, -90, -20)
    assert got.shape == (fft_size // 2,)
    loud = db > -90
    assert np.max(np.abs(got[loud] - db[loud])) < 1e-3
    # The byte call advanced the smoothing once more.
    db3, byte3, _ = reference_frames(x.astype(np.float64), fft_size, tau, 3, -90, -20)
    assert np.max(np.abs(got_byte.astype(int) - byte3.astype(int))) <= 1
    assert np.max(np.abs(got_time - block)) < 1e-6
    assert np.array_equal(got_time_byte, np.clip(np.floor(128 * (1 + block)), 0, 255).astype(np.uint8))
    assert rms == pytest.approx(20 * np.log10(np.sqrt(np.mean(block ** 2))), abs=0.01)


def test_client_analysers_follow_application_audio(millis, devserver, recorder):
    """In application mode the user's analyser sees what is sent and the agent's what
    arrives; both start silent and are fed only once asked for."""
    client = millis.Client("test-public-key", endpoint=devserver.url, audio_mode="application")
    rec = recorder(client)
    try:
        user, agent = client.user_analyser, client.agent_analyser
        assert user.fft_size == 2048 and user.rms_dbfs == -120 and agent.rms_dbfs == -120
        client.start(agent_id="quick-agent")
        rec.wait_for("onready")
        t = np.arange(3200) / 16_000
        assert client.send_audio((0.5 * 32767 * np.sin(2 * np.pi * 1000 * t)).astype("<i2").tobytes())
        assert user.rms_dbfs == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.1)
        user.fft_size = 256
        spectrum = np.asarray(user.float_frequency_data())
        assert int(np.argmax(spectrum)) == round(1000 / 16000 * 256)
        rec.wait_for("onresponsetext")
        assert agent.rms_dbfs > -60, "the quick agent's audio never reached the agent's analyser"
        client.stop()
        rec.wait_for("onclose")
    finally:
        client.close()
