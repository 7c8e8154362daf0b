#!/usr/bin/env python3
"""Checks that libmillis.so exports exactly the functions that include/millis.h declares.

Usage: python3 Tests/abi/check_exports.py build/libmillis.so include/millis.h

Checks, each reported with the list of differences:
  1. every function declared in the header is exported as a text symbol (nm -D `T`), and
     every exported function is declared in the header: one to one;
  2. nothing but millis_* is exported (no Swift runtime, no ccurl_* shims, no data);
  3. the SONAME is libmillis.so.0 (readelf -d);
  4. the library needs no shared Swift runtime: neither its NEEDED entries nor ldd name
     libswift*, libFoundation*, libdispatch or libBlocksRuntime.
Exit status 0 when all hold, 1 when one does not, 2 on a usage or tool error.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

EXPECTED_SONAME = "libmillis.so.0"
PREFIX = "millis_"
FORBIDDEN_LIBS = re.compile(r"(libswift\w*|libFoundation\w*|libdispatch|libBlocksRuntime)")


def header_functions(header_text: str) -> tuple[list[str], list[str]]:
    """Names of the functions the header declares, and the declarations not understood."""
    text = re.sub(r"/\*.*?\*/", " ", header_text, flags=re.S)  # block comments
    text = re.sub(r"//[^\n]*", " ", text)                      # line comments
    text = re.sub(r"\\\n", " ", text)                          # line continuations
    text = re.sub(r"^\s*#[^\n]*", " ", text, flags=re.M)       # preprocessor directives
    text = re.sub(r'extern\s+"C"\s*\{', " ", text)             # the C++ guard's brace...
    text = re.sub(r"^\s*\}\s*$", " ", text, flags=re.M)        # ...and its closing one
    while True:                                                # enum and struct bodies
        stripped = re.sub(r"\{[^{}]*\}", " ", text)
        if stripped == text:
            break
        text = stripped
    names: list[str] = []
    odd: list[str] = []
    for statement in text.split(";"):
        decl = " ".join(statement.split())
        if not decl or decl.startswith("typedef ") or "(" not in decl:
            continue
        match = re.fullmatch(r"(?:extern\s+)?[\w\s\*]+?[\s\*](\w+)\s*\((.*)\)", decl, flags=re.S)
        if match is None:
            odd.append(decl)
            continue
        names.append(match.group(1))
    return names, odd


def run(cmd: list[str]) -> str:
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        print(f"error: {cmd[0]} not found (install binutils)", file=sys.stderr)
        sys.exit(2)
    if result.returncode != 0:
        print(f"error: {' '.join(cmd)} failed ({result.returncode}):\n{result.stderr}", file=sys.stderr)
        sys.exit(2)
    return result.stdout


def dynamic_symbols(library: Path) -> list[tuple[str, str, str]]:
    """(type, name without @version, version) of every defined dynamic symbol."""
    symbols = []
    for line in run(["nm", "-D", "--defined-only", str(library)]).splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        kind, raw = parts[-2], parts[-1]
        name, _, version = raw.partition("@")
        symbols.append((kind, name, version.lstrip("@")))
    return symbols


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    library, header = Path(argv[1]), Path(argv[2])
    for path in (library, header):
        if not path.exists():
            print(f"error: {path} does not exist", file=sys.stderr)
            return 2

    problems: list[str] = []

    declared, odd = header_functions(header.read_text())
    for decl in odd:
        problems.append(f"header: declaration not understood: {decl}")
    duplicates = sorted({n for n in declared if declared.count(n) > 1})
    for name in duplicates:
        problems.append(f"header: {name} declared more than once")
    for name in declared:
        if not name.startswith(PREFIX):
            problems.append(f"header: {name} does not start with {PREFIX}")
    if not declared:
        problems.append(f"header: no function declarations found in {header}")

    symbols = dynamic_symbols(library)
    versions = {v for _, _, v in symbols if v}
    exported_functions = {name for kind, name, _ in symbols if kind in ("T", "t", "i")}
    foreign = []
    for kind, name, _ in symbols:
        if kind == "A" and name in versions:
            continue  # a version node of the version script, e.g. MILLIS_0
        if not name.startswith(PREFIX):
            foreign.append(f"{kind} {name}")
        elif kind not in ("T", "i"):
            problems.append(f"library: {name} is exported as a '{kind}' symbol, not a function")

    missing = sorted(set(declared) - exported_functions)
    extra = sorted(n for n in exported_functions - set(declared) if n.startswith(PREFIX))
    for name in missing:
        problems.append(f"declared in {header.name} but not exported: {name}")
    for name in extra:
        problems.append(f"exported but not declared in {header.name}: {name}")
    if foreign:
        swift = [s for s in foreign if re.search(r" (\$s|_?\$S|swift_|_swift|\$ss)", s)]
        ccurl = [s for s in foreign if " ccurl_" in s]
        problems.append(
            f"{len(foreign)} exported symbols without the {PREFIX} prefix "
            f"({len(swift)} Swift runtime, {len(ccurl)} ccurl_*): "
            + ", ".join(foreign[:40]) + (" ..." if len(foreign) > 40 else ""))

    dynamic = run(["readelf", "-d", str(library)])
    sonames = re.findall(r"\(SONAME\)\s+Library soname: \[([^\]]+)\]", dynamic)
    if sonames != [EXPECTED_SONAME]:
        problems.append(f"SONAME is {sonames or 'missing'}, expected {EXPECTED_SONAME}")
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic)
    for lib in needed:
        if FORBIDDEN_LIBS.search(lib):
            problems.append(f"NEEDED {lib}: the Swift runtime must be linked statically")
    ldd = subprocess.run(["ldd", str(library)], capture_output=True, text=True, check=False)
    for line in ldd.stdout.splitlines():
        if FORBIDDEN_LIBS.search(line):
            problems.append(f"ldd: {line.strip()}")
        if "not found" in line:
            problems.append(f"ldd: unresolved dependency: {line.strip()}")

    print(f"{header}: {len(declared)} functions declared")
    print(f"{library}: {len(exported_functions)} functions exported "
          f"({len(symbols)} dynamic symbols, versions {sorted(versions) or 'none'}), "
          f"SONAME {sonames[0] if sonames else '-'}, NEEDED {', '.join(needed)}")
    if problems:
        print(f"FAILED: {len(problems)} problem(s):")
        for p in problems:
            print(f"  - {p}")
        return 1
    print("OK: header and exports match one to one; only millis_* exported; "
          "SONAME and dependencies as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
