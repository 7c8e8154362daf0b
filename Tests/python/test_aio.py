"""millis.aio.AsyncClient against the devserver: await start() until ready (or the
error that prevented it), async for from the client's creation with nothing lost,
await stop(), async with, plain and coroutine handlers, no thread per client, and a
20-call µ-law bridge in one event loop."""

from __future__ import annotations

import asyncio
import math
import threading
from typing import Any, Dict, List

import pytest

from millis_testkit import PUBLIC_KEY, USER_TURN

HANG_GUARD = 90.0  # seconds: a hang fails the test instead of blocking the suite


def run(coro: Any) -> Any:
    async def guarded() -> Any:
        return await asyncio.wait_for(coro, HANG_GUARD)
    return asyncio.run(guarded())


def test_start_returns_ready_and_iteration_begins_at_creation(millis, devserver):
    """The issue's case: handlers as in the web SDK, start(), a pause, then async for:
    Open and Ready are still there, and the handlers ran too."""
    from millis.aio import AsyncClient

    async def main() -> Dict[str, Any]:
        seen: Dict[str, Any] = {"handler_ready": 0, "handler_open": 0}
        async with AsyncClient(PUBLIC_KEY, devserver.url, audio_mode="application") as client:
            client.on("onopen", lambda: seen.__setitem__("handler_open", seen["handler_open"] + 1))
            client.on("onready", lambda: seen.__setitem__("handler_ready", seen["handler_ready"] + 1))
            ready = await client.start(agent={"agent_id": "quick-agent"})
            seen["ready"] = ready
            await asyncio.sleep(0.5)
            names: List[str] = []
            async for event in client:
                names.append(type(event).__name__)
                if isinstance(event, millis.ResponseText) and event.is_final:
                    closed = await client.stop()
                    seen["stop"] = closed
            seen["names"] = names
            seen["state"] = client.connection_state
        return seen

    seen = run(main())
    assert isinstance(seen["ready"], millis.Ready) and seen["ready"].session_id
    names = [n for n in seen["names"] if n not in ("Log", "Audio", "Analyzer", "UserAudioReady")]
    assert names[:2] == ["Open", "Ready"], names
    assert "Transcript" in names and names[-1] == "Close", names
    assert seen["handler_open"] == 1 and seen["handler_ready"] == 1
    assert isinstance(seen["stop"], millis.Close) and seen["stop"].code == 1000
    assert seen["state"] == millis.ConnectionState.IDLE == "idle"


def test_start_raises_the_error_that_ended_the_conversation(millis, devserver):
    from millis.aio import AsyncClient

    async def main() -> Any:
        async with AsyncClient("not-a-key", devserver.url, audio_mode="application") as client:
            with pytest.raises(millis.MillisError) as info:
                await client.start("demo-agent")
            events = [e async for e in client.events(timeout=5)]
            return info.value, events

    error, events = run(main())
    assert error.status != millis.Status.OK and error.message, error
    assert isinstance(events[-1], millis.Close), events


def test_start_refuses_bad_options_at_once(millis, devserver):
    from millis.aio import AsyncClient

    async def main() -> None:
        async with AsyncClient(PUBLIC_KEY, devserver.url, audio_mode="application") as client:
            with pytest.raises(millis.MillisError) as info:
                await client.start({"metadata": {}})  # no agent
            assert info.value.status == millis.Status.INVALID_JSON
            with pytest.raises(TypeError, match="both"):
                await client.start({"agent": {"agent_id": "x"}}, metadata={})

    run(main())


def test_no_thread_per_client_and_coroutine_handlers(millis, devserver):
    from millis.aio import AsyncClient

    async def main() -> Dict[str, Any]:
        threads_before = threading.active_count()
        loop_thread = threading.get_ident()
        out: Dict[str, Any] = {"async_transcripts": [], "threads": set()}
        async with AsyncClient(PUBLIC_KEY, devserver.url, audio_mode="application") as client:
            out["threads_with_client"] = threading.active_count()

            @client.on("ontranscript")
            async def transcript(text: str, payload: Dict[str, Any]) -> None:
                await asyncio.sleep(0)
                out["threads"].add(threading.get_ident())
                out["async_transcripts"].append((text, payload["is_final"]))

            await client.start("quick-agent")
            async for event in client:
                if isinstance(event, millis.ResponseText) and event.is_final:
                    await client.stop()
        out["threads_before"] = threads_before
        out["loop_thread"] = loop_thread
        return out

    out = run(main())
    assert out["threads_with_client"] == out["threads_before"]
    assert ("quick", True) in out["async_transcripts"], out
    assert out["threads"] == {out["loop_thread"]}


def test_async_client_needs_a_running_loop(millis):
    from millis.aio import AsyncClient

    with pytest.raises(RuntimeError, match="coroutine"):
        AsyncClient(PUBLIC_KEY)


def test_events_wait_in_the_backlog_until_iterated(millis, devserver):
    """Nothing iterates while the conversation runs to its end: every event is still
    there afterwards, in order, ending with Close."""
    from millis.aio import AsyncClient

    async def main() -> List[Any]:
        async with AsyncClient(PUBLIC_KEY, devserver.url, audio_mode="application") as client:
            closed = asyncio.get_running_loop().create_future()
            client.on("onresponsetext", lambda text, payload: payload["is_final"] and client.client.stop())
            client.on("onclose", lambda event: closed.set_result(event.code))
            await client.start("quick-agent")
            assert await closed == 1000
            return [e async for e in client]

    events = run(main())
    kinds = [type(e) for e in events]
    assert kinds[0] is millis.Open and millis.Ready in kinds and kinds[-1] is millis.Close, kinds


# --- a 20-call µ-law bridge -----------------------------------------------------------------

def _mulaw(sample: int) -> int:
    """G.711 µ-law of one 16-bit sample."""
    bias, clip = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), clip) + bias
    exponent = 7
    for exp in range(7, -1, -1):
        if magnitude & (0x4000 >> (7 - exp)):
            exponent = exp
            break
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _mulaw_turn() -> bytes:
    """One user turn (0.5 s of a loud tone, 0.8 s of silence) as µ-law at 8 kHz."""
    tone = [int(12000 * math.sin(2 * math.pi * 440 * i / 8000)) for i in range(4000)]
    return bytes(_mulaw(s) for s in tone) + bytes([_mulaw(0)]) * 6400


def test_twenty_mulaw_calls_in_one_loop(millis, devserver):
    """A telephony bridge: 20 AsyncClients in one event loop, each pushing µ-law 8 kHz in
    real time 20 ms chunks and receiving the agent's µ-law audio, all at once."""
    from millis.aio import AsyncClient

    turn = _mulaw_turn()
    chunk = 160  # 20 ms of µ-law at 8 kHz
    assert len(USER_TURN) == 2 * 16000 * 1.3  # the same turn as the PCM16 tests send

    async def call(n: int) -> Dict[str, Any]:
        result: Dict[str, Any] = {"audio": 0, "transcripts": [], "errors": []}
        async with AsyncClient(PUBLIC_KEY, devserver.url, audio_mode="application",
                               audio_encoding="mulaw", audio_sample_rate=8000) as client:
            ready = await client.start(agent={"agent_id": "demo-agent"}, metadata={"call": n})
            result["session_id"] = ready.session_id

            async def speak() -> None:
                loop = asyncio.get_running_loop()
                t0 = loop.time()
                for i in range(0, len(turn), chunk):
                    assert client.send_audio(turn[i:i + chunk])
                    await asyncio.sleep(max(0.0, t0 + (i // chunk + 1) * 0.02 - loop.time()))

            speaker = asyncio.ensure_future(speak())
            async for event in client:
                if isinstance(event, millis.Audio):
                    result["audio"] += len(event.pcm)
                elif isinstance(event, millis.Transcript) and event.is_final:
                    result["transcripts"].append(event.text)
                elif isinstance(event, millis.Error):
                    result["errors"].append(event.error)
                elif isinstance(event, millis.Close):
                    result["close"] = event.code
                # Half a second of the agent's answer (µ-law: 8000 bytes a second).
                if result["transcripts"] and result["audio"] >= 4000 and speaker.done():
                    await client.stop()
            await speaker
        return result

    async def main() -> List[Dict[str, Any]]:
        threads = threading.active_count()
        results = await asyncio.gather(*(call(n) for n in range(20)))
        assert threading.active_count() == threads
        return list(results)

    results = run(main())
    sessions = set()
    for n, result in enumerate(results):
        assert result["transcripts"], (n, result)
        assert result["audio"] >= 4000, (n, result)
        assert result["close"] == 1000, (n, result)
        assert not result["errors"], (n, result)
        sessions.add(result["session_id"])
    assert len(sessions) == 20
    for session_id in sessions:
        record = devserver.record(session_id)
        # The devserver gets the wire's PCM16 16 kHz: the µ-law turn, twice the samples,
        # less what the resampler and the last partial frame hold back (two frames).
        assert record["audio_bytes_received"] >= 2 * 2 * len(turn) - 2 * 640, record


def test_backlog_is_bounded_and_says_where_it_dropped(millis, devserver):
    """A program that never iterates holds at most event_queue_bytes of events; past
    that one Error (NO_MEMORY) stands where events were dropped, and Close is kept."""
    from millis.aio import AsyncClient

    async def main() -> List[Any]:
        async with AsyncClient(PUBLIC_KEY, devserver.url, audio_mode="application",
                               event_queue_bytes=65536) as client:
            closed = asyncio.get_running_loop().create_future()
            client.on("onclose", lambda: closed.set_result(None))

            answered: List[str] = []
            client.on("onresponsetext", lambda text, payload: answered.append(text))

            @client.on("onagentstate")
            def state(state: millis.AgentState) -> None:
                if state == "idle" and answered:  # the answer has been received
                    client.client.stop()

            await client.start("demo-agent")
            client.send_audio(USER_TURN)  # the answer: 2.7 s of audio, 86 kB at 16 kHz
            await closed
            return [e async for e in client]

    events = run(main())
    drops = [e for e in events if isinstance(e, millis.Error)]
    assert len(drops) == 1 and drops[0].error.status == millis.Status.NO_MEMORY, drops
    assert "dropped here" in drops[0].error.message
    assert isinstance(events[0], millis.Open) and isinstance(events[-1], millis.Close), events
    kept = sum(len(e.pcm) for e in events if isinstance(e, millis.Audio))
    assert 0 < kept <= 65536


def test_close_ends_an_iteration_and_a_waiting_start(millis, devserver):
    from millis.aio import AsyncClient

    async def main() -> Any:
        client = AsyncClient(PUBLIC_KEY, devserver.url, audio_mode="application")
        await client.start("quick-agent")
        seen = []

        async def iterate() -> None:
            async for event in client:
                seen.append(event)

        task = asyncio.ensure_future(iterate())
        await asyncio.sleep(0.3)
        client.close()
        await task  # ends: the client is closed and its backlog read
        with pytest.raises(millis.MillisError, match="closed"):
            await client.start("quick-agent")
        return seen

    seen = run(main())
    assert isinstance(seen[0], millis.Open) and not any(isinstance(e, millis.Close) for e in seen)


def test_cancelled_start_stops_the_conversation(millis, devserver):
    from millis.aio import AsyncClient

    async def main() -> Any:
        async with AsyncClient(PUBLIC_KEY, devserver.url, audio_mode="application") as client:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(client.start("fault-no-ready"), 0.5)
            closed = await client.stop()
            events = [e async for e in client.events(timeout=5)]
            return closed, events

    closed, events = run(main())
    assert isinstance(events[-1], millis.Close), events

