"""The C side of libmillis: C tests, the C example, the C++ header check, the ABI check.

Every program is compiled with the system compiler against the build tree's
pkg-config file (PKG_CONFIG_PATH=<repo>/build/pkgconfig; its Libs carry an rpath, so
no LD_LIBRARY_PATH is needed) into a pytest temporary directory, then run; the ones
that hold a conversation talk to the devserver fixture.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import threading
import wave
from pathlib import Path

import pytest

from millis_testkit import show_output

WARNINGS = ["-Wall", "-Wextra", "-Werror", "-pedantic"]
EXPECTED_FINALS = ["Hello, what is the weather like today?", "Thank you, goodbye."]


def _show(result) -> str:
    return show_output(result)


def run(cmd: list, *, timeout: float, env: dict | None = None, cwd: Path | None = None,
        expect: int | None = 0) -> subprocess.CompletedProcess:
    """Runs cmd; fails with its output on a timeout or (when expect is set) another exit code."""
    try:
        result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                                timeout=timeout, env=env, cwd=cwd)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{shlex.join(str(c) for c in cmd)} did not finish within {timeout} s\n{_show(exc)}",
                    pytrace=False)
    if expect is not None and result.returncode != expect:
        pytest.fail(f"{shlex.join(str(c) for c in cmd)} exited {result.returncode}, expected {expect}\n"
                    f"{_show(result)}", pytrace=False)
    return result


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: install a C/C++ toolchain and pkg-config", pytrace=False)
    return path


@pytest.fixture(scope="module")
def pkg_env(library_path: Path, repo_root: Path) -> dict:
    """The environment for pkg-config: the build tree's millis.pc first."""
    pc_dir = repo_root / "build" / "pkgconfig"
    if not (pc_dir / "millis.pc").exists():
        pytest.fail(f"{pc_dir / 'millis.pc'} does not exist: run `make build` first", pytrace=False)
    env = dict(os.environ)
    env["PKG_CONFIG_PATH"] = os.pathsep.join(
        [str(pc_dir)] + ([env["PKG_CONFIG_PATH"]] if env.get("PKG_CONFIG_PATH") else []))
    env.pop("LD_LIBRARY_PATH", None)  # the rpath in millis.pc must be enough
    return env


@pytest.fixture(scope="module")
def millis_flags(pkg_env: dict) -> list:
    """`pkg-config --cflags --libs millis`, split into arguments."""
    result = run([tool("pkg-config"), "--cflags", "--libs", "millis"], timeout=30, env=pkg_env)
    flags = shlex.split(result.stdout)
    assert any(f.startswith("-I") for f in flags), result.stdout
    assert "-lmillis" in flags, result.stdout
    return flags


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("c-programs")


def compile_c(source: Path, out: Path, flags: list, env: dict, *, std: str = "c99",
              warnings: bool = True) -> Path:
    cmd = [tool("cc")] + ([f"-std={std}"] + WARNINGS if warnings else []) + [source] + flags + ["-o", out]
    run(cmd, timeout=120, env=env)
    return out


@pytest.fixture(scope="module")
def test_api_exe(repo_root, build_dir, millis_flags, pkg_env) -> Path:
    return compile_c(repo_root / "Tests" / "c" / "test_api.c", build_dir / "test_api", millis_flags, pkg_env)


@pytest.fixture(scope="module")
def test_conversation_exe(repo_root, build_dir, millis_flags, pkg_env) -> Path:
    return compile_c(repo_root / "Tests" / "c" / "test_conversation.c", build_dir / "test_conversation",
                     millis_flags, pkg_env)


@pytest.fixture(scope="module")
def test_fork_exe(repo_root, build_dir, millis_flags, pkg_env) -> Path:
    return compile_c(repo_root / "Tests" / "c" / "test_fork.c", build_dir / "test_fork", millis_flags, pkg_env)


@pytest.fixture(scope="module")
def example_flows_exe(repo_root, build_dir, millis_flags, pkg_env) -> Path:
    return compile_c(repo_root / "Tests" / "c" / "test_example_flows.c", build_dir / "test_example_flows",
                     millis_flags, pkg_env)


@pytest.fixture(scope="module")
def example_exe(repo_root, build_dir, millis_flags, pkg_env) -> Path:
    """Built exactly as the README says: cc millis_example.c $(pkg-config --cflags --libs millis)."""
    source = repo_root / "bindings" / "c" / "millis_example.c"
    out = build_dir / "millis_example"
    run([tool("cc"), source] + millis_flags + ["-o", out], timeout=120, env=pkg_env)
    return out


def user_wav(repo_root: Path) -> Path:
    path = repo_root / "bindings" / "audio" / "user.wav"
    assert path.exists(), f"{path} is missing"
    return path


# ------------------------------------------------------------------------------------
# Compilation
# ------------------------------------------------------------------------------------

def test_c_sources_compile_warning_free(repo_root, millis_flags, pkg_env, build_dir):
    """All C sources compile as C99 and C11 with -Wall -Wextra -Werror -pedantic."""
    sources = [repo_root / "Tests" / "c" / "test_api.c", repo_root / "Tests" / "c" / "test_conversation.c",
               repo_root / "Tests" / "c" / "test_fork.c", repo_root / "Tests" / "c" / "test_example_flows.c",
               repo_root / "bindings" / "c" / "millis_example.c"]
    for std in ("c99", "c11"):
        for source in sources:
            compile_c(source, build_dir / f"{source.stem}.{std}", millis_flags, pkg_env, std=std)


def test_header_compiles_as_cxx_and_links(repo_root, millis_flags, pkg_env, build_dir):
    """millis.h parses as C++11, and a C++ program links: the extern "C" guards work."""
    source = repo_root / "Tests" / "c" / "test_header_cxx.cpp"
    gxx = tool("g++")
    cflags = [f for f in millis_flags if f.startswith("-I")]
    run([gxx, "-std=c++11"] + WARNINGS + ["-x", "c++", "-fsyntax-only", source] + cflags,
        timeout=120, env=pkg_env)
    exe = build_dir / "test_header_cxx"
    run([gxx, "-std=c++11"] + WARNINGS + [source] + millis_flags + ["-o", exe], timeout=120, env=pkg_env)
    result = run([exe], timeout=30, env=pkg_env)
    assert "C++: libmillis" in result.stdout


# ------------------------------------------------------------------------------------
# The C tests
# ------------------------------------------------------------------------------------

def test_c_api(test_api_exe, pkg_env):
    result = run([test_api_exe], timeout=90, env=pkg_env)
    assert "test_api:" in result.stdout, _show(result)


def test_c_conversation(test_conversation_exe, devserver, repo_root, pkg_env):
    result = run([test_conversation_exe, devserver.url, devserver.record_dir, user_wav(repo_root)],
                 timeout=120, env=pkg_env)
    assert "test_conversation:" in result.stdout, _show(result)


@pytest.mark.skipif(os.environ.get("MILLIS_SANITIZER") == "tsan",
                    reason="ThreadSanitizer does not support fork in a multi-threaded process")
def test_c_fork(test_fork_exe, devserver, pkg_env):
    """A child forked after the parent used the library holds conversations of its own
    (and so does a grandchild forked by each child); the parent's client refuses its calls there with
    MILLIS_ERR_INVALID_STATE instead of hanging; the parent's conversation and new
    parent clients go on (Tests/c/test_fork.c). Each child's checks come back as its
    exit status; a hang becomes SIGALRM in the child (60 s) or a kill by the parent."""
    result = run([test_fork_exe, devserver.url, "--children", "3"], timeout=300, env=pkg_env)
    assert "test_fork: 3 children" in result.stdout, _show(result)
    assert result.stdout.count("child at depth 1:") == 3, _show(result)
    assert result.stdout.count("child at depth 2:") == 3, _show(result)


# ------------------------------------------------------------------------------------
# The example, and the flows it was tested on before it became short (Tests/c/test_example_flows.c)
# ------------------------------------------------------------------------------------

def read_wav_checked(path: Path) -> bytes:
    """Checks the header by hand and with the wave module; returns the PCM data."""
    raw = path.read_bytes()
    assert len(raw) >= 44, f"{path}: {len(raw)} bytes, too short for a WAV header"
    assert raw[:4] == b"RIFF" and raw[8:16] == b"WAVEfmt ", raw[:16]
    riff_size, = struct.unpack_from("<I", raw, 4)
    assert riff_size == len(raw) - 8, (riff_size, len(raw))
    fmt, channels, rate, byte_rate, align, bits = struct.unpack_from("<HHIIHH", raw, 20)
    assert (fmt, channels, rate, byte_rate, align, bits) == (1, 1, 16000, 32000, 2, 16)
    assert raw[36:40] == b"data"
    data_size, = struct.unpack_from("<I", raw, 40)
    assert data_size == len(raw) - 44
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (1, 16000, 2)
        assert w.getnframes() * 2 == data_size
    return raw[44:]


def check_example_events(result) -> str:
    """What the C and C++ examples print of the devserver's two-turn conversation: each
    event, in order, none an error. Returns their output."""
    text = result.stdout
    assert re.search(r"^onopen$", text, re.M), _show(result)
    assert re.search(r'^onready session_id="[^"]+"', text, re.M), _show(result)
    for final in EXPECTED_FINALS:
        assert f'ontranscript (final) "{final}"' in text, _show(result)
    assert re.search(r"onresponsetext \(final\) \".+\"", text), _show(result)
    assert re.search(r'onfunction get_weather \{.*"Paris".*\}', text), _show(result)
    assert re.search(r"onlatency \d+\.\d ms", text), _show(result)
    assert "onagentstate answer" in text and "onagentstate idle" in text, _show(result)
    assert text.index("onsessionended") < text.index('onclose 1000 "'), _show(result)
    assert "onerror" not in text, _show(result)
    return text


def test_example_conversation(example_exe, devserver, repo_root, pkg_env, tmp_path):
    """The example, built as the README says, holds the devserver's two-turn conversation
    and prints what a user expects: each event, the session id, the agent's voice file."""
    out_wav = tmp_path / "agent.wav"
    result = run([example_exe, "--endpoint", devserver.url, "--agent-id", "demo-agent",
                  "--input", user_wav(repo_root), "--output", out_wav],
                 timeout=120, env=pkg_env, cwd=tmp_path)
    text = check_example_events(result)
    assert f"the agent's voice: {out_wav}" in text, _show(result)

    session = re.search(r"^session id: (\S+)$", text, re.M)
    assert session, _show(result)
    assert re.search(r'^stats: \{"frames_sent":\d+', text, re.M), _show(result)
    record = devserver.record(session.group(1), timeout=15)
    assert record["close"]["code"] == 1000
    assert len(record["user_turns"]) == len(EXPECTED_FINALS)
    # The output file is written as a speaker plays: the agent's audio and the silence
    # between answers.
    pcm = read_wav_checked(out_wav)
    assert len(pcm) >= record["agent_audio_bytes_sent"] > 0
    assert any(pcm), "the agent's audio is all zeros"


def test_example_errors(example_exe, pkg_env, tmp_path, repo_root):
    """What goes wrong is told with millis_status_string and the last error, exit 1."""
    help_ = run([example_exe, "--help"], timeout=30, env=pkg_env)
    assert "--endpoint" in help_.stdout and "--input" in help_.stdout and "MILLIS_PUBLIC_KEY" in help_.stdout
    bogus = run([example_exe, "--bogus", "x"], timeout=30, env=pkg_env, expect=1)
    assert "usage:" in bogus.stderr, _show(bogus)
    run([example_exe, "--input"], timeout=30, env=pkg_env, expect=1)

    missing = run([example_exe, "--input", tmp_path / "nope.wav", "--output", tmp_path / "agent.wav"],
                  timeout=30, env=pkg_env, expect=1)
    # millis_status_string(MILLIS_ERR_FILE), then millis_client_last_error naming the file.
    assert "error: file error: " in missing.stderr and "nope.wav" in missing.stderr, _show(missing)

    unreachable = run([example_exe, "--endpoint", "ws://127.0.0.1:1/millis", "--input", user_wav(repo_root),
                       "--output", tmp_path / "none.wav"],
                      timeout=60, env=pkg_env, cwd=tmp_path, expect=1)
    assert "onerror" in unreachable.stdout and "onclose 1006" in unreachable.stdout, _show(unreachable)


def test_example_microphone_and_ctrl_c(example_exe, devserver, pkg_env, tmp_path):
    """Without --input and --output the example talks through ALSA's default devices (here
    the file-backed PCMs of Tests/python/audio_bed.py behind `default`); Ctrl-C ends the
    conversation with a normal close, and the example exits 0."""
    import numpy as np
    from audio_bed import FileDevices

    devices = FileDevices(tmp_path / "alsa")
    speech = tmp_path / "in.raw"
    sox = subprocess.run(["sox", str(user_wav(Path(__file__).resolve().parents[2])),
                          "-r", "44100", "-c", "2", "-t", "raw", "-e", "signed", "-b", "16", "-"],
                         capture_output=True, check=True)
    speech.write_bytes(sox.stdout + bytes(44100 * 2 * 2 * 8))
    out = tmp_path / "speaker.raw"
    devices.capture("mic", speech, rate=44100, channels=2, formats=["S16_LE"])
    devices.playback("spk", out, rate=48000, channels=1, formats=["S16_LE"])
    devices.add_text('pcm.!default {\n    type asym\n    capture.pcm "mic"\n    playback.pcm "spk"\n}\n')
    proc = subprocess.Popen([str(example_exe), "--endpoint", devserver.url, "--agent-id", "demo-agent"],
                            env=devices.env(pkg_env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killer = threading.Timer(90, proc.kill)
    killer.start()
    try:
        seen = []
        for line in proc.stdout:  # until the first answer has been played
            seen.append(line)
            if "It's sunny" in "".join(seen) and line.startswith("onagentstate idle"):
                break
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=30)
    finally:
        killer.cancel()
        if proc.poll() is None:
            proc.kill()
    text = "".join(seen) + rest
    shown = f"--- stdout ---\n{text[-12000:]}\n--- stderr ---\n{err[-6000:]}"
    assert proc.returncode == 0, shown
    assert 'ontranscript (final) "Hello, what is the weather like today?"' in text, shown
    assert re.search(r'^onclose 1000 "', text, re.M), shown
    assert '"audio_mode":"device"' in text, shown
    played = np.frombuffer(out.read_bytes(), "<i2")
    assert np.sqrt(np.mean(played.astype(float) ** 2)) > 100, "the speaker file holds no agent speech"


def test_example_makefile_respects_pkg_config_path(repo_root, pkg_env, tmp_path):
    """bindings/c/Makefile builds with nothing but pkg-config, found via PKG_CONFIG_PATH."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    for name in ("Makefile", "millis_example.c"):
        shutil.copy(repo_root / "bindings" / "c" / name, tmp_path / name)
    result = run(["make", "-C", tmp_path, "millis_example"], timeout=120, env=pkg_env)
    assert "pkg-config --cflags --libs millis" in result.stdout, _show(result)
    run([tmp_path / "millis_example", "--help"], timeout=30, env=pkg_env)


def test_example_flows_conversation(example_flows_exe, devserver, repo_root, pkg_env, tmp_path):
    """Application audio, streamed by the program from onready until the close; the agent's
    audio (onaudio) to a WAV file: the flow the example held before it became short."""
    out_wav = tmp_path / "agent.wav"
    result = run([example_flows_exe, "--endpoint", devserver.url, "--agent-id", "demo-agent",
                  "--input", user_wav(repo_root), "--output", out_wav, "--timeout", "60"],
                 timeout=120, env=pkg_env, cwd=tmp_path)
    text = result.stdout
    for final in EXPECTED_FINALS:
        assert f'ontranscript (final) "{final}"' in text, _show(result)
    assert re.search(r"^\[\s*\d+\.\d{3}\] onopen$", text, re.M), _show(result)
    assert re.search(r"^\[\s*\d+\.\d{3}\] onready ", text, re.M), _show(result)
    assert re.search(r"onresponsetext \(final\) \".+\"", text), _show(result)
    assert re.search(r'onfunction get_weather \{.*"Paris".*\}', text), _show(result)
    assert re.search(r"onlatency \d+\.\d ms", text), _show(result)
    assert "onsessionended" in text and 'onclose 1000 "' in text, _show(result)
    # Agent audio is summarised, not printed per frame.
    assert text.count("onaudio ") <= 2 * len(EXPECTED_FINALS), _show(result)

    pcm = read_wav_checked(out_wav)
    assert len(pcm) > 0
    assert any(pcm), "the agent's audio is all zeros"

    session = re.search(r"^session id:\s+(\S+)$", text, re.M)
    assert session, _show(result)
    record = devserver.record(session.group(1), timeout=15)
    assert record["agent_audio_bytes_sent"] == len(pcm)
    assert record["audio_bytes_received_before_ready"] == 0
    sent = re.search(r"^user audio sent:\s+(\d+) bytes", text, re.M)
    assert sent and int(sent.group(1)) >= user_wav(repo_root).stat().st_size - 44 - 640
    assert record["audio_bytes_received"] <= int(sent.group(1))
    assert record["close"]["code"] == 1000


def test_example_flows_exit_codes(example_flows_exe, pkg_env, tmp_path, repo_root):
    help_ = run([example_flows_exe, "--help"], timeout=30, env=pkg_env)
    assert "--endpoint" in help_.stdout and "--timeout" in help_.stdout
    run([example_flows_exe, "--bogus"], timeout=30, env=pkg_env, expect=1)
    run([example_flows_exe, "--timeout", "soon"], timeout=30, env=pkg_env, expect=1)
    run([example_flows_exe, "--input"], timeout=30, env=pkg_env, expect=1)

    missing = run([example_flows_exe, "--input", tmp_path / "nope.wav"], timeout=30, env=pkg_env, expect=2)
    assert "nope.wav" in missing.stderr

    stereo = tmp_path / "stereo.wav"
    with wave.open(str(stereo), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes(bytes(4 * 441))
    wrong = run([example_flows_exe, "--input", stereo], timeout=30, env=pkg_env, expect=2)
    assert "44100 Hz" in wrong.stderr and "2 channels" in wrong.stderr, _show(wrong)
    assert "sox" in wrong.stderr, _show(wrong)

    not_wav = tmp_path / "text.wav"
    not_wav.write_text("hello")
    run([example_flows_exe, "--input", not_wav], timeout=30, env=pkg_env, expect=2)

    unreachable = run([example_flows_exe, "--endpoint", "ws://127.0.0.1:1/millis", "--input", user_wav(repo_root),
                       "--output", tmp_path / "none.wav", "--timeout", "10"],
                      timeout=60, env=pkg_env, cwd=tmp_path, expect=3)
    assert "onerror" in unreachable.stdout and "onclose 1006" in unreachable.stdout, _show(unreachable)


# ------------------------------------------------------------------------------------
# ABI
# ------------------------------------------------------------------------------------

def test_exports_match_header(library_path, repo_root):
    script = repo_root / "Tests" / "abi" / "check_exports.py"
    result = run([sys.executable, script, library_path, repo_root / "include" / "millis.h"], timeout=60)
    assert "OK:" in result.stdout, _show(result)


def test_example_flows_device_mode_through_alsa(example_flows_exe, devserver, pkg_env, tmp_path):
    """--capture/--playback: the example flows talk through ALSA devices (file-backed PCMs of
    Tests/python/audio_bed.py: a 44.1 kHz stereo microphone reading the user's speech and
    a 48 kHz speaker writing a file), prints the transcripts and the analysers' levels."""
    import numpy as np
    from audio_bed import FileDevices

    devices = FileDevices(tmp_path / "alsa")
    speech = tmp_path / "in.raw"
    sox = subprocess.run(["sox", str(Path(__file__).resolve().parents[2] / "bindings" / "audio" / "user.wav"),
                          "-r", "44100", "-c", "2", "-t", "raw", "-e", "signed", "-b", "16", "-"],
                         capture_output=True, check=True)
    speech.write_bytes(sox.stdout + bytes(44100 * 2 * 2 * 8))
    out = tmp_path / "speaker.raw"
    devices.capture("mic", speech, rate=44100, channels=2, formats=["S16_LE"])
    devices.playback("spk", out, rate=48000, channels=1, formats=["S16_LE"])
    listing = run([example_flows_exe, "--list-devices"], timeout=30, env=devices.env(pkg_env))
    assert '"name":"mic"' in listing.stdout.replace(" ", "")
    result = run([example_flows_exe, "--capture", "mic", "--playback", "spk", "--endpoint", devserver.url,
                  "--agent-id", "demo-agent", "--timeout", "8"], timeout=60, env=devices.env(pkg_env), expect=None)
    assert result.returncode in (0, 3), _show(result)  # 3: stopped by --timeout before the server's close
    assert "Hello, what is the weather like today?" in result.stdout, _show(result)
    assert "It's sunny" in result.stdout, _show(result)
    played = np.frombuffer(out.read_bytes(), "<i2")
    assert np.sqrt(np.mean(played.astype(float) ** 2)) > 100, "the speaker file holds no agent speech"
