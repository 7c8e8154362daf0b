"""Application audio formats: what a telephony bridge carries (8 kHz G.711 µ-law /
A-law, PCM16 at 8/24/48 kHz), converted by the library to and from the wire's 16 kHz
PCM16. Checked at the server (the user's audio it recorded) and at the callback (the
quick agent's audio in the application's format)."""
import subprocess
import warnings
import wave
from pathlib import Path

import numpy as np
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # ITU G.711 reference codecs of CPython (3.11)

FORMATS = [("pcm16", 8000), ("pcm16", 24000), ("pcm16", 48000), ("mulaw", 8000), ("alaw", 8000)]


def encode(encoding: str, pcm16: bytes) -> bytes:
    return {"pcm16": lambda b: b, "mulaw": lambda b: audioop.lin2ulaw(b, 2),
            "alaw": lambda b: audioop.lin2alaw(b, 2)}[encoding](pcm16)


def decode(encoding: str, data: bytes) -> np.ndarray:
    pcm = {"pcm16": lambda b: b, "mulaw": lambda b: audioop.ulaw2lin(b, 2),
           "alaw": lambda b: audioop.alaw2lin(b, 2)}[encoding](data)
    return np.frombuffer(pcm, "<i2").astype(np.float64) / 32768


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    done = subprocess.run(["sox", "-t", "raw", "-r", str(rate_in), "-e", "floating-point", "-b", "32", "-c", "1", "-",
                           "-t", "raw", "-r", str(rate_out), "-e", "floating-point", "-b", "32", "-c", "1", "-"],
                          input=x.astype("<f4").tobytes(), capture_output=True, check=True)
    return np.frombuffer(done.stdout, "<f4").astype(np.float64)


def dominant_frequency(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    k = int(np.argmax(spectrum[1:])) + 1
    a, b, c = np.log(spectrum[k - 1:k + 2] + 1e-12)
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * rate / len(x)


def converse(millis, devserver, recorder, **format_kwargs):
    """A quick-agent conversation: 1 s of a 1 kHz tone (half scale) sent in the format;
    returns the server's record, the agent audio bytes received, and the client."""
    client = millis.Client("test-public-key", endpoint=devserver.url, audio_mode="application", **format_kwargs)
    rec = recorder(client)
    try:
        client.start(agent_id="quick-agent")
        rec.wait_for("onready")
        rate = format_kwargs.get("audio_sample_rate", 16000)
        t = np.arange(rate) / rate
        pcm16 = (0.5 * 32767 * np.sin(2 * np.pi * 1000 * t)).astype("<i2").tobytes()
        data = encode(format_kwargs.get("audio_encoding", "pcm16"), pcm16)
        step = len(data) // 50  # 20 ms chunks
        for i in range(0, len(data), step):
            assert client.send_audio(data[i:i + step])
        rec.wait_for("onresponsetext")
        # The answer is over when the agent turns idle (the converter's tail comes first).
        rec.wait_for("onagentstate", lambda state: str(state) == "idle")
        session_id = rec.of("onready")[0][0]
        client.stop()
        rec.wait_for("onclose")
        agent = b"".join(args[0] for args in rec.of("onaudio"))
        return devserver.record(session_id), agent
    finally:
        client.close()


@pytest.fixture(scope="module")
def wire_agent_audio(millis, devserver, recorder):
    """The quick agent's audio in the wire format, the reference for the conversions."""
    _, agent = converse(millis, devserver, recorder)
    return np.frombuffer(agent, "<i2").astype(np.float64) / 32768


@pytest.mark.parametrize("encoding,rate", FORMATS)
def test_application_format_both_ways(millis, devserver, recorder, wire_agent_audio, encoding, rate):
    record, agent = converse(millis, devserver, recorder, audio_encoding=encoding, audio_sample_rate=rate)
    # Up: the server got 16 kHz PCM16 with the tone at its frequency and level.
    with wave.open(str(Path(devserver.record_dir) / record["user_audio_wav"])) as w:
        assert (w.getframerate(), w.getnchannels()) == (16000, 1)
        heard = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64) / 32768
    body = heard[1600:14400]
    assert dominant_frequency(body, 16000) == pytest.approx(1000, abs=2)
    level = 20 * np.log10(np.sqrt(np.mean(body ** 2)))
    assert level == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.5)
    # Down: the agent's audio came in the application's format, at its rate.
    bytes_per_sample = 2 if encoding == "pcm16" else 1
    assert len(agent) % bytes_per_sample == 0
    got = decode(encoding, agent)
    expected = len(wire_agent_audio) * rate // 16000
    # Every sample comes out, the resampler's lookahead included (flushed at idle).
    assert abs(len(got) - expected) <= 2 * rate // 8000, (len(got), expected)
    back = resample(got, rate, 16000)
    n = min(len(back), len(wire_agent_audio))
    # 8 kHz keeps only the band below 4 kHz: compare there.
    reference = resample(resample(wire_agent_audio, 16000, 8000), 8000, 16000) if rate == 8000 else wire_agent_audio
    a, b = back[:n], reference[:n]
    lags = range(-40, 41)
    best = max(np.corrcoef(a[max(0, k):n + min(0, k)], b[max(0, -k):n - max(0, k)])[0, 1] for k in lags)
    assert best > 0.95, best
