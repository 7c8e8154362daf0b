"""The package's version comes from include/millis.h, where it is written once.

Built from the repository (``pip install ./bindings/python``), the header is two levels
up; built from an sdist, PKG-INFO carries the version it was made with. The build writes
it into ``millis/_version.py``, which the binding compares with the library it loads.

Two kinds of wheel come out of this file:

* pure (``py3-none-any``): the package alone; it loads the libmillis.so of the machine
  (loader path) or of the checkout. What ``pip install ./bindings/python`` and an
  sdist build, for distributions that package the C library themselves.
* platform (``py3-none-linux_x86_64``, made ``manylinux_*`` by ``auditwheel repair``):
  when ``millis/_lib/libmillis.so.0`` is present in the tree being built. ``make wheel``
  stages such a tree under build/wheel; it is never in the checkout. The tag stays
  ``py3-none``: the package is ctypes only and runs on any Python 3 of that platform.
"""
import re
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

try:  # setuptools >= 70.1 has its own; before, the wheel package provides it
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:
    from wheel.bdist_wheel import bdist_wheel

HERE = Path(__file__).resolve().parent
# Where millis/_native.py looks for a bundled library (its first candidate after
# $MILLIS_LIBRARY); pyproject.toml lists it as package data.
BUNDLED_LIBRARY = HERE / "millis" / "_lib" / "libmillis.so.0"


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


VERSION = version()


class BuildPy(build_py):
    """Writes millis/_version.py into the build: the version the binding was built for."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "millis" / "_version.py"
        target.write_text("# Written by setup.py from include/millis.h; the version of libmillis this\n"
                          "# binding declares and checks for when it loads the library.\n"
                          f"VERSION = {VERSION!r}\n")


class BinaryDistribution(Distribution):
    """Carries a native library: installed to platlib, where auditwheel looks for it."""

    def has_ext_modules(self) -> bool:
        return True


class PlatformWheel(bdist_wheel):
    """Platform specific, yet for any Python 3: the library is loaded with ctypes."""

    def get_tag(self):
        _, _, platform = super().get_tag()
        return "py3", "none", platform


options = {"version": VERSION, "cmdclass": {"build_py": BuildPy}}
if BUNDLED_LIBRARY.is_file():
    options["cmdclass"]["bdist_wheel"] = PlatformWheel
    options["distclass"] = BinaryDistribution

setup(**options)
