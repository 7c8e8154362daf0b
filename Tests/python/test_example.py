"""bindings/python/examples/conversation.py holds a whole conversation and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
import wave

from millis_testkit import PUBLIC_KEY


def test_example_conversation(repo_root, library_path, devserver, tmp_path):
    out = tmp_path / "agent.wav"
    env = dict(os.environ, MILLIS_LIBRARY=str(library_path), MILLIS_PUBLIC_KEY=PUBLIC_KEY)
    proc = subprocess.run(
        [sys.executable, str(repo_root / "bindings" / "python" / "examples" / "conversation.py"),
         "--endpoint", devserver.url, "--agent-id", "demo-agent", "--output", str(out),
         "--timeout", "60"],
        cwd=str(repo_root), env=env, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    lines = proc.stdout.splitlines()
    ready = [line for line in lines if "] onready " in line]
    assert len(ready) == 1, proc.stdout[-3000:]
    session_id = ready[0].split("session_id=")[1].strip().strip("'")
    for event in ("onopen", "ontranscript", "onresponsetext", "onfunction", "onlatency",
                  "onagentstate", "onsessionended", "onclose 1000"):
        assert any(f"] {event}" in line for line in lines), f"{event} not printed"
    record = devserver.record(session_id)
    with wave.open(str(out), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
        assert w.getnframes() * 2 == record["agent_audio_bytes_sent"]
    assert len(record["user_turns"]) == 2
    assert record["audio_bytes_received_before_ready"] == 0


def test_example_bridge(repo_root, library_path, devserver):
    """bindings/python/examples/bridge.py: 20 µ-law calls in one event loop, each
    answered and closed normally."""
    env = dict(os.environ, MILLIS_LIBRARY=str(library_path), MILLIS_PUBLIC_KEY=PUBLIC_KEY)
    proc = subprocess.run(
        [sys.executable, str(repo_root / "bindings" / "python" / "examples" / "bridge.py"),
         "--endpoint", devserver.url, "--agent-id", "demo-agent", "--calls", "20",
         "--timeout", "60"],
        cwd=str(repo_root), env=env, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "20 of 20 calls answered" in proc.stdout, proc.stdout[-3000:]
