"""The binding in a child made by fork() after the parent used it (issue 13, point 5).

Python's multiprocessing forks by default on Linux; these tests ask for it explicitly
(``multiprocessing.get_context("fork")``). The parent holds a conversation (thread
dispatch: a dispatcher thread of the binding's, and the library's network thread, both
at work while a pacer thread streams audio into it); a Process of the fork context
then creates a client of its own and holds a short conversation with the devserver's
quick-agent, and checks that the parent's client, inherited, refuses its calls with
MillisError(INVALID_STATE) instead of hanging. The child reports through a Queue and
its exit code.

The deadlines only turn a hang into a failure (the unfixed library's child waited for
an onready that never came); nothing here bounds how long anything takes.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
import traceback

import pytest

from millis_testkit import FRAME_BYTES, PUBLIC_KEY

# ThreadSanitizer cannot follow a fork of a multi-threaded process (it ends the child:
# "starting new threads after multi-threaded fork is not supported"); ASan can.
pytestmark = pytest.mark.skipif(os.environ.get("MILLIS_SANITIZER") == "tsan",
                                reason="ThreadSanitizer does not support fork in a multi-threaded process")

EVENT_DEADLINE = 30.0  # seconds: one event of a conversation
CHILD_DEADLINE = 90.0  # seconds: a whole child


def converse(millis, url: str) -> dict:
    """A whole quick-agent conversation with a new client: onready, agent audio, stop,
    onclose. Returns what happened; raises AssertionError when an event does not come."""
    ready, audio, closed = threading.Event(), threading.Event(), threading.Event()
    out: dict = {"errors": [], "dispatch_threads": set()}

    def on_close(code, reason):
        out["close"] = code
        closed.set()

    with millis.Client(PUBLIC_KEY, url, audio_mode="application") as client:
        client.on("onready", lambda session_id: ready.set())
        client.on("onaudio", lambda pcm: audio.set())
        client.on("onclose", on_close)
        client.on("onerror", lambda err: out["errors"].append(str(err)))
        client.start(agent_id="quick-agent")
        assert ready.wait(EVENT_DEADLINE), f"no onready within {EVENT_DEADLINE} s ({out['errors']})"
        assert audio.wait(EVENT_DEADLINE), f"no agent audio within {EVENT_DEADLINE} s"
        out["state"] = client.connection_state
        client.stop()
        assert closed.wait(EVENT_DEADLINE), f"no onclose within {EVENT_DEADLINE} s after stop"
        assert client.wait_closed(EVENT_DEADLINE)
    out.pop("dispatch_threads")
    return out


def inherited_calls(millis, inherited) -> dict:
    """What the parent's client does in the child: each call's outcome."""
    outcomes = {}

    def attempt(name, call):
        try:
            value = call()
        except millis.MillisError as exc:
            outcomes[name] = ("error", exc.name, exc.message)
        else:
            outcomes[name] = ("value", value)

    attempt("stop", inherited.stop)
    attempt("start", lambda: inherited.start(agent_id="quick-agent"))
    attempt("send_audio", lambda: inherited.send_audio(bytes(FRAME_BYTES)))
    attempt("send_json", lambda: inherited.send_json({"method": "ping"}))
    attempt("mute", inherited.mute)
    attempt("stats", inherited.stats)
    attempt("agent_analyser", lambda: inherited.agent_analyser)
    attempt("connection_state", lambda: inherited.connection_state)
    attempt("wait_closed", lambda: inherited.wait_closed(5))
    attempt("close", inherited.close)
    return outcomes


def child_main(url: str, inherited, results) -> None:
    """The target of the forked Process."""
    try:
        import millis

        report = {"pid": os.getpid()}
        report["conversation"] = converse(millis, url)
        report["inherited"] = inherited_calls(millis, inherited)
        report["second_conversation"] = converse(millis, url)
        results.put(("ok", report))
    except BaseException:
        results.put(("error", traceback.format_exc()))
        raise


class ParentConversation:
    """The parent's client, ready, with a pacer thread streaming silence into it."""

    def __init__(self, millis, url: str):
        self.ready, self.closed = threading.Event(), threading.Event()
        self.errors: list = []
        self.close_code = None
        self.client = millis.Client(PUBLIC_KEY, url, audio_mode="application")
        self.client.on("onready", lambda session_id: self.ready.set())
        self.client.on("onclose", self._on_close)
        self.client.on("onerror", lambda err: self.errors.append(str(err)))
        self.client.start(agent_id="quick-agent")
        assert self.ready.wait(EVENT_DEADLINE), f"the parent's client: no onready ({self.errors})"
        self.pacing = True
        self.refused: list = []
        self.pacer = threading.Thread(target=self._pace, name="test-pacer", daemon=True)
        self.pacer.start()

    def _on_close(self, code, reason):
        self.close_code = code
        self.closed.set()

    def _pace(self):
        frame = bytes(FRAME_BYTES)
        stop = threading.Event()
        while self.pacing:
            if not self.client.send_audio(frame):
                self.refused.append("not ready")
            stop.wait(0.02)

    def finish(self):
        self.pacing = False
        self.pacer.join(EVENT_DEADLINE)
        assert not self.refused, f"the parent's client refused audio after the fork: {self.refused}"
        assert self.client.connection_state == "ready"
        assert not self.closed.is_set(), "the parent's conversation closed during the child's life"
        self.client.stop()
        assert self.closed.wait(EVENT_DEADLINE), "the parent's client: no onclose after stop"
        assert self.close_code == 1000
        assert not self.errors, self.errors
        self.client.close()


def run_child(ctx, url: str, inherited, before_fork=None, after_fork=None) -> dict:
    """Forks a Process running child_main; returns its report, or fails."""
    results = ctx.Queue()
    proc = ctx.Process(target=child_main, args=(url, inherited, results), name="millis-fork-child")
    if before_fork:
        before_fork()
    proc.start()
    if after_fork:
        after_fork()
    try:
        kind, report = results.get(timeout=CHILD_DEADLINE)
    except queue.Empty:
        proc.kill()
        proc.join(10)
        pytest.fail(f"the forked child reported nothing within {CHILD_DEADLINE} s (hung); "
                    f"killed, exit code {proc.exitcode}", pytrace=False)
    proc.join(CHILD_DEADLINE)
    if proc.exitcode is None:
        proc.kill()
        proc.join(10)
        pytest.fail("the forked child did not exit after reporting", pytrace=False)
    assert kind == "ok", f"the forked child failed:\n{report}"
    assert proc.exitcode == 0, f"the forked child exited {proc.exitcode}"
    assert report["pid"] != os.getpid()
    return report


def check_child_report(report: dict) -> None:
    for key in ("conversation", "second_conversation"):
        conversation = report[key]
        assert conversation["state"] == "ready", conversation
        assert conversation["close"] == 1000, conversation
        assert not conversation["errors"], conversation
    inherited = report["inherited"]
    for name in ("stop", "start", "send_audio", "send_json", "mute", "stats", "agent_analyser"):
        outcome = inherited[name]
        assert outcome[0] == "error" and outcome[1] == "INVALID_STATE", (name, outcome)
        assert "process" in outcome[2], (name, outcome)
    assert inherited["connection_state"] == ("value", "idle"), inherited
    assert inherited["wait_closed"] == ("value", True), inherited
    assert inherited["close"] == ("value", None), inherited


def test_forked_child_converses_and_parent_goes_on(millis, devserver):
    """multiprocessing (fork): the child's own clients converse, the parent's client
    refuses its calls there, and the parent's conversation goes on; a new client of the
    parent's works after the fork."""
    ctx = multiprocessing.get_context("fork")
    parent = ParentConversation(millis, devserver.url)
    try:
        report = run_child(ctx, devserver.url, parent.client)
        check_child_report(report)
        after = converse(millis, devserver.url)
        assert after["close"] == 1000 and after["state"] == "ready", after
    finally:
        try:
            parent.finish()
        finally:
            parent.client.close()


def test_forked_child_does_not_wait_for_locks_held_at_the_fork(millis, devserver):
    """The parent's client's locks are held by another thread at the moment of the fork
    (as by the dispatcher thread inside a dispatch, or an API call on another thread):
    in the child, that thread does not exist and the locks would stay held forever. The
    binding's os.register_at_fork hook gives the inherited client fresh ones, so its
    calls in the child raise at once instead of hanging."""
    ctx = multiprocessing.get_context("fork")
    parent = ParentConversation(millis, devserver.url)
    client = parent.client
    held, release, done = threading.Event(), threading.Event(), threading.Event()

    def holder():
        with client._lock, client._handlers_lock, client._cv, client._analyser_gate.use():
            held.set()
            release.wait(CHILD_DEADLINE)
        done.set()

    thread = threading.Thread(target=holder, name="test-lock-holder", daemon=True)
    thread.start()
    assert held.wait(EVENT_DEADLINE)
    try:
        report = run_child(ctx, devserver.url, client, after_fork=release.set)
        check_child_report(report)
    finally:
        release.set()
        assert done.wait(EVENT_DEADLINE)
        try:
            parent.finish()
        finally:
            client.close()
