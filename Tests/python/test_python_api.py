"""The Python surface of issue 14: the web SDK's event names and handlers (checked when
registered, called with what they take), help(millis.Client), start() with the web
SDK's object, millis.Config, enums returned, send_audio's checks, and library logs on
logging.getLogger("millis")."""

from __future__ import annotations

import array
import functools
import json
import logging
import os
import pydoc
import struct
import threading
from typing import Any, Dict, List

import pytest

from millis_testkit import FRAME_BYTES, PUBLIC_KEY, Recorder

numpy = pytest.importorskip("numpy")


# --- event names and handlers --------------------------------------------------------------

def test_web_sdk_names_and_aliases(millis):
    with millis.Client(PUBLIC_KEY, dispatch="manual") as client:
        for name in ("onopen", "onready", "onsessionended", "onaudio", "onresponsetext",
                     "ontranscript", "onfunction", "analyzer", "useraudioready", "onlatency",
                     "onclose", "onerror", "onagentstate", "onmessage", "onreconnecting",
                     "onreconnected", "oninputended", "onturn", "onlog", "onanalyzer",
                     "onuseraudioready"):
            client.on(name, lambda *args: None)
        with pytest.raises(ValueError, match="unknown event 'ready'.*onready"):
            client.on("ready", print)


def test_a_handler_that_needs_more_than_the_event_gives_is_refused_at_once(millis):
    with millis.Client(PUBLIC_KEY, dispatch="manual") as client:
        with pytest.raises(TypeError, match=r"onready\(session_id: str\)"):
            client.on("onready", lambda session_id, payload: None)
        with pytest.raises(TypeError, match=r"onclose\(code: int, reason: str\)"):
            @client.on("onclose")
            def three(code: int, reason: str, extra: Any) -> None:
                pass
        with pytest.raises(TypeError, match="keyword argument 'verbose'"):
            client.on("onopen", lambda *, verbose: None)
        with pytest.raises(TypeError, match="coroutine function"):
            async def handler() -> None:
                pass
            client.on("onopen", handler)
        # Accepted: fewer, defaults, *args, partials, bound methods, C callables.
        client.on("ontranscript", lambda text, payload, extra=None: None)
        client.on("ontranscript", lambda *args: None)
        client.on("ontranscript", functools.partial(lambda prefix, text: None, "p"))
        client.on("ontranscript", [].append)
        client.on("ontranscript", print)


def test_handlers_get_the_leading_arguments_they_take(millis, devserver):
    """The issue's case: web SDK handlers (onready with no argument, onclose and
    useraudioready with the one object the web SDK gives) run, and the program sees its
    ready and its close."""
    got: Dict[str, List[Any]] = {"ready": [], "close": [], "transcript": [], "stream": [], "both": []}
    closed = threading.Event()
    with millis.Client(PUBLIC_KEY, devserver.url, audio_mode="application") as client:
        client.on("onready", lambda: got["ready"].append(True))
        client.on("onready", lambda: client.stop())
        client.on("ontranscript", lambda text: got["transcript"].append(text))
        client.on("useraudioready", lambda data: got["stream"].append(data.stream["source"]))
        client.on("onclose", lambda code, reason: got["both"].append(code))
        client.on("onclose", lambda event: (got["close"].append((event.code, event.reason)), closed.set()))
        client.start("quick-agent")
        assert closed.wait(15), got
    assert got["ready"] == [True] and got["both"] == [1000], got
    assert len(got["close"]) == 1 and got["close"][0][0] == 1000, got
    assert isinstance(got["close"][0][1], str), got
    assert got["stream"] == ["application"], got


def test_help_lists_the_events_and_their_arguments(millis):
    text = pydoc.render_doc(millis.Client, renderer=pydoc.plaintext)
    for signature in ("onready(session_id: str)", "onclose(code: int, reason: str)",
                      "ontranscript(text: str, payload: {'is_final': bool})",
                      "analyzer(analyser: Analyser)",
                      "useraudioready(analyser: Analyser, stream: dict)"):
        assert signature in text, signature
    from millis.aio import AsyncClient
    assert "onready(session_id: str)" in pydoc.render_doc(AsyncClient, renderer=pydoc.plaintext)


# --- start ---------------------------------------------------------------------------------

def test_start_options_keywords_and_one_dict_give_the_same_object(millis):
    from millis.client import start_options

    web = {"agent": {"agent_id": "a", "agent_config": {"prompt": "p"}}, "metadata": {"m": 1},
           "include_metadata_in_prompt": True, "session_continuation": {"session_id": "s"}}
    assert json.loads(start_options(web)) == web
    assert json.loads(start_options(
        agent={"agent_id": "a", "agent_config": {"prompt": "p"}}, metadata={"m": 1},
        include_metadata_in_prompt=True, session_continuation={"session_id": "s"})) == web
    assert json.loads(start_options("a", agent_config={"prompt": "p"}, metadata={"m": 1},
                                    include_metadata_in_prompt=True, session_id="s")) == web
    with pytest.raises(TypeError, match="either as one dict or as keywords"):
        start_options(web, metadata={})
    with pytest.raises(TypeError, match="agent_id given twice"):
        start_options("b", agent={"agent_id": "a"})
    with pytest.raises(TypeError, match="JSON"):
        start_options(agent={"agent_id": "a"}, metadata={"f": object()})
    with pytest.raises(TypeError, match="agent id"):
        start_options(42)  # type: ignore[arg-type]


def test_start_with_the_web_sdk_object(millis, devserver):
    closed = threading.Event()
    with millis.Client(PUBLIC_KEY, devserver.url, audio_mode="application") as client:
        ready: List[str] = []
        client.on("onready", lambda session_id: (ready.append(session_id), client.stop()))
        client.on("onclose", lambda *a: closed.set())
        client.start({"agent": {"agent_id": "quick-agent"}, "metadata": {"call": 7}})
        assert closed.wait(15)
    assert client.last_close is not None and client.last_close[0] == 1000
    data = devserver.record(ready[0])["initiate"]["data"]
    assert data["agent"] == {"agent_id": "quick-agent"} and data["metadata"] == {"call": 7}


# --- Config, enums -------------------------------------------------------------------------

def test_config_and_keywords(millis):
    config = millis.Config(audio_mode="application", audio_encoding="mulaw", frame_ms=40)
    with millis.Client(PUBLIC_KEY, config=config, dispatch="manual", frame_ms=20) as client:
        assert client.config.frame_ms == 20 and client.config.audio_encoding == "mulaw"
        assert client.audio_mode == millis.AudioMode.APPLICATION
    assert config.frame_ms == 40  # the caller's Config is not changed
    with pytest.raises(TypeError, match="unknown setting frame_size.*frame_ms"):
        millis.Client(PUBLIC_KEY, frame_size=20)
    with pytest.raises(TypeError, match="millis.Config"):
        millis.Client(PUBLIC_KEY, config={"frame_ms": 20})  # type: ignore[arg-type]


def test_states_are_enums_equal_to_the_old_strings(millis):
    with millis.Client(PUBLIC_KEY, dispatch="manual") as client:
        state = client.connection_state
        assert state is millis.ConnectionState.IDLE and state == "idle" and str(state) == "idle"
        assert int(state) == 0
        assert client.agent_state is millis.AgentState.IDLE and f"{client.agent_state}" == "idle"
    assert millis.AgentState.from_number(1) == "prepare_answer"


# --- send_audio ----------------------------------------------------------------------------

@pytest.fixture
def open_client(millis, devserver):
    """A client whose WebSocket is open (a quick agent that stays connected)."""
    with millis.Client(PUBLIC_KEY, devserver.url, audio_mode="application") as client:
        opened = threading.Event()
        client.on("onopen", opened.set)
        client.start("quick-agent")
        assert opened.wait(15)
        yield client
        client.stop()
        client.wait_closed(10)


def test_send_audio_accepts_pcm16_in_its_forms(open_client):
    samples = numpy.zeros(320, dtype=numpy.int16)
    assert open_client.send_audio(samples) is True
    assert open_client.send_audio(samples.reshape(320, 1)) is True
    assert open_client.send_audio(samples.astype("<i2")) is True
    assert open_client.send_audio(array.array("h", bytes(640))) is True
    assert open_client.send_audio(bytearray(640)) is True
    assert open_client.send_audio(memoryview(bytes(640))) is True
    assert open_client.send_audio(numpy.zeros((640, 2), dtype=numpy.int16)[:, 0].copy()) is True


@pytest.mark.parametrize("make, words", [
    (lambda np: np.zeros(320, dtype=np.float32), ("float32", "float", "int16")),
    (lambda np: np.zeros(320, dtype=np.float64), ("float64", "float", "int16")),
    (lambda np: np.zeros((320, 2), dtype=np.int16), ("(320, 2)", "2 channels", "mono")),
    (lambda np: np.zeros((2, 320), dtype=np.int16), ("(2, 320)", "320 channels", "mono")),
    (lambda np: np.zeros(320, dtype=np.int32), ("int32", "16-bit", "PCM16")),
    (lambda np: np.zeros(320, dtype=">i2"), (">i2", "little-endian", "PCM16")),
    (lambda np: array.array("f", [0.0] * 320), ("format 'f'", "float", "int16")),
    (lambda np: b"RIFF" + struct.pack("<I", 36 + 640) + b"WAVEfmt " + bytes(640),
     ("RIFF", "header", "readframes")),
])
def test_send_audio_refuses_what_would_go_out_as_noise(millis, open_client, make, words):
    with pytest.raises(millis.MillisError) as info:
        open_client.send_audio(make(numpy))
    assert info.value.status == millis.Status.INVALID_ARGUMENT
    for word in words:
        assert word in info.value.message, (word, info.value.message)
    assert "wanted" in info.value.message


def test_send_audio_not_started_apart_from_not_ready(millis):
    with millis.Client(PUBLIC_KEY, "ws://127.0.0.1:9/millis", audio_mode="application",
                       dispatch="manual") as client:
        with pytest.raises(millis.MillisError, match="not started") as info:
            client.send_audio(bytes(FRAME_BYTES))
        assert info.value.status == millis.Status.INVALID_STATE
        with pytest.raises(TypeError, match="not a str"):
            client.send_audio("noise")
        with pytest.raises(TypeError, match="bytes-like"):
            client.send_audio(12)
        client.start("demo-agent")
        assert client.send_audio(bytes(FRAME_BYTES)) is False  # started, not open: not ready


def test_send_audio_mulaw_takes_bytes_and_uint8(millis, devserver):
    with millis.Client(PUBLIC_KEY, devserver.url, audio_mode="application",
                       audio_encoding="mulaw") as client:
        opened = threading.Event()
        client.on("onopen", opened.set)
        client.start("quick-agent")
        assert opened.wait(15)
        assert client.send_audio(b"\xff" * 160) is True
        assert client.send_audio(numpy.full(160, 0xFF, dtype=numpy.uint8)) is True
        with pytest.raises(millis.MillisError, match="MULAW.*one byte per sample"):
            client.send_audio(numpy.zeros(160, dtype=numpy.int16))
        client.stop()
        client.wait_closed(10)


# --- logging -------------------------------------------------------------------------------

def _conversation(millis, devserver, **settings: Any) -> List[Any]:
    with millis.Client(PUBLIC_KEY, devserver.url, audio_mode="application", **settings) as client:
        rec = Recorder(client)
        client.on("onready", lambda: client.stop())
        client.start("quick-agent")
        rec.wait_for("onclose")
        return rec.of("onlog")


def test_library_logs_reach_python_logging(millis, devserver, caplog):
    caplog.set_level(logging.DEBUG, logger="millis")
    onlog = _conversation(millis, devserver)  # the logger's DEBUG sets the library's
    records = [r for r in caplog.records if r.name == "millis"]
    assert records, "no library log line reached logging.getLogger('millis')"
    assert {r.levelno for r in records} <= {logging.DEBUG, logging.INFO, logging.WARNING,
                                            logging.ERROR}
    assert [r.getMessage() for r in records] == [message for _, message in onlog]
    for record, (level, _) in zip(records, onlog):
        assert record.levelname == {"DEBUG": "DEBUG", "INFO": "INFO", "WARN": "WARNING",
                                    "ERROR": "ERROR"}[level.name]


def test_python_logging_false_leaves_logs_to_onlog(millis, devserver, caplog):
    caplog.set_level(logging.DEBUG, logger="millis")
    onlog = _conversation(millis, devserver, python_logging=False, log_level="debug")
    assert onlog, "onlog got nothing at log_level debug"
    assert not [r for r in caplog.records if r.name == "millis"]


# --- versions ------------------------------------------------------------------------------

def test_import_refuses_a_library_of_another_version(millis, repo_root, library_path, tmp_path):
    """A package built as version 9.9.9 that finds only this library fails to import,
    naming both versions."""
    import shutil
    import subprocess
    import sys

    site = tmp_path / "site"
    shutil.copytree(repo_root / "bindings" / "python" / "millis", site / "millis")
    (site / "millis" / "_version.py").write_text('VERSION = "9.9.9"\n')  # as its build writes it
    # The suite's environment (a sanitizer run preloads its runtime), this copy first.
    env = dict(os.environ, MILLIS_LIBRARY=str(library_path), PYTHONPATH=str(site))
    result = subprocess.run([sys.executable, "-c", "import millis"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "ImportError" in result.stderr and "9.9.9" in result.stderr, result.stderr
    assert millis.version() in result.stderr, result.stderr


def test_aclosed_of_a_thread_client_is_woken_by_the_close(millis, devserver):
    """A thread-dispatched client's aclosed() waits on a future that the dispatch of
    onclose settles (call_soon_threadsafe), and close() settles it too."""
    import asyncio

    async def main() -> Any:
        with millis.Client(PUBLIC_KEY, devserver.url, audio_mode="application") as client:
            client.on("onready", client.stop)
            client.start("quick-agent")
            closed = await asyncio.wait_for(client.aclosed(), 15)
            waiters_after = len(client._aclose_waiters)
            client.start("fault-no-ready")
            pending = asyncio.ensure_future(client.aclosed())
            await asyncio.sleep(0.2)
            assert not pending.done()
            client.close()
            return closed, waiters_after, await asyncio.wait_for(pending, 5)

    closed, waiters_after, after_close = asyncio.run(main())
    assert closed is True and after_close is True and waiters_after == 0
