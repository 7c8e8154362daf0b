"""`make install` / `make uninstall` and `pip install ./bindings/python` (docs/install.md).

Installs into temporary prefixes (and once, inside a private mount namespace, into a
tmpfs over /usr/local, with ldconfig writing a private copy of /etc), then builds and
runs the C example against what was installed, and the Python example from the pure
package (`pip install ./bindings/python` in a venv) loading the installed library, with
nothing pointing at the build tree. make install installs no Python package: the wheel
(make wheel, Tests/python/test_wheel.py) or the pure package are the ways in. The suite runs after `make build`, so make runs with
`-o build`: the library under test is not rebuilt (nor broken by work in progress).

While tools/millis/Makefile is the placeholder (the CLI has not landed), the installs
pass INSTALL_CLI=no and the CLI assertions are skipped; a test checks that a plain
`make install` then fails and says why.
"""

from __future__ import annotations

import filecmp
import hashlib
import os
import re
import select
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from millis_testkit import PUBLIC_KEY, show_output

# Packaging is about the release build: Tests/sanitizers/sanitize.py runs this suite in a
# staging tree whose build/ holds only an instrumented library (and preloads its runtime).
pytestmark = pytest.mark.skipif(
    bool(os.environ.get("MILLIS_SANITIZER")),
    reason="install checks need the release build tree, not a sanitizer staging tree")

REPO = Path(__file__).resolve().parents[2]
BINDINGS_PYTHON = REPO / "bindings" / "python"
USER_WAV = REPO / "bindings" / "audio" / "user.wav"
# The version is written in millis.h only (the Makefile reads it from there too).
VERSION = ".".join(re.search(rf"^#define MILLIS_VERSION_{part} (\d+)$", (REPO / "include" / "millis.h").read_text(),
                             re.M).group(1) for part in ("MAJOR", "MINOR", "PATCH"))
SOVERSION = re.search(r"^SOVERSION\s*:=\s*(\S+)", (REPO / "Makefile").read_text(), re.M).group(1)
CLI_PLACEHOLDER = "Placeholder" in (REPO / "tools" / "millis" / "Makefile").read_text()
INSTALL_CLI = "no" if CLI_PLACEHOLDER else "yes"
CLI_SKIP = ("tools/millis/Makefile is still the placeholder (the `millis` CLI has not landed): "
            "installed with INSTALL_CLI=no, nothing to check")
# Debian's python3: its setuptools and wheel build the pure package offline.
SYSTEM_PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
EXPECTED_FINALS = ["Hello, what is the weather like today?", "Thank you, goodbye."]
# Variables that would point a program at the build tree or change what make does.
SCRUBBED = ("MILLIS_LIBRARY", "LD_LIBRARY_PATH", "LD_PRELOAD", "PKG_CONFIG_PATH",
            "PKG_CONFIG_LIBDIR", "PYTHONPATH", "PYTHONHOME", "MAKEFLAGS", "MFLAGS",
            "MAKELEVEL", "MAKEOVERRIDES", "MILLIS_ENDPOINT", "MILLIS_AGENT_ID",
            "PREFIX", "DESTDIR", "LIBDIR", "INCDIR", "BINDIR", "DATADIR", "PKGCONFIGDIR",
            "PYTHONDIR", "MILLIS_DEVSERVER")


def clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env.update(extra)
    return env


def _show(result) -> str:
    return show_output(result, 8000)


def run(cmd, *, timeout: float, env: dict | None = None, cwd: Path | None = None,
        expect: int | None = 0) -> subprocess.CompletedProcess:
    cmd = [str(c) for c in cmd]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                env=clean_env() if env is None else env, cwd=cwd)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{shlex.join(cmd)} did not finish within {timeout} s\n{_show(exc)}",
                    pytrace=False)
    if expect is not None and result.returncode != expect:
        pytest.fail(f"{shlex.join(cmd)} exited {result.returncode}, expected {expect}\n"
                    f"{_show(result)}", pytrace=False)
    return result


def make(*args, expect: int | None = 0, timeout: float = 600) -> subprocess.CompletedProcess:
    """make -o build ARGS. An install gets its own scratch files (the pc file and manifest
    it writes before installing them, the relinked CLI) instead of build/install and
    build/millis-install, so that two runs of the suite cannot trip over each other."""
    if args[0] != "install":
        return run(["make", "-C", REPO, "-o", "build", *args], timeout=timeout, expect=expect)
    scratch = Path(tempfile.mkdtemp(prefix="millis-install-"))
    try:
        return run(["make", "-C", REPO, "-o", "build", *args, f"INSTALL_STAGE={scratch}/stage",
                    f"CLI_INSTALL={scratch}/millis-install"], timeout=timeout, expect=expect)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found", pytrace=False)
    return path


def package_sources() -> set:
    return {p.relative_to(BINDINGS_PYTHON).as_posix()
            for p in (BINDINGS_PYTHON / "millis").rglob("*.py") if "__pycache__" not in p.parts}


def walk(root: Path) -> tuple:
    """(files and symlinks, directories) under root, as paths relative to it."""
    files, dirs = set(), set()
    for path, dirnames, filenames in os.walk(root):
        rel = Path(path).relative_to(root)
        for d in dirnames:
            (files if (Path(path) / d).is_symlink() else dirs).add((rel / d).as_posix())
        for f in filenames:
            files.add((rel / f).as_posix())
    return files, dirs


def read_manifest(path: Path) -> tuple:
    lines = path.read_text().splitlines()
    return [l for l in lines if not l.endswith("/")], [l for l in lines if l.endswith("/")]


def pc_fields(path: Path) -> dict:
    fields = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^(\w+)=(.*)$", line) or re.match(r"^([\w.]+):\s*(.*)$", line)
        if m:
            fields[m.group(1)] = m.group(2)
    return fields


def readelf_dynamic(path: Path) -> str:
    return run([tool("readelf"), "-d", path], timeout=30).stdout


def loader_knows_millis() -> bool:
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    result = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, timeout=30)
    return "libmillis" in result.stdout


def install_into(prefix: Path, *extra) -> SimpleNamespace:
    result = make("install", f"PREFIX={prefix}", f"INSTALL_CLI={INSTALL_CLI}", *extra)
    return SimpleNamespace(prefix=prefix, output=result.stdout + result.stderr, lib=prefix / "lib",
                           manifest=prefix / "share" / "millis" / "install-manifest.txt")


@pytest.fixture(scope="module")
def installed(library_path, tmp_path_factory) -> SimpleNamespace:
    """One `make install PREFIX=<tmp>/prefix` (the prefix does not exist before)."""
    prefix = tmp_path_factory.mktemp("install") / "prefix"
    inst = install_into(prefix)
    inst.header = (REPO / "include" / "millis.h").read_bytes()
    return inst


# --- make install into a prefix ------------------------------------------------------

def test_install_depends_on_build(tmp_path):
    """`make install` builds first (the other tests pass -o build, the suite having built)."""
    result = run(["make", "-C", REPO, "-n", "install", f"PREFIX={tmp_path}", "INSTALL_CLI=no"],
                 timeout=120)
    assert "swift build" in result.stdout, _show(result)
    assert result.stdout.index("swift build") < result.stdout.index("install -m 644"), _show(result)
    assert not any(tmp_path.iterdir()), "make -n installed something"


def test_install_layout(installed):
    lib = installed.lib
    real = lib / f"libmillis.so.{VERSION}"
    assert real.is_file() and not real.is_symlink()
    assert filecmp.cmp(real, REPO / "build" / f"libmillis.so.{VERSION}", shallow=False)
    assert stat.S_IMODE(real.stat().st_mode) == 0o644
    assert os.readlink(lib / f"libmillis.so.{SOVERSION}") == f"libmillis.so.{VERSION}"
    assert os.readlink(lib / "libmillis.so") == f"libmillis.so.{SOVERSION}"
    assert (lib / "libmillis.so").resolve() == real.resolve()
    dyn = readelf_dynamic(real)
    assert f"Library soname: [libmillis.so.{SOVERSION}]" in dyn, dyn

    header = installed.prefix / "include" / "millis.h"
    assert header.read_bytes() == installed.header
    assert stat.S_IMODE(header.stat().st_mode) == 0o644
    hpp = installed.prefix / "include" / "millis.hpp"
    assert hpp.read_bytes() == (REPO / "include" / "millis.hpp").read_bytes()
    assert stat.S_IMODE(hpp.stat().st_mode) == 0o644
    man = installed.prefix / "share" / "man" / "man1" / "millis.1"
    assert man.read_bytes() == (REPO / "docs" / "millis.1").read_bytes()
    assert stat.S_IMODE(man.stat().st_mode) == 0o644

    pc = pc_fields(lib / "pkgconfig" / "millis.pc")
    assert pc["prefix"] == str(installed.prefix)
    assert pc["libdir"] == str(lib)
    assert pc["includedir"] == str(installed.prefix / "include")
    assert pc["Version"] == VERSION
    assert pc["Libs"].split() == ["-L${libdir}", "-lmillis"], pc["Libs"]  # no rpath
    assert "@" not in (lib / "pkgconfig" / "millis.pc").read_text()

    devserver = installed.prefix / "share" / "millis" / "devserver"
    assert (devserver / "millis_devserver.py").read_bytes() == \
        (REPO / "devserver" / "millis_devserver.py").read_bytes()
    assert os.access(devserver / "millis_devserver.py", os.X_OK)
    assert (devserver / "README.md").is_file()
    for script in (REPO / "devserver" / "scripts").iterdir():
        if script.is_file():
            assert (devserver / "scripts" / script.name).read_bytes() == script.read_bytes()

    # No Python package: pip installs it (the wheel, or ./bindings/python); make install
    # says so.
    assert not list(installed.prefix.rglob("_native.py")), sorted(installed.prefix.rglob("*.py"))
    assert not (installed.prefix / "lib" / "python3").exists()
    assert "pip install" in installed.output and "docs/install.md" in installed.output, installed.output


def test_manifest_lists_exactly_what_was_installed(installed):
    files, dirs = read_manifest(installed.manifest)
    on_disk, dirs_on_disk = walk(installed.prefix)
    on_disk = {f for f in on_disk if "__pycache__" not in f}  # an import since the install
    dirs_on_disk = {d for d in dirs_on_disk if "__pycache__" not in d}
    manifest_rel = installed.manifest.relative_to(installed.prefix).as_posix()
    listed = {Path(p).relative_to(installed.prefix).as_posix() for p in files}
    assert listed == on_disk - {manifest_rel}
    assert all(p.startswith(str(installed.prefix) + "/") for p in files)
    # The prefix did not exist: every directory was created by make install.
    assert {d.rstrip("/") for d in dirs} == \
        {str(installed.prefix)} | {str(installed.prefix / d) for d in dirs_on_disk}
    assert dirs == sorted(dirs, reverse=True), "directories must be listed deepest first"
    assert len(files) == len(set(files))


def test_installed_cli(installed, tmp_path):
    if CLI_PLACEHOLDER:
        pytest.skip(CLI_SKIP)
    cli = installed.prefix / "bin" / "millis"
    assert cli.is_file() and os.access(cli, os.X_OK)
    dyn = readelf_dynamic(cli)
    assert "[$ORIGIN/../lib]" in dyn, f"the run path of {cli} is not $ORIGIN/../lib:\n{dyn}"
    assert f"{REPO}/build" not in dyn
    run([cli, "--help"], timeout=30)  # loads libmillis through $ORIGIN/../lib alone

    # `millis devserver` finds and runs the installed server (bin/../share/millis/devserver).
    script = installed.prefix / "share" / "millis" / "devserver" / "millis_devserver.py"
    which = run([cli, "devserver", "--which"], timeout=30).stdout.strip()
    assert which == str(script), which
    log = open(tmp_path / "devserver.stderr", "w")
    proc = subprocess.Popen([str(cli), "devserver", "--host", "127.0.0.1", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=log, text=True, env=clean_env())
    try:
        deadline = time.monotonic() + 30
        ready = None
        while ready is None and time.monotonic() < deadline:
            readable, _, _ = select.select([proc.stdout], [], [], 1.0)
            if readable:
                line = proc.stdout.readline()
                if not line:
                    break
                if line.startswith("MILLIS_DEVSERVER_READY "):
                    ready = line.split()[1]
        assert ready and ready.startswith("ws://127.0.0.1:"), \
            f"no MILLIS_DEVSERVER_READY from the installed devserver (exit {proc.poll()}):\n" \
            + (tmp_path / "devserver.stderr").read_text(errors="replace")[-3000:]
    finally:
        proc.terminate()  # the CLI execs python3: this is the server itself
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        log.close()


def test_install_fails_loudly_without_the_cli(tmp_path):
    if not CLI_PLACEHOLDER:
        pytest.skip("the CLI exists: this checks the placeholder guard of make install")
    prefix = tmp_path / "prefix"
    result = make("install", f"PREFIX={prefix}", expect=None)
    assert result.returncode != 0, _show(result)
    assert "tools/millis did not build" in result.stderr, _show(result)
    assert "INSTALL_CLI=no" in result.stderr, _show(result)
    assert not prefix.exists(), "a failed install must not leave a half-installed prefix"


def test_c_example_against_install(installed, devserver, tmp_path):
    """cc millis_example.c $(pkg-config --cflags --libs millis), PKG_CONFIG_PATH=<prefix>/lib/pkgconfig only."""
    env = clean_env(PKG_CONFIG_PATH=str(installed.lib / "pkgconfig"), MILLIS_PUBLIC_KEY=PUBLIC_KEY)
    flags = shlex.split(run([tool("pkg-config"), "--cflags", "--libs", "millis"],
                            timeout=30, env=env).stdout)
    assert f"-I{installed.prefix}/include" in flags and f"-L{installed.lib}" in flags, flags
    assert not any("rpath" in f or str(REPO) in f for f in flags), flags
    exe = tmp_path / "millis_example"
    run([tool("cc"), REPO / "bindings" / "c" / "millis_example.c", *flags, "-o", exe],
        timeout=120, env=env)
    dyn = readelf_dynamic(exe)
    assert "RUNPATH" not in dyn and "RPATH" not in dyn, dyn

    env["LD_LIBRARY_PATH"] = str(installed.lib)
    ldd = run([tool("ldd"), exe], timeout=30, env=env).stdout
    assert re.search(rf"libmillis\.so\.{SOVERSION} => {re.escape(str(installed.lib))}/libmillis\.so\.{SOVERSION} ",
                     ldd), ldd

    out_wav = tmp_path / "agent.wav"
    result = run([exe, "--endpoint", devserver.url, "--agent-id", "demo-agent",
                  "--input", USER_WAV, "--output", out_wav],
                 timeout=120, env=env, cwd=tmp_path)
    text = result.stdout
    for final in EXPECTED_FINALS:
        assert f'ontranscript (final) "{final}"' in text, _show(result)
    assert re.search(r'onfunction get_weather \{.*"Paris".*\}', text), _show(result)
    assert "onsessionended" in text and 'onclose 1000 "' in text, _show(result)
    session = re.search(r"^session id:\s+(\S+)$", text, re.M)
    assert session, _show(result)
    record = devserver.record(session.group(1), timeout=15)
    assert record["close"]["code"] == 1000
    # The output file holds the agent's audio as a speaker plays it, silences included.
    assert out_wav.stat().st_size - 44 >= record["agent_audio_bytes_sent"] > 0


# Runs a script (argv[1]) as __main__ and, at exit, says which millis package and which
# libmillis file the process really used.
_WHICH_WRAPPER = textwrap.dedent("""\
    import atexit, runpy, sys

    def report():
        import millis
        with open("/proc/self/maps") as maps:
            libs = sorted({line.split()[-1] for line in maps if "libmillis" in line})
        print("LOADED", millis.__file__, "|".join(libs), file=sys.stderr)

    atexit.register(report)
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
""")


def test_python_example_against_install(installed, pure_venv, devserver, tmp_path):
    """conversation.py from the pure package (pip install ./bindings/python) with
    LD_LIBRARY_PATH=<prefix>/lib only."""
    env = clean_env(LD_LIBRARY_PATH=str(installed.lib), MILLIS_PUBLIC_KEY=PUBLIC_KEY,
                    PYTHONDONTWRITEBYTECODE="1")
    # Away from the checkout: the example puts its parent directory on sys.path.
    workdir = tmp_path / "example"
    workdir.mkdir()
    example = workdir / "conversation.py"
    shutil.copy(BINDINGS_PYTHON / "examples" / "conversation.py", example)
    wrapper = workdir / "which.py"
    wrapper.write_text(_WHICH_WRAPPER)

    probe = run([pure_venv.python, "-c", "import millis, millis._native as n; "
                 "print(millis.__file__); print(n.library_path); print(millis.version())"],
                timeout=60, env=env, cwd=workdir).stdout.split("\n")
    assert probe[0] == pure_venv.init, probe
    assert probe[1] == f"libmillis.so.{SOVERSION}", f"not loaded through the loader path: {probe}"
    assert probe[2] == VERSION, probe

    out_wav = tmp_path / "agent.wav"
    result = run([pure_venv.python, wrapper, example, "--endpoint", devserver.url,
                  "--agent-id", "demo-agent", "--input", USER_WAV, "--output", out_wav,
                  "--timeout", "60"], timeout=120, env=env, cwd=workdir)
    lines = result.stdout.splitlines()
    for event in ("onopen", "onready", "ontranscript", "onresponsetext", "onfunction",
                  "onsessionended", "onclose 1000"):
        assert any(f"] {event}" in line for line in lines), f"{event} not printed\n{_show(result)}"
    loaded = [l for l in result.stderr.splitlines() if l.startswith("LOADED ")]
    assert loaded, _show(result)
    _, module, libs = loaded[-1].split(" ", 2)
    assert module == pure_venv.init, loaded
    assert libs == str(installed.lib / f"libmillis.so.{VERSION}"), loaded
    ready = [l for l in lines if "] onready " in l]
    session_id = ready[0].split("session_id=")[1].strip().strip("'")
    record = devserver.record(session_id)
    assert len(record["user_turns"]) == 2
    assert record["close"]["code"] == 1000


# --- DESTDIR, uninstall --------------------------------------------------------------

def test_destdir_install_and_uninstall(library_path, tmp_path):
    stage = tmp_path / "stage"
    before = _real_system_state()
    make("install", f"DESTDIR={stage}", "PREFIX=/usr/local", f"INSTALL_CLI={INSTALL_CLI}")
    files, dirs = walk(stage)
    assert files, "nothing installed"
    assert all(f.startswith("usr/local/") for f in files), sorted(files)
    assert f"usr/local/lib/libmillis.so.{VERSION}" in files
    assert "usr/local/include/millis.h" in files
    assert "usr/local/include/millis.hpp" in files
    assert not [f for f in files if f.endswith(".py") and "/share/millis/" not in f], sorted(files)
    pc = pc_fields(stage / "usr/local/lib/pkgconfig/millis.pc")
    assert (pc["prefix"], pc["libdir"], pc["includedir"]) == \
        ("/usr/local", "/usr/local/lib", "/usr/local/include")
    manifest = stage / "usr/local/share/millis/install-manifest.txt"
    text = manifest.read_text()
    assert str(stage) not in text and str(tmp_path) not in text
    listed, listed_dirs = read_manifest(manifest)
    assert {p.lstrip("/") for p in listed} == files - {"usr/local/share/millis/install-manifest.txt"}
    assert listed_dirs == [], "a staged install must not claim directories of the target system"
    assert _real_system_state() == before, "a DESTDIR install touched the real system"

    make("uninstall", f"DESTDIR={stage}", "PREFIX=/usr/local")
    left, _ = walk(stage)
    assert left == set(), sorted(left)
    assert _real_system_state() == before


def test_uninstall_leaves_nothing(library_path, tmp_path):
    prefix = tmp_path / "prefix"
    install_into(prefix)
    install_into(prefix)  # again, over the first: the manifest keeps what the first created
    result = make("uninstall", f"PREFIX={prefix}")
    assert not re.search(r"^ldconfig$", result.stdout, re.M), \
        "ldconfig must not run for a prefix the loader does not search"
    assert not prefix.exists(), f"left behind: {sorted(walk(prefix)[0] | walk(prefix)[1])}"
    make("uninstall", f"PREFIX={prefix}")  # idempotent
    assert not prefix.exists()


def test_uninstall_keeps_what_it_did_not_install(library_path, tmp_path):
    prefix = tmp_path / "prefix"
    (prefix / "lib").mkdir(parents=True)
    (prefix / "lib" / "libother.so").write_text("not ours")
    (prefix / "include").mkdir()  # existed, empty: not make install's to remove
    inst = install_into(prefix)
    _, created = read_manifest(inst.manifest)
    assert f"{prefix}/lib/" not in created and f"{prefix}/include/" not in created, created
    make("uninstall", f"PREFIX={prefix}")
    files, dirs = walk(prefix)
    assert files == {"lib/libother.so"}, sorted(files)
    assert dirs == {"lib", "include"}, sorted(dirs)


def test_uninstall_removes_an_older_installs_python_package(library_path, tmp_path):
    """Installs made before the wheel also copied the package into dist-packages, and
    their manifest says so: uninstall removes it, with the __pycache__ an import wrote."""
    prefix = tmp_path / "prefix"
    inst = install_into(prefix)
    package = prefix / "lib" / "python3.11" / "dist-packages" / "millis"
    (package / "__pycache__").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"")
    files, dirs = read_manifest(inst.manifest)
    files.append(f"{package}/__init__.py")
    dirs = sorted(set(dirs) | {f"{package}/", f"{package.parent}/", f"{package.parent.parent}/"}, reverse=True)
    inst.manifest.write_text("".join(f"{line}\n" for line in sorted(files) + dirs))
    make("uninstall", f"PREFIX={prefix}")
    assert not prefix.exists(), f"left behind: {sorted(walk(prefix)[0] | walk(prefix)[1])}"


def test_uninstall_without_manifest(library_path, tmp_path):
    """Without the manifest, uninstall removes the files make install installs."""
    prefix = tmp_path / "prefix"
    inst = install_into(prefix)
    inst.manifest.unlink()
    make("uninstall", f"PREFIX={prefix}")
    files, _ = walk(prefix)
    assert files == set(), sorted(files)


# --- a prefix the loader knows: /usr/local, in a private mount namespace -------------

_LOADER_SCRIPT = """\
set -euo pipefail
T={tmp}
mount -t tmpfs -o mode=0755 tmpfs /usr/local
# ldconfig replaces /etc/ld.so.cache by rename: /etc itself must be private.
mkdir "$T/etc"
cp -a /etc/. "$T/etc/"
mount --bind "$T/etc" /etc
if [ -d /var/cache/ldconfig ]; then mount -t tmpfs tmpfs /var/cache/ldconfig; fi
echo "== install"
make -C {repo} -o build install PREFIX=/usr/local INSTALL_CLI={cli} \
    INSTALL_STAGE="$T/stage" CLI_INSTALL="$T/millis-install" 2>&1
echo "== pc_path $(pkg-config --variable pc_path pkg-config)"
echo "== flags $(pkg-config --cflags --libs millis)"
cc "$T/t.c" $(pkg-config --cflags --libs millis) -o "$T/t"
"$T/t"
{python} -c 'import ctypes; lib = ctypes.CDLL("libmillis.so"); lib.millis_version.restype = ctypes.c_char_p; print("CTYPES", lib.millis_version().decode())'
{python} -c 'import millis; print("PYMILLIS", millis.__version__, millis.version(), millis.__file__, millis._native.library_path)'
if [ -e /usr/local/bin/millis ]; then /usr/local/bin/millis --help >/dev/null && echo "CLI ok"; fi
echo "== uninstall"
make -C {repo} uninstall PREFIX=/usr/local 2>&1
echo "== left"
find /usr/local -mindepth 1
echo "== cache $(ldconfig -p | grep -c libmillis || true)"
"""

_T_C = """\
#include <millis.h>
#include <stdio.h>
int main(void) {
    printf("C %s %d\\n", millis_version(), millis_version_number() == MILLIS_VERSION_NUMBER);
    return 0;
}
"""


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def _real_system_state() -> dict:
    """What an install into /usr/local would change on the real system."""
    usr_local = Path("/usr/local")
    millis_paths = sorted(str(p) for pattern in (
        "lib/libmillis*", "include/millis.h", "include/millis.hpp", "share/man/man1/millis.1", "lib/pkgconfig/millis.pc", "bin/millis",
        "share/millis", "lib/python3*/dist-packages/millis") for p in usr_local.glob(pattern))
    return {"ld.so.cache": _sha256(Path("/etc/ld.so.cache")),
            "aux-cache": _sha256(Path("/var/cache/ldconfig/aux-cache")),
            "/usr/local millis files": millis_paths}


def test_loader_knows_prefix(library_path, pure_venv, tmp_path):
    """After `make install PREFIX=/usr/local`: cc + pkg-config, ctypes.CDLL("libmillis.so")
    and the pure package with no extra flags or variables; then uninstall leaves
    /usr/local empty."""
    if os.geteuid() != 0:
        pytest.skip("needs root (mount namespace, install into /usr/local)")
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) not found")
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"cannot create a mount namespace here: {probe.stderr.strip()}")
    if loader_knows_millis():
        pytest.skip("the real system already has a libmillis in the loader's cache: "
                    "the test could not tell which one it loads")
    pc_path = run([tool("pkg-config"), "--variable", "pc_path", "pkg-config"], timeout=30).stdout
    if "/usr/local/lib/pkgconfig" not in pc_path.split(":"):
        pytest.skip(f"pkg-config does not search /usr/local/lib/pkgconfig here ({pc_path.strip()})")

    (tmp_path / "t.c").write_text(_T_C)
    script = tmp_path / "loader.sh"
    script.write_text(_LOADER_SCRIPT.format(tmp=shlex.quote(str(tmp_path)), repo=shlex.quote(str(REPO)),
                                            cli=INSTALL_CLI, python=shlex.quote(str(pure_venv.python))))
    env = clean_env()
    before = _real_system_state()
    result = run(["unshare", "--mount", "--propagation", "private", "bash", script],
                 timeout=600, env=env, cwd=tmp_path, expect=None)
    after = _real_system_state()
    assert after == before, f"the install leaked out of its namespace: {before} -> {after}"
    out = result.stdout
    assert result.returncode == 0, _show(result)

    install_part = out.split("== pc_path")[0]
    assert re.search(r"^ldconfig$", install_part, re.M), f"make install did not run ldconfig\n{out}"
    flags = re.search(r"^== flags (.*)$", out, re.M).group(1)
    assert "rpath" not in flags and str(REPO) not in flags, flags
    assert f"\nC {VERSION} 1\n" in out, _show(result)
    assert f"\nCTYPES {VERSION}\n" in out, _show(result)
    assert f"\nPYMILLIS {VERSION} {VERSION} {pure_venv.init} libmillis.so.{SOVERSION}\n" in out, \
        _show(result)
    if not CLI_PLACEHOLDER:
        assert "\nCLI ok\n" in out, _show(result)
    left = out.split("== left\n")[1].split("== cache")[0]
    assert left.strip() == "", f"make uninstall left files in /usr/local:\n{left}"
    assert re.search(r"^== cache 0$", out, re.M), "libmillis is still in the loader's cache"


# --- pip install ./bindings/python: the pure package -----------------------------------

def _debian_build_tools() -> bool:
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import sysconfig, setuptools, wheel, ensurepip; "
                            "assert 'deb_system' in sysconfig.get_scheme_names()"],
                           capture_output=True, timeout=60, env=clean_env())
    return probe.returncode == 0


@pytest.fixture(scope="module")
def pure_venv(library_path, tmp_path_factory) -> SimpleNamespace:
    """A venv holding `pip install ./bindings/python`, built from a copy (setuptools writes
    build/ and millis.egg-info next to the sources) laid out as in the repository: the
    package's version comes from include/millis.h."""
    tmp = tmp_path_factory.mktemp("pure")
    src = tmp / "src" / "bindings" / "python"
    shutil.copytree(BINDINGS_PYTHON, src,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "_lib", "_version.py"))
    (tmp / "src" / "include").mkdir()
    shutil.copy2(REPO / "include" / "millis.h", tmp / "src" / "include" / "millis.h")
    venv = tmp / "venv"
    if _debian_build_tools():
        # Offline: Debian's python3-setuptools and python3-wheel, seen through
        # --system-site-packages.
        create = [SYSTEM_PYTHON, "-m", "venv", "--system-site-packages", venv]
        pip_args = ["--no-build-isolation", "--no-index"]
    else:
        create = [sys.executable, "-m", "venv", venv]
        pip_args = []  # builds in isolation with setuptools from PyPI
    made = subprocess.run([str(c) for c in create], capture_output=True, text=True, timeout=300,
                          env=clean_env())
    if made.returncode != 0:
        pytest.skip(f"cannot create a venv: {made.stderr.strip()[-500:]}")
    python = venv / "bin" / "python"
    run([python, "-m", "pip", "install", "--disable-pip-version-check", "--no-deps", *pip_args, src],
        timeout=600, cwd=tmp)
    init = run([python, "-c", "import importlib.util as u; print(u.find_spec('millis').origin)"],
               timeout=60, cwd=tmp).stdout.strip()
    assert init.startswith(str(venv) + "/") and init.endswith("/millis/__init__.py"), init
    return SimpleNamespace(venv=venv, python=python, init=init, src=src, pip_args=pip_args)


_SHOW = ("import millis, millis._native as n; print(millis.__file__); "
         "print(n.library_path); print(millis.version())")


def test_pip_install_into_venv(library_path, pure_venv, tmp_path):
    python = pure_venv.python
    # The pure wheel: the package's modules and the version it was built for, no library.
    wheels = tmp_path / "wheels"
    run([python, "-m", "pip", "wheel", "--disable-pip-version-check", "--no-deps", *pure_venv.pip_args,
         "-w", wheels, pure_venv.src], timeout=600, cwd=tmp_path)
    [wheel] = list(wheels.glob("millis-*.whl"))
    assert wheel.name == f"millis-{VERSION}-py3-none-any.whl", wheel.name
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        version_py = z.read("millis/_version.py").decode()
    assert package_sources() <= names, sorted(names)
    assert f"VERSION = {VERSION!r}" in version_py, version_py
    assert not [n for n in names if "_lib/" in n or ".libs/" in n or n.endswith(".so") or ".so." in n], sorted(names)

    # Through MILLIS_LIBRARY.
    out = run([python, "-c", _SHOW], timeout=60, cwd=tmp_path,
              env=clean_env(MILLIS_LIBRARY=str(library_path))).stdout.splitlines()
    assert out[0] == pure_venv.init, out
    assert out[1] == str(library_path), out
    assert out[2] == VERSION, out
    # The package's own version: what its build read from millis.h.
    own = run([python, "-c", "import millis, importlib.metadata as m; print(millis.__version__, m.version('millis'))"],
              timeout=60, cwd=tmp_path, env=clean_env(MILLIS_LIBRARY=str(library_path))).stdout.split()
    assert own == [VERSION, VERSION], own
    # Through the loader path.
    out = run([python, "-c", _SHOW], timeout=60, cwd=tmp_path,
              env=clean_env(LD_LIBRARY_PATH=str(library_path.parent))).stdout.splitlines()
    assert out[1] == f"libmillis.so.{SOVERSION}", out


def test_pure_package_without_a_library(pure_venv, tmp_path):
    """Installed, the package is no checkout: it looks for no build tree under the venv
    (it used to try <venv>/lib/build/libmillis.so), and says where it looked."""
    if loader_knows_millis():
        pytest.skip("the loader knows a libmillis on this machine: the import would find it")
    result = run([pure_venv.python, "-c", "import millis"], timeout=60, cwd=tmp_path, expect=None)
    assert result.returncode != 0, _show(result)
    err = result.stderr
    assert f"ImportError: libmillis: no usable libmillis {VERSION} was found" in err, err
    assert "the build tree (not a checkout)" in err, err
    assert "not bundled: a pure package" in err, err
    assert "/build/libmillis.so" not in err, err
    assert "make wheel" in err and "MILLIS_LIBRARY" in err, err


_OTHER_VERSION_C = r"""
int millis_version_number(void) { return 9009009; }
const char *millis_version(void) { return "9.9.9"; }
"""


@pytest.fixture(scope="module")
def other_version_library(tmp_path_factory) -> Path:
    """A libmillis.so.0 that says it is 9.9.9 (and holds nothing else)."""
    d = tmp_path_factory.mktemp("other-version")
    (d / "other.c").write_text(_OTHER_VERSION_C)
    run([tool("cc"), "-shared", "-fPIC", "-Wl,-soname,libmillis.so.0", d / "other.c", "-o", d / "libmillis.so.0"],
        timeout=120)
    return d / "libmillis.so.0"


def test_import_refuses_another_version(pure_venv, other_version_library, tmp_path):
    result = run([pure_venv.python, "-c", "import millis"], timeout=60, cwd=tmp_path, expect=None,
                 env=clean_env(MILLIS_LIBRARY=str(other_version_library)))
    assert result.returncode != 0, _show(result)
    assert f"is libmillis 9.9.9, not {VERSION}" in result.stderr, _show(result)
    assert f"millis {VERSION}" in result.stderr and "MILLIS_LIBRARY" in result.stderr, _show(result)

    # Found on the loader path, it is passed over and named.
    if not loader_knows_millis():
        result = run([pure_venv.python, "-c", "import millis"], timeout=60, cwd=tmp_path, expect=None,
                     env=clean_env(LD_LIBRARY_PATH=str(other_version_library.parent)))
        assert result.returncode != 0, _show(result)
        assert f"libmillis.so.0 via the dynamic loader (libmillis 9.9.9, not {VERSION})" in result.stderr, \
            _show(result)


def test_checkout_passes_over_another_version(library_path, other_version_library, tmp_path):
    """Used in place from the checkout, with another version first on the loader path:
    the build tree's library, whose version is the header's, is the one loaded."""
    out = run([sys.executable, "-c", _SHOW], timeout=60, cwd=tmp_path,
              env=clean_env(PYTHONPATH=str(BINDINGS_PYTHON),
                            LD_LIBRARY_PATH=str(other_version_library.parent))).stdout.splitlines()
    assert out[0] == str(BINDINGS_PYTHON / "millis" / "__init__.py"), out
    assert out[1] == str(REPO / "build" / "libmillis.so"), out
    assert out[2] == VERSION, out
