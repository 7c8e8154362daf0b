#!/usr/bin/env python3
"""Checks that every function include/millis.h declares is documented (house style, "The C surface").

Usage: python3 Tests/abi/check_docs.py include/millis.h

Every declared function must be preceded directly (nothing but blank space between) by
a doc comment of its own, /** ... */, holding the four headings of the per-function
template, each at the start of a comment line and followed by text:
  Parameters:   Returns: (or Return value:)   Thread safety:   Callback safety:
A function without one, or with a heading missing or empty, is reported by name. The
declarations found are cross-checked against check_exports.py's parser, so that a
declaration this script fails to recognise is an error too, not a function skipped.
Exit status 0 when every function is documented, 1 when one is not, 2 on a usage error.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_exports import header_functions  # noqa: E402  (same directory)

HEADINGS: dict[str, re.Pattern[str]] = {
    name: re.compile(r"^[ \t]*(?:/\*\*|\*)?[ \t]*(?:" + pattern + r")[ \t]*:[ \t]*(\S?)", re.M)
    for name, pattern in {
        "Parameters": r"Parameters",
        "Returns": r"Returns|Return value",
        "Thread safety": r"Thread safety",
        "Callback safety": r"Callback safety",
    }.items()
}

ANY_HEADING = re.compile(r"^[ \t]*\*?[ \t]*(?:Parameters|Returns|Return value|Thread safety|Callback safety"
                         r"|Remarks)[ \t]*:")

COMMENT = re.compile(r"/\*.*?\*/", re.S)
# A function declaration at the start of a line: return type, name, parameters, ';'.
# Typedefs of function pointers, (*name)(...), do not match: the name follows a '('.
DECLARATION = re.compile(r"^[ \t]*(?!typedef\b)(?:extern[ \t]+)?[A-Za-z_][\w \t\*]*?[ \t\*]"
                         r"(millis_\w+)[ \t]*\([^;{}]*\)[ \t]*;", re.M)


def blank(match: re.Match[str]) -> str:
    """The comment replaced by spaces, its line breaks kept: offsets stay the same."""
    return re.sub(r"[^\n]", " ", match.group(0))


def heading_problems(comment: str) -> list[str]:
    """What the doc comment lacks: headings absent, or present with no text after them."""
    body = comment[:-2]  # without the closing */
    lines = body.splitlines()
    problems = []
    for name, pattern in HEADINGS.items():
        match = pattern.search(body)
        if match is None:
            problems.append(f"no '{name}:'")
            continue
        if match.group(1):
            continue
        # The text may start on the next comment line, unless that line is a heading.
        line_no = body.count("\n", 0, match.start())
        following = lines[line_no + 1] if line_no + 1 < len(lines) else ""
        if not re.sub(r"^[ \t]*\*?", "", following).strip() or ANY_HEADING.match(following):
            problems.append(f"'{name}:' is empty")
    return problems


def check(text: str) -> tuple[list[str], list[str]]:
    """The functions found, and the problems (each naming its function)."""
    comments = {m.end(): m for m in COMMENT.finditer(text)}
    code = COMMENT.sub(blank, text)
    code = re.sub(r"^[ \t]*#[^\n]*", lambda m: " " * len(m.group(0)), code, flags=re.M)

    found: list[str] = []
    problems: list[str] = []
    for decl in DECLARATION.finditer(code):
        name = decl.group(1)
        found.append(name)
        # Only blank space may separate the comment from the declaration: a comment
        # followed by an earlier declaration is that one's, not this function's.
        before = text[:decl.start()].rstrip()
        comment = comments.get(len(before))
        if comment is None or not comment.group(0).startswith("/**"):
            problems.append(f"{name}: no doc comment (/** ... */) right before its declaration")
            continue
        missing = heading_problems(comment.group(0))
        if missing:
            problems.append(f"{name}: doc comment incomplete: {', '.join(missing)}")

    declared, odd = header_functions(text)
    for decl_text in odd:
        problems.append(f"declaration not understood: {decl_text}")
    for name in sorted(set(declared) - set(found)):
        problems.append(f"{name}: declared, but check_docs.py did not recognise its declaration")
    for name in sorted(set(found) - set(declared)):
        problems.append(f"{name}: recognised by check_docs.py but not by check_exports.py")
    duplicates = sorted({n for n in found if found.count(n) > 1})
    for name in duplicates:
        problems.append(f"{name}: declared more than once")
    return found, problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    header = Path(argv[1])
    if not header.exists():
        print(f"error: {header} does not exist", file=sys.stderr)
        return 2
    found, problems = check(header.read_text())
    if not found:
        problems.append(f"no function declarations found in {header}")
    print(f"{header}: {len(found)} functions declared")
    if problems:
        print(f"FAILED: {len(problems)} problem(s):")
        for p in problems:
            print(f"  - {p}")
        return 1
    print("OK: every function has a doc comment with Parameters, Returns, Thread safety "
          "and Callback safety")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
