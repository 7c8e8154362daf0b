"""The Makefile's dependency sets: `make build` asks for build dependencies only.

`make -n` prints the deps.sh line each target would run, without running it; the
package names on it are what that target would install on a fresh machine.
"""
import subprocess

from conftest import REPO_ROOT

# Packages only the test bed or the devserver needs: never a build's business.
NOT_FOR_BUILDING = {"pulseaudio", "pulseaudio-utils", "espeak-ng", "sox", "tmux", "opus-tools",
                    "alsa-utils", "libasound2-plugins", "python3", "python3-pip", "g++",
                    "websockets", "pytest", "numpy", "scipy", "matplotlib", "cryptography"}
# What the library and the CLI link or include (Package.swift, tools/millis/Makefile).
NEEDED_FOR_BUILDING = {"gcc", "pkg-config", "libcurl4-openssl-dev", "libcjson-dev", "libasound2-dev",
                       "libspeexdsp-dev", "libwebrtc-audio-processing-dev", "libstdc++-12-dev", "libopus-dev",
                       "libopusenc-dev", "libopusfile-dev"}


def packages_installed_by(target):
    out = subprocess.run(["make", "-n", target], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    names = set()
    for line in out.splitlines():
        if "/.ci/deps.sh" in line:
            names.update(word for word in line.split()[1:] if word != "--")
    return names


def test_build_installs_only_build_dependencies():
    build = packages_installed_by("build")
    assert build & NOT_FOR_BUILDING == set(), f"make build would install test-bed packages: {sorted(build & NOT_FOR_BUILDING)}"
    assert NEEDED_FOR_BUILDING <= build, f"make build would not install: {sorted(NEEDED_FOR_BUILDING - build)}"


def test_test_and_demo_set_up_what_they_need():
    test = packages_installed_by("test")
    assert NOT_FOR_BUILDING <= test, f"make test would not install: {sorted(NOT_FOR_BUILDING - test)}"
    demo = packages_installed_by("demo")
    assert {"python3", "websockets"} <= demo and NEEDED_FOR_BUILDING <= demo
    assert "pulseaudio" not in demo and "scipy" not in demo
