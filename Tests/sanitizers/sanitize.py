#!/usr/bin/env python3
"""Runs libmillis' tests against a sanitizer build of the library.

    Tests/sanitizers/sanitize.py asan   # AddressSanitizer (+ LeakSanitizer) + UBSan (C shims)
    Tests/sanitizers/sanitize.py tsan   # ThreadSanitizer

Steps (see Tests/sanitizers/README.md):
 1. `swift build -c debug --product millis --scratch-path .build-<kind> --sanitize ...`,
    with the release build's version script and SONAME, so the ABI check still applies.
 2. A staging tree build/sanitize/<kind>/tree: the library and a millis.pc whose Libs
    name the sanitizer runtime first (so programs that pkg-config builds load it), a
    fresh copy of Tests/ (conftest.py finds the library at <tree>/build/libmillis.so)
    and links to bindings/, devserver/, include/ ...
 3. The C tests (test_api, test_conversation, test_events, test_lifecycle) compiled with
    clang, and the C++ wrapper's test (Tests/cpp/test_millis_hpp.cpp) with clang++, with the
    matching -fsanitize flags, run with leak checking on (ASan) against a devserver.
 4. The pytest suite (or the tests named after --) in the staging tree, with the
    sanitizer runtime LD_PRELOADed into Python and every process it starts (leak
    checking off: CPython frees little at exit; leaks are the C tests' job). The
    export check (test_exports_match_header) and the wheel's tests (test_wheel.py) are
    left out: they are about the release build.
Every sanitizer report is written to build/sanitize/<kind>/reports/ (log_path), from any
process; the script exits 1 if there is one, or if a test fails.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def _make_var(name: str, default: str) -> str:
    """SOVERSION as the Makefile sets it, so the staged names match make build's."""
    for line in (ROOT / "Makefile").read_text().splitlines():
        parts = line.split(":=", 1)
        if len(parts) == 2 and parts[0].strip() == name:
            return parts[1].strip()
    return default


def _header_version() -> str:
    """MAJOR.MINOR.PATCH from include/millis.h, where the version is written."""
    text = (ROOT / "include" / "millis.h").read_text()
    return ".".join(re.search(rf"^#define MILLIS_VERSION_{part} (\d+)$", text, re.M).group(1)
                    for part in ("MAJOR", "MINOR", "PATCH"))


VERSION, SOVERSION = _header_version(), _make_var("SOVERSION", "0")

KINDS = {
    # Swift code gets ASan (swiftc has no -sanitize=undefined on Linux; Swift traps on
    # overflow and bad indices by itself); the C shims get ASan + UBSan. The ASan
    # runtime carries the UBSan handlers.
    "asan": {
        "swift_build": ["--sanitize", "address", "-Xcc", "-fsanitize=undefined"],
        "cflags": ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"],
        "runtime": "libclang_rt.asan-x86_64.so",
    },
    "tsan": {
        "swift_build": ["--sanitize", "thread"],
        # The static TSan runtime of Swift's clang has libdispatch interceptors that need
        # libdispatch at link time; the shared one (the same that Python preloads) does not.
        "cflags": ["-fsanitize=thread", "-shared-libsan"],
        # That shared runtime names libdispatch's and BlocksRuntime's symbols without
        # needing them; the instrumented libmillis brings both at run time. lld checks a
        # shared library's undefined symbols once all its dependencies are on the line,
        # which a C++ link (libstdc++ pulls in libgcc_s) achieves and a C link does not.
        # For the C tests and for every program linked through the staged millis.pc.
        "ldflags": ["-Wl,--allow-shlib-undefined"],
        "runtime": "libclang_rt.tsan-x86_64.so",
        # The shared TSan runtime binds libdispatch's data symbols at load time: a process
        # without the Swift runtime (Python) must preload libdispatch with it.
        "preload_swift": ["libdispatch.so", "libBlocksRuntime.so"],
    },
}


def log(msg: str) -> None:
    print(f"[sanitize] {msg}", flush=True)


def toolchain_bin() -> Path:
    swift = shutil.which("swift") or "/opt/swift/usr/bin/swift"
    return Path(swift).resolve().parent


def runtime_path(name: str) -> Path:
    clang = shutil.which("clang") or str(toolchain_bin() / "clang")
    out = subprocess.run([clang, "-print-resource-dir"], capture_output=True, text=True, check=True).stdout.strip()
    hits = glob.glob(os.path.join(out, "lib", "*", name))
    if not hits:
        sys.exit(f"{name} not found under {out}/lib: a toolchain with compiler-rt is needed")
    return Path(hits[0])


def sanitizer_env(kind: str, reports: Path, *, leaks: bool) -> dict:
    env = dict(os.environ)
    env["MILLIS_SANITIZER"] = kind  # tests whose RSS bounds mean nothing here relax them
    # llvm-symbolizer for readable stacks.
    env["PATH"] = f"{env.get('PATH', '')}:{toolchain_bin()}"
    common = f"log_path={reports}/{kind}:log_exe_name=1:symbolize=1"
    if kind == "asan":
        env["ASAN_OPTIONS"] = (f"{common}:detect_leaks={int(leaks)}:abort_on_error=0:"
                               "detect_stack_use_after_return=1:check_initialization_order=1:"
                               "strict_init_order=1:halt_on_error=1")
        # The UBSan handlers live in the ASan runtime, which shares log_path between them.
        env["UBSAN_OPTIONS"] = f"{common}:print_stacktrace=1:halt_on_error=1"
        env["LSAN_OPTIONS"] = f"suppressions={HERE / 'lsan.supp'}"
    else:
        env["TSAN_OPTIONS"] = (f"{common}:second_deadlock_stack=1:history_size=4:"
                               f"suppressions={HERE / 'tsan.supp'}")
    return env


def build(kind: str) -> Path:
    scratch = ROOT / f".build-{kind}"
    cmd = (["nice", "swift", "build", "-c", "debug", "--product", "millis", "--scratch-path", str(scratch)]
           + KINDS[kind]["swift_build"]
           + ["-Xlinker", f"--version-script={ROOT / 'Sources/CMillis/millis.map'}",
              "-Xlinker", f"-soname=libmillis.so.{SOVERSION}"])
    log(" ".join(cmd))
    subprocess.run(cmd, cwd=ROOT, check=True)
    lib = scratch / "debug" / "libmillis.so"
    if not lib.exists():
        sys.exit(f"{lib} was not built")
    return lib


def stage(kind: str, lib: Path, base: Path, runtime: Path) -> Path:
    tree = base / "tree"
    if tree.exists():
        shutil.rmtree(tree)
    libdir = tree / "build"
    (libdir / "pkgconfig").mkdir(parents=True)
    shutil.copy2(lib, libdir / f"libmillis.so.{VERSION}")
    os.symlink(f"libmillis.so.{VERSION}", libdir / f"libmillis.so.{SOVERSION}")
    os.symlink(f"libmillis.so.{SOVERSION}", libdir / "libmillis.so")
    # The runtime comes first, unconditionally linked (Ubuntu's cc links --as-needed), so
    # that programs built from this millis.pc by any compiler load it before libc.
    libs = (" ".join(KINDS[kind].get("ldflags", []) + [""])
            + f"-Wl,--no-as-needed {runtime} -Wl,-rpath,{runtime.parent} "
            f"-L${{libdir}} -Wl,-rpath,${{libdir}} -lmillis")
    template = (ROOT / "pkgconfig" / "millis.pc.in").read_text()
    pc = (template.replace("@PREFIX@", str(tree)).replace("@LIBDIR@", str(libdir))
          .replace("@INCLUDEDIR@", str(ROOT / "include")).replace("@VERSION@", VERSION)
          .replace("@RPATH@", ""))
    pc = "\n".join(f"Libs: {libs}" if line.startswith("Libs:") else line for line in pc.splitlines()) + "\n"
    (libdir / "pkgconfig" / "millis.pc").write_text(pc)
    # Tests/ is copied (conftest.py resolves its own path to find the repository root);
    # everything else is linked.
    ignore = shutil.ignore_patterns("__pycache__", ".pytest_cache", "MillisCoreTests")
    shutil.copytree(ROOT / "Tests", tree / "Tests", ignore=ignore)
    for entry in ROOT.iterdir():
        if entry.name in ("Tests", "build") or entry.name.startswith("."):
            continue
        os.symlink(entry, tree / entry.name)
    return tree


class DevServer:
    """The devserver, uninstrumented, for the C conversation test."""

    def __init__(self, record_dir: Path):
        env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "devserver" / "millis_devserver.py"), "--host", "127.0.0.1",
             "--port", "0", "--record-dir", str(record_dir), "--think-ms", "100"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        self.url = None
        ready = threading.Event()

        def reader():
            for line in self.proc.stdout:
                if line.startswith("MILLIS_DEVSERVER_READY ") and not ready.is_set():
                    self.url = line.split(None, 1)[1].strip()
                    ready.set()
            ready.set()

        threading.Thread(target=reader, daemon=True).start()
        if not ready.wait(30) or not self.url:
            self.stop()
            sys.exit("the devserver did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def run_c_tests(kind: str, tree: Path, base: Path, reports: Path, runtime: Path) -> list:
    """Runs the C programs; returns what each failing one printed (empty when all passed)."""
    clang = shutil.which("clang") or str(toolchain_bin() / "clang")
    libdir = tree / "build"
    exes = {}
    sources = {name: ([clang, "-std=c99"], ROOT / "Tests" / "c" / f"{name}.c")
               for name in ("test_api", "test_conversation", "test_events", "test_lifecycle")}
    # The C++ wrapper (include/millis.hpp): its handlers against destruction in any order.
    sources["test_millis_hpp"] = ([shutil.which("clang++") or str(toolchain_bin() / "clang++"), "-std=c++17"],
                                  ROOT / "Tests" / "cpp" / "test_millis_hpp.cpp")
    for name, (compiler, source) in sources.items():
        exe = base / name
        cmd = (compiler + ["-g", "-O1", "-fuse-ld=lld", "-Wall", "-Wextra", "-Werror", "-pedantic"]
               + KINDS[kind]["cflags"] + KINDS[kind].get("ldflags", []) + [str(source), f"-I{ROOT / 'include'}",
                                          f"-L{libdir}", f"-Wl,-rpath,{libdir}", f"-Wl,-rpath,{runtime.parent}",
                                          "-lmillis", "-lpthread", "-o", str(exe)])
        log(" ".join(cmd))
        subprocess.run(cmd, check=True)
        exes[name] = exe
    # Leaks are checked here (ASan's LeakSanitizer): these processes are all ours.
    env = sanitizer_env(kind, reports, leaks=True)
    failures = []
    record_dir = Path(tempfile.mkdtemp(prefix="records-", dir=base))
    server = DevServer(record_dir)
    try:
        runs = [("test_api", [exes["test_api"]]),
                ("test_conversation", [exes["test_conversation"], server.url, record_dir,
                                       ROOT / "bindings" / "audio" / "user.wav"]),
                # The event queue: payloads lent until the next call, two clients, a drop run.
                ("test_events", [exes["test_events"], server.url, ROOT / "bindings" / "audio" / "user.wav"]),
                # Every section, with leak checking:
                # 100 full cycles, 200 clients at once and destroys in every callback.
                ("test_lifecycle", [exes["test_lifecycle"], server.url, "all", "--wav",
                                    ROOT / "bindings" / "audio" / "user.wav", "--cycles", "100",
                                    "--warmup", "20", "--rss-bound-kb", "0"]),
                # The C++ wrapper: every handler, the queue as a range, and objects whose
                # Client is declared before what its handlers use, destroyed mid-conversation.
                ("test_millis_hpp", [exes["test_millis_hpp"], "all", server.url,
                                     ROOT / "bindings" / "audio" / "user.wav"])]
        for name, cmd in runs:
            start = time.monotonic()
            try:
                result = subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True, timeout=600)
                code, out = result.returncode, result.stdout + result.stderr
            except subprocess.TimeoutExpired as exc:
                code, out = "timeout", f"{exc.stdout or ''}{exc.stderr or ''}"
            took = time.monotonic() - start
            if code == 0:
                log(f"ok   {name} ({took:.1f} s)")
            else:
                failures.append(f"FAIL {name} exited {code} after {took:.1f} s\n{out[-6000:]}")
                log(failures[-1])
    finally:
        server.stop()
    return failures


def run_pytest(kind: str, tree: Path, reports: Path, runtime: Path, extra: list) -> bool:
    env = sanitizer_env(kind, reports, leaks=False)
    # Inherited by every process the tests start: the Python examples load libmillis too.
    # (The compilers and the devserver are not instrumented; the runtime only watches.)
    swift_libs = toolchain_bin().parent / "lib" / "swift" / "linux"
    env["LD_PRELOAD"] = " ".join([str(runtime)] + [str(swift_libs / name) for name in KINDS[kind].get("preload_swift", [])])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    cmd = [sys.executable, "-m", "pytest", "-q", "-ra", "-p", "no:cacheprovider"]
    # The export check is about the release build (static Swift runtime, version
    # script); `make abi-test` and the plain python-test run it.
    cmd += ["--deselect", "Tests/python/test_c_programs.py::test_exports_match_header"]
    # So is the wheel: it packs build/'s library for machines without a toolchain, and an
    # instrumented one needs the sanitizer's runtime there.
    cmd += ["--ignore", "Tests/python/test_wheel.py"]
    cmd += extra or ["Tests/python"]  # relative to the staging tree
    log(f"LD_PRELOAD='{env['LD_PRELOAD']}' " + " ".join(cmd))
    start = time.monotonic()
    result = subprocess.run(cmd, cwd=tree, env=env)
    log(f"pytest exited {result.returncode} after {time.monotonic() - start:.1f} s")
    return result.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Arguments after -- go to pytest, relative to the staging tree "
                                            "(e.g. -- Tests/python/test_conversation.py -k ready).")
    parser.add_argument("kind", choices=sorted(KINDS))
    parser.add_argument("--skip-build", action="store_true", help="use the existing .build-<kind>")
    parser.add_argument("--no-c", action="store_true", help="skip the C tests")
    parser.add_argument("--no-python", action="store_true", help="skip the pytest suite")
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    args.pytest_args = extra
    kind = args.kind

    base = ROOT / "build" / "sanitize" / kind
    reports = base / "reports"
    if reports.exists():
        shutil.rmtree(reports)
    reports.mkdir(parents=True)
    runtime = runtime_path(KINDS[kind]["runtime"])

    lib = ROOT / f".build-{kind}" / "debug" / "libmillis.so" if args.skip_build else build(kind)
    tree = stage(kind, lib, base, runtime)
    c_failures = [] if args.no_c else run_c_tests(kind, tree, base, reports, runtime)
    ok = not c_failures
    if not args.no_python:
        ok &= run_pytest(kind, tree, reports, runtime, args.pytest_args)

    found = sorted(p for p in reports.iterdir() if p.is_file() and p.stat().st_size > 0)
    for path in found:
        print(f"===== sanitizer report {path} =====")
        print(path.read_text(errors="replace")[-20000:])
    if found:
        log(f"FAIL: {len(found)} sanitizer report file(s) in {reports}")
        return 1
    if not ok:
        # Again at the end: the pytest run in between buries them, and CI shows a tail.
        for text in c_failures:
            log(text)
        log("FAIL: a test failed (no sanitizer report)")
        return 1
    log(f"OK: {kind} clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
