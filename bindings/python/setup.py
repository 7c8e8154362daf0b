"""The package's version comes from include/millis.h, where it is written once.

Built from the repository (``pip install ./bindings/python``), the header is two levels
up; built from an sdist, PKG-INFO carries the version it was made with.
"""
import re
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent


def version() -> str:
    header = HERE.parent.parent / "include" / "millis.h"
    if header.is_file():
        text = header.read_text()
        parts = [re.search(rf"^#define MILLIS_VERSION_{part} (\d+)$", text, re.M) for part in ("MAJOR", "MINOR", "PATCH")]
        if all(parts):
            return ".".join(m.group(1) for m in parts)
    info = HERE / "PKG-INFO"
    if info.is_file():
        found = re.search(r"^Version: (\S+)$", info.read_text(), re.M)
        if found:
            return found.group(1)
    raise SystemExit(f"millis: no version: build from the libmillis repository (it reads {header}) "
                     "or from an sdist of it")


setup(version=version())
