#!/usr/bin/env python3
"""Copies the licences of the libraries the wheel carries into it (make wheel).

auditwheel copies into the wheel every library libmillis.so loads that a clean machine
lacks (curl and its TLS stack, Opus, SpeexDSP, ...); their licences ask that their
notices travel with them. For every library `ldd` resolves, this finds the Debian
package that installed it and copies that package's copyright file to
OUT/<package>.copyright. The C runtime's packages are left out: a wheel never carries
them.

usage: wheel_licenses.py LIBRARY OUT
"""
import shutil
import subprocess
import sys
from pathlib import Path

SYSTEM = {"libc6", "libgcc-s1", "libstdc++6"}


def package_of(path: str) -> str:
    # A merged-/usr system resolves /lib/... to /usr/lib/...; dpkg knows one of them.
    candidates = [path, path[len("/usr"):]] if path.startswith("/usr/") else [path, "/usr" + path]
    for candidate in candidates:
        found = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if found.returncode == 0:
            return found.stdout.split(":", 1)[0]
    sys.exit(f"wheel_licenses.py: no Debian package installed {path}; its licence cannot be "
             f"shipped with the wheel")


def main() -> None:
    library, out = sys.argv[1], Path(sys.argv[2])
    lines = subprocess.run(["ldd", library], capture_output=True, text=True, check=True).stdout
    paths = {str(Path(line.split()[2]).resolve()) for line in lines.splitlines()
             if "=>" in line and len(line.split()) > 2 and line.split()[2].startswith("/")}
    out.mkdir(parents=True, exist_ok=True)
    for package in sorted({package_of(p) for p in paths} - SYSTEM):
        shutil.copy(f"/usr/share/doc/{package}/copyright", out / f"{package}.copyright")


if __name__ == "__main__":
    main()
