"""Every bad input: the documented status, and a message that helps."""

from __future__ import annotations

import ctypes
import socket
import threading
import time

import pytest

from millis_testkit import FRAME_BYTES, PUBLIC_KEY, Recorder

OK, INVALID_ARGUMENT, INVALID_JSON, INVALID_STATE, NOT_READY = 0, 1, 2, 3, 4


def mentions(message: str, *words: str) -> bool:
    low = message.lower()
    return any(w.lower() in low for w in words)


@pytest.fixture(scope="module")
def native(millis):
    return millis._native


@pytest.fixture
def lib(native):
    return native.lib


@pytest.fixture
def raw_client(lib, native):
    """A native client made through the raw layer (no callbacks), destroyed after."""
    cfg = lib.millis_config_create()
    assert cfg
    assert lib.millis_config_set_public_key(cfg, PUBLIC_KEY.encode()) == OK
    err = ctypes.c_int(-1)
    c = lib.millis_client_create(cfg, ctypes.byref(err))
    lib.millis_config_destroy(cfg)
    assert c and err.value == OK
    yield c
    lib.millis_client_destroy(c)


def last_error(lib, c) -> str:
    raw = lib.millis_client_last_error(c)
    assert raw is not None, "millis_client_last_error returned NULL for a live client"
    return raw.decode()


# --- NULL handles and strings through the raw layer ------------------------------------

CALLBACK_SETTERS = [
    ("millis_client_on_open", "OPEN_CB"),
    ("millis_client_on_ready", "READY_CB"),
    ("millis_client_on_session_ended", "SESSION_ENDED_CB"),
    ("millis_client_on_audio", "AUDIO_CB"),
    ("millis_client_on_response_text", "RESPONSE_TEXT_CB"),
    ("millis_client_on_transcript", "TRANSCRIPT_CB"),
    ("millis_client_on_function", "FUNCTION_CB"),
    ("millis_client_on_latency", "LATENCY_CB"),
    ("millis_client_on_agent_state", "AGENT_STATE_CB"),
    ("millis_client_on_close", "CLOSE_CB"),
    ("millis_client_on_error", "ERROR_CB"),
    ("millis_client_on_message", "MESSAGE_CB"),
    ("millis_client_on_log", "LOG_CB"),
]


def test_null_config_handle(lib):
    lib.millis_config_destroy(None)  # no-op
    assert lib.millis_config_last_error(None) is None
    assert lib.millis_config_set_public_key(None, b"k") == INVALID_ARGUMENT
    assert lib.millis_config_set_endpoint(None, b"ws://h/millis") == INVALID_ARGUMENT
    assert lib.millis_config_set_log_level(None, 1) == INVALID_ARGUMENT
    assert lib.millis_config_set_audio_mode(None, 0) == INVALID_ARGUMENT
    assert lib.millis_config_set_frame_ms(None, 20) == INVALID_ARGUMENT
    assert lib.millis_config_set_max_message_bytes(None, 4096) == INVALID_ARGUMENT
    assert lib.millis_config_set_ready_timeout_ms(None, 1000) == INVALID_ARGUMENT
    assert lib.millis_config_add_header(None, b"Origin", b"https://example.com") == INVALID_ARGUMENT
    assert lib.millis_config_clear_headers(None) == INVALID_ARGUMENT
    err = ctypes.c_int(-1)
    assert not lib.millis_client_create(None, ctypes.byref(err))
    assert err.value == INVALID_ARGUMENT
    assert not lib.millis_client_create(None, None)


def test_null_strings_on_config(lib):
    cfg = lib.millis_config_create()
    try:
        assert lib.millis_config_last_error(cfg) == b""
        assert lib.millis_config_set_public_key(cfg, None) == INVALID_ARGUMENT
        assert mentions(lib.millis_config_last_error(cfg).decode(), "public key", "public_key")
        assert lib.millis_config_set_endpoint(cfg, None) == OK  # restores the default
        assert lib.millis_config_add_header(cfg, None, b"x") == INVALID_ARGUMENT
        assert mentions(lib.millis_config_last_error(cfg).decode(), "name", "null")
        assert lib.millis_config_add_header(cfg, b"Origin", None) == INVALID_ARGUMENT
        assert mentions(lib.millis_config_last_error(cfg).decode(), "value", "null")
        err = ctypes.c_int(-1)
        assert not lib.millis_client_create(cfg, ctypes.byref(err))  # still no key
        assert err.value == INVALID_ARGUMENT
        assert mentions(lib.millis_config_last_error(cfg).decode(), "public key", "public_key")
    finally:
        lib.millis_config_destroy(cfg)


def test_null_client_handle(lib, native):
    lib.millis_client_destroy(None)  # no-op
    lib.millis_free(None)  # no-op
    assert lib.millis_client_last_error(None) is None
    assert lib.millis_client_start(None, b'{"agent":{"agent_id":"a"}}') == INVALID_ARGUMENT
    assert lib.millis_client_start_agent(None, b"a") == INVALID_ARGUMENT
    assert lib.millis_client_stop(None) == INVALID_ARGUMENT
    assert lib.millis_client_mute(None) == INVALID_ARGUMENT
    assert lib.millis_client_unmute(None) == INVALID_ARGUMENT
    assert lib.millis_client_is_muted(None) == 0
    assert lib.millis_client_send_audio(None, bytes(640), 640) == INVALID_ARGUMENT
    assert lib.millis_client_send_json(None, b'{"method":"x"}') == INVALID_ARGUMENT
    assert lib.millis_client_session_id(None) is None
    assert lib.millis_client_connection_state(None) == 0
    assert lib.millis_client_agent_state(None) == 0
    assert lib.millis_client_stats_json(None) is None
    for setter, cb_type in CALLBACK_SETTERS:
        cb = getattr(native, cb_type)()  # a NULL function pointer of the right type
        assert getattr(lib, setter)(None, cb, None) == INVALID_ARGUMENT, setter


def test_null_arguments_on_client(lib, native, raw_client):
    c = raw_client
    assert last_error(lib, c) == ""
    assert lib.millis_client_start(c, None) == INVALID_ARGUMENT
    assert mentions(last_error(lib, c), "options", "null")
    assert lib.millis_client_start_agent(c, None) == INVALID_ARGUMENT
    assert mentions(last_error(lib, c), "agent", "null")
    assert lib.millis_client_start_agent(c, b"") == INVALID_ARGUMENT
    assert mentions(last_error(lib, c), "agent", "empty")
    assert lib.millis_client_send_audio(c, None, 640) == INVALID_ARGUMENT
    assert mentions(last_error(lib, c), "pcm", "null", "audio")
    assert lib.millis_client_send_json(c, None) == INVALID_ARGUMENT
    assert mentions(last_error(lib, c), "json", "null")
    for setter, cb_type in CALLBACK_SETTERS:  # NULL callback = remove: OK
        assert getattr(lib, setter)(c, getattr(native, cb_type)(), None) == OK, setter


def test_static_strings(lib):
    assert lib.millis_status_string(0)
    assert lib.millis_status_string(INVALID_JSON)
    assert lib.millis_status_string(9999) == b"unknown status"
    assert lib.millis_agent_state_string(99) is not None
    assert lib.millis_connection_state_string(99) is not None
    assert [lib.millis_agent_state_string(i) for i in range(4)] == [
        b"idle", b"prepare_answer", b"answer", b"pause"]
    assert [lib.millis_connection_state_string(i) for i in range(5)] == [
        b"idle", b"connecting", b"open", b"ready", b"closing"]


# --- options JSON --------------------------------------------------------------------------

@pytest.mark.parametrize("options, words", [
    ('{"agent": ', ("json",)),
    ("not json at all", ("json",)),
    ("[1, 2]", ("object",)),
    ('{"metadata": {"a": 1}}', ("agent",)),
    ('{"agent": {}}', ("agent_id", "agent_config")),
    ('{"agent": {"agent_id": ""}}', ("agent_id",)),
    ('{"agent": {"agent_id": 42}}', ("agent_id",)),
    ('{"agent": "demo-agent"}', ("agent",)),
    ('{"agent": {"agent_config": "x"}}', ("agent_config",)),
    ('{"agent": {"agent_id": "demo-agent"}, "public_key": "k"}', ("public_key",)),
])
def test_invalid_options(millis, options, words):
    with millis.Client(PUBLIC_KEY, "ws://127.0.0.1:1/millis", dispatch="manual") as client:
        with pytest.raises(millis.MillisError) as info:
            client.start_raw(options)
        err = info.value
        assert err.status == millis.Status.INVALID_JSON, err
        assert err.name == "INVALID_JSON"
        assert mentions(err.message, *words), f"{err.message!r} names none of {words}"
        assert client.last_error == err.message
        assert client.connection_state == "idle"


def test_start_without_agent_via_keywords(millis):
    with millis.Client(PUBLIC_KEY, dispatch="manual") as client:
        with pytest.raises(millis.MillisError) as info:
            client.start(metadata={"a": 1})
        assert info.value.status == millis.Status.INVALID_JSON
        assert mentions(info.value.message, "agent")


# --- config -----------------------------------------------------------------------------

def test_empty_public_key(millis):
    with pytest.raises(millis.MillisError) as info:
        millis.Client("")
    assert info.value.status == millis.Status.INVALID_ARGUMENT
    assert mentions(info.value.message, "public key", "public_key")


@pytest.mark.parametrize("endpoint, words", [
    ("http://127.0.0.1:8765/millis", ("ws://", "scheme")),
    ("127.0.0.1:8765/millis", ("ws://", "scheme")),
    ("ws://", ("host",)),
    ("ws:///millis", ("host",)),
    ("ws://127.0.0.1:99999/millis", ("port",)),
    ("ws://127.0.0.1:abc/millis", ("port",)),
    ("ws://127.0.0.1:/millis", ("port",)),
    ("ws://127.0.0.1:8765/mil lis", ("space", "character", "whitespace")),
    ("ws://exa mple.com/millis", ("space", "character", "whitespace")),
    ("ws://127.0.0.1:8765/millis\n", ("character", "control", "whitespace")),
])
def test_malformed_endpoint(millis, endpoint, words):
    with pytest.raises(millis.MillisError) as info:
        millis.Client(PUBLIC_KEY, endpoint)
    err = info.value
    assert err.status == millis.Status.INVALID_ARGUMENT, err
    assert mentions(err.message, *words), f"{err.message!r} names none of {words}"


def test_bad_endpoint_keeps_previous_value(millis, native, devserver):
    """A refused endpoint leaves the previous one in place: the client still reaches
    the devserver."""
    lib = native.lib
    cfg = lib.millis_config_create()
    try:
        assert lib.millis_config_set_public_key(cfg, PUBLIC_KEY.encode()) == OK
        assert lib.millis_config_set_endpoint(cfg, devserver.url.encode()) == OK
        assert lib.millis_config_set_endpoint(cfg, b"http://nowhere/x") == INVALID_ARGUMENT
        assert lib.millis_config_last_error(cfg).decode()
        opened = threading.Event()
        closed = threading.Event()
        open_cb = native.OPEN_CB(lambda c, ud: opened.set())
        close_cb = native.CLOSE_CB(lambda c, code, reason, ud: closed.set())
        c = lib.millis_client_create(cfg, None)
        assert c
        try:
            assert lib.millis_client_on_open(c, open_cb, None) == OK
            assert lib.millis_client_on_close(c, close_cb, None) == OK
            assert lib.millis_client_start_agent(c, b"demo-agent") == OK
            assert opened.wait(10), "did not connect to the previously set endpoint"
            assert lib.millis_client_stop(c) == OK
            assert closed.wait(10)
        finally:
            lib.millis_client_destroy(c)
    finally:
        lib.millis_config_destroy(cfg)


@pytest.mark.parametrize("kwargs, words", [
    ({"frame_ms": 4}, ("frame",)),
    ({"frame_ms": 201}, ("frame",)),
    ({"frame_ms": 0}, ("frame",)),
    ({"max_message_bytes": 1023}, ("message", "size", "bytes")),
    ({"max_message_bytes": 64 * 1024 * 1024 + 1}, ("message", "size", "bytes")),
    ({"ready_timeout_ms": 99}, ("timeout", "ready")),
    ({"ready_timeout_ms": 600_001}, ("timeout", "ready")),
    ({"log_level": 5}, ("level", "log")),
    ({"log_level": -1}, ("level", "log")),
    ({"audio_mode": 3}, ("mode", "audio")),
])
def test_config_out_of_range(millis, kwargs, words):
    with pytest.raises(millis.MillisError) as info:
        millis.Client(PUBLIC_KEY, **kwargs)
    err = info.value
    assert err.status == millis.Status.INVALID_ARGUMENT, err
    assert mentions(err.message, *words), f"{err.message!r} names none of {words}"


def test_config_limits_accepted(millis):
    for kwargs in ({"frame_ms": 5}, {"frame_ms": 200}, {"max_message_bytes": 1024},
                   {"max_message_bytes": 64 * 1024 * 1024}, {"ready_timeout_ms": 100},
                   {"ready_timeout_ms": 600_000}, {"log_level": "debug"},
                   {"audio_mode": millis.AudioMode.APPLICATION}):
        millis.Client(PUBLIC_KEY, dispatch="manual", **kwargs).close()


# --- extra upgrade headers ------------------------------------------------------------------

# (headers, words that must all be in the message, words of which one must be)
BAD_HEADERS = [
    pytest.param({"X-Header": "a\r\nHost: evil.example"}, ("X-Header",),
                 ("control", "CR", "line break", "U+000D"), id="CRLF-in-value"),
    pytest.param({"X-Header": "a\nb"}, ("X-Header",), ("control", "LF", "line break", "U+000A"),
                 id="LF-in-value"),
    pytest.param({"X-Header": "a\rb"}, ("X-Header",), ("control", "CR", "U+000D"), id="CR-in-value"),
    pytest.param({"Host": "evil.example"}, ("Host",), ("reserved", "handshake", "cannot be set"),
                 id="Host"),
    pytest.param({"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}, ("Sec-WebSocket-Key",),
                 ("reserved", "handshake", "cannot be set"), id="Sec-WebSocket-Key"),
    pytest.param({"connection": "close"}, ("connection",), ("reserved", "handshake", "cannot be set"),
                 id="connection-lowercase"),
    pytest.param({"": "x"}, (), ("name", "empty"), id="empty-name"),
    pytest.param({"X Header": "x"}, ("X Header",), ("name", "token", "space"), id="name-with-space"),
    pytest.param({"X-Header:": "x"}, (), ("name", "token", "colon"), id="name-with-colon"),
    pytest.param([("X-Header", "a\0b")], ("X-Header",), ("NUL", "U+0000"), id="NUL-in-value"),
    pytest.param([("X-H%d" % i, "v") for i in range(65)], ("64",), ("too many", "at most"),
                 id="65th-header"),
    pytest.param({"X-Long": "v" * 8193}, ("X-Long", "8192"), ("bytes", "at most", "long"),
                 id="value-8193-bytes"),
    pytest.param({"n" * 257: "x"}, ("256",), ("name",), id="name-257-bytes"),
]


@pytest.mark.parametrize("headers, all_words, any_words", BAD_HEADERS)
def test_bad_header(millis, headers, all_words, any_words):
    with pytest.raises(millis.MillisError) as info:
        millis.Client(PUBLIC_KEY, "ws://127.0.0.1:1/millis", headers=headers, dispatch="manual")
    err = info.value
    assert err.status == millis.Status.INVALID_ARGUMENT, err
    assert err.name == "INVALID_ARGUMENT"
    for word in all_words:
        assert word in err.message, f"{err.message!r} does not name {word!r}"
    assert mentions(err.message, *any_words), f"{err.message!r} names none of {any_words}"


def test_headers_accepted(millis):
    """A mapping and (name, value) pairs (a name repeated, a User-Agent, a tab, spaces to
    trim, the limits) make a client; test_wire.py checks what reaches the wire."""
    for headers in ({"Origin": "https://example.com", "X-Gateway": "eu-1"},
                    [("X-Tag", "a"), ("X-Tag", "b"), ("User-Agent", "bridge/2.0"),
                     ("X-Tab", "a\tb"), ("X-Spaces", "  padded  "), ("X-Empty", "")],
                    (("X-H%d" % i, "v") for i in range(64)),
                    {"n" * 256: "v" * 8192},
                    {}, []):
        millis.Client(PUBLIC_KEY, headers=headers, dispatch="manual").close()


@pytest.mark.parametrize("headers", ["Origin: https://example.com", b"Origin: x", 42,
                                     {"Origin": 1}, {b"Origin": "x"}, [("Origin",)],
                                     ["Origin"], [("Origin", "x", "y")]])
def test_headers_of_the_wrong_type(millis, headers):
    with pytest.raises(TypeError) as info:
        millis.Client(PUBLIC_KEY, headers=headers, dispatch="manual")
    assert mentions(str(info.value), "header"), str(info.value)


# --- state ------------------------------------------------------------------------------

def test_start_twice_is_invalid_state(millis, devserver):
    with millis.Client(PUBLIC_KEY, devserver.url) as client:
        rec = Recorder(client)
        client.start(agent_id="demo-agent")
        with pytest.raises(millis.MillisError) as info:
            client.start(agent_id="demo-agent")
        err = info.value
        assert err.status == millis.Status.INVALID_STATE, err
        assert mentions(err.message, "already", "under way", "in progress", "started",
                        "running"), err.message
        rec.wait_for("onready")
        client.stop()
        rec.wait_for("onclose")
        assert len(rec.of("onopen")) == 1


def test_stop_when_idle_is_ok_and_silent(millis, devserver):
    with millis.Client(PUBLIC_KEY, devserver.url) as client:
        rec = Recorder(client)
        client.stop()  # OK, nothing under way
        client.stop()
        client.start(agent_id="demo-agent")
        rec.wait_for("onready")
        client.stop()
        rec.wait_for("onclose")
        assert client.wait_closed(5)
        client.stop()  # idle again
    # Had the idle stops produced a close, it would have been dispatched first.
    assert len(rec.of("onclose")) == 1
    assert rec.names()[0] == "onopen"


def test_send_audio_before_open_is_not_ready(millis, native, devserver):
    """Audio is refused (NOT_READY, dropped and counted) until the WebSocket is open;
    from onopen on it is accepted, before the server's onready (as the web client
    streams it; tests/python/test_wire.py checks that it reaches the wire)."""
    with millis.Client(PUBLIC_KEY, devserver.url, ready_timeout_ms=5000,
                       audio_mode="application") as client:
        rec = Recorder(client)
        with pytest.raises(millis.MillisError) as info:  # never started: a mistake
            client.send_audio(bytes(FRAME_BYTES))
        assert info.value.status == millis.Status.INVALID_STATE
        assert "not started" in info.value.message
        raw = native.lib.millis_client_send_audio(client._handle, bytes(FRAME_BYTES), FRAME_BYTES)
        assert raw == NOT_READY
        assert mentions(client.last_error, "ready", "open")
        assert client.stats()["audio_frames_dropped"] > 0
        client.start(agent_id="fault-no-ready")
        rec.wait_for("onopen")
        assert client.connection_state == "open"
        assert client.send_audio(bytes(FRAME_BYTES)) is True  # open, no onready: accepted
        client.stop()
        rec.wait_for("onclose")


def test_send_audio_while_connecting_is_not_ready(millis, native):
    """A listener that accepts TCP and never answers the upgrade: the client stays
    connecting, and audio is refused, not queued for later."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        url = "ws://127.0.0.1:%d/millis" % listener.getsockname()[1]
        with millis.Client(PUBLIC_KEY, url, ready_timeout_ms=5000,
                           audio_mode="application") as client:
            client.start(agent_id="demo-agent")
            time.sleep(0.3)
            assert client.connection_state == "connecting"
            dropped = client.stats()["audio_frames_dropped"]
            raw = native.lib.millis_client_send_audio(client._handle, bytes(FRAME_BYTES), FRAME_BYTES)
            assert raw == NOT_READY
            assert mentions(client.last_error, "ready", "open", "connect"), client.last_error
            assert client.send_audio(bytes(FRAME_BYTES)) is False
            assert client.stats()["audio_frames_dropped"] >= dropped + 2


def test_send_audio_odd_byte_count(millis, devserver):
    with millis.Client(PUBLIC_KEY, devserver.url) as client:
        rec = Recorder(client)
        client.start(agent_id="demo-agent")
        rec.wait_for("onready")
        with pytest.raises(millis.MillisError) as info:
            client.send_audio(bytes(641))
        err = info.value
        assert err.status == millis.Status.INVALID_ARGUMENT, err
        assert mentions(err.message, "odd", "even"), err.message
        assert client.send_audio(bytearray(FRAME_BYTES)) is True
        assert client.send_audio(memoryview(bytes(FRAME_BYTES))) is True
        client.stop()
        rec.wait_for("onclose")


def test_send_json_invalid(millis, devserver):
    with millis.Client(PUBLIC_KEY, devserver.url) as client:
        rec = Recorder(client)
        with pytest.raises(millis.MillisError) as info:
            client.send_json({"method": "custom"})  # no WebSocket yet
        assert info.value.status == millis.Status.NOT_READY
        client.start(agent_id="demo-agent")
        rec.wait_for("onready")
        for bad, words in (('{"method": ', ("json",)), ("[1, 2]", ("object",)),
                           ("", ("json", "empty"))):
            with pytest.raises(millis.MillisError) as info:
                client.send_json(bad)
            assert info.value.status == millis.Status.INVALID_JSON, (bad, info.value)
            assert mentions(info.value.message, *words), info.value.message
        client.send_json({"method": "custom_method", "data": "fine"})
        client.stop()
        rec.wait_for("onclose")


def test_closed_client_raises(millis):
    client = millis.Client(PUBLIC_KEY, dispatch="manual")
    client.close()
    client.close()  # idempotent
    with pytest.raises(millis.MillisError) as info:
        client.start(agent_id="demo-agent")
    assert info.value.status == millis.Status.INVALID_STATE
    assert client.session_id is None and client.connection_state == "idle"


# --- asynchronous failures ------------------------------------------------------------------

def _session(millis, endpoint, agent_id, **kwargs):
    client = millis.Client(PUBLIC_KEY, endpoint, **kwargs)
    rec = Recorder(client)
    client.start(agent_id=agent_id)
    return client, rec


def test_unreachable_endpoint(millis):
    client, rec = _session(millis, "ws://127.0.0.1:1/millis", "demo-agent")
    with client:
        (err,) = rec.wait_for("onerror")
        assert err.status == millis.Status.CONNECT, err
        assert mentions(err.message, "127.0.0.1"), err.message
        code, _ = rec.wait_for("onclose")
        assert code == 1006
        assert rec.names() == ["onerror", "onclose"]


def test_handshake_http_status(millis, devserver):
    client, rec = _session(millis, devserver.base + "/status/403", "demo-agent")
    with client:
        (err,) = rec.wait_for("onerror")
        assert err.status == millis.Status.HANDSHAKE, err
        assert "403" in err.message, err.message
        code, _ = rec.wait_for("onclose")
        assert code == 1006
        assert rec.of("onopen") == []


def test_bad_public_key(millis, devserver):
    client = millis.Client("wrong-key", devserver.url)
    rec = Recorder(client)
    with client:
        client.start(agent_id="demo-agent")
        code, reason = rec.wait_for("onclose")
        assert code == 4001, (code, reason)
        assert rec.of("onready") == []
        for (err,) in rec.of("onerror"):
            assert err.status == millis.Status.SERVER_CLOSED, err
            assert "4001" in err.message, err.message


def test_unknown_agent(millis, devserver):
    client, rec = _session(millis, devserver.url, "no-such-agent")
    with client:
        code, reason = rec.wait_for("onclose")
        assert code == 4004, (code, reason)
        assert rec.of("onready") == []


def test_malformed_json_from_server(millis, devserver):
    client, rec = _session(millis, devserver.url, "fault-malformed-json")
    with client:
        (err,) = rec.wait_for("onerror")
        assert err.status == millis.Status.BAD_MESSAGE, err
        assert mentions(err.message, "json"), err.message
        text, payload = rec.wait_for("ontranscript", lambda t, p: t == "still here")
        rec.wait_for("onclose")
        # the bad message was not fatal: the transcript came after the error
        names = rec.names()
        assert names.index("onerror") < names.index("ontranscript") < names.index("onclose")
        assert len(rec.of("onerror")) == 1


def test_unknown_method_is_reemitted(millis, devserver):
    client, rec = _session(millis, devserver.url, "fault-unknown-method")
    with client:
        method, message = rec.wait_for("onmessage", lambda m, msg: m == "ai_action")
        assert isinstance(message, dict) and message["method"] == "ai_action"
        rec.wait_for("onclose")
        assert rec.of("onerror") == []
        sid = rec.of("onready")[0][0] if rec.of("onready") else None
    if sid:
        sent = [e for e in devserver.record(sid)["events_sent"] if e["method"] == "ai_action"]
        assert sent, "the devserver recorded no ai_action"
        assert message.get("data") == sent[0].get("data")
        assert message.get("payload") == sent[0].get("payload")


def test_odd_length_audio_from_server(millis, devserver):
    client, rec = _session(millis, devserver.url, "fault-odd-audio")
    with client:
        (err,) = rec.wait_for("onerror")
        assert err.status == millis.Status.BAD_MESSAGE, err
        assert "641" in err.message, err.message
        code, _ = rec.wait_for("onclose")
        assert all(len(a[0]) % 2 == 0 for a in rec.of("onaudio"))


def test_oversized_message(millis, devserver):
    client, rec = _session(millis, devserver.url, "fault-oversized")
    with client:
        (err,) = rec.wait_for("onerror", timeout=20)
        assert err.status == millis.Status.MESSAGE_TOO_BIG, err
        assert mentions(err.message, "1048576", "1 mib", "limit", "max", "large", "big",
                        "size"), err.message
        code, _ = rec.wait_for("onclose", timeout=20)
        assert code == 1009
        assert rec.of("onaudio") == []


def test_invalid_utf8_text_frame(millis, devserver):
    client, rec = _session(millis, devserver.url, "fault-invalid-utf8")
    with client:
        (err,) = rec.wait_for("onerror")
        assert err.status == millis.Status.PROTOCOL, err
        assert mentions(err.message, "utf-8", "utf8"), err.message
        code, _ = rec.wait_for("onclose")
        assert code == 1007


def test_ready_timeout(millis, devserver):
    client, rec = _session(millis, devserver.url, "fault-no-ready", ready_timeout_ms=1000)
    with client:
        rec.wait_for("onopen")
        (err,) = rec.wait_for("onerror", timeout=10)
        assert err.status == millis.Status.TIMEOUT, err
        assert mentions(err.message, "ready", "1000"), err.message
        rec.wait_for("onclose", timeout=10)
        assert rec.of("onready") == []


# --- re-entrancy from inside the C callbacks (raw layer) -----------------------------------

def _raw_session(native, endpoint, agent_id):
    lib = native.lib
    cfg = lib.millis_config_create()
    lib.millis_config_set_public_key(cfg, PUBLIC_KEY.encode())
    assert lib.millis_config_set_endpoint(cfg, endpoint.encode()) == OK
    c = lib.millis_client_create(cfg, None)
    lib.millis_config_destroy(cfg)
    assert c
    return c


def test_destroy_inside_ready_callback(native, devserver):
    lib = native.lib
    c = _raw_session(native, devserver.url, "demo-agent")
    address = ctypes.cast(c, ctypes.c_void_p).value
    done = threading.Event()
    after = []

    def on_ready(cp, sid, payload, ud):
        assert cp == address
        lib.millis_client_destroy(c)  # inside the callback, on the network thread
        done.set()

    def on_any(*args):
        if done.is_set():
            after.append(args)

    cbs = [native.READY_CB(on_ready), native.CLOSE_CB(lambda *a: on_any("close", *a)),
           native.AUDIO_CB(lambda *a: on_any("audio")),
           native.TRANSCRIPT_CB(lambda *a: on_any("transcript"))]
    assert lib.millis_client_on_ready(c, cbs[0], None) == OK
    assert lib.millis_client_on_close(c, cbs[1], None) == OK
    assert lib.millis_client_on_audio(c, cbs[2], None) == OK
    assert lib.millis_client_on_transcript(c, cbs[3], None) == OK
    assert lib.millis_client_start_agent(c, b"demo-agent") == OK
    assert done.wait(15), "onready never came"
    # The library is still alive and serves a new client afterwards.
    c2 = _raw_session(native, devserver.url, "demo-agent")
    opened = threading.Event()
    cb2 = native.OPEN_CB(lambda cp, ud: opened.set())
    assert lib.millis_client_on_open(c2, cb2, None) == OK
    assert lib.millis_client_start_agent(c2, b"demo-agent") == OK
    assert opened.wait(10)
    lib.millis_client_destroy(c2)
    assert after == [], f"callbacks ran after destroy: {after}"


def test_destroy_inside_close_callback(native):
    lib = native.lib
    c = _raw_session(native, "ws://127.0.0.1:1/millis", "demo-agent")
    done = threading.Event()
    seen = []

    def on_close(cp, code, reason, ud):
        seen.append(code)
        lib.millis_client_destroy(c)
        done.set()

    cb = native.CLOSE_CB(on_close)
    assert lib.millis_client_on_close(c, cb, None) == OK
    assert lib.millis_client_start_agent(c, b"demo-agent") == OK
    assert done.wait(15)
    assert seen == [1006]


def test_stop_inside_session_ended_callback(native, devserver):
    lib = native.lib
    c = _raw_session(native, devserver.url, "fault-unknown-method")
    results = []
    closes = []
    closed = threading.Event()

    def on_ended(cp, ud):
        results.append(lib.millis_client_stop(c))
        results.append(lib.millis_client_stop(c))

    def on_close(cp, code, reason, ud):
        closes.append(code)
        closed.set()

    cbs = [native.SESSION_ENDED_CB(on_ended), native.CLOSE_CB(on_close)]
    try:
        assert lib.millis_client_on_session_ended(c, cbs[0], None) == OK
        assert lib.millis_client_on_close(c, cbs[1], None) == OK
        assert lib.millis_client_start_agent(c, b"fault-unknown-method") == OK
        assert closed.wait(15), "no onclose after stop inside onsessionended"
        assert results == [OK, OK]
        assert closes == [1000]
        # Exactly one close, and the client can start again from idle.
        assert lib.millis_client_connection_state(c) == 0
    finally:
        lib.millis_client_destroy(c)


def test_close_inside_binding_handlers(millis, devserver):
    """Client.close() from inside onready and onclose handlers (dispatcher thread)."""
    client = millis.Client(PUBLIC_KEY, devserver.url)
    closed_in_handler = threading.Event()

    def on_ready(sid):
        client.close()
        closed_in_handler.set()

    client.on("onready", on_ready)
    client.start(agent_id="demo-agent")
    assert closed_in_handler.wait(15)
    assert client.closed
    assert client.wait_closed(1)

    client2 = millis.Client(PUBLIC_KEY, "ws://127.0.0.1:1/millis")
    done = threading.Event()
    client2.on("onclose", lambda code, reason: (client2.close(), done.set()))
    client2.start(agent_id="demo-agent")
    assert done.wait(15)
    assert client2.closed


def test_dropped_client_is_destroyed_and_collected(millis):
    """A client dropped without close(): __del__ destroys it, nothing keeps it alive,
    and the process survives the callbacks that were under way."""
    import gc
    import weakref

    for dispatch in ("thread", "manual"):
        client = millis.Client(PUBLIC_KEY, "ws://127.0.0.1:1/millis", dispatch=dispatch)
        client.on("onclose", lambda code, reason: None)
        client.start(agent_id="demo-agent")
        ref = weakref.ref(client)
        del client
        gc.collect()
        assert ref() is None, f"dispatch={dispatch}: the client was not collected"
