"""libmillis without ALSA, and ALSA's own error lines.

ALSA is loaded with dlopen on first device use, never linked: a machine without
libasound.so.2 (a bare root with a wheel) imports the binding and holds
application-audio conversations; device mode then fails with our message, and the
default audio mode settles on application audio. The machine's ALSA is hidden from a
child process by bind-mounting an empty file over it in a private mount namespace
(`unshare -m`, root only).

When ALSA is there, what it would print on stderr ("ALSA lib confmisc.c:855:(parse_card)
cannot find card '0'") is kept instead, and its cause appears once, in our message.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
USER_WAV = REPO / "bindings" / "audio" / "user.wav"

# Run in the child: prints one JSON line of findings, the parent judges them.
NO_ALSA_CHILD = r'''
import ctypes, json, sys, threading, time
endpoint, output_path = sys.argv[1], sys.argv[2]
found = {}
try:
    ctypes.CDLL("libasound.so.2")
    found["alsa_hidden"] = False
except OSError as exc:
    found["alsa_hidden"] = True
    found["alsa_hidden_why"] = str(exc)
import millis
from millis_testkit import PUBLIC_KEY, FRAME_BYTES, USER_TURN, Recorder

# The default audio mode probes the devices: without ALSA, application audio.
c = millis.Client(PUBLIC_KEY, endpoint)
found["default_mode"] = int(c.audio_mode)
c.close()

# Device mode: the client is created, start says what is missing.
c = millis.Client(PUBLIC_KEY, endpoint, audio_mode="device")
try:
    c.start(agent_id="demo-agent")
    found["device_start"] = "started"
except millis.MillisError as exc:
    found["device_start"] = [exc.status, exc.message]
c.close()

try:
    millis.audio_devices()
    found["devices"] = "listed"
except millis.MillisError as exc:
    found["devices"] = [exc.status, exc.message]
# The C API's account of the listing's failure, which the binding's error carries.
import os
native = ctypes.CDLL(os.environ["MILLIS_LIBRARY"])
native.millis_audio_devices_json.restype = ctypes.c_void_p
native.millis_audio_devices_last_error.restype = ctypes.c_char_p
found["devices_json"] = native.millis_audio_devices_json()
found["devices_error"] = native.millis_audio_devices_last_error().decode()

# An application-audio conversation.
c = millis.Client(PUBLIC_KEY, endpoint, audio_mode="application")
rec = Recorder(c)
c.start(agent_id="demo-agent")
rec.wait_for("onready", timeout=20)
pcm = USER_TURN
for i in range(0, len(pcm), FRAME_BYTES):
    c.send_audio(pcm[i:i + FRAME_BYTES])
rec.wait_for("ontranscript", timeout=20)
c.stop()
rec.wait_for("onclose", timeout=20)
found["application_events"] = rec.names()
c.close()

# Device mode on files alone needs no ALSA either.
c = millis.Client(PUBLIC_KEY, endpoint, input_file=sys.argv[3], input_pacing="fast",
                  output_file=output_path)
rec = Recorder(c)
c.start(agent_id="demo-agent")
rec.wait_for("onready", timeout=20)
rec.wait_for("ontranscript", timeout=30)
c.stop()
rec.wait_for("onclose", timeout=20)
found["file_mode"] = int(c.audio_mode)
found["file_errors"] = [str(a[0]) for a in rec.of("onerror")]
c.close()
print(json.dumps(found))
'''

# Devices that cannot open, with ALSA present; each must fail in our words only.
NO_CARD_CHILD = r'''
import json, sys
import millis
from millis_testkit import PUBLIC_KEY
endpoint = sys.argv[1]
found = {}
c = millis.Client(PUBLIC_KEY, endpoint)  # the default mode's probe
found["default_mode"] = int(c.audio_mode)
c.close()
for name, device in (("hw", "hw:9,0"), ("default", "default")):
    c = millis.Client(PUBLIC_KEY, endpoint, audio_mode="device", capture_device=device,
                      playback_device=device)
    try:
        c.start(agent_id="demo-agent")
        found[name] = "started"
        c.stop()
    except millis.MillisError as exc:
        found[name] = [exc.status, exc.message]
    c.close()
try:
    millis.audio_devices()
except millis.MillisError:
    pass
print(json.dumps(found))
'''


def child_env(library_path: Path) -> dict:
    env = dict(os.environ)
    env["MILLIS_LIBRARY"] = str(library_path)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "bindings" / "python"), str(HERE)])
    return env


def alsa_library_paths() -> list:
    """Every file the dynamic loader would take for libasound.so.2 (the targets of
    ldconfig's entries: a bind mount over a link would hide the link's target anyway)."""
    listing = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    paths = set()
    for line in listing.splitlines():
        if line.strip().startswith("libasound.so.2 ") and "=>" in line:
            paths.add(os.path.realpath(line.split("=>", 1)[1].strip()))
    return sorted(paths)


def why_no_namespace():
    if os.geteuid() != 0:
        return "hiding ALSA needs a private mount namespace (unshare -m), which needs root"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"unshare -m is refused here: {probe.stderr.strip()}"
    return None


def run_without_alsa(tmp_path: Path, argv: list, env: dict, timeout: float):
    empty = tmp_path / "empty-libasound"
    empty.write_bytes(b"")
    paths = alsa_library_paths()
    assert paths, "ldconfig -p lists no libasound.so.2: nothing to hide (is libasound2 installed?)"
    # Private propagation first: the bind mounts must not leak to the host.
    script = 'set -e; mount --make-rprivate /; empty="$1"; shift; n="$1"; shift; ' \
             'while [ "$n" -gt 0 ]; do mount --bind "$empty" "$1"; shift; n=$((n - 1)); done; exec "$@"'
    cmd = ["unshare", "-m", "sh", "-c", script, "sh", str(empty), str(len(paths)), *paths, *argv]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def test_library_does_not_link_alsa(library_path):
    dynamic = subprocess.run(["readelf", "-d", str(library_path)], capture_output=True, text=True, check=True).stdout
    needed = [line for line in dynamic.splitlines() if "(NEEDED)" in line]
    assert needed, f"readelf found no NEEDED entries in {library_path}:\n{dynamic}"
    assert not [line for line in needed if "libasound" in line], \
        "libmillis.so links ALSA; it must load it on first device use:\n" + "\n".join(needed)


def test_works_without_alsa(library_path, devserver, tmp_path, millis):
    reason = why_no_namespace()
    if reason:
        pytest.skip(reason)
    child = tmp_path / "no_alsa_child.py"
    child.write_text(NO_ALSA_CHILD)
    done = run_without_alsa(tmp_path, [sys.executable, str(child), devserver.url,
                                       str(tmp_path / "agent.wav"), str(USER_WAV)],
                            child_env(library_path), timeout=120)
    assert done.returncode == 0, f"child failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-4000:]}"
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["alsa_hidden"], "the namespace did not hide libasound.so.2"

    assert found["default_mode"] == int(millis.AudioMode.APPLICATION)

    status, message = found["device_start"]
    assert status == int(millis.Status.AUDIO_DEVICE), found["device_start"]
    assert message.startswith("device audio needs ALSA (libasound.so.2), which could not be loaded: "), message
    assert "apt install libasound2" in message and "MILLIS_AUDIO_MODE_APPLICATION" in message, message

    status, listing = found["devices"]
    assert status == int(millis.Status.AUDIO_DEVICE), found["devices"]
    assert listing == message, listing
    assert found["devices_json"] is None
    assert found["devices_error"] == message, found["devices_error"]

    events = found["application_events"]
    for name in ("onopen", "onready", "ontranscript", "onclose"):
        assert name in events, f"{name} missing from {events}"
    assert "onerror" not in events, events

    assert found["file_mode"] == int(millis.AudioMode.DEVICE)
    assert found["file_errors"] == []
    assert (tmp_path / "agent.wav").stat().st_size > 44
    assert "ALSA lib" not in done.stderr, done.stderr


def test_alsa_errors_stay_off_stderr(library_path, tmp_path, millis):
    child = tmp_path / "no_card_child.py"
    child.write_text(NO_CARD_CHILD)
    env = child_env(library_path)
    # The default PCM then looks for a card that no machine has: "cannot find card '9'".
    env["ALSA_CARD"] = "9"
    env.pop("ALSA_CONFIG_PATH", None)
    done = subprocess.run([sys.executable, str(child), "ws://127.0.0.1:9/millis"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"child failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-4000:]}"
    assert "ALSA lib" not in done.stderr, f"ALSA printed on stderr:\n{done.stderr}"
    assert done.stderr.strip() == "", done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["default_mode"] == int(millis.AudioMode.APPLICATION)
    for name, device, cause in (("hw", "hw:9,0", "Cannot get card index for 9"),
                                ("default", "default", "cannot find card '9'")):
        status, message = found[name]
        assert status == int(millis.Status.AUDIO_DEVICE), found[name]
        assert message.startswith(f"could not open ALSA capture device '{device}': "), message
        # ALSA's cause, once, inside our sentence.
        assert message.count("(ALSA: ") == 1 and f"(ALSA: {cause})" in message, message
