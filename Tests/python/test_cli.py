"""The `millis` command-line tool (tools/millis): help and exit codes, devices, voices
(against the devserver's voices endpoint), devserver, replay (a handcrafted timeline
and a real recording), and talk, both as plain lines (a pipe) and as the live screen
(in tmux)."""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from millis_testkit import PUBLIC_KEY, SCRIPT_FINALS

DATA = Path(__file__).resolve().parent / "data"
SAMPLE_TIMELINE = DATA / "cli_timeline_sample.jsonl"
SCRIPT_RESPONSES = ["It's sunny and twenty two degrees in Paris.", "You're welcome. Goodbye!"]
# Where the tmux capture of `millis talk` is kept, to look at after a run.
ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "test-artifacts"

EXIT_RUNTIME, EXIT_USAGE, EXIT_AUTH = 1, 2, 3


# ---------------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def cli(repo_root: Path, library_path: Path) -> Path:
    """build/millis, (re)built by its Makefile: a no-op when it is up to date."""
    build = repo_root / "build"
    proc = subprocess.run(["make", "-s", "-C", str(repo_root / "tools" / "millis"), f"BUILD={build}"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"building the CLI failed:\n{proc.stdout}\n{proc.stderr}"
    assert "warning" not in proc.stderr, f"the CLI builds with warnings:\n{proc.stderr}"
    path = build / "millis"
    assert path.exists()
    return path


def cli_env(**extra: str) -> dict:
    """The environment of a CLI run: the test key, no endpoint from the caller's
    environment, a UTF-8 locale (arrows in replay's output)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MILLIS_ENDPOINT", "MILLIS_AGENT_ID", "MILLIS_VOICES_PATH", "MILLIS_DEVSERVER")}
    env.update(MILLIS_PUBLIC_KEY=PUBLIC_KEY, LC_ALL="C.UTF-8")
    env.update(extra)
    return env


def run(cli: Path, *args, env: dict | None = None, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(cli), *map(str, args)], env=env if env is not None else cli_env(),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, **kw)


def show(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"


def http_base(devserver) -> str:
    return devserver.base.replace("ws://", "http://")


def silence_wav(path: Path, seconds: float) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(bytes(int(16000 * seconds) * 2))
    return path


def turn_lines(text: str) -> list:
    """The (n, total, eos->answering, answering->audio, audio->played) of plain talk's
    `turn N: total X ms (...)` lines, None for null."""
    found = []
    pattern = re.compile(r"^turn (\d+): total (\S+) ms \(end_of_speech_to_start_answering (\S+), "
                         r"start_answering_to_first_audio (\S+), first_audio_to_played (\S+)\)$")
    for line in text.splitlines():
        m = pattern.match(line)
        if m:
            found.append((int(m.group(1)), *[None if v == "null" else float(v) for v in m.groups()[1:]]))
    return found


def table_rows(text: str) -> dict:
    """replay's table: {turn number or "median": [4 values, None for '-']}."""
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^\s*(\d+|median)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$", line)
        if m:
            key = m.group(1) if m.group(1) == "median" else int(m.group(1))
            rows[key] = [None if v == "-" else float(v) for v in m.groups()[1:]]
    return rows


# ---------------------------------------------------------------------------------
# Help, version, usage errors
# ---------------------------------------------------------------------------------

HELP_MENTIONS = {
    "talk": ["--agent-id", "--agent-config", "--metadata", "--session-id", "--endpoint", "--header", "--input",
             "--fast", "--output", "--record", "--record-mono", "--device", "--capture", "--playback", "--echo-canceller",
             "--timeout", "--linger", "--plain", "MILLIS_PUBLIC_KEY", "Exit status"],
    "devices": ["--all", "--json", "Exit status"],
    "audio-test": ["--device", "--capture", "--playback", "--echo-canceller", "--seconds", "--json", "Exit status"],
    "voices": ["--endpoint", "--base-url", "--path", "--json", "--timeout", "MILLIS_PUBLIC_KEY",
               "MILLIS_VOICES_PATH", "8080", "Exit status"],
    "devserver": ["--port", "--record-dir", "--which", "MILLIS_DEVSERVER", "share/millis/devserver",
                  "Exit status"],
    "replay": ["--turns-only", "--json", "--finals-only", "FILE.jsonl", "Exit status"],
}


@pytest.mark.parametrize("command", sorted(HELP_MENTIONS))
def test_command_help(cli, command):
    proc = run(cli, command, "--help")
    assert proc.returncode == 0, show(proc)
    for word in HELP_MENTIONS[command]:
        assert word in proc.stdout, f"`millis {command} --help` does not mention {word}:\n{proc.stdout}"
    assert proc.stderr == ""


def test_top_level_help_and_version(cli, repo_root):
    proc = run(cli, "--help")
    assert proc.returncode == 0, show(proc)
    for word in ("talk", "devices", "voices", "devserver", "replay", "Exit status", "MILLIS_PUBLIC_KEY"):
        assert word in proc.stdout
    for code in ("0  success", "1  runtime failure", "2  usage error", "3  the server refused"):
        assert code in proc.stdout
    header = (repo_root / "include" / "millis.h").read_text()
    version = ".".join(re.search(rf"^#define MILLIS_VERSION_{part} (\d+)$", header, re.M).group(1)
                       for part in ("MAJOR", "MINOR", "PATCH"))
    proc = run(cli, "--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"millis {version} (libmillis {version})", show(proc)
    # `millis help talk` is `millis talk --help`.
    assert run(cli, "help", "talk").stdout == run(cli, "talk", "--help").stdout
    proc = run(cli)
    assert proc.returncode == EXIT_USAGE and "Usage:" in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["frobnicate"], "unknown command 'frobnicate'"),
    (["--frobnicate"], "unknown option '--frobnicate'"),
    (["talk", "--bogus"], "unknown option '--bogus'"),
    (["talk", "-x"], "unknown option '-x'"),
    (["talk", "--agent-id"], "option '--agent-id' needs a value"),
    (["talk", "--agent-id", "a", "--timeout", "soon"], "--timeout 'soon'"),
    (["talk", "--agent-id", "a", "--linger", "-1"], "--linger '-1'"),
    (["talk", "--agent-id", "a", "stray"], "unexpected argument 'stray'"),
    (["talk"], "--agent-id"),
    (["talk", "--agent-id", "a", "--metadata", "{not json"], "--metadata is not valid JSON (line 1, column "),
    (["talk", "--agent-id", "a", "--metadata", "[1, 2]"], "--metadata must be a JSON object"),
    (["talk", "--agent-id", "a", "--agent-config", "/nonexistent/agent.json"], "--agent-config /nonexistent/agent.json"),
    (["talk", "--agent-id", "a", "--endpoint", "http://example.com/millis"], "--endpoint 'http://example.com/millis'"),
    (["talk", "--agent-id", "a", "--input", "/nonexistent/in.wav"], "--input /nonexistent/in.wav: cannot read it"),
    (["talk", "--agent-id", "a", "--record", "call.mp3"], "--record 'call.mp3'"),
    (["talk", "--agent-id", "a", "--record-mono"], "--record-mono needs --record"),
    (["talk", "--agent-id", "a", "--echo-canceller", "browser"], "--echo-canceller 'browser': give webrtc"),
    (["talk", "--agent-id", "a", "--header"], "option '--header' needs a value"),
    (["talk", "--agent-id", "a", "--header", "Origin example.com"],
     "--header 'Origin example.com': give NAME: VALUE (a colon between the name and the value)"),
    (["talk", "--agent-id", "a", "--header", "Host: evil.example"], "--header 'Host: evil.example': header 'Host'"),
    (["talk", "--agent-id", "a", "--header", "Sec-WebSocket-Key: x"], "--header 'Sec-WebSocket-Key: x': header"),
    (["talk", "--agent-id", "a", "--header", "X Bad: v"], "--header 'X Bad: v': header name 'X Bad'"),
    (["talk", "--agent-id", "a", "--header", ": v"], "--header ': v': header name"),
    (["talk", "--agent-id", "a", "--header", "X-Bad: a\rb"], "control character"),
    (["talk", "--agent-id", "a", *[a for i in range(65) for a in ("--header", f"X-H{i}: v")]],
     "--header 'X-H64: v': too many headers: at most 64"),
    (["devices", "--verbose"], "unknown option '--verbose'"),
    (["voices", "--timeout"], "option '--timeout' needs a value"),
    (["voices", "--path", "voices"], "must start with '/'"),
    (["voices", "--base-url", "ftp://x"], "--base-url 'ftp://x'"),
    (["voices", "--endpoint", "http://127.0.0.1/"], "not a ws:// or wss:// URL"),
    (["replay"], "give the timeline"),
    (["replay", "--nope", "x.jsonl"], "unknown option '--nope'"),
    (["replay", "a.jsonl", "b.jsonl"], "one file at a time"),
])
def test_usage_errors_exit_2(cli, args, message):
    proc = run(cli, *args)
    assert proc.returncode == EXIT_USAGE, show(proc)
    assert message in proc.stderr, show(proc)
    assert "--help" in proc.stderr, "a usage error says where to read more"
    assert proc.stdout == ""


def test_agent_config_errors_name_the_position(cli, tmp_path):
    bad = tmp_path / "agent.json"
    bad.write_text('{\n  "prompt": "hi",\n  "voice": {"provider": }\n}\n')
    proc = run(cli, "talk", "--agent-config", bad)
    assert proc.returncode == EXIT_USAGE, show(proc)
    assert f"--agent-config {bad} is not valid JSON (line 3, column" in proc.stderr, show(proc)


@pytest.mark.parametrize("command", ["talk", "voices"])
def test_missing_public_key_exits_2(cli, command):
    env = cli_env()
    del env["MILLIS_PUBLIC_KEY"]
    proc = run(cli, command, "--agent-id", "demo-agent", env=env) if command == "talk" else run(cli, command, env=env)
    assert proc.returncode == EXIT_USAGE, show(proc)
    assert "MILLIS_PUBLIC_KEY" in proc.stderr and "test-public-key" in proc.stderr, show(proc)
    # An empty key is no key either.
    env["MILLIS_PUBLIC_KEY"] = ""
    proc = run(cli, command, "--agent-id", "demo-agent", env=env) if command == "talk" else run(cli, command, env=env)
    assert proc.returncode == EXIT_USAGE, show(proc)


# ---------------------------------------------------------------------------------
# devices
# ---------------------------------------------------------------------------------


def test_devices_lists_both_sides(cli):
    proc = run(cli, "devices", "--json")
    assert proc.returncode == 0, show(proc)
    data = json.loads(proc.stdout)
    assert set(data) >= {"capture", "playback"}
    names = {side: [d["name"] for d in data[side]] for side in ("capture", "playback")}
    # ALSA always knows its "null" PCM, with or without a sound card.
    assert "null" in names["capture"] and "null" in names["playback"], names

    proc = run(cli, "devices")
    assert proc.returncode == 0, show(proc)
    text = proc.stdout
    capture_part, _, playback_part = text.partition("Playback devices")
    assert capture_part.startswith("Capture devices (--capture NAME):"), text
    assert playback_part.startswith(" (--playback NAME):"), text
    for name in names["capture"]:
        assert re.search(rf"^  {re.escape(name)}(\s|$)", capture_part, re.M), f"{name} not listed:\n{text}"
    for name in names["playback"]:
        assert re.search(rf"^  {re.escape(name)}(\s|$)", playback_part, re.M), f"{name} not listed:\n{text}"


# Converters and effects that alsa-plugins (libasound2-plugins) defines: no devices.
ALSA_PLUGINS = {"lavrate", "samplerate", "speexrate", "speex", "upmix", "vdownmix", "a52", "jack", "oss",
                "usb_stream", "arcam_av"}


def test_devices_lists_devices_not_plugins(cli, tmp_path):
    """`millis devices` shows ALSA's own PCMs, the sound servers and the PCMs the user's
    configuration defines (~/.asoundrc, ALSA_CONFIG_PATH's files: with or without a hint,
    as pcm.NAME or inside pcm { }), not alsa-plugins' converters; --all shows them all."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".asoundrc").write_text(
        "# a user's own devices\n"
        "pcm.mymic {\n    type null\n}\n"
        "pcm.!myspeaker {\n    type null\n    hint { description \"My speaker\" }\n}\n"
        "pcm {\n    nested { type null }\n}\n"
        "pcm.\"quoted\" { type null }  # a comment after it\n")
    extra = tmp_path / "extra.conf"
    extra.write_text("pcm.benchmic { type null }\n")
    env = cli_env(HOME=str(home), ALSA_CONFIG_PATH=f"/usr/share/alsa/alsa.conf:{extra}")
    env.pop("XDG_CONFIG_HOME", None)

    every = run(cli, "devices", "--all", "--json", env=env)
    assert every.returncode == 0, show(every)
    every = {side: [d["name"] for d in items] for side, items in json.loads(every.stdout).items()}
    plugins = ALSA_PLUGINS & set(every["playback"])
    assert plugins, f"alsa-plugins' PCMs are not installed (libasound2-plugins): {every}"
    user = {"mymic", "myspeaker", "nested", "quoted", "benchmic"}
    assert user <= set(every["capture"]) and user <= set(every["playback"]), every

    shown = run(cli, "devices", "--json", env=env)
    assert shown.returncode == 0, show(shown)
    shown = {side: [d["name"] for d in items] for side, items in json.loads(shown.stdout).items()}
    for side in ("capture", "playback"):
        assert user <= set(shown[side]), shown
        assert "null" in shown[side] and not (ALSA_PLUGINS & set(shown[side])), shown
        # The rule, for whatever else this machine's ALSA knows: cards, ALSA's own, servers.
        for name in shown[side]:
            assert ("CARD=" in name or name.split(":")[0] in {"default", "sysdefault", "null", "pulse", "pipewire"}
                    or name in user), name
        assert [n for n in every[side] if n in shown[side]] == shown[side], "the order is ALSA's"

    text = run(cli, "devices", env=env)
    assert text.returncode == 0, show(text)
    assert re.search(r"^  myspeaker\s+My speaker$", text.stdout, re.M), text.stdout
    assert re.search(r"^  mymic$", text.stdout, re.M), "no trailing blanks after a name without description"
    hidden = len(set(every["capture"] + every["playback"]) - set(shown["capture"] + shown["playback"]))
    assert text.stdout.rstrip().endswith(f"({hidden} plugins not shown: `millis devices --all` lists them)"), \
        text.stdout
    for name in plugins:
        assert not re.search(rf"^  {name}\b", text.stdout, re.M), text.stdout
    everything = run(cli, "devices", "--all", env=env)
    for name in plugins:
        assert re.search(rf"^  {name}\b", everything.stdout, re.M), everything.stdout
    assert "not shown" not in everything.stdout


# ---------------------------------------------------------------------------------
# voices
# ---------------------------------------------------------------------------------

DEVSERVER_VOICES = [("devserver-ada", "Ada", "elevenlabs", "en-US", "female"),
                    ("devserver-basil", "Basil", "cartesia", "en-GB", "male"),
                    ("devserver-chloe", "Chloé", "openai", "fr-FR", "female")]


def test_voices_table(cli, devserver):
    proc = run(cli, "voices", "--endpoint", devserver.url)
    assert proc.returncode == 0, show(proc)
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["voice_id", "name", "provider", "language", "gender"], proc.stdout
    rows = [line.split() for line in lines[1:4]]
    assert rows == [list(v) for v in DEVSERVER_VOICES], proc.stdout
    # Columns line up by characters, "Chloé" included.
    starts = {line.index(v[2]) for line, v in zip(lines[1:4], DEVSERVER_VOICES)}
    assert len(starts) == 1 and lines[0].index("provider") in starts, proc.stdout
    assert lines[4] == "3 voices"


def test_voices_json_and_environment(cli, devserver):
    # The endpoint from MILLIS_ENDPOINT; --json prints the server's JSON.
    proc = run(cli, "voices", "--json", env=cli_env(MILLIS_ENDPOINT=devserver.url))
    assert proc.returncode == 0, show(proc)
    voices = json.loads(proc.stdout)
    assert [(v["voice_id"], v["name"], v["provider"], v["language"], v["gender"]) for v in voices] == DEVSERVER_VOICES
    # --base-url instead of the derived one.
    proc = run(cli, "voices", "--json", "--base-url", http_base(devserver) + "/")
    assert proc.returncode == 0 and json.loads(proc.stdout) == voices, show(proc)


def test_voices_wrong_key_is_an_auth_failure(cli, devserver):
    proc = run(cli, "voices", "--endpoint", devserver.url, env=cli_env(MILLIS_PUBLIC_KEY="not-a-key"))
    assert proc.returncode == EXIT_AUTH, show(proc)
    assert f"HTTP 401 from {http_base(devserver)}/voices" in proc.stderr, show(proc)
    assert "refused the public key" in proc.stderr and "MILLIS_PUBLIC_KEY" in proc.stderr
    assert "missing or invalid public key" in proc.stderr, "the server's words are quoted"
    assert proc.stdout == ""


def test_voices_path_option_and_http_errors(cli, devserver_factory):
    server = devserver_factory("--voices-path", "/api/v2/voices")
    base = http_base(server)
    # The default path is now a 404: a runtime failure that says what to do.
    proc = run(cli, "voices", "--endpoint", server.url)
    assert proc.returncode == EXIT_RUNTIME, show(proc)
    assert f"HTTP 404 from {base}/voices" in proc.stderr and "--path" in proc.stderr, show(proc)
    proc = run(cli, "voices", "--endpoint", server.url, "--path", "/api/v2/voices")
    assert proc.returncode == 0 and "devserver-basil" in proc.stdout, show(proc)
    proc = run(cli, "voices", "--endpoint", server.url, env=cli_env(MILLIS_VOICES_PATH="/api/v2/voices"))
    assert proc.returncode == 0 and "devserver-basil" in proc.stdout, show(proc)
    # Any other HTTP error status is a runtime failure too, with the body quoted.
    proc = run(cli, "voices", "--endpoint", server.url, "--path", "/status/503")
    assert proc.returncode == EXIT_RUNTIME, show(proc)
    assert "HTTP 503" in proc.stderr and "devserver: status 503 requested" in proc.stderr, show(proc)
    # 403 counts as an auth failure like 401.
    proc = run(cli, "voices", "--endpoint", server.url, "--path", "/status/403")
    assert proc.returncode == EXIT_AUTH, show(proc)


def test_voices_network_error_and_base_url_rule(cli):
    # Nothing listens on port 1: a network failure, exit 1, naming the URL.
    proc = run(cli, "voices", "--endpoint", "ws://127.0.0.1:1/millis")
    assert proc.returncode == EXIT_RUNTIME, show(proc)
    assert "cannot get http://127.0.0.1:1/voices" in proc.stderr and "--base-url" in proc.stderr, show(proc)
    # The rule: wss -> https, port 8080 dropped, path dropped (the URL shows in the error).
    proc = run(cli, "voices", "--endpoint", "wss://127.0.0.1:8080/millis", "--timeout", "5")
    assert proc.returncode == EXIT_RUNTIME, show(proc)
    assert "cannot get https://127.0.0.1/voices" in proc.stderr, show(proc)
    proc = run(cli, "voices", "--endpoint", "wss://[::1]:9/x/y", "--timeout", "5")
    assert "cannot get https://[::1]:9/voices" in proc.stderr, show(proc)


# ---------------------------------------------------------------------------------
# devserver
# ---------------------------------------------------------------------------------


def test_devserver_runs_and_prints_ready(cli, repo_root, tmp_path):
    proc = subprocess.Popen([str(cli), "devserver", "--port", "0", "--record-dir", str(tmp_path / "records")],
                            env=cli_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert re.fullmatch(r"MILLIS_DEVSERVER_READY ws://127\.0\.0\.1:\d+/millis\n", line), \
            f"{line!r}; stderr: {proc.stderr.read() if proc.poll() is not None else ''}"
        url = line.split()[1]
        # It is the real server: the voices endpoint answers.
        voices = run(cli, "voices", "--json", "--endpoint", url)
        assert voices.returncode == 0 and len(json.loads(voices.stdout)) == 3, show(voices)
        # execvp: the PID we started is the server itself, and SIGTERM stops it with 0.
        assert Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")[1].endswith(b"millis_devserver.py")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0


def test_devserver_lookup(cli, repo_root, tmp_path):
    # From build/: the source tree's devserver.
    proc = run(cli, "devserver", "--which")
    # (Compared resolved: the sanitizer runs' staging tree links the source folders in.)
    expected = (repo_root / "devserver" / "millis_devserver.py").resolve()
    assert proc.returncode == 0 and Path(proc.stdout.strip()).resolve() == expected, show(proc)
    # MILLIS_DEVSERVER first.
    other = tmp_path / "mine.py"
    other.write_text("import sys; print('MINE', sys.argv[1:])\n")
    proc = run(cli, "devserver", "--which", env=cli_env(MILLIS_DEVSERVER=str(other)))
    assert proc.stdout.strip() == str(other), show(proc)
    proc = run(cli, "devserver", "--port", "0", "--", "x", env=cli_env(MILLIS_DEVSERVER=str(other)))
    assert proc.returncode == 0 and proc.stdout.strip() == "MINE ['--port', '0', '--', 'x']", show(proc)
    proc = run(cli, "devserver", "--", "--help", env=cli_env(MILLIS_DEVSERVER=str(other)))
    assert proc.stdout.strip() == "MINE ['--help']", show(proc)
    proc = run(cli, "devserver", env=cli_env(MILLIS_DEVSERVER=str(tmp_path / "missing.py")))
    assert proc.returncode == EXIT_RUNTIME and "MILLIS_DEVSERVER" in proc.stderr, show(proc)
    # Installed layout: <prefix>/bin/millis finds <prefix>/share/millis/devserver/.
    prefix = tmp_path / "prefix"
    (prefix / "bin").mkdir(parents=True)
    shutil.copy2(cli, prefix / "bin" / "millis")
    installed = prefix / "share" / "millis" / "devserver" / "millis_devserver.py"
    installed.parent.mkdir(parents=True)
    installed.write_text("print('installed')\n")
    proc = run(prefix / "bin" / "millis", "devserver", "--which")
    assert proc.stdout.strip() == str(installed), show(proc)
    # Nowhere: a clear error naming the places and the variable.
    installed.unlink()
    proc = run(prefix / "bin" / "millis", "devserver", "--port", "0")
    assert proc.returncode == EXIT_RUNTIME, show(proc)
    assert "cannot find millis_devserver.py" in proc.stderr and "MILLIS_DEVSERVER" in proc.stderr, show(proc)
    assert "share/millis/devserver/millis_devserver.py" in proc.stderr, show(proc)
    # No python3 in PATH.
    proc = run(cli, "devserver", env=cli_env(PATH=str(tmp_path / "empty")))
    assert proc.returncode == EXIT_RUNTIME and "python3 is not in PATH" in proc.stderr, show(proc)


def test_devserver_without_websockets_says_what_to_install(cli, tmp_path):
    """A python3 without websockets (or with one older than 14): one line naming the
    package and the command that installs it, exit 1, no traceback."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # -S: no site-packages, where websockets lives; the standard library only.
    (bin_dir / "python3").write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -S "$@"\n')
    (bin_dir / "python3").chmod(0o755)
    path = f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    proc = run(cli, "devserver", "--port", "0", env=cli_env(PATH=path), timeout=30)
    assert proc.returncode == EXIT_RUNTIME, show(proc)
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, show(proc)
    assert "has no websockets package" in proc.stderr, show(proc)
    assert "-m pip install 'websockets>=14'" in proc.stderr, show(proc)
    assert proc.stdout == ""
    # Debian 12's python3-websockets is 10.4: too old, and said so.
    old = tmp_path / "old" / "websockets"
    old.mkdir(parents=True)
    (old / "__init__.py").write_text("__version__ = '10.4'\n")
    proc = run(cli, "devserver", "--port", "0", env=cli_env(PATH=path, PYTHONPATH=str(old.parent)), timeout=30)
    assert proc.returncode == EXIT_RUNTIME, show(proc)
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, show(proc)
    assert "websockets 10.4, older than the 14 needed" in proc.stderr, show(proc)


# ---------------------------------------------------------------------------------
# replay
# ---------------------------------------------------------------------------------


def sample_turns() -> list:
    turns = []
    for line in SAMPLE_TIMELINE.read_text().splitlines():
        entry = json.loads(line)
        if entry["type"] == "turn":
            lat = entry["latency_ms"]
            turns.append([lat[k] for k in ("end_of_speech_to_start_answering", "start_answering_to_first_audio",
                                           "first_audio_to_played", "total")])
    return turns


def test_replay_sample_timeline(cli):
    proc = run(cli, "replay", SAMPLE_TIMELINE)
    assert proc.returncode == 0, show(proc)
    assert proc.stderr == ""
    out = proc.stdout
    expected_lines = [
        "00:00.000  recording   call.opus (opus, 16000 Hz, 2 channels, user-left agent-right), "
        "started 2026-11-25T01:02:03.456Z, libmillis 0.1.0",
        "00:00.004  open        WebSocket open",
        '00:00.005  send        initiate {"data":{"agent":{"agent_id":"demo-agent"},"public_key":"<redacted>"}}',
        '00:00.012  recv        onready {"payload":{"session_id":"5f2c9e"}}',
        "00:00.012  ready       session 5f2c9e",
        "00:01.200  vad         user speech starts (at 00:01.180)",
        "00:03.100  vad         user speech ends (at 00:03.100)",
        "00:03.200  user        Hello,  (partial)",
        "00:03.250  user        Hello, what is the weather like today?",
        "00:03.410  recv        start_answering",
        "00:03.410  state       prepare_answer",
        "00:03.420  agent       It's sunny and twenty two degrees in Paris.",
        '00:03.430  function    get_weather {"city":"Paris"}',
        "00:03.690  latency     280.0 ms (start_answering → first audio)",
        "00:03.712  turn        1: total 612.0 ms (end of speech → start_answering 310.0, → first audio 280.0, "
        "→ played 22.0)",
        '00:06.500  send        ping {"data":"1764032530000"}',
        "00:06.600  message     ai_action (a method this version does not know)",
        '00:07.000  recv        garbled "not json at all"',
        "00:10.200  error       bad message (11): malformed JSON from the server",
        "00:12.300  turn        3: total - (end of speech → start_answering 300.0, → first audio -, → played -)",
        '00:12.400  future_event {"detail":42}',
        '00:12.500  annotation  {"note":"a type this version does not know"}',
        "00:12.800  ended       the server ended the session",
        "00:12.823  close       1000 session ended",
        "00:12.830  end         duration 12.830 s; samples: user 205280, agent 205280, dropped 0",
    ]
    lines = out.splitlines()
    for line in expected_lines:
        assert line in lines, f"missing {line!r} in:\n{out}"
    # One line per entry, in the file's order.
    entries = SAMPLE_TIMELINE.read_text().splitlines()
    timed = [line for line in lines if re.match(r"^\d\d:\d\d\.\d\d\d  ", line)]
    assert len(timed) == len(entries)
    assert [line[:9] for line in timed] == [
        "%02d:%06.3f" % divmod(round(json.loads(e)["t"] * 1000) / 1000, 60) for e in entries]

    # The table, and medians computed here.
    turns = sample_turns()
    rows = table_rows(out)
    assert rows[1] == [310.0, 280.0, 22.0, 612.0] and rows[3] == [300.0, None, None, None], out
    medians = []
    for col in range(4):
        values = [t[col] for t in turns if t[col] is not None]
        medians.append(statistics.median(values))
    assert rows["median"] == pytest.approx(medians), out
    assert medians == [305.0, 277.5, 21.0, 606.0]
    assert "3 turns (ms); median total 606.0 ms over 2 complete turns" in out
    assert "  turn  end of speech → start_answering  → first audio  → played    total" in out


def test_replay_options(cli):
    proc = run(cli, "replay", "--turns-only", SAMPLE_TIMELINE)
    assert proc.returncode == 0, show(proc)
    assert proc.stdout.splitlines()[0].startswith("  turn  end of speech"), proc.stdout
    assert len(table_rows(proc.stdout)) == 4 and "00:0" not in proc.stdout

    proc = run(cli, "replay", "--finals-only", "--no-messages", SAMPLE_TIMELINE)
    assert "(partial)" not in proc.stdout and " recv " not in proc.stdout and " send " not in proc.stdout
    assert "00:03.250  user        Hello, what is the weather like today?" in proc.stdout

    proc = run(cli, "replay", "--json", SAMPLE_TIMELINE)
    assert proc.returncode == 0, show(proc)
    data = json.loads(proc.stdout)
    assert data["median_ms"] == {"end_of_speech_to_start_answering": 305, "start_answering_to_first_audio": 277.5,
                                 "first_audio_to_played": 21, "total": 606}
    assert [t["turn"] for t in data["turns"]] == [1, 2, 3]
    assert data["turns"][2]["latency_ms"]["total"] is None
    assert data["recording"]["audio"] == "call.opus" and data["end"]["duration"] == 12.83
    assert data["entries"] == len(SAMPLE_TIMELINE.read_text().splitlines()) and data["malformed_lines"] == 0

    # ASCII arrows outside a UTF-8 locale; the columns still line up.
    proc = run(cli, "replay", "--turns-only", SAMPLE_TIMELINE, env=cli_env(LC_ALL="C"))
    header, first = proc.stdout.splitlines()[:2]
    assert "end of speech -> start_answering" in header
    assert header.index("total") + len("total") == len(first.rstrip())

    # Standard input.
    proc = subprocess.run([str(cli), "replay", "--turns-only", "-"], input=SAMPLE_TIMELINE.read_text(),
                          env=cli_env(), capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and "median" in proc.stdout, show(proc)


def test_replay_malformed_lines(cli, tmp_path):
    lines = SAMPLE_TIMELINE.read_text().splitlines()
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join([lines[0], '{"t": 0.1, "type": "event", "event": "open"',  # line 2: cut short
                                 "[1, 2, 3]",                                            # line 3: not an object
                                 '{"t": 0.2, "event": "open"}',                         # line 4: no type
                                 "", lines[17],                                          # 5 blank, 6 a turn
                                 "garbage \x01"]) + "\n")                                 # 7
    proc = run(cli, "replay", broken)
    assert proc.returncode == 0, show(proc)
    err = proc.stderr
    assert f"{broken}:2: not valid JSON" in err, err
    assert f"{broken}:3: not a timeline entry" in err and f"{broken}:4: not a timeline entry" in err, err
    assert f"{broken}:5:" not in err, "a blank line is not an error"
    assert f"{broken}:7: not valid JSON" in err
    assert f"{broken}: 4 malformed lines skipped" in err
    assert table_rows(proc.stdout)[1] == [310.0, 280.0, 22.0, 612.0]
    assert '(no "end" line' in proc.stdout

    only_bad = tmp_path / "bad.jsonl"
    only_bad.write_text("nope\n{]\n")
    proc = run(cli, "replay", only_bad)
    assert proc.returncode == EXIT_RUNTIME and "holds no timeline entry" in proc.stderr, show(proc)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    proc = run(cli, "replay", empty)
    assert proc.returncode == EXIT_RUNTIME and "holds no timeline entry (it is empty)" in proc.stderr, show(proc)
    proc = run(cli, "replay", tmp_path / "missing.jsonl")
    assert proc.returncode == EXIT_RUNTIME, show(proc)
    assert f"cannot open {tmp_path / 'missing.jsonl'}: No such file or directory" in proc.stderr
    proc = run(cli, "replay", tmp_path)  # a directory: opens, then cannot be read
    assert proc.returncode == EXIT_RUNTIME, show(proc)


# ---------------------------------------------------------------------------------
# talk
# ---------------------------------------------------------------------------------


def test_talk_conversation_from_files(cli, repo_root, devserver, tmp_path):
    """The issue's scenario: a WAV as the user, the agent to a WAV, a recording; then
    `millis replay` of its timeline."""
    user_wav = repo_root / "bindings" / "audio" / "user.wav"
    with wave.open(str(user_wav)) as w:
        # Two utterances and the silence after each (the devserver's VAD needs it).
        assert (w.getframerate(), w.getnchannels()) == (16000, 1) and w.getnframes() > 16000 * 8
    out, rec = tmp_path / "agent.wav", tmp_path / "call.opus"
    started = time.monotonic()
    proc = run(cli, "talk", "--input", user_wav, "--output", out, "--record", rec, "--agent-id", "demo-agent",
               "--endpoint", devserver.url, timeout=90)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, show(proc)
    assert proc.stderr == "", show(proc)
    lines = proc.stdout.splitlines()
    assert re.fullmatch(r"ready [0-9a-f]{32}", lines[0]), proc.stdout
    session_id = lines[0].split()[1]
    assert [line[6:] for line in lines if line.startswith("user: ")] == SCRIPT_FINALS
    assert [line[7:] for line in lines if line.startswith("agent: ")] == SCRIPT_RESPONSES
    assert 'function: get_weather {"city":"Paris"}' in lines
    states = [line[7:] for line in lines if line.startswith("state: ")]
    assert states[:3] == ["prepare_answer", "answer", "idle"], proc.stdout
    turns = turn_lines(proc.stdout)
    assert [t[0] for t in turns] == [1, 2], proc.stdout
    for _, total, eos, audio, played in turns:
        assert None not in (total, eos, audio, played)
        assert total == pytest.approx(eos + audio + played, abs=0.2)
        # The devserver answers 600 ms (end of speech) + 100 ms (think) after the speech.
        # (From below only: a loaded machine can only add to a latency.)
        assert eos > 500 and total > eos, (eos, total)
    assert "input ended" in lines
    assert lines.index("input ended") > lines.index("user: " + SCRIPT_FINALS[-1])
    assert lines[-2] == "closed 1000" and lines[-1] == f"recording {rec} {rec.with_suffix('.jsonl')}", proc.stdout
    # --linger: it stopped once the agent had answered after the input ended, long
    # before the 10 s maximum.
    assert elapsed < 11.44 + 8, elapsed

    record = devserver.record(session_id)
    assert record["initiate"]["data"]["agent"] == {"agent_id": "demo-agent"}
    assert len(record["user_turns"]) == 2
    with wave.open(str(out)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        # As a speaker plays it: the whole conversation's length, the answers inside.
        assert w.getnframes() / 16000 > 8
        pcm = w.readframes(w.getnframes())
    assert any(pcm), "the agent's audio is all zeros"
    assert rec.exists() and rec.stat().st_size > 10000

    replay = run(cli, "replay", rec.with_suffix(".jsonl"))
    assert replay.returncode == 0, show(replay)
    rows = table_rows(replay.stdout)
    assert sorted(k for k in rows if k != "median") == [1, 2], replay.stdout
    # The timeline's turns are the ones talk printed (both from the library's breakdown).
    for n, total, eos, audio, played in turns:
        assert rows[n] == pytest.approx([eos, audio, played, total], abs=0.06), (rows, turns)
    assert rows["median"][3] == pytest.approx(statistics.median([t[1] for t in turns]), abs=0.06)
    for text in SCRIPT_FINALS + SCRIPT_RESPONSES:
        assert re.search(rf"^\d\d:\d\d\.\d{{3}}  (user|agent)\s+{re.escape(text)}$", replay.stdout, re.M), text
    assert f"ready       session {session_id}" in replay.stdout
    assert re.search(r"^\d\d:\d\d\.\d{3}  close       1000$", replay.stdout, re.M), replay.stdout


def test_talk_events_wait_while_its_output_is_blocked(cli, repo_root, devserver, tmp_path):
    """talk takes its events from the library's event queue on its main thread: while
    that thread cannot (its stdout is a full pipe, from its first line on), the
    conversation goes on and the events wait in the queue, the agent's audio included.
    None is lost and the order is kept."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    try:
        while True:
            os.write(write_end, b"\n" * 4096)
    except BlockingIOError:
        pass
    os.set_blocking(write_end, True)
    out = tmp_path / "agent.wav"
    proc = subprocess.Popen([str(cli), "talk", "--input", str(repo_root / "bindings" / "audio" / "user.wav"),
                             "--output", str(out), "--agent-id", "demo-agent", "--endpoint", devserver.url],
                            env=cli_env(), stdin=subprocess.DEVNULL, stdout=write_end, stderr=subprocess.PIPE)
    os.close(write_end)
    watchdog = threading.Timer(90, proc.kill)
    watchdog.start()
    try:
        time.sleep(6)  # the first answer comes in the meantime
        with os.fdopen(read_end, "rb") as pipe:
            stdout = pipe.read().lstrip(b"\n").decode()
        stderr = proc.stderr.read().decode()
        proc.wait(timeout=30)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and stderr == "", f"{proc.returncode}\n{stdout}\n{stderr}"
    lines = stdout.splitlines()
    assert re.fullmatch(r"ready [0-9a-f]{32}", lines[0]), stdout
    assert [line[6:] for line in lines if line.startswith("user: ")] == SCRIPT_FINALS
    assert [line[7:] for line in lines if line.startswith("agent: ")] == SCRIPT_RESPONSES
    assert [t[0] for t in turn_lines(stdout)] == [1, 2], stdout
    assert lines.index("input ended") > lines.index("user: " + SCRIPT_FINALS[-1])
    assert lines[-1] == "closed 1000", stdout
    with wave.open(str(out)) as w:
        assert any(w.readframes(w.getnframes())), "the agent's audio is all zeros"


def test_talk_start_options_reach_the_server(cli, devserver, tmp_path):
    """--agent-config, --metadata (@FILE), --metadata-in-prompt and --session-id go
    into `initiate` as given; --linger bounds the wait after the input ended."""
    config = {"prompt": "You are terse.", "voice": {"provider": "elevenlabs", "voice_id": "devserver-ada"},
              "language": "en-US", "flow": {"user_start_first": True}, "custom": [1, "two", None]}
    (tmp_path / "agent.json").write_text(json.dumps(config, indent=2))
    (tmp_path / "meta.json").write_text('{"user": "ada", "tier": 3}')
    session = "cli-continued-session"
    started = time.monotonic()
    proc = run(cli, "talk", "--agent-id", "quick-agent", "--agent-config", tmp_path / "agent.json",
               "--metadata", f"@{tmp_path / 'meta.json'}", "--metadata-in-prompt", "--session-id", session,
               "--input", silence_wav(tmp_path / "quiet.wav", 0.5), "--output", tmp_path / "agent.wav",
               "--linger", "1.5", "--endpoint", devserver.url, timeout=60)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, show(proc)
    assert proc.stdout.splitlines()[0] == f"ready {session}"
    assert "user: quick" in proc.stdout and "agent: ok" in proc.stdout
    # quick-agent answers at once, before the input ends: nothing to wait for but --linger.
    assert 0.5 + 1.5 <= elapsed < 0.5 + 1.5 + 5, elapsed
    assert proc.stdout.splitlines()[-1] == "closed 1000"
    data = devserver.record(session)["initiate"]["data"]
    assert data["agent"] == {"agent_id": "quick-agent", "agent_config": config}
    assert data["metadata"] == {"user": "ada", "tier": 3}
    assert data["include_metadata_in_prompt"] is True
    assert data["session_continuation"] == {"session_id": session}


class HeadCapturingProxy:
    """A TCP forwarder on 127.0.0.1 to the devserver that keeps the HTTP upgrade request
    of each connection (the devserver's records hold no request headers)."""

    def __init__(self, devserver):
        parts = urlsplit(devserver.url)
        self.target = (parts.hostname, parts.port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.url = "ws://127.0.0.1:%d/millis" % self.listener.getsockname()[1]
        self.heads: list = []  # the request heads, as text
        self._stop = threading.Event()
        self._sockets: list = []
        self._thread = threading.Thread(target=self._accept, name="cli-proxy", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.target)
        self._sockets += [client, upstream]
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(65536)
            if not chunk:
                break
            head += chunk
        self.heads.append(head.split(b"\r\n\r\n")[0].decode("latin-1"))
        upstream.sendall(head)

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
        back.start()
        pump(client, upstream)
        back.join(10)
        client.close()
        upstream.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.listener.close()
        for s in self._sockets:
            try:
                s.close()
            except OSError:
                pass


def test_talk_header_reaches_the_server(cli, devserver, tmp_path):
    """--header (repeatable): sent after libmillis' own headers, in order, value trimmed;
    the conversation goes on as usual."""
    proxy = HeadCapturingProxy(devserver)
    try:
        proc = run(cli, "talk", "--agent-id", "quick-agent", "--endpoint", proxy.url,
                   "--header", "Origin: https://cli.example.com", "--header", "X-Trace:  abc  ",
                   "--header", "X-Trace:def", "--header", "X-Empty:",
                   "--input", silence_wav(tmp_path / "quiet.wav", 0.5), "--output", tmp_path / "agent.wav",
                   "--linger", "0.5", timeout=60)
    finally:
        proxy.close()
    assert proc.returncode == 0, show(proc)
    assert proc.stdout.splitlines()[0].startswith("ready "), proc.stdout
    assert len(proxy.heads) == 1, proxy.heads
    lines = proxy.heads[0].split("\r\n")
    assert lines[0] == "GET /millis HTTP/1.1", lines
    names = [line.split(":", 1)[0] for line in lines[1:]]
    assert names[:6] == ["Host", "Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version",
                         "User-Agent"], lines
    assert lines[6] == "User-Agent: libmillis/" + proc_version(cli), lines
    assert lines[7:] == ["Origin: https://cli.example.com", "X-Trace: abc", "X-Trace: def", "X-Empty: "], lines


def proc_version(cli: Path) -> str:
    """The library's version, as `millis --version` prints it."""
    out = run(cli, "--version").stdout
    return re.search(r"libmillis ([0-9.]+)", out).group(1)


def test_talk_sigint_quits_cleanly(cli, devserver, tmp_path):
    proc = subprocess.Popen([str(cli), "talk", "--agent-id", "quick-agent", "--endpoint", devserver.url,
                             "--input", silence_wav(tmp_path / "quiet.wav", 30), "--output", tmp_path / "a.wav"],
                            env=cli_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert first.startswith("ready "), first
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, f"{proc.returncode}\n{stdout}\n{stderr}"
    assert stdout.splitlines()[-1] == "closed 1000", stdout
    record = devserver.record(first.split()[1])
    assert record["close"]["by"] == "client" and record["close"]["code"] == 1000


@pytest.mark.parametrize("case", ["unreachable", "not-ready", "server-error", "missing-output-dir"])
def test_talk_failures_exit_1(cli, devserver, tmp_path, case):
    quiet = silence_wav(tmp_path / "quiet.wav", 1)
    args = ["talk", "--input", quiet, "--output", tmp_path / "agent.wav", "--endpoint", devserver.url,
            "--agent-id", "demo-agent"]
    env = cli_env()
    if case == "unreachable":
        args[args.index(devserver.url)] = "ws://127.0.0.1:1/millis"
        expected = "connect"
    elif case == "not-ready":
        args[-1] = "fault-no-ready"
        args += ["--timeout", "1"]
        expected = "timeout"
    elif case == "server-error":
        args[-1] = "fault-close-4010"
        expected = "4010"
    else:
        args[args.index(tmp_path / "agent.wav")] = tmp_path / "no" / "such" / "dir" / "agent.wav"
        expected = "agent.wav"
    started = time.monotonic()
    proc = run(cli, *args, env=env, timeout=60)
    assert proc.returncode == EXIT_RUNTIME, show(proc)
    assert expected in proc.stderr.lower() or expected in proc.stderr, show(proc)
    assert proc.stderr.startswith("error: "), show(proc)
    assert time.monotonic() - started < 20
    # Once: one error, and no message that says the same thing twice ("could not connect:
    # could not connect to ...", "server closed the session: server closed the session ...").
    assert proc.stderr.count("error: ") == 1, show(proc)
    for phrase in ("could not connect", "server closed the session", "timed out", "could not create"):
        assert proc.stderr.count(phrase) <= 1, show(proc)


def device_failure(cli, devserver, tmp_path, side: str) -> subprocess.CompletedProcess:
    """talk with a device that does not exist, on one side (the other a file) or both."""
    args = ["talk", "--agent-id", "demo-agent", "--endpoint", devserver.url, f"--{side}", "no-such-alsa-device"]
    if side == "capture":
        args += ["--output", tmp_path / "agent.wav"]
    elif side == "playback":
        args += ["--input", silence_wav(tmp_path / "quiet.wav", 1)]
    return run(cli, *args, timeout=30)


@pytest.mark.parametrize("side", ["capture", "playback", "device"])
def test_talk_device_failure_is_reported_once_in_our_words(cli, devserver, tmp_path, side):
    """A device that does not open: one message, naming the device, ALSA's reason, the
    option that picks another and `millis devices`; no C function."""
    proc = device_failure(cli, devserver, tmp_path, side)
    assert proc.returncode == EXIT_RUNTIME, show(proc)
    assert proc.stdout == "", show(proc)
    ours = "".join(line for line in proc.stderr.splitlines(True) if not line.startswith("ALSA lib "))
    assert ours.startswith("error: ") and ours.count("error: ") == 1, show(proc)
    assert ours.count("'no-such-alsa-device'") == 1, show(proc)
    option = "--playback" if side == "playback" else "--capture"
    assert f"Choose the {'speaker' if side == 'playback' else 'microphone'} with {option} NAME" in ours, \
        show(proc)
    assert "--device NAME" in ours and "`millis devices`" in ours, show(proc)
    assert "millis_" not in ours, show(proc)


def test_talk_device_failure_shows_no_alsa_lines(cli, devserver, tmp_path):
    """ALSA's own error lines ("ALSA lib pcm.c:2666:(snd_pcm_open_noupdate) Unknown PCM
    ...") do not reach the terminal: libmillis routes them to its log, at debug level,
    which talk shows with --verbose only."""
    proc = device_failure(cli, devserver, tmp_path, "device")
    assert proc.returncode == EXIT_RUNTIME, show(proc)
    assert "ALSA lib" not in proc.stderr, f"ALSA's own error lines reach the terminal:\n{show(proc)}"


def test_talk_refused_key_exits_3(cli, devserver, tmp_path):
    """A refused key exits 3 from talk as from voices: the server's close 4001, or an
    upgrade answered with HTTP 401."""
    quiet = silence_wav(tmp_path / "quiet.wav", 1)
    args = ["talk", "--input", quiet, "--output", tmp_path / "agent.wav", "--agent-id", "demo-agent"]
    proc = run(cli, *args, "--endpoint", devserver.url, env=cli_env(MILLIS_PUBLIC_KEY="not-a-key"), timeout=30)
    assert proc.returncode == EXIT_AUTH, show(proc)
    assert proc.stdout.splitlines()[-1] == "closed 4001 invalid public key", show(proc)
    assert proc.stderr.count("error: ") == 1, show(proc)
    assert "server closed the session with code 4001: invalid public key" in proc.stderr, show(proc)
    assert proc.stderr.count("server closed the session") == 1, show(proc)
    assert "refused the public key" in proc.stderr and "MILLIS_PUBLIC_KEY" in proc.stderr, show(proc)
    voices = run(cli, "voices", "--endpoint", devserver.url, env=cli_env(MILLIS_PUBLIC_KEY="not-a-key"))
    assert voices.returncode == proc.returncode == EXIT_AUTH, show(voices)

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def refuse():
            listener.settimeout(30)
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                conn.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

        thread = threading.Thread(target=refuse, daemon=True)
        thread.start()
        proc = run(cli, *args, "--endpoint", f"ws://127.0.0.1:{port}/millis", timeout=30)
        thread.join(30)
    assert proc.returncode == EXIT_AUTH, show(proc)
    assert "HTTP 401" in proc.stderr and "MILLIS_PUBLIC_KEY" in proc.stderr, show(proc)
    assert proc.stderr.count("error: ") == 1, show(proc)


# ---------------------------------------------------------------------------------
# The library's messages as the CLI shows them
# ---------------------------------------------------------------------------------

# Messages that name C types, about values a C caller passes: the CLI passes constants.
C_TYPE_NAMES = {"millis_event", "millis_audio_encoding", "millis_log_level", "millis_audio_mode"}


def library_hints(repo_root: Path) -> list:
    """(file:line, string literal) of every message in Sources/ that names a C function."""
    found = []
    for path in sorted((repo_root / "Sources").rglob("*.swift")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.lstrip().startswith("//") or "@_cdecl" in line:
                continue
            for literal in re.findall(r'"((?:[^"\\]|\\.)*)"', line):
                names = set(re.findall(r"\bmillis_[a-z0-9_]+", literal)) - C_TYPE_NAMES
                if names:
                    found.append((f"{path.relative_to(repo_root)}:{number}", literal))
    return found


def test_library_hints_are_translated(repo_root):
    """Every hint of the library that names a C function is in tools/millis/messages.c's
    table, so that the CLI shows an option or a command instead."""
    table = (repo_root / "tools" / "millis" / "messages.c").read_text()
    body = table[table.index("hints[] = {"):]
    body = body[:body.index("};")]
    phrases = re.findall(r'\{\s*"((?:[^"\\]|\\.)*)"\s*,', body)
    assert phrases, "no table found in messages.c"
    hints = library_hints(repo_root)
    assert len(hints) >= 10, hints  # the scan still finds the library's messages
    untranslated = []
    for where, literal in hints:
        rest = literal
        for phrase in phrases:
            rest = rest.replace(phrase, "")
        names = set(re.findall(r"\bmillis_[a-z0-9_]+", rest)) - C_TYPE_NAMES
        if names:
            untranslated.append(f"{where}: {sorted(names)} in {literal!r}")
    assert not untranslated, "messages.c does not translate:\n" + "\n".join(untranslated)


def test_talk_errors_name_options_not_functions(cli, devserver, devserver_factory, tmp_path):
    quiet = silence_wav(tmp_path / "quiet.wav", 1)
    base = ["talk", "--agent-id", "demo-agent", "--input", quiet, "--output", tmp_path / "agent.wav"]
    # An empty device name: the library's hint names millis_audio_devices_json.
    proc = run(cli, "talk", "--agent-id", "demo-agent", "--endpoint", devserver.url, "--capture", "")
    assert proc.returncode == EXIT_USAGE, show(proc)
    assert "--capture ''" in proc.stderr and "`millis devices`" in proc.stderr, show(proc)
    assert "leave the option out" in proc.stderr and "NULL" not in proc.stderr, show(proc)
    assert "millis_" not in proc.stderr, show(proc)
    # Not ready in time: --timeout, not the web SDK's onready.
    proc = run(cli, *base, "--endpoint", devserver.url, "--agent-id", "fault-no-ready",
               "--timeout", "1", timeout=30)
    assert proc.returncode == EXIT_RUNTIME, show(proc)
    assert "(--timeout)" in proc.stderr and "onready" not in proc.stderr, show(proc)
    # A certificate the system does not trust: --ca-file.
    from test_tls import _self_signed
    cert, key = _self_signed(tmp_path)
    server = devserver_factory("--tls-cert", cert, "--tls-key", key)
    proc = run(cli, *base, "--endpoint", server.url, "--timeout", "5", timeout=30)
    assert proc.returncode == EXIT_RUNTIME, show(proc)
    assert "--ca-file FILE" in proc.stderr and "millis_" not in proc.stderr, show(proc)
    assert proc.stderr.count("error: ") == 1, show(proc)
    # ... which then works.
    proc = run(cli, *base, "--endpoint", server.url, "--ca-file", cert, "--linger", "0", timeout=60)
    assert proc.returncode == 0, show(proc)


# ---------------------------------------------------------------------------------
# talk on a terminal (tmux)
# ---------------------------------------------------------------------------------


class Tmux:
    """A private tmux server (its own socket), so the test touches no one else's."""

    def __init__(self, tmp_path: Path):
        tmux = shutil.which("tmux")
        if tmux is None:
            pytest.fail("tmux is not installed (make test-deps installs it)", pytrace=False)
        self.cmd = [tmux, "-u", "-S", str(tmp_path / "tmux.sock"), "-f", "/dev/null"]

    def __call__(self, *args) -> str:
        return subprocess.run([*self.cmd, *args], capture_output=True, text=True, timeout=30, check=True).stdout

    def capture(self, joined: bool = False) -> str:
        """The pane's text; joined: wrapped lines joined (plain output after the screen)."""
        return self("capture-pane", "-p", *(["-J"] if joined else []), "-t", "cli")

    def kill(self) -> None:
        subprocess.run([*self.cmd, "kill-server"], capture_output=True, timeout=30)


def test_talk_live_screen_in_tmux(cli, repo_root, devserver, tmp_path):
    tmux = Tmux(tmp_path)
    rc_file = tmp_path / "rc"
    env = {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TERM": "screen", "MILLIS_PUBLIC_KEY": PUBLIC_KEY,
           "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    talk = [str(cli), "talk", "--input", str(repo_root / "bindings" / "audio" / "user.wav"),
            "--output", str(tmp_path / "agent.wav"), "--record", str(tmp_path / "call.wav"),
            "--agent-id", "demo-agent", "--endpoint", devserver.url]
    command = ("env -i " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " "
               + " ".join(map(shlex.quote, talk)) + f"; echo $? > {shlex.quote(str(rc_file))}; sleep 600")
    captures = []
    try:
        tmux("new-session", "-d", "-s", "cli", "-x", "100", "-y", "30", command)
        deadline = time.monotonic() + 60
        while not rc_file.exists() and time.monotonic() < deadline:
            captures.append(tmux.capture())
            time.sleep(0.1)
        time.sleep(0.3)
        final = tmux.capture(joined=True)
    finally:
        tmux.kill()
    assert rc_file.exists(), "millis talk did not end within 60 s:\n" + (captures[-1] if captures else "")
    assert rc_file.read_text().strip() == "0", final

    live = [c for c in captures if c.startswith(" millis talk  ")]
    assert live, "no live screen was captured:\n" + "\n---\n".join(captures[-3:])
    # The last screen before stopping (then "closing" replaces "ready").
    last = [c for c in live if " connection ready " in c][-1]
    rows = last.splitlines()
    assert rows[0].startswith(f" millis talk  {devserver.url}  agent demo-agent"), last
    assert re.match(r" connection ready\s+agent \w+\s+mic on\s+session [0-9a-f]{32}", rows[1]), last
    assert re.match(r" user   .* (-?\d+\.\d dBFS|silent)$", rows[2]) and re.match(r" agent  .* (-?\d+\.\d dBFS|silent)$", rows[3]), last
    assert "m mute/unmute   q quit" in rows[4] and set(rows[5]) == {"─"}, last
    # No row wraps: every one fits in the 100 columns.
    assert all(len(row) < 100 for row in rows), last
    for text in SCRIPT_FINALS:
        assert f"user  > {text}" in last, last
    for text in SCRIPT_RESPONSES:
        assert f"agent > {text}" in last, last
    assert re.search(r"turn 1: \d+ ms \(end of speech → start_answering \d+, → first audio \d+, → played \d+\)", last)
    assert re.search(r"turn 2: \d+ ms", last)

    # The meters moved: the user's while it spoke, the agent's while it answered.
    def levels(row_index):
        values = []
        for c in live:
            m = re.search(r"(-?\d+\.\d) dBFS$", c.splitlines()[row_index])
            if m:
                values.append(float(m.group(1)))
        return values
    assert max(levels(2)) > -40, "the user meter never showed speech"
    assert max(levels(3)) > -40, "the agent meter never showed the agent"
    assert any(re.search(r"█{5,}", c.splitlines()[3]) for c in live), "no agent bar drawn"
    # Partials are updated in place: never two partial lines of one speaker.
    for c in live:
        assert sum(1 for line in c.splitlines() if line.startswith("user  > ") and line.endswith(" …")) <= 1

    # After the live screen, the transcript stays on the terminal.
    assert "user  > " + SCRIPT_FINALS[0] in final and "closed 1000" in final, final
    assert f"recording: {tmp_path / 'call.wav'}, timeline {tmp_path / 'call.jsonl'}" in final, final

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "millis-talk-tmux.txt").write_text(last)
    (ARTIFACTS / "millis-talk-tmux-after.txt").write_text(final)


def test_talk_live_keys_mute_and_quit(cli, devserver, tmp_path):
    tmux = Tmux(tmp_path)
    rc_file = tmp_path / "rc"
    talk = [str(cli), "talk", "--agent-id", "quick-agent", "--endpoint", devserver.url,
            "--input", str(silence_wav(tmp_path / "quiet.wav", 60)), "--output", str(tmp_path / "agent.wav")]
    command = (f"env LANG=C.UTF-8 MILLIS_PUBLIC_KEY={PUBLIC_KEY} " + " ".join(map(shlex.quote, talk))
               + f"; echo $? > {shlex.quote(str(rc_file))}; stty -a > {shlex.quote(str(tmp_path / 'stty'))}; sleep 600")

    def wait_for(pred, what, timeout=15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = tmux.capture()
            if pred(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{what} not seen:\n{tmux.capture()}")

    try:
        tmux("new-session", "-d", "-s", "cli", "-x", "90", "-y", "24", command)
        wait_for(lambda s: "agent > ok" in s and "connection ready" in s, "the quick agent's answer")
        tmux("send-keys", "-t", "cli", "m")
        screen = wait_for(lambda s: "MUTED" in s, "the mute flag")
        assert "microphone muted" in screen
        tmux("send-keys", "-t", "cli", "m")
        wait_for(lambda s: "mic on" in s and "microphone on" in s, "unmute")
        tmux("send-keys", "-t", "cli", "q")
        final = wait_for(lambda s: rc_file.exists() and "closed 1000" in s, "the clean exit")
        stty = wait_for(lambda s: (tmp_path / "stty").exists(), "stty") and (tmp_path / "stty").read_text()
    finally:
        tmux.kill()
    assert rc_file.read_text().strip() == "0", final
    assert "agent > ok" in final
    # The terminal is back in cooked mode with echo.
    assert re.search(r"(?<!-)icanon", stty) and re.search(r"(?<!-)echo\b", stty) and re.search(r"(?<!-)isig", stty), stty


def test_talk_plain_flag_on_a_terminal(cli, devserver, tmp_path):
    tmux = Tmux(tmp_path)
    out = tmp_path / "out.txt"
    talk = [str(cli), "talk", "--plain", "--agent-id", "quick-agent", "--endpoint", devserver.url,
            "--input", str(silence_wav(tmp_path / "quiet.wav", 0.3)), "--output", str(tmp_path / "agent.wav"),
            "--linger", "0.5"]
    command = (f"env MILLIS_PUBLIC_KEY={PUBLIC_KEY} " + " ".join(map(shlex.quote, talk))
               + f"; echo $? > {shlex.quote(str(out))}; sleep 600")
    try:
        tmux("new-session", "-d", "-s", "cli", "-x", "90", "-y", "24", command)
        deadline = time.monotonic() + 20
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        screen = tmux.capture()
    finally:
        tmux.kill()
    assert out.exists() and out.read_text().strip() == "0", screen
    assert "user: quick" in screen and "agent: ok" in screen and "closed 1000" in screen, screen
    assert "dBFS" not in screen


# ---------------------------------------------------------------------------------
# The man page (docs/millis.1) and the guide (docs/cli.md)
# ---------------------------------------------------------------------------------


def man_source(repo_root: Path) -> str:
    """docs/millis.1 with roff's escaped hyphens as plain ones."""
    return (repo_root / "docs" / "millis.1").read_text().replace("\\-", "-")


def test_man_page_renders_without_warnings(repo_root):
    page = repo_root / "docs" / "millis.1"
    # (groff and man as they are: no sanitizer runtime preloaded into them)
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    proc = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(page)], capture_output=True, text=True,
                          timeout=60, env=env)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    env.update(MANWIDTH="80", LC_ALL="C.UTF-8")
    proc = subprocess.run(["man", "--warnings", "-l", str(page)], capture_output=True, text=True, timeout=60,
                          env=env)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    for heading in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "EXIT STATUS", "ENVIRONMENT", "EXAMPLES"):
        assert re.search(rf"^{heading}$", proc.stdout, re.M), f"no {heading} section"


def test_man_page_documents_what_help_prints(cli, repo_root):
    """Every command, option, environment variable and exit code that --help prints is in
    the man page, so that the two cannot drift apart."""
    man = man_source(repo_root)
    top = run(cli, "--help").stdout
    commands = re.findall(r"^  ([a-z]+)  ", top.split("Commands:")[1].split("\n\n")[0], re.M)
    assert set(commands) == {"talk", "devices", "voices", "devserver", "replay"}, commands
    missing = []
    for command in commands:
        if not re.search(rf'^\.SS "millis {command}\b', man, re.M):
            missing.append(f"no .SS section for `millis {command}`")
        # (argparse breaks "--tls-key" after its hyphen: joined again)
        helptext = re.sub(r"-\n\s+", "-", run(cli, command, "--help").stdout)
        for option in sorted(set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*[a-z0-9]", helptext))):
            if not re.search(rf"{re.escape(option)}(?![a-z0-9-])", man):
                missing.append(f"`millis {command}` option {option}")
        for option in sorted(set(re.findall(r"^\s+(-[a-zA-Z])[, ]", helptext, re.M))):
            if not re.search(rf"\.BR? {re.escape(option)}\b", man):
                missing.append(f"`millis {command}` option {option}")
        for variable in sorted(set(re.findall(r"\b(?:MILLIS|ALSA)_[A-Z_]+\b", helptext))):
            if variable not in man:
                missing.append(f"`millis {command}` variable {variable}")
    for variable in sorted(set(re.findall(r"^  (MILLIS_[A-Z_]+)", top, re.M))):
        if not re.search(rf"^\.B {variable}$", man, re.M):
            missing.append(f"environment variable {variable} (ENVIRONMENT)")
    exit_section = man.split(".SH EXIT STATUS")[1].split(".SH ")[0]
    for code in re.findall(r"^  (\d)  ", top.split("Exit status")[1], re.M):
        if not re.search(rf"^\.B {code}$", exit_section, re.M):
            missing.append(f"exit status {code}")
    for option in ("--help", "--version", "-V"):
        if option not in man:
            missing.append(f"`millis {option}`")
    assert not missing, "docs/millis.1 lacks:\n" + "\n".join(missing)


def test_cli_guide_points_at_the_reference(repo_root):
    guide = (repo_root / "docs" / "cli.md").read_text()
    assert "man millis" in guide and "docs/millis.1" in guide
    for command in ("talk", "devices", "voices", "devserver", "replay"):
        assert f"millis {command}" in guide, command
    # Its examples are shown, not run: shell and console blocks only.
    fences = re.findall(r"^```(\S*)", guide, re.M)
    assert set(fences[::2]) <= {"sh", "console"}, fences
