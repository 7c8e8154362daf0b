"""The public key never reaches a log (issue 5): a DEBUG-level client goes through a
conversation, a reconnection and errors with a unique key, and no log line, error
message or close reason holds it, while the redacted initiate is logged."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture(scope="module")
def secret_key() -> str:
    return f"pk-SECRET-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def secret_devserver(devserver_factory, secret_key):
    # --log-level debug: the devserver's own debug log must not show the key either.
    return devserver_factory("--public-key", secret_key, "--log-level", "debug")


def _texts(rec) -> list:
    """Every string the client produced through its events."""
    out = [m for _, m in rec.of("onlog")]
    out += [a[0].message for a in rec.of("onerror")]
    out += [reason for _, reason in rec.of("onclose")]
    return out


def test_public_key_never_logged(millis, secret_devserver, secret_key, recorder, process_health):
    mark = secret_devserver.log_mark()
    secret_part = secret_key.split("-")[-1]
    client = millis.Client(secret_key, secret_devserver.url, log_level="debug",
                           reconnect=(3, 100, 1000))
    rec = recorder(client)
    try:
        # 1. A quick-agent conversation.
        client.start(agent_id="quick-agent")
        rec.wait_for("onresponsetext", lambda text, p: text == "ok", timeout=10)
        client.stop()
        assert client.wait_closed(10)
        assert not rec.of("onerror"), [str(a[0]) for a in rec.of("onerror")]

        # 2. A reconnection: initiate is sent again, with session_continuation.
        client.start(agent_id="fault-reset-quick")
        rec.wait_for("onreconnected", timeout=10)
        rec.wait_for("ontranscript", lambda text, p: text == "quick", timeout=10)
        client.stop()
        assert client.wait_closed(10)

        # 3. An error from the server (close 4001).
        client.start(agent_id="fault-close-4001")
        assert client.wait_closed(10)
        assert [a[0].status for a in rec.of("onerror")] == [millis.Status.SERVER_CLOSED]
        last_error = client.last_error
    finally:
        client.close()

    # 4. A connection error (nothing listens on port 1), another client, same key.
    other = millis.Client(secret_key, "ws://127.0.0.1:1/millis", log_level="debug")
    rec2 = recorder(other)
    try:
        other.start(agent_id="quick-agent")
        assert other.wait_closed(10)
        assert [a[0].status for a in rec2.of("onerror")] == [millis.Status.CONNECT], rec2.names()
    finally:
        other.close()

    texts = _texts(rec) + _texts(rec2) + [last_error]
    leaks = [t for t in texts if secret_key in t or secret_part in t]
    assert not leaks, f"the public key appears in client output: {leaks[:5]}"

    debug = [m for level, m in rec.of("onlog") if level == millis.LogLevel.DEBUG]
    initiates = [m for m in debug if '"initiate"' in m]
    assert len(initiates) >= 3, f"the initiate messages are not in the debug log: {debug[:20]}"
    assert all("public_key" in m for m in initiates), initiates
    assert any("session_continuation" in m for m in initiates), initiates

    server_log = secret_devserver.log_path.read_text(errors="replace")
    assert secret_part not in server_log, "the devserver logged the public key"
    process_health.check()
    secret_devserver.assert_healthy(mark)
