"""The programs and links of README.md and docs/*.md, as a reader meets them.

Every fenced block is one of (the convention every doc follows):

  ```c / ```cpp / ```python   a complete program, run exactly as written with the
                              repository root as working directory, against a
                              devserver at ws://127.0.0.1:8765/millis (public key
                              "test-public-key", agent "demo-agent"). It must exit 0
                              by itself (a hang guard ends it otherwise).
  ```c fragment (cpp, python)  a piece of code: Python's is compiled, the others are
                              not checked.
  anything else (```sh, ```console, ```)   not run.

Each run happens in a private network namespace (unshare -n; -rn when not root)
holding its own loopback and its own devserver on port 8765, so the address the programs hard-code
works and nothing meets a devserver a developer runs on the host.

C is built with `cc -std=c99 -Wall -Wextra -Werror` and C++ with
`c++ -std=c++17 -Wall -Wextra -Werror -pedantic`, both through
`pkg-config --cflags --libs millis` (build/pkgconfig). They run with a sound card
present (faked, below). Python runs with PYTHONPATH=bindings/python and
MILLIS_LIBRARY=build/libmillis.so, twice: on a machine without a sound card, and on
one with a sound card (ALSA's `default` made of two file-backed PCMs that run on the
clock, Tests/python/audio_bed.py), where a program that forgets
audio_mode="application" gets device audio and its send_audio() fails.

The other tests: every relative link resolves to a file of the repository (and an
anchor to a heading of it), no doc names a path of the machine it was written on,
and no block hides a program behind an alias of a run language (```py).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from audio_bed import FileDevices, alsa_config_path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEVSERVER = REPO_ROOT / "devserver" / "millis_devserver.py"
BUILD = REPO_ROOT / "build"
RUN_LANGUAGES = ("c", "cpp", "python")
# Info strings that read as a run language but are not one: a block so marked would
# silently escape the harness.
ALIASES = {"py": "python", "python3": "python", "c++": "cpp", "cxx": "cpp", "cc": "c",
           "h": "c", "C": "c", "hpp": "cpp"}
HANG_GUARD_S = 90
# Where a doc must not point: the machine the docs were written on.
MACHINE_PATHS = re.compile(r"/work/|\.\./shared\b|/tmp/bash_jobs|/home/[a-z]")


def doc_files() -> list[Path]:
    return [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]


@dataclass
class Block:
    path: Path
    line: int           # of the opening fence, 1-based
    language: str       # the info string's first word ("" when none)
    fragment: bool
    info: str
    code: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO_ROOT)}:{self.line}"


FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


def blocks_of(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file (CommonMark fences, also inside
    list items: the opening fence's indentation is removed from the code)."""
    found = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m or (m["fence"][0] == "`" and "`" in m["info"]):
            i += 1
            continue
        indent, fence, info = len(m["indent"]), m["fence"], m["info"].strip()
        start = i
        body = []
        i += 1
        while i < len(lines):
            close = FENCE.match(lines[i])
            if (close and close["fence"][0] == fence[0] and len(close["fence"]) >= len(fence)
                    and not close["info"].strip()):
                break
            line = lines[i]
            body.append(line[indent:] if line[:indent].strip() == "" else line.lstrip())
            i += 1
        i += 1
        words = info.split()
        found.append(Block(path, start + 1, words[0] if words else "",
                           words[1:2] == ["fragment"], info, "\n".join(body) + "\n"))
    return found


def all_blocks() -> list[Block]:
    return [b for path in doc_files() for b in blocks_of(path)]


def programs() -> list[Block]:
    return [b for b in all_blocks() if b.language in RUN_LANGUAGES and not b.fragment]


def python_fragments() -> list[Block]:
    return [b for b in all_blocks() if b.language == "python" and b.fragment]


# ---------------------------------------------------------------------------
# the machine a program runs on: network namespace, devserver, sound card or not
# ---------------------------------------------------------------------------

# Brings up the namespace's loopback (SIOCGIFFLAGS, SIOCSIFFLAGS | IFF_UP): what
# `ip link set lo up` does, without needing iproute2. The kernel gives lo 127.0.0.1.
LOOPBACK_UP = """
import fcntl, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack("16sh", fcntl.ioctl(s, 0x8913, struct.pack("16sh", b"lo", 0)))[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sh", b"lo", flags | 1))
"""

# Runs inside the namespace: loopback up, the devserver on 8765, then the program.
RUNNER = r"""
"$PYTHON" -c "$LOOPBACK_UP" || { echo "test_docs: cannot bring up lo in the namespace" >&2; exit 97; }
"$PYTHON" "$DEVSERVER" --host 127.0.0.1 --port 8765 --think-ms 100 \
    >"$WORK/devserver.out" 2>"$WORK/devserver.err" &
server=$!
tries=0
until grep -q '^MILLIS_DEVSERVER_READY' "$WORK/devserver.out" 2>/dev/null; do
    tries=$((tries + 1))
    if [ "$tries" -gt 300 ] || ! kill -0 "$server" 2>/dev/null; then
        echo "test_docs: the devserver did not start" >&2
        exit 98
    fi
    sleep 0.1
done
"$@"
status=$?
kill "$server" 2>/dev/null
wait "$server" 2>/dev/null
exit "$status"
"""


@pytest.fixture(scope="module")
def namespace() -> list[str]:
    """The unshare command that gives a process a network of its own: -n as root
    (CI, the dev machine), -rn (a user namespace) otherwise."""
    if shutil.which("unshare") is None:
        pytest.fail("the docs' programs need unshare(1) (util-linux): they run in a "
                    "private network namespace", pytrace=False)
    errors = []
    for command in (["unshare", "-n"], ["unshare", "-rn"]):
        probe = subprocess.run([*command, sys.executable, "-c", LOOPBACK_UP],
                               capture_output=True, text=True, timeout=30)
        if probe.returncode == 0:
            return command
        errors.append(f"{' '.join(command)}: {probe.stderr.strip()}")
    pytest.fail("cannot make a private network namespace for the docs' programs "
                "(they hard-code ws://127.0.0.1:8765): " + "; ".join(errors), pytrace=False)


@pytest.fixture(scope="module")
def built(library_path) -> dict[str, str]:
    """The environment of a build and a run against the build tree's library."""
    pc = BUILD / "pkgconfig" / "millis.pc"
    if not pc.exists():
        pytest.fail(f"{pc} does not exist: run `make build` first", pytrace=False)
    env = dict(os.environ)
    env["PKG_CONFIG_PATH"] = str(BUILD / "pkgconfig")
    env["PYTHONPATH"] = str(REPO_ROOT / "bindings" / "python")
    env["MILLIS_LIBRARY"] = str(library_path)
    env.pop("MILLIS_PUBLIC_KEY", None)
    env.pop("MILLIS_ENDPOINT", None)
    return env


@pytest.fixture(scope="module")
def no_sound_card(tmp_path_factory) -> dict[str, str]:
    """ALSA as on a server: `default` names a card that does not exist."""
    conf = tmp_path_factory.mktemp("no-card") / "asoundrc"
    conf.write_text("pcm.!default { type hw card 99 device 0 }\n"
                    "ctl.!default { type hw card 99 }\n")
    return {"ALSA_CONFIG_PATH": alsa_config_path(conf)}


@pytest.fixture(scope="module")
def sound_card(tmp_path_factory) -> dict[str, str]:
    """ALSA as on a desktop: `default` opens, a microphone (silence) and a speaker
    (into a file) that run on the clock as a card does."""
    directory = tmp_path_factory.mktemp("sound-card")
    silence = directory / "mic.raw"
    silence.write_bytes(bytes(32000))
    devices = FileDevices(directory)
    devices.add("mic", "capture", rate=48000, channels=2, formats=["S16_LE"],
                path=silence, paced=True)
    devices.add("speaker", "playback", rate=48000, channels=2, formats=["S16_LE"],
                path=directory / "speaker.raw", paced=True)
    devices.add_text('pcm.!default {\n    type asym\n    capture.pcm "mic"\n'
                     '    playback.pcm "speaker"\n}\n')
    return {"ALSA_CONFIG_PATH": alsa_config_path(devices.conf_path)}


def run_in_namespace(namespace: list[str], command: list[str], env: dict[str, str],
                     work: Path) -> tuple[int | None, str]:
    """Runs command beside a devserver in a fresh namespace; (exit status or None
    when the hang guard ended it, what it printed and the devserver's log)."""
    script = work / "run.sh"
    script.write_text(RUNNER)
    # TMPDIR: what a program writes for the reader to look at stays in the test's directory.
    env = {**env, "PYTHON": sys.executable, "DEVSERVER": str(DEVSERVER), "WORK": str(work),
           "LOOPBACK_UP": LOOPBACK_UP,
           "TMPDIR": str(work)}
    proc = subprocess.Popen([*namespace, "sh", str(script), *command], cwd=REPO_ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors="replace", start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=HANG_GUARD_S)
        status: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        status = None
    try:  # the devserver, if the program's end left it behind
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    log = work / "devserver.err"
    if log.exists():
        output += "\n--- devserver log (last lines) ---\n" + "\n".join(
            log.read_text(errors="replace").splitlines()[-15:])
    return status, output


def check_run(block: Block, status: int | None, output: str, setting: str) -> None:
    if status == 0:
        return
    what = (f"did not end within {HANG_GUARD_S} s" if status is None
            else f"exited with status {status}")
    pytest.fail(f"{block.where}: the ```{block.info} program {what} ({setting}).\n"
                f"--- program ---\n{block.code}--- output ---\n{output}", pytrace=False)


def compile_program(block: Block, env: dict[str, str], work: Path) -> Path:
    if block.language == "c":
        source, compiler = work / "program.c", ["cc", "-std=c99", "-Wall", "-Wextra", "-Werror"]
    else:
        source, compiler = work / "program.cpp", ["c++", "-std=c++17", "-Wall", "-Wextra",
                                                  "-Werror", "-pedantic"]
    source.write_text(block.code)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "millis"], env=env,
                           capture_output=True, text=True, check=True).stdout.split()
    binary = work / "program"
    result = subprocess.run([*compiler, str(source), *flags, "-o", str(binary)], env=env,
                            capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        pytest.fail(f"{block.where}: the ```{block.info} program does not compile with "
                    f"{' '.join(compiler)}:\n{result.stderr}\n--- program ---\n{block.code}",
                    pytrace=False)
    return binary


@pytest.mark.parametrize("block", programs(), ids=lambda b: b.where)
def test_program_runs(block, namespace, built, sound_card, no_sound_card, tmp_path):
    if block.language == "python":
        source = tmp_path / "program.py"
        source.write_text(block.code)
        for setting, alsa in (("no sound card", no_sound_card), ("a sound card", sound_card)):
            work = tmp_path / setting.replace(" ", "-")
            work.mkdir()
            status, output = run_in_namespace(namespace, [sys.executable, str(source)],
                                              {**built, **alsa}, work)
            check_run(block, status, output, f"Python, {setting}")
    else:
        binary = compile_program(block, built, tmp_path)
        status, output = run_in_namespace(namespace, [str(binary)], {**built, **sound_card},
                                          tmp_path)
        check_run(block, status, output, "a sound card")


@pytest.mark.parametrize("block", python_fragments(), ids=lambda b: b.where)
def test_python_fragment_compiles(block):
    try:
        compile(block.code, block.where, "exec")
    except SyntaxError as exc:
        pytest.fail(f"{block.where}: the ```python fragment does not compile: {exc}\n"
                    f"{block.code}", pytrace=False)


def test_no_block_hides_behind_an_alias():
    wrong = [f"{b.where}: ```{b.info} (write ```{ALIASES[b.language]} for a program, "
             f"```{ALIASES[b.language]} fragment for a piece of one)"
             for b in all_blocks() if b.language in ALIASES]
    assert not wrong, "blocks the harness would not run:\n" + "\n".join(wrong)


def test_the_readme_has_its_quick_starts():
    """The front page runs what it shows: a C, a C++ and two Python programs (threads
    and asyncio); the C++ one may wait as a fragment until include/millis.hpp lands."""
    readme = blocks_of(REPO_ROOT / "README.md")
    languages = [b.language for b in readme if b.language in RUN_LANGUAGES]
    assert languages.count("c") >= 1 and languages.count("cpp") >= 1, languages
    python = [b.code for b in readme if b.language == "python" and not b.fragment]
    assert any("asyncio" in code for code in python), "no asyncio quick start in README.md"
    assert any("asyncio" not in code for code in python), "no threaded quick start in README.md"


# ---------------------------------------------------------------------------
# links and paths
# ---------------------------------------------------------------------------

INLINE_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
HTML_LINK = re.compile(r"""<(?:a|img)\s[^>]*?(?:href|src)\s*=\s*["']([^"']+)["']""", re.I)


def prose(text: str, code_text: bool = False) -> str:
    """The text without fenced blocks and code spans, where links are not links
    (code_text: the spans' text is kept, without the backticks)."""
    out, in_fence, fence = [], False, ""
    for line in text.splitlines():
        m = FENCE.match(line)
        if m and not in_fence:
            in_fence, fence = True, m["fence"]
            out.append("")
            continue
        if in_fence:
            if m and m["fence"][0] == fence[0] and len(m["fence"]) >= len(fence) \
                    and not m["info"].strip():
                in_fence = False
            out.append("")
            continue
        out.append(re.sub(r"(`+)((?:(?!\1).)+)\1", lambda m: m[2] if code_text else "", line))
    return "\n".join(out)


def anchors_of(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens,
    repeats numbered."""
    seen: dict[str, int] = {}
    anchors = set()
    for line in prose(path.read_text(encoding="utf-8"), code_text=True).splitlines():
        m = re.match(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m[1].strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    for m in re.finditer(r"""<a\s+(?:name|id)\s*=\s*["']([^"']+)["']""", path.read_text()):
        anchors.add(m[1])
    return anchors


def links_of(path: Path) -> list[str]:
    text = prose(path.read_text(encoding="utf-8"))
    return [*INLINE_LINK.findall(text), *REFERENCE_LINK.findall(text), *HTML_LINK.findall(text)]


@pytest.mark.parametrize("doc", doc_files(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_links_resolve_inside_the_repository(doc):
    wrong = []
    for target in links_of(doc):
        parts = urlsplit(target)
        if parts.scheme in ("http", "https", "mailto"):
            continue
        if parts.scheme or parts.netloc or target.startswith("/"):
            wrong.append(f"{target}: not a path in the repository")
            continue
        # normpath, not resolve(): the sanitizer runs see the docs through symlinks.
        file = Path(os.path.normpath(doc.parent / unquote(parts.path))) if parts.path else doc
        if not file.is_relative_to(REPO_ROOT):
            wrong.append(f"{target}: outside the repository")
        elif not file.exists():
            wrong.append(f"{target}: no such file")
        elif parts.fragment and file.suffix == ".md" and parts.fragment not in anchors_of(file):
            wrong.append(f"{target}: {file.relative_to(REPO_ROOT)} has no heading "
                         f"#{parts.fragment}")
    assert not wrong, f"{doc.relative_to(REPO_ROOT)}: broken links:\n" + "\n".join(wrong)


@pytest.mark.parametrize("doc", doc_files(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_no_machine_paths(doc):
    hits = [f"{doc.relative_to(REPO_ROOT)}:{n}: {line.strip()}"
            for n, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1)
            if MACHINE_PATHS.search(line)]
    assert not hits, "paths of the machine the docs were written on:\n" + "\n".join(hits)


def test_the_harness_finds_blocks(tmp_path):
    """The extractor itself, on a sample: fences inside list items, longer fences,
    info strings, fragments."""
    sample = tmp_path / "sample.md"
    sample.write_text(textwrap.dedent("""\
        Text.

        ```c
        int main(void) { return 0; }
        ```

        - item

          ```python fragment
          x = 1
          ```

        ````sh
        ```
        echo inside
        ````
        ~~~
        plain
        ~~~
        """))
    found = blocks_of(sample)
    assert [(b.line, b.language, b.fragment) for b in found] == [
        (3, "c", False), (9, "python", True), (13, "sh", False), (17, "", False)]
    assert found[0].code == "int main(void) { return 0; }\n"
    assert found[1].code == "x = 1\n"
    assert found[2].code == "```\necho inside\n"


def test_the_link_checker_knows_anchors(tmp_path):
    """GitHub's anchors, as the link test computes them: punctuation and code marks
    dropped, repeats numbered, headings inside fenced blocks ignored."""
    page = tmp_path / "page.md"
    page.write_text("# 3. The devserver\n## `millis talk`, live\n## Limits\n## Limits\n"
                    "```sh\n# not a heading\n```\n")
    assert anchors_of(page) == {"3-the-devserver", "millis-talk-live", "limits", "limits-1"}
