"""The binding is typed: py.typed, `mypy --strict` clean on the package and its
examples, and an application's mistakes are caught by mypy (typed events narrowed
with isinstance, enums returned, AsyncClient's coroutines)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

GOOD_APP = '''
import asyncio
from typing import Any, Dict, List, Optional

import millis
from millis.aio import AsyncClient


async def main() -> Optional[millis.Close]:
    config = millis.Config(audio_mode="application", audio_encoding="mulaw")
    async with AsyncClient("test-public-key", "ws://127.0.0.1:8765/millis",
                           config=config, log_level="debug") as client:
        client.on("onready", lambda: print("ready"))

        @client.on("ontranscript")
        async def transcript(text: str, payload: Dict[str, Any]) -> None:
            print(text, payload["is_final"])

        ready: millis.Ready = await client.start(agent={"agent_id": "demo-agent"})
        print(ready.session_id)
        accepted: bool = client.send_audio(b"\\xff" * 160)
        state: millis.ConnectionState = client.connection_state
        finals: List[str] = []
        async for event in client:
            if isinstance(event, millis.Transcript) and event.is_final:
                finals.append(event.text)
            elif isinstance(event, millis.FunctionCall):
                print(event.name, event.params)
            elif isinstance(event, millis.AgentStateChanged):
                if event.state == millis.AgentState.IDLE:
                    break
        print(accepted, state, finals)
        return await client.stop()


def threaded() -> None:
    with millis.Client("k", audio_mode=millis.AudioMode.APPLICATION) as client:
        client.on("onclose", lambda code, reason: print(code, reason))
        client.start({"agent": {"agent_id": "demo-agent"}, "metadata": {"call": 1}})
        client.wait_closed(10)
        agent: millis.AgentState = client.agent_state
        print(agent)


asyncio.run(main())
'''

# Each line is a mistake mypy must report (the error code it gives, in the comment).
BAD_APP = '''
import asyncio
import millis
from millis.aio import AsyncClient


async def main() -> None:
    async with AsyncClient("k") as client:
        ready = client.start("demo-agent")
        print(ready.session_id)  # attr-defined: start() is a coroutine, not awaited
        async for event in client:
            print(event.text)  # union-attr: not every event has a text
        n: int = client.connection_state  # assignment: a ConnectionState


asyncio.run(main())
'''


def _mypy(repo_root: Path, tmp_path: Path, *targets: str) -> subprocess.CompletedProcess:
    try:
        import mypy  # noqa: F401
    except ImportError:
        pytest.fail("mypy is not installed: `python3 -m pip install mypy` "
                    "(make test-deps installs it)", pytrace=False)
    env = dict(os.environ, MYPYPATH=str(repo_root / "bindings" / "python"))
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary",
         "--cache-dir", str(tmp_path / "mypy-cache"), *targets],
        cwd=str(repo_root / "bindings" / "python"), env=env,
        capture_output=True, text=True, timeout=600)


def test_package_ships_py_typed(repo_root):
    assert (repo_root / "bindings" / "python" / "millis" / "py.typed").is_file()


def test_mypy_strict_on_the_package_and_examples(repo_root, tmp_path):
    result = _mypy(repo_root, tmp_path, "millis", "examples")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_on_an_application(repo_root, tmp_path):
    good = tmp_path / "good_app.py"
    good.write_text(textwrap.dedent(GOOD_APP))
    result = _mypy(repo_root, tmp_path, str(good))
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_catches_an_applications_mistakes(repo_root, tmp_path):
    bad = tmp_path / "bad_app.py"
    bad.write_text(textwrap.dedent(BAD_APP))
    result = _mypy(repo_root, tmp_path, str(bad))
    assert result.returncode == 1, result.stdout + result.stderr
    for code in ("[attr-defined]", "[union-attr]", "[assignment]"):
        assert code in result.stdout, (code, result.stdout)
