"""End-to-end conversations through the Python binding against the devserver."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest

from millis_testkit import (FRAME_BYTES, PUBLIC_KEY, SCRIPT_FINALS, USER_TURN, Recorder, Streamer, read_wav,
                            silence, tone)

CONVERSATION_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def user_pcm(repo_root):
    return read_wav(repo_root / "bindings" / "audio" / "user.wav")


def _collapse(states):
    out = []
    for s in states:
        if not out or out[-1] != s:
            out.append(s)
    return out


@pytest.fixture(scope="module")
def conversation(millis, devserver, user_pcm):
    """One full scripted conversation with demo-agent; the test functions below each
    check one aspect of it. Everything observed is returned in a dict."""
    options = {
        "agent_id": "demo-agent",
        "agent_config": {
            "prompt": "You are a weather bot.",
            "voice": {"provider": "elevenlabs", "voice_id": "v-1"},
            "language": "en",
            "tools": [{"name": "get_weather", "description": "weather",
                       "params": [{"name": "city", "type": "string", "required": True}]}],
            "flow": {"user_start_first": True, "interruption": {"allowed": True}},
            "vad_threshold": 0.5,
            "x_unknown_key": [1, 2.5, None, "ü", {"nested": False}],
        },
        "metadata": {"customer": "c-42", "tags": ["a", "b"]},
        "include_metadata_in_prompt": True,
        "session_id": f"previous-{uuid.uuid4().hex}",
    }
    client = millis.Client(PUBLIC_KEY, devserver.url)
    rec = Recorder(client)
    ready = threading.Event()
    stop = threading.Event()
    client.on("onready", lambda sid: ready.set())
    client.on("onsessionended", lambda: stop.set())
    client.on("onclose", lambda code, reason: stop.set())
    streamer = Streamer(client, user_pcm, ready, stop)
    streamer.start()
    try:
        client.start(**options)
        closed = client.wait_closed(CONVERSATION_TIMEOUT)
        stop.set()
        streamer.join(5)
        session_id = rec.of("onready")[0][0] if rec.of("onready") else None
        result = {
            "client": client,
            "rec": rec,
            "closed": closed,
            "options": options,
            "streamer": streamer,
            "session_id": session_id,
            "stats": client.stats(),
            "connection_state_after": client.connection_state,
            "session_id_property": client.session_id,
            "native_threads": client.native_thread_ids,
            "dispatch_thread": client._thread.ident,
        }
        result["record"] = devserver.record(session_id) if session_id else None
        yield result
    finally:
        stop.set()
        client.close()


def test_conversation_completes(conversation):
    rec = conversation["rec"]
    assert conversation["closed"], f"no onclose within the timeout; events: {rec.names()}"
    assert conversation["streamer"].error is None, conversation["streamer"].error
    assert rec.of("onerror") == [], [str(e[0]) for e in rec.of("onerror")]
    names = rec.names(exclude=("onaudio", "onlog", "onagentstate", "onlatency",
                               "ontranscript", "onresponsetext", "onfunction"))
    assert names == ["onopen", "onready", "onsessionended", "onclose"], names
    assert rec.of("onclose") == [(1000, rec.of("onclose")[0][1])]
    assert conversation["connection_state_after"] == "idle"


def test_ready_carries_session_id(conversation):
    sid = conversation["session_id"]
    assert isinstance(sid, str) and sid, f"onready session id: {sid!r}"
    assert conversation["session_id_property"] == sid


def test_transcripts_match_script(conversation):
    rec = conversation["rec"]
    transcripts = rec.of("ontranscript")
    finals = [text for text, payload in transcripts if payload["is_final"]]
    partials = [text for text, payload in transcripts if not payload["is_final"]]
    assert finals == SCRIPT_FINALS
    assert partials, "no partial transcript"
    for text, payload in transcripts:
        assert set(payload) == {"is_final"} and isinstance(payload["is_final"], bool)
    # What the client reported is exactly what the server sent, in order.
    sent = [(e["data"], bool((e.get("payload") or {}).get("is_final")))
            for e in conversation["record"]["events_sent"] if e["method"] == "ontranscript"]
    assert [(t, p["is_final"]) for t, p in transcripts] == sent


def test_response_text_and_function(conversation):
    rec = conversation["rec"]
    events = conversation["record"]["events_sent"]
    texts = rec.of("onresponsetext")
    assert texts, "no onresponsetext"
    assert any(p["is_final"] for _, p in texts)
    sent = [(e["data"], bool((e.get("payload") or {}).get("is_final")))
            for e in events if e["method"] == "onresponsetext"]
    assert [(t, p["is_final"]) for t, p in texts] == sent

    functions = rec.of("onfunction")
    assert len(functions) == 1, functions
    text, payload = functions[0]
    assert payload == {"name": "get_weather", "params": {"city": "Paris"}}
    sent_fn = [e for e in events if e["method"] == "onfunction"][0]
    assert text == (sent_fn.get("data") or "")


def test_latency_and_agent_states(conversation):
    rec = conversation["rec"]
    latencies = [a[0] for a in rec.of("onlatency")]
    answers = [e for e in conversation["record"]["events_sent"] if e["method"] == "start_answering"]
    assert latencies, "no onlatency"
    assert all(isinstance(ms, float) and ms > 0 for ms in latencies), latencies
    assert len(latencies) == len(answers), (latencies, len(answers))
    raw_states = [a[0] for a in rec.of("onagentstate")]
    assert raw_states == _collapse(raw_states), f"a state was reported twice in a row: {raw_states}"
    # No barge-in in this script: each answer is prepare_answer -> answer -> idle, once
    # (a flicker back to idle between audio frames would show up here).
    assert raw_states == ["prepare_answer", "answer", "idle"] * len(answers), raw_states
    assert conversation["stats"]["last_latency_ms"] == pytest.approx(latencies[-1], abs=0.01)


def test_agent_audio_matches_server(conversation):
    rec = conversation["rec"]
    chunks = [a[0] for a in rec.of("onaudio")]
    total = sum(len(c) for c in chunks)
    assert all(isinstance(c, bytes) and len(c) % 2 == 0 for c in chunks)
    record = conversation["record"]
    assert record["agent_audio_bytes_sent"] > 16000 * 2, "expected about 2 s of agent audio"
    assert total == record["agent_audio_bytes_sent"]
    assert conversation["stats"]["bytes_received"] == total
    assert conversation["stats"]["frames_received"] == len(chunks)


def test_initiate_passes_options_through(conversation):
    record = conversation["record"]
    opts = conversation["options"]
    initiate = record["initiate"]
    assert initiate["method"] == "initiate"
    expected = {
        "agent": {"agent_id": opts["agent_id"], "agent_config": opts["agent_config"]},
        "public_key": PUBLIC_KEY,
        "metadata": opts["metadata"],
        "include_metadata_in_prompt": True,
        "session_continuation": {"session_id": opts["session_id"]},
    }
    assert initiate["data"] == expected


def test_uplink_audio_framing(conversation):
    record = conversation["record"]
    stats = conversation["stats"]
    assert record["audio_bytes_received_before_ready"] == 0
    assert set(record["frame_sizes"]) == {str(FRAME_BYTES)}, record["frame_sizes"]
    assert record["audio_bytes_received"] > 0
    assert record["audio_bytes_received"] == stats["bytes_sent"]
    assert record["audio_frames_received"] == stats["frames_sent"]
    assert stats["bytes_sent"] == stats["frames_sent"] * FRAME_BYTES
    assert stats["bytes_sent"] <= conversation["streamer"].bytes_accepted
    assert len(record["user_turns"]) == 2, record["user_turns"]
    assert record["barge_ins"] == []
    assert record["close"]["code"] == 1000


def test_stats_fields(conversation):
    stats = conversation["stats"]
    record = conversation["record"]
    for key in ("frames_sent", "bytes_sent", "frames_received", "bytes_received",
                "audio_frames_dropped", "messages_sent", "messages_received"):
        assert isinstance(stats[key], int) and stats[key] >= 0, (key, stats)
    assert "last_ping_rtt_ms" in stats and "last_latency_ms" in stats
    assert stats["audio_frames_dropped"] == 0  # audio was only sent after onready
    # initiate + one ping per 8 s of audio sent (the web client's 1000 chunks of 128 samples)
    assert stats["messages_sent"] == 1 + record["pings_received"]
    assert record["pings_received"] == stats["bytes_sent"] // 256_000 >= 1
    if record["pings_received"]:
        assert stats["last_ping_rtt_ms"] is not None and stats["last_ping_rtt_ms"] >= 0
    text_events = [e for e in record["events_sent"]]
    assert stats["messages_received"] == len(text_events)


def test_handlers_never_run_on_engine_thread(conversation):
    """Every handler ran on the client's dispatch thread; the binding registers no C
    callback, so no Python code ran on libmillis' network thread at all."""
    rec = conversation["rec"]
    assert conversation["native_threads"] == frozenset()
    assert rec.thread_ids() == {conversation["dispatch_thread"]}
    client = conversation["client"]
    assert not hasattr(client, "_native_callbacks")


def test_mute_sends_silence(millis, devserver, user_pcm):
    """Muted from the start while streaming the first utterance: the server hears only
    zeros, so its VAD finds no turn."""
    speech = user_pcm[: int(4.5 * 32000)]  # "Hello, what is..." then silence
    with millis.Client(PUBLIC_KEY, devserver.url) as client:
        rec = Recorder(client)
        client.mute()
        assert client.muted
        ready = threading.Event()
        client.on("onready", lambda sid: ready.set())
        streamer = Streamer(client, speech, ready, silence_after=False)
        streamer.start()
        client.start(agent_id="demo-agent")
        sid = rec.wait_for("onready")[0]
        streamer.join(30)
        assert streamer.finished_file.is_set() and streamer.error is None
        assert client.muted
        client.stop()
        assert client.wait_closed(15)
        stats = client.stats()
    record = devserver.record(sid)
    assert record["user_turns"] == []
    assert rec.of("ontranscript") == []
    assert record["audio_bytes_received"] == stats["bytes_sent"] == len(speech)
    assert record["user_audio_wav"], "the devserver recorded no user WAV"
    recorded = read_wav(devserver.user_wav(record))
    assert len(recorded) == len(speech)
    assert recorded == bytes(len(recorded)), "the muted audio was not all zeros"


def test_unmute(millis):
    with millis.Client(PUBLIC_KEY, dispatch="manual") as client:
        assert not client.muted
        client.mute()
        assert client.muted
        client.unmute()
        assert not client.muted


# --- the three dispatch modes ------------------------------------------------------------

def _short_session_checks(names, close_args):
    assert names[:2] == ["onopen", "onready"], names
    assert names[-1] == "onclose", names
    assert close_args[0] == 1000, close_args


def test_dispatch_thread(millis, devserver):
    with millis.Client(PUBLIC_KEY, devserver.url, dispatch="thread") as client:
        rec = Recorder(client)
        client.on("onready", lambda sid: client.stop())
        client.start(agent_id="demo-agent")
        close_args = rec.wait_for("onclose")
        _short_session_checks(rec.names(), close_args)
        assert rec.thread_ids() == {client._thread.ident}
        assert client._thread.ident != threading.get_ident()
        assert not (rec.thread_ids() & client.native_thread_ids)


def test_dispatch_manual_poll(millis, devserver):
    with millis.Client(PUBLIC_KEY, devserver.url, dispatch="manual") as client:
        rec = Recorder(client, pump=client.poll)
        client.on("onready", lambda sid: client.stop())
        client.start(agent_id="demo-agent")
        assert client.poll(0) >= 0
        close_args = rec.wait_for("onclose")
        _short_session_checks(rec.names(), close_args)
        assert rec.thread_ids() == {threading.get_ident()}
        assert threading.get_ident() not in client.native_thread_ids
        assert client.wait_closed(0)


def test_dispatch_manual_events_generator(millis, devserver):
    with millis.Client(PUBLIC_KEY, devserver.url, dispatch="manual") as client:
        client.start(agent_id="demo-agent")
        names = []
        for name, args in client.events(timeout=15):
            names.append(name)
            if name == "onready":
                assert isinstance(args[0], str) and args[0]
                client.stop()
            if name == "onclose":
                close_args = args
        names = [n for n in names if n not in ("onlog", "onaudio", "analyzer", "useraudioready")]
        _short_session_checks(names, close_args)
        assert client.wait_closed(0)


def test_dispatch_asyncio(millis, devserver):
    async def main():
        loop = asyncio.get_running_loop()
        loop_thread = threading.get_ident()
        threads_before = set(threading.enumerate())
        client = millis.Client(PUBLIC_KEY, devserver.url, loop=loop)
        try:
            # asyncio mode is the loop's reader on the library's event descriptor.
            assert set(threading.enumerate()) == threads_before
            handler_threads = set()
            client.on("onready", lambda sid: (handler_threads.add(threading.get_ident()),
                                              client.stop()))
            client.on("onclose", lambda code, reason: handler_threads.add(threading.get_ident()))
            client.start(agent_id="demo-agent")
            names, close_args = [], None
            async for name, args in client.aevents(timeout=15):
                names.append(name)
                if name == "onclose":
                    close_args = args
            assert await client.aclosed(1)
            return loop_thread, handler_threads, names, close_args, client.native_thread_ids
        finally:
            client.close()

    loop_thread, handler_threads, names, close_args, native = asyncio.run(main())
    names = [n for n in names if n not in ("onlog", "onaudio", "analyzer", "useraudioready")]
    _short_session_checks(names, close_args)
    assert handler_threads == {loop_thread}
    assert loop_thread not in native


def test_aevents_started_after_the_session_is_ready_sees_open_and_ready(millis, devserver):
    """Events wait in the library's queue until something takes them: an iteration
    that starts once the session is ready still begins with onopen and onready."""
    async def main():
        client = millis.Client(PUBLIC_KEY, devserver.url, loop=asyncio.get_running_loop())
        try:
            client.start(agent_id="demo-agent")
            deadline = time.monotonic() + 15
            while client.connection_state != "ready":
                assert time.monotonic() < deadline, "the session did not become ready"
                await asyncio.sleep(0.01)
            names, close_args = [], None
            async for name, args in client.aevents(timeout=15):
                names.append(name)
                if name == "onready":
                    client.stop()
                if name == "onclose":
                    close_args = args
            return names, close_args
        finally:
            client.close()

    names, close_args = asyncio.run(main())
    names = [n for n in names if n not in ("onlog", "onaudio", "analyzer", "useraudioready")]
    _short_session_checks(names, close_args)


def test_event_queue_limit_is_checked(millis):
    with pytest.raises(millis.MillisError, match="65536"):
        millis.Client(PUBLIC_KEY, event_queue_bytes=1000)


def test_dispatch_asyncio_without_loop_is_refused(millis):
    with pytest.raises(ValueError, match="loop"):
        millis.Client(PUBLIC_KEY, dispatch="asyncio")


def test_on_off_and_decorator(millis):
    with millis.Client(PUBLIC_KEY, dispatch="manual") as client:
        @client.on("onopen")
        def handler():
            pass

        assert handler in [fn for fn, _ in client._handlers["onopen"]]
        client.off("onopen", handler)
        assert handler not in [fn for fn, _ in client._handlers["onopen"]]
        with pytest.raises(ValueError, match="onopen"):
            client.on("open", handler)


def test_debug_logs_arrive_without_secrets(millis, devserver):
    with millis.Client(PUBLIC_KEY, devserver.url, log_level=millis.LogLevel.DEBUG) as client:
        rec = Recorder(client)
        client.on("onready", lambda sid: client.stop())
        client.start(agent_id="demo-agent", metadata={"k": "v"})
        rec.wait_for("onclose")
        logs = rec.of("onlog")
    assert logs, "no onlog event at LogLevel.DEBUG"
    for level, message in logs:
        assert isinstance(level, millis.LogLevel) and level != millis.LogLevel.NONE
        assert isinstance(message, str)
        assert PUBLIC_KEY not in message, f"the public key leaked into a log line: {message!r}"
    assert any(level == millis.LogLevel.DEBUG for level, _ in logs)


def test_no_logs_at_level_none(millis):
    with millis.Client(PUBLIC_KEY, "ws://127.0.0.1:1/millis", dispatch="manual",
                       log_level="none") as client:
        rec = Recorder(client, pump=client.poll)
        client.start(agent_id="demo-agent")
        rec.wait_for("onclose")
        assert rec.of("onlog") == []


# --- agent audio in bursts, and each barge-in order ------------------------------------------

def _answers(timeline):
    """Splits a Recorder timeline into answers: from each prepare_answer state to the
    next, the states (collapsed) and the audio events, with their times."""
    answers = []
    for t, name, args in timeline:
        if name == "onagentstate" and str(args[0]) == "prepare_answer":
            answers.append({"t": t, "states": [], "audio": []})
        if not answers:
            continue
        if name == "onagentstate":
            answers[-1]["states"].append((t, str(args[0])))
        elif name == "onaudio":
            answers[-1]["audio"].append((t, len(args[0])))
    return answers


def _first_user_turn(client, pacer):
    """Starts the demo agent and, once it is ready, says one user turn in real time
    (the feeder goes on with silence): the recorder and the running feeder."""
    rec = Recorder(client)
    feeder = pacer(client)
    client.start(agent_id="demo-agent")
    rec.wait_for("onready")
    feeder.feed(USER_TURN)
    feeder.start()
    return rec, feeder


def test_burst_audio_idles_after_real_time_playout(millis, burst_devserver, pacer):
    """Application mode against a server that sends its answer in 500 ms bursts at twice
    real time (as speech pipelines do): the engine's simulated playout keeps the agent
    in `answer` until the audio would have finished playing, counted from its first
    frame, not until the last burst arrived; no flicker to idle between bursts."""
    with millis.Client(PUBLIC_KEY, burst_devserver.url, audio_mode="application") as client:
        rec, feeder = _first_user_turn(client, pacer)
        try:
            rec.wait_for("onagentstate", lambda s: str(s) == "answer")
            rec.wait_for("onagentstate", lambda s: str(s) == "idle", timeout=30)  # (none before)
        finally:
            feeder.stop()
        client.stop()
        assert client.wait_closed(15)
        sid = rec.of("onready")[0][0]
    assert rec.of("onerror") == [], [str(e[0]) for e in rec.of("onerror")]
    record = burst_devserver.record(sid)
    assert record["agent_audio"]["mode"] == "burst"
    answer = _answers(rec.timeline("onagentstate", "onaudio"))[0]
    states = [s for _, s in answer["states"]]
    assert states[:3] == ["prepare_answer", "answer", "idle"], states
    audio = answer["audio"]
    first, last = audio[0][0], audio[-1][0]
    idle = next(t for t, s in answer["states"] if s == "idle")
    duration = sum(n for _, n in audio) / 32000
    assert sum(n for _, n in audio) == record["agent_audio_bytes_sent"]
    print(f"burst answer: {duration:.2f} s of audio, last frame after {last - first:.2f} s, "
          f"idle after {idle - first:.2f} s")
    assert duration > 1.0, duration
    # Idle came when playing it would have ended: the duration after the first frame
    # (less a margin for dispatch), not when the last burst arrived (the schedule's
    # being ahead of real time is test_devserver's). Lower bounds only: a loaded
    # machine can only make idle later.
    assert idle - first >= duration - 0.15, (idle - first, duration)
    assert idle >= last, (idle, last)


@pytest.mark.parametrize("sequence", ["pause-clear-unpause", "clear", "pause-clear"])
def test_every_barge_in_order_leaves_later_answers_audible(millis, devserver_variant, pacer, sequence):
    """The user talks over the first answer; the server barges in with `sequence`
    (--barge-in). Whatever the order (pause, clear and unpause; clear alone; or pause
    then clear with no unpause, after which the official web client 1.0.13 stays
    silent), libmillis goes idle on the clear and the second answer's audio arrives
    with the agent in `answer` again."""
    server = devserver_variant(*(() if sequence == "pause-clear-unpause" else ("--barge-in", sequence)))
    with millis.Client(PUBLIC_KEY, server.url, audio_mode="application") as client:
        rec, feeder = _first_user_turn(client, pacer)
        try:
            rec.wait_for("onaudio")
            feeder.feed(silence(0.2) + tone(0.8))  # over the agent: a barge-in, then a turn
            rec.wait_for("ontranscript", lambda text, payload: payload["is_final"] and text == SCRIPT_FINALS[1])
            closed = client.wait_closed(30)  # the second answer, then onsessionended
        finally:
            feeder.stop()
        sid = rec.of("onready")[0][0]
    assert closed, rec.names()
    assert rec.of("onerror") == [], [str(e[0]) for e in rec.of("onerror")]
    record = server.record(sid)
    assert record["barge_in_sequence"] == sequence
    assert [(b["outcome"], b["sent"]) for b in record["barge_ins"]] == [
        ("clear", {"pause-clear-unpause": ["pause", "clear", "unpause"], "clear": ["clear"],
                   "pause-clear": ["pause", "clear"]}[sequence])], record["barge_ins"]
    first, second = _answers(rec.timeline("onagentstate", "onaudio"))
    first_states = [s for _, s in first["states"]]
    expected = ["prepare_answer", "answer", "idle"] if sequence == "clear" else \
        ["prepare_answer", "answer", "pause", "idle"]
    assert first_states == expected, first_states
    # After the barge-in a later answer is heard: audio, and the agent answering.
    assert second["audio"], "no audio for the answer after the barge-in"
    assert [s for _, s in second["states"]] == ["prepare_answer", "answer", "idle"], second["states"]
    # The second answer turned `answer` with its first frame.
    timeline = [(name, str(args[0]) if name == "onagentstate" else "")
                for _, name, args in rec.timeline("onagentstate", "onaudio")]
    second_start = max(i for i, e in enumerate(timeline) if e == ("onagentstate", "prepare_answer"))
    assert timeline[second_start + 1:second_start + 3] == [("onagentstate", "answer"), ("onaudio", "")]
    heard = sum(n for answer in (first, second) for _, n in answer["audio"])
    assert heard == record["agent_audio_bytes_sent"]
    assert rec.of("onclose")[0][0] == 1000
