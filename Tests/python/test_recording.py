"""Recordings checked against the devserver's own record of the same conversation.

The devserver writes what it received from the user (<id>.user.wav), what it sent as
the agent (<id>.agent.wav, each frame's send time in the record) and every control
message it sent, with times. A recording must hold the same audio on its two channels
(after Opus: correlation above a floor), and its timeline every message the server
sent, in order, with turn latencies that agree with the server's timing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import wave
from pathlib import Path

import pytest

from millis_testkit import PUBLIC_KEY, SCRIPT_FINALS

np = pytest.importorskip("numpy")

SPEECH = Path(__file__).resolve().parents[2] / "bindings" / "audio" / "user.wav"
CORRELATION_FLOOR = 0.9
CALL_TIMEOUT = 60.0
# The devserver's default (devserver/README.md): a turn ends after 600 ms of non-speech.
END_OF_SPEECH_S = 0.6


def pcm(path: Path, channels: int = 1):
    with wave.open(str(path), "rb") as w:
        assert w.getframerate() == 16000, f"{path}: {w.getframerate()} Hz"
        assert w.getnchannels() == channels, f"{path}: {w.getnchannels()} channels"
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64)
    return data.reshape(-1, channels) if channels > 1 else data


def decode_opus(path: Path, out: Path, channels: int):
    """opusdec (opus-tools) to 16 kHz PCM16: an Ogg Opus decoder that is not ours."""
    assert shutil.which("opusdec"), "opusdec missing: `make test-deps` installs opus-tools"
    subprocess.run(["opusdec", "--quiet", "--rate", "16000", str(path), str(out)], check=True, timeout=60)
    return pcm(out, channels)


def best_correlation(haystack, needle):
    """(lag, normalized correlation) of `needle` at its best place in `haystack`."""
    n = len(haystack) + len(needle)
    size = 1 << (n - 1).bit_length()
    c = np.fft.irfft(np.fft.rfft(haystack, size) * np.conj(np.fft.rfft(needle, size)), size)[: len(haystack)]
    lag = int(np.argmax(c))
    seg = haystack[lag: lag + len(needle)]
    ref = needle[: len(seg)]
    return lag, float(np.dot(seg, ref) / (np.linalg.norm(seg) * np.linalg.norm(ref) + 1e-9))


def answers(record):
    """The agent's answers as sent: (first frame index, end frame index, send time)."""
    times = np.array(record["agent_audio_frame_times"])
    assert len(times) == record["agent_audio_frames_sent"] > 0
    cuts = list(np.where(np.diff(times) > 0.1)[0] + 1)
    return [(s, e, float(times[s])) for s, e in zip([0] + cuts, cuts + [len(times)])]


def timeline(path: Path):
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["type"] == "recording" and lines[-1]["type"] == "end", (lines[0], lines[-1])
    times = [line["t"] for line in lines]
    assert times == sorted(times), "timeline times go backwards"
    return lines


def converse(millis, devserver, tmp_path, **kwargs):
    """A scripted conversation with the demo agent; returns (client events, record)."""
    events = {"turns": [], "finals": [], "input_ended": 0, "errors": []}
    done = threading.Event()
    client = millis.Client(PUBLIC_KEY, devserver.url, **kwargs)
    client.on("onturn", lambda turn: events["turns"].append(turn))
    client.on("ontranscript", lambda text, p: p.get("is_final") and events["finals"].append(text))
    client.on("oninputended", lambda: events.__setitem__("input_ended", events["input_ended"] + 1))
    client.on("onerror", lambda err: events["errors"].append((err.status, err.message)))
    client.on("onclose", lambda *a: done.set())
    try:
        client.start(agent_id="demo-agent")
        if kwargs.get("audio_mode") == "application":
            stream_file(client, done)
        assert done.wait(CALL_TIMEOUT), "the conversation did not end"
        session_id = client.session_id
        client.stop_recording()  # returns once the files are complete (already are)
    finally:
        client.close()
    assert not events["errors"], events["errors"]
    return events, devserver.record(session_id)


def stream_file(client, done):
    """Application mode: the speech file, then silence, in real time."""
    deadline = time.monotonic() + 10
    while client.connection_state != "ready":
        assert time.monotonic() < deadline, "no onready"
        time.sleep(0.01)
    with wave.open(str(SPEECH), "rb") as w:
        data = w.readframes(w.getnframes())
    data += bytes(640 * 50 * 20)
    start = time.monotonic()
    for i in range(0, len(data), 640):
        if done.is_set():
            return
        client.send_audio(data[i: i + 640])
        time.sleep(max(0.0, start + (i // 640 + 1) * 0.02 - time.monotonic()))


def check_channels(audio_user, audio_agent, devserver, record):
    """The user channel holds what the server received; the agent channel every answer."""
    received = pcm(devserver.user_wav(record))
    lag, corr = best_correlation(audio_user, received[: 16000 * 10])
    assert corr > CORRELATION_FLOOR, f"user channel vs the server's user.wav: {corr:.3f}"
    sent = pcm(devserver.record_dir / record["agent_audio_wav"])
    places = []
    for first, end, _ in answers(record):
        lag, corr = best_correlation(audio_agent, sent[first * 320: end * 320])
        assert corr > CORRELATION_FLOOR, f"answer at frame {first}: correlation {corr:.3f}"
        places.append(lag / 16000)
    return places


def check_timeline(lines, record, events, places):
    # Every message the server sent, in order, as received.
    sent = [(e["method"], e.get("data")) for e in record["events_sent"]]
    received = [(line["method"], line["message"].get("data")) for line in lines if line["type"] == "recv"]
    assert received == sent, "the timeline's received messages differ from what the server sent"
    # And what we sent: initiate (key redacted) first.
    ours = [line for line in lines if line["type"] == "send"]
    assert ours[0]["method"] == "initiate"
    assert ours[0]["message"]["data"]["public_key"] == "<redacted>"
    assert PUBLIC_KEY not in "".join(json.dumps(line) for line in lines)
    finals = [line["text"] for line in lines if line["type"] == "event" and line.get("event") == "transcript"
              and line["is_final"]]
    assert finals == SCRIPT_FINALS == events["finals"]

    turns = [line for line in lines if line["type"] == "turn"]
    assert [t["turn"] for t in turns] == [t["turn"] for t in events["turns"]] == [1, 2], turns
    server_answering = [e["t"] for e in record["events_sent"] if e["method"] == "start_answering"]
    server_first_audio = [start for _, _, start in answers(record)]
    for i, turn in enumerate(turns):
        ms = turn["latency_ms"]
        assert None not in ms.values(), turn
        # The server's VAD ended the turn END_OF_SPEECH after the speech stopped and
        # answered (think time) later; ours heard the same audio stop (their blocks
        # and thresholds differ a little).
        speech_end = record["user_turns"][i]["end"] - END_OF_SPEECH_S
        expected = (server_answering[i] - speech_end) * 1000
        # (From below only: a loaded machine can only delay what the client sees.)
        assert ms["end_of_speech_to_start_answering"] > expected - 150, (turn, expected)
        # start_answering → first audio, which the server spaced by server_gap: a loaded
        # client may read both at once, or late, so only its sign is certain.
        server_gap = (server_first_audio[i] - server_answering[i]) * 1000
        assert ms["start_answering_to_first_audio"] >= 0, (turn, server_gap)
        assert ms["first_audio_to_played"] >= 0, turn
        assert abs(ms["total"] - (ms["end_of_speech_to_start_answering"] + ms["start_answering_to_first_audio"]
                                  + ms["first_audio_to_played"])) < 0.01
        # The answer sits in the recording where the turn says it started playing.
        assert abs(places[i] - turn["first_played"]) < 0.15, (places[i], turn)
    # Between the two turns the client's clock and the server's agree.
    client_span = turns[1]["start_answering"] - turns[0]["start_answering"]
    server_span = server_answering[1] - server_answering[0]
    assert abs(client_span - server_span) < 0.05, (client_span, server_span)


def test_stereo_opus_recording_of_a_file_driven_conversation(millis, devserver, tmp_path):
    """Files as microphone and speaker, recorded to Ogg Opus: both channels, every
    message, the latency of each turn."""
    events, record = converse(millis, devserver, tmp_path, input_file=str(SPEECH),
                              output_file=str(tmp_path / "agent.wav"), recording=str(tmp_path / "call.opus"))
    assert events["input_ended"] == 1
    audio = decode_opus(tmp_path / "call.opus", tmp_path / "decoded.wav", channels=2)
    lines = timeline(tmp_path / "call.jsonl")
    header = lines[0]
    assert header["format"] == "opus" and header["channels"] == 2 and header["layout"] == "user-left agent-right"
    end = lines[-1]
    assert end["dropped_samples"] == 0
    assert abs(len(audio) / 16000 - end["duration"]) < 0.05
    places = check_channels(audio[:, 0], audio[:, 1], devserver, record)
    check_timeline(lines, record, events, places)
    assert [line for line in lines if line.get("event") == "input_ended"]
    # The speaker file: 16 kHz mono, as long as the conversation, holding the answers.
    speaker = pcm(tmp_path / "agent.wav")
    sent = pcm(devserver.record_dir / record["agent_audio_wav"])
    for first, end_frame, _ in answers(record):
        _, corr = best_correlation(speaker, sent[first * 320: end_frame * 320])
        assert corr > 0.99, f"the output file's answer at frame {first}: {corr:.3f}"


def test_wav_recording_in_application_mode(millis, devserver, tmp_path):
    """Application audio (send_audio, onaudio) recorded to a stereo WAV: lossless, so
    the channels match the server's audio sample for sample."""
    events, record = converse(millis, devserver, tmp_path, audio_mode="application",
                              recording=str(tmp_path / "call.wav"))
    audio = pcm(tmp_path / "call.wav", channels=2)
    lines = timeline(tmp_path / "call.jsonl")
    assert lines[0]["format"] == "wav"
    places = check_channels(audio[:, 0], audio[:, 1], devserver, record)
    check_timeline(lines, record, events, places)
    # Lossless: the answers are there bit for bit.
    sent = pcm(devserver.record_dir / record["agent_audio_wav"]).astype(np.int16)
    first, end, _ = answers(record)[0]
    lag = round(places[0] * 16000)
    assert np.array_equal(audio[lag: lag + (end - first) * 320, 1].astype(np.int16), sent[first * 320: end * 320])


def test_mono_recording_started_and_stopped_mid_conversation(millis, devserver, tmp_path):
    """start_recording during a conversation, stop_recording before its end: a mixed
    mono file from then on, a complete timeline, and the conversation goes on."""
    path = tmp_path / "part.wav"
    done = threading.Event()
    client = millis.Client(PUBLIC_KEY, devserver.url, input_file=str(SPEECH),
                           output_file=str(tmp_path / "agent.wav"))
    client.on("onclose", lambda *a: done.set())
    finals = []
    client.on("ontranscript", lambda text, p: p.get("is_final") and finals.append(text))
    try:
        client.start_recording(str(tmp_path / "armed.wav"))  # before a start: armed
        with pytest.raises(millis.MillisError) as info:
            client.start_recording(str(tmp_path / "second.wav"))
        assert info.value.status == 3 and "already" in info.value.message
        client.stop_recording()  # disarms
        assert not (tmp_path / "armed.wav").exists()
        client.start(agent_id="demo-agent")
        time.sleep(1.0)
        client.start_recording(str(path), mono=True)
        time.sleep(4.0)
        client.stop_recording()
        size = path.stat().st_size
        assert done.wait(CALL_TIMEOUT)
    finally:
        client.close()
    assert path.stat().st_size == size, "the file changed after stop_recording returned"
    assert finals == SCRIPT_FINALS
    audio = pcm(path, channels=1)
    lines = timeline(tmp_path / "part.jsonl")
    assert lines[0]["layout"] == "mixed" and lines[0]["conversation_offset"] >= 0.9
    # Recorded from start_recording to stop_recording, 4 s of sleep apart (more when
    # the machine is loaded: from below only).
    assert len(audio) / 16000 > 3.5
    assert np.abs(audio).max() > 1000, "the mixed recording is silent"
    assert not [line for line in lines if line.get("event") == "close"], "stopped before the close"


def test_recording_errors(millis, devserver, tmp_path):
    client = millis.Client(PUBLIC_KEY, devserver.url, audio_mode="application")
    try:
        for bad in ("", str(tmp_path / "call.mp3")):
            with pytest.raises(millis.MillisError) as info:
                client.start_recording(bad)
            assert info.value.status == 1 and ".opus" in info.value.message
    finally:
        client.close()
    client = millis.Client(PUBLIC_KEY, devserver.url, audio_mode="application",
                           recording=str(tmp_path / "missing" / "call.opus"))
    try:
        with pytest.raises(millis.MillisError) as info:
            client.start(agent_id="demo-agent")
        assert info.value.status == 18 and "missing" in info.value.message, info.value.message
        assert client.connection_state == "idle"
    finally:
        client.close()


def test_fast_input_file_turns_and_voice_activity(millis, devserver, tmp_path):
    """A file read faster than real time: the user's stream runs ahead of the clock, but
    voice activity is reported when its audio went out, in order, and each turn's end of
    speech is its own."""
    events, record = converse(millis, devserver, tmp_path, input_file=str(SPEECH), input_pacing="fast",
                              output_file=str(tmp_path / "agent.wav"), recording=str(tmp_path / "call.wav"))
    lines = timeline(tmp_path / "call.jsonl")
    vad = [line for line in lines if line["type"] == "vad"]
    kinds = [line["event"] for line in vad]
    assert kinds[:2] == ["speech_start", "speech_end"] and kinds.count("speech_end") >= 2, kinds
    ats = [line["at"] for line in vad]
    assert ats == sorted(ats) and ats[0] >= 0, ats
    assert all(line["at"] <= line["t"] for line in vad)
    # Both utterances were on the wire before the first answer: no end of speech can be
    # told to belong to either answer, and none is invented.
    turns = events["turns"]
    assert [t["turn"] for t in turns] == [1, 2], turns
    assert [t["user_speech_end"] for t in turns] == [None, None], turns
    for turn in turns:
        assert turn["latency_ms"]["start_answering_to_first_audio"] >= 0, turn
        assert turn["first_played"] >= turn["first_audio"] >= turn["start_answering"], turn
    # The whole file went out ahead of its duration.
    file_seconds = (SPEECH.stat().st_size - 44) / 32000
    assert vad[-1]["at"] < file_seconds / 2, (vad[-1], file_seconds)
    assert record["audio_bytes_received"] >= SPEECH.stat().st_size - 44
