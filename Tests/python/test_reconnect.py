"""Reconnection (issue 5): a dropped session is resumed with session_continuation.

Each test drives one devserver connection fault (devserver/README.md, "Connection
faults") and checks both what the client reported and that the process is left clean
(no fds or threads left over once the client is closed).

The contract (include/millis.h, millis_config_set_reconnect): a READY session whose
connection drops without a close frame, or closes with 1001/1011/1012/1013/1014, is
resumed: onreconnecting(attempt, delay) with delay in [initial/2, initial] for attempt
1, then onreconnected(same session id); no onerror, no second onopen/onready; the
connection state is "reconnecting" meanwhile and audio handed in is refused. Final
closes (1000, 4xxx), an ended session, stop() and max_attempts 0 do not reconnect.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from millis_testkit import PUBLIC_KEY, RecordedClient, SCRIPT_FINALS, read_wav

QUICK_AUDIO_BYTES = 5 * 640


@pytest.fixture(scope="module")
def user_pcm(repo_root: Path) -> bytes:
    return read_wav(repo_root / "bindings" / "audio" / "user.wav")


class Run(RecordedClient):
    """One client under test with everything observed about it."""

    def __init__(self, millis, devserver, recorder, pacer, state_sampler, **client_kw):
        self.millis = millis
        self.devserver = devserver
        self.mark = devserver.log_mark()
        self.client = millis.Client(PUBLIC_KEY, devserver.url, **client_kw)
        self.rec = recorder(self.client)
        self.pacer = pacer(self.client)
        self.sampler = state_sampler(self.client)
        self.times: dict = {}  # event name -> [monotonic time of each dispatch]
        self.state_at_reconnecting: list = []
        self.audio_accepted_at_reconnecting: list = []
        self.ready = threading.Event()
        self.client.on("onready", self._on_ready)
        self.client.on("onreconnecting", self._on_reconnecting)
        for name in ("onreconnected", "onclose", "onerror", "onsessionended"):
            self.client.on(name, self._timer(name))

    def _timer(self, name):
        def handler(*args):
            self.times.setdefault(name, []).append(time.monotonic())
        return handler

    def _on_ready(self, session_id):
        self.times.setdefault("onready", []).append(time.monotonic())
        if not self.pacer.is_alive() and not self.ready.is_set():
            self.pacer.start()
        self.ready.set()

    def _on_reconnecting(self, attempt, delay_ms):
        self.times.setdefault("onreconnecting", []).append(time.monotonic())
        self.state_at_reconnecting.append(self.client.connection_state)
        self.audio_accepted_at_reconnecting.append(self.client.send_audio(bytes(640)))

    def start(self, agent_id: str) -> None:
        self.sampler.start()
        self.client.start(agent_id=agent_id)

    def finish(self, process_health) -> None:
        """Stops the helpers, closes the client, checks the process and the server."""
        self.pacer.stop()
        self.sampler.stop()
        assert self.pacer.error is None, f"sending audio failed: {self.pacer.error!r}"
        self.client.close()
        process_health.check()
        self.devserver.assert_healthy(self.mark)

    def close_quietly(self) -> None:
        self.pacer.stop()
        self.sampler.stop()
        self.client.close()


@pytest.fixture
def run(millis, devserver, recorder, pacer, state_sampler, process_health):
    runs = []

    def make(**client_kw) -> Run:
        r = Run(millis, devserver, recorder, pacer, state_sampler, **client_kw)
        runs.append(r)
        return r

    yield make
    for r in runs:
        r.close_quietly()


def assert_reconnect_window(r: Run, initial_ms: int) -> None:
    """What must hold between the drop and onreconnected."""
    rec = r.rec
    sid = r.session_id
    assert rec.of("onreconnecting") and rec.of("onreconnecting")[0][0] == 1, rec.of("onreconnecting")
    assert len(rec.of("onreconnecting")) == 1, (
        f"one attempt should have been enough: {rec.of('onreconnecting')}")
    attempt, delay = rec.of("onreconnecting")[0]
    assert initial_ms / 2 <= delay <= initial_ms, (
        f"attempt 1 delay {delay} ms outside [{initial_ms / 2}, {initial_ms}] (jitter 0.5..1.0)")
    assert rec.of("onreconnected") == [(sid,)], rec.of("onreconnected")
    assert not rec.of("onerror"), f"a resumed drop is not an error: {r.errors()}"
    assert len(rec.of("onopen")) == 1 and len(rec.of("onready")) == 1, (
        f"onopen/onready must not repeat on reconnection: {rec.names()}")
    names = rec.names()
    assert names.index("onreconnecting") < names.index("onreconnected")
    t0, t1 = r.times["onreconnecting"][0], r.times["onreconnected"][0]
    # Audio handed in during the gap is refused.
    assert r.audio_accepted_at_reconnecting == [False], (
        "send_audio during the reconnection gap must return False (NOT_READY)")
    assert False in r.pacer.accepted_between(t0, t1), "no audio was refused during the gap"


def assert_reconnecting_state(r: Run) -> None:
    """connection_state is "reconnecting" from the drop until the session is back
    (checked last, after the process checks: the sampler's record outlives the client)."""
    assert r.state_at_reconnecting == ["reconnecting"], r.state_at_reconnecting
    t0, t1 = r.times["onreconnecting"][0], r.times["onreconnected"][0]
    between = r.sampler.between(t0, t1)
    assert "reconnecting" in between, between
    unexpected = sorted(set(between) - {"reconnecting", "ready"})
    assert not unexpected, (
        f"connection_state between onreconnecting and onreconnected was {unexpected} "
        f"(expected only 'reconnecting', then 'ready'): {collapse(between)}")


def collapse(states: list) -> list:
    out: list = []
    for s in states:
        if not out or out[-1] != s:
            out.append(s)
    return out


def assert_second_connection(r: Run, close_code: int = 1000) -> dict:
    sid = r.session_id
    first = r.devserver.connection_record(sid, 1)
    second = r.devserver.connection_record(sid, 2)
    assert first["initiate"]["data"].get("session_continuation") is None
    cont = second["initiate"]["data"].get("session_continuation")
    assert cont == {"session_id": sid}, f"the reconnection's initiate: {second['initiate']}"
    assert second["initiate"]["data"]["agent"] == first["initiate"]["data"]["agent"]
    # The resumed connection streams from its initiate on, before its onready, as the
    # web client does from a socket's opening.
    assert second["audio_bytes_received_before_ready"] > 0, second["audio_bytes_received_before_ready"]
    assert second["audio_bytes_received"] > 0, "no audio reached the resumed session"
    assert second["close"]["code"] == close_code, second["close"]
    assert not (r.devserver.record_dir / "connections" / f"{sid}.3.json").exists(), \
        "a third connection was made"
    return second


def resume_quick(r: Run, agent_id: str, initial_ms: int) -> None:
    """Runs a quick-agent resumption to the end: drop, reconnect, quick exchange, stop."""
    r.start(agent_id)
    r.rec.wait_for("onreconnected", timeout=15)
    r.rec.wait_for("onresponsetext", lambda text, p: text == "ok" and p["is_final"], timeout=10)
    assert r.rec.of("ontranscript") == [("quick", {"is_final": True})]
    # Audio flows again once the session is back.
    time.sleep(0.3)
    t1 = r.times["onreconnected"][0]
    after = r.pacer.accepted_between(t1 + 0.05, time.monotonic())
    assert after and all(after), "audio was refused after onreconnected"
    received = sum(len(a[0]) for a in r.rec.of("onaudio"))
    assert received == QUICK_AUDIO_BYTES, received
    r.client.stop()
    assert r.client.wait_closed(10), "no onclose after stop()"
    assert r.rec.of("onclose")[-1][0] == 1000, r.rec.of("onclose")
    assert len(r.rec.of("onclose")) == 1
    assert_reconnect_window(r, initial_ms)
    assert r.client.stats()["reconnects"] == 1
    assert_second_connection(r)


# --- faults that are resumed ---------------------------------------------------------


def test_reset_resumes_and_completes_demo_script(run, process_health, user_pcm):
    """fault-reset with the default configuration (5 attempts, 250 ms): the session is
    resumed and the scripted demo conversation then runs to its end."""
    r = run()
    r.start("fault-reset")
    r.rec.wait_for("onreconnected", timeout=15)
    r.pacer.feed(user_pcm)  # the user talks once the session is back
    assert r.client.wait_closed(60), f"the conversation did not end; events: {r.rec.names()}"
    finals = [text for text, p in r.rec.of("ontranscript") if p["is_final"]]
    assert finals == SCRIPT_FINALS, finals
    assert r.rec.of("onsessionended"), r.rec.names()
    assert r.rec.of("onclose") == [(1000, "session ended")], r.rec.of("onclose")
    assert_reconnect_window(r, 250)
    assert r.client.stats()["reconnects"] == 1
    second = assert_second_connection(r)
    assert second["close"]["by"] == "server"
    first = r.devserver.connection_record(r.session_id, 1)
    assert first["fault"]["kind"] == "reset" and first["close"]["by"] == "abrupt"
    r.finish(process_health)
    assert_reconnecting_state(r)


def test_abrupt_close_resumes(run, process_health):
    """fault-abrupt (FIN without a close frame) is resumed."""
    r = run(reconnect=(3, 100, 1000))
    resume_quick(r, "fault-abrupt-quick", 100)
    first = r.devserver.connection_record(r.session_id, 1)
    assert first["fault"]["kind"] == "abrupt"
    r.finish(process_health)
    assert_reconnecting_state(r)


@pytest.mark.parametrize("code", [1001, 1011, 1012, 1013, 1014])
def test_close_code_resumes(run, process_health, code):
    """A close frame with 1001 (going away) or 1011-1014 (server trouble) is resumed."""
    r = run(reconnect=(3, 100, 1000))
    resume_quick(r, f"fault-close-{code}-quick", 100)
    first = r.devserver.connection_record(r.session_id, 1)
    assert first["close"]["code"] == code and first["close"]["by"] == "server"
    r.finish(process_health)
    assert_reconnecting_state(r)


# --- faults that end the conversation ------------------------------------------------


def _no_second_connection(r: Run, wait: float = 0.8, reconnecting_reported: bool = False) -> None:
    time.sleep(wait)
    path = r.devserver.record_dir / "connections" / f"{r.session_id}.2.json"
    assert not path.exists(), "the client reconnected"
    assert not r.rec.of("onreconnected"), r.rec.names()
    if not reconnecting_reported:
        assert not r.rec.of("onreconnecting"), r.rec.names()


def test_close_1000_is_final(run, process_health):
    r = run(reconnect=(3, 100, 1000))
    r.start("fault-close-1000")
    assert r.client.wait_closed(10)
    assert r.rec.of("onclose") == [(1000, "fault 1000")], r.rec.of("onclose")
    assert not r.rec.of("onerror"), r.errors()
    _no_second_connection(r)
    r.finish(process_health)


@pytest.mark.parametrize("code", [4001, 4010])
def test_close_4xxx_is_server_closed(run, process_health, millis, code):
    r = run(reconnect=(3, 100, 1000))
    r.start(f"fault-close-{code}")
    assert r.client.wait_closed(10)
    errors = r.errors()
    assert len(errors) == 1 and errors[0].status == millis.Status.SERVER_CLOSED, errors
    assert str(code) in errors[0].message, errors[0].message
    assert r.rec.of("onclose") == [(code, f"fault {code}")], r.rec.of("onclose")
    names = r.rec.names()
    assert names.index("onerror") < names.index("onclose") == len(names) - 1, names
    _no_second_connection(r)
    r.finish(process_health)


def test_no_reconnect_after_session_ended(run, process_health):
    """fault-ended-reset: onsessionended, then the connection drops (RST): over."""
    r = run(reconnect=(3, 100, 1000))
    r.start("fault-ended-reset")
    assert r.client.wait_closed(10), r.rec.names()
    assert r.rec.of("onsessionended"), r.rec.names()
    assert len(r.rec.of("onclose")) == 1, r.rec.of("onclose")
    assert r.rec.names()[-1] == "onclose"
    _no_second_connection(r)
    r.finish(process_health)


def test_reconnect_attempts_run_out(run, process_health, millis):
    """fault-reset-always: every reconnection attempt is reset before onready."""
    r = run(reconnect=(2, 50, 100))
    r.start("fault-reset-always")
    assert r.client.wait_closed(15), r.rec.names()
    attempts = r.rec.of("onreconnecting")
    assert [a for a, _ in attempts] == [1, 2], attempts
    assert 25 <= attempts[0][1] <= 50 and 50 <= attempts[1][1] <= 100, attempts
    errors = r.errors()
    assert len(errors) == 1 and errors[0].status == millis.Status.CONNECTION_LOST, errors
    assert len(r.rec.of("onclose")) == 1 and r.rec.of("onclose")[0][0] == 1006, r.rec.of("onclose")
    assert not r.rec.of("onreconnected")
    names = r.rec.names()
    assert names[-2:] == ["onerror", "onclose"], names
    assert len(r.rec.of("onopen")) == 1 and len(r.rec.of("onready")) == 1, names
    sid = r.session_id
    for n in (2, 3):
        rec = r.devserver.connection_record(sid, n)
        assert rec["initiate"]["data"]["session_continuation"] == {"session_id": sid}
        assert rec["fault"]["continued"] is True
    assert r.client.stats()["reconnects"] == 0
    r.finish(process_health)


def test_reconnect_disabled(run, process_health, millis):
    """max_attempts 0: a reset is a lost connection."""
    r = run(reconnect=(0, 250, 8000))
    r.start("fault-reset")
    assert r.client.wait_closed(10), r.rec.names()
    errors = r.errors()
    assert len(errors) == 1 and errors[0].status == millis.Status.CONNECTION_LOST, errors
    assert [c for c, _ in r.rec.of("onclose")] == [1006], r.rec.of("onclose")
    _no_second_connection(r, wait=0.5)
    r.finish(process_health)


def test_stop_during_reconnect_wait(run, process_health):
    """stop() while waiting for the next attempt: onclose at once, no reconnection."""
    r = run(reconnect=(3, 3000, 6000))
    r.start("fault-reset")
    _, delay = r.rec.wait_for("onreconnecting", timeout=10)
    assert 1500 <= delay <= 3000, delay
    t_stop = time.monotonic()
    r.client.stop()
    assert r.client.wait_closed(10), f"no onclose after stop() during the reconnect wait; events: {r.rec.names()}"
    # Closed without waiting for the attempt: no reconnection event came before it.
    assert r.times["onclose"][0] >= t_stop
    assert len(r.rec.of("onreconnecting")) == 1 and not r.rec.of("onreconnected"), r.rec.names()
    assert len(r.rec.of("onclose")) == 1
    # Wait past the moment the attempt would have been made.
    remaining = r.times["onreconnecting"][0] + delay / 1000 + 0.7 - time.monotonic()
    _no_second_connection(r, wait=max(remaining, 0.2), reconnecting_reported=True)
    r.finish(process_health)
