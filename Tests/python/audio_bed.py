"""Test bed for the audio tests: two real audio paths through ALSA, set up by
the tests themselves (no sound card, no /dev/snd, no system changes).

Unpaced path: FileDevices
    Named ALSA PCMs that read a raw input file (capture) or write a raw
    output file (playback) and that open, like a real board, exactly one
    rate, one channel count and the listed sample formats. Time does not
    pass on them: a capture of 10 s returns at once. Built from
    Tests/alsa/pcm_constrain.c (see build_constrain_plugin).

Paced path: PulseBed
    A private PulseAudio daemon (its own runtime dir and socket; never
    touches another pulseaudio) with one null sink `spk`. ALSA's `pulse`
    PCM plays into it and records its monitor `spk.monitor` in real time.

ALSA configuration: ALSA_CONFIG_PATH replaces alsa-lib's top-level
configuration, so it lists the system's alsa.conf first and then our file,
separated by ':' (alsa-lib 1.2.8 loads them in order; an include line
`</usr/share/alsa/alsa.conf>` at the top of our file works as well). Without
the system file, built-in types still work but `null`, `pulse`, `default`
and the `pcm_type` entries of alsa-plugins do not exist.

Example (pytest):

    from audio_bed import FileDevices, PulseBed

    def test_x(tmp_path):
        devs = FileDevices(tmp_path)
        devs.capture("cap44", tmp_path / "in.raw", rate=44100, channels=2,
                     formats=["S16_LE"])
        env = devs.env()             # pass to subprocess / the library
        ...

    @pytest.fixture
    def pulse(tmp_path):
        with PulseBed(tmp_path) as bed:
            yield bed                  # bed.env(): PULSE_SINK=spk etc.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterable, Mapping, Sequence

REPO_ROOT = Path(__file__).resolve().parents[2]
PLUGIN_SOURCE = REPO_ROOT / "Tests" / "alsa" / "pcm_constrain.c"
PLUGIN_NAME = "libasound_module_pcm_constrain.so"
# where FileDevices builds the plugin unless told otherwise (ignored by git;
# rebuilt only when the source is newer)
DEFAULT_BUILD_DIR = Path(os.environ.get("MILLIS_ALSA_PLUGIN_DIR")
                         or REPO_ROOT / "build" / "test-alsa")
SYSTEM_ALSA_CONF = Path(os.environ.get("MILLIS_SYSTEM_ALSA_CONF",
                                       "/usr/share/alsa/alsa.conf"))

CAPTURE = "capture"
PLAYBACK = "playback"

# ---------------------------------------------------------------------------
# the constrain plugin
# ---------------------------------------------------------------------------

_build_lock = threading.Lock()


def build_constrain_plugin(build_dir: os.PathLike | str,
                           source: os.PathLike | str = PLUGIN_SOURCE) -> Path:
    """Compiles Tests/alsa/pcm_constrain.c into build_dir (once; again when
    the source is newer than the library). Returns the library's absolute
    path. Raises RuntimeError when gcc is missing or the build fails."""
    return build_alsa_plugin(build_dir, source, PLUGIN_NAME)


def build_alsa_plugin(build_dir: os.PathLike | str, source: os.PathLike | str, name: str,
                      flags: Sequence[str] = ("-O2",)) -> Path:
    """Compiles one of Tests/alsa's plugins into build_dir/name (once; again when the
    source is newer than the library). Returns the library's absolute path. Raises
    RuntimeError when gcc is missing or the build fails."""
    build_dir = Path(build_dir).resolve()
    source = Path(source).resolve()
    out = build_dir / name
    with _build_lock:
        if out.exists() and out.stat().st_mtime >= source.stat().st_mtime:
            return out
        gcc = shutil.which("gcc")
        if gcc is None:
            raise RuntimeError(f"gcc not found: cannot build the ALSA plugin {source.name}")
        build_dir.mkdir(parents=True, exist_ok=True)
        # build to a private name, then rename: a concurrent loader never
        # sees a half-written library
        fd, tmp = tempfile.mkstemp(prefix=f".{name}-", suffix=".so", dir=build_dir)
        os.close(fd)
        try:
            proc = subprocess.run(
                [gcc, "-shared", "-fPIC", *flags, "-Wall", "-o", tmp, str(source), "-lasound", "-lm"],
                capture_output=True, text=True, timeout=120)
            if proc.returncode != 0:
                raise RuntimeError(f"building {source.name} failed:\n{proc.stderr}")
            os.replace(tmp, out)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return out


# ---------------------------------------------------------------------------
# ALSA configuration helpers
# ---------------------------------------------------------------------------

def alsa_quote(value: object) -> str:
    """An ALSA configuration string literal."""
    s = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


def alsa_config_path(conf: os.PathLike | str) -> str:
    """The ALSA_CONFIG_PATH value that loads the system configuration and
    then conf."""
    return f"{SYSTEM_ALSA_CONF}:{Path(conf).resolve()}"


def alsa_env(conf: os.PathLike | str,
             base: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of base (default os.environ) whose ALSA_CONFIG_PATH loads conf."""
    env = dict(os.environ if base is None else base)
    env["ALSA_CONFIG_PATH"] = alsa_config_path(conf)
    return env


def _format_list(formats: str | Iterable[str]) -> list[str]:
    if isinstance(formats, str):
        formats = [formats]
    result = [f.upper() for f in formats]
    if not result:
        raise ValueError("at least one format is needed")
    return result


class FileDevices:
    """Named, constrained, file-backed ALSA PCMs in an asoundrc of a temp dir.

    Each device NAME is a chain of three PCMs:

        NAME              type file         reads `infile` (capture) or writes
                                            `file` (playback), format raw
        NAME__constrain   type constrain    (extplug) limits FORMAT and
                                            CHANNELS, refuses other rates in
                                            hw_params, passes audio through
        NAME__end         type constrain_null (ioplug) limits RATE the way
                                            hardware does, no pacing;
                                            discards playback, capture is
                                            silence under the file's data

    The `file` PCM is on top on purpose: alsa-lib 1.2.8's file plugin reads
    the infile in mmap_begin for all frames the slave offers, and any plugin
    above it (linear, route, extplug...) that reads fewer frames than offered
    loses input (seen with stock `null` too). With `file` facing the client,
    readi/mmap reads get exactly the input file's bytes.

    Use: capture()/playback() to add devices (the file is rewritten each
    time), then env() for child processes (or os.environ.update(env()) before
    the library opens a device in-process: alsa-lib reads the configuration
    at the first open and again when the files change).
    """

    def __init__(self, directory: os.PathLike | str,
                 plugin: os.PathLike | str | None = None,
                 build_dir: os.PathLike | str | None = None,
                 conf_name: str = "asoundrc"):
        self.directory = Path(directory).resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        if plugin is None:
            plugin = build_constrain_plugin(build_dir or DEFAULT_BUILD_DIR)
        self.plugin = Path(plugin).resolve()
        self.conf_path = self.directory / conf_name
        self.devices: dict[str, dict] = {}
        self.extra: list[str] = []
        self.write()

    # -- definition --------------------------------------------------------
    def add(self, name: str, direction: str, *, rate: int, channels: int,
            formats: str | Sequence[str], path: os.PathLike | str, paced: bool = False) -> str:
        """Adds device `name`. direction: "capture" (path = raw input file,
        which must exist by the time the device is opened) or "playback"
        (path = raw output file, created/truncated at open). Returns name."""
        if direction not in (CAPTURE, PLAYBACK):
            raise ValueError(f"direction must be {CAPTURE!r} or {PLAYBACK!r}")
        if not name or not all(c.isalnum() or c in "_-" for c in name):
            raise ValueError(f"bad device name {name!r}")
        self.devices[name] = dict(direction=direction, rate=int(rate),
                                  channels=int(channels),
                                  formats=_format_list(formats),
                                  path=Path(path).resolve(), paced=paced)
        self.write()
        return name

    def capture(self, name: str, infile: os.PathLike | str, *, rate: int,
                channels: int, formats: str | Sequence[str], paced: bool = False) -> str:
        """paced: the device runs on the clock, one period per period time, and
        reports an overrun to a reader that falls a buffer behind (like a card)."""
        return self.add(name, CAPTURE, rate=rate, channels=channels,
                        formats=formats, path=infile, paced=paced)

    def playback(self, name: str, outfile: os.PathLike | str, *, rate: int,
                 channels: int, formats: str | Sequence[str]) -> str:
        return self.add(name, PLAYBACK, rate=rate, channels=channels,
                        formats=formats, path=outfile)

    def add_text(self, text: str) -> None:
        """Appends raw ALSA configuration (e.g. PulseBed.alsa_conf_text())."""
        self.extra.append(text)
        self.write()

    # -- output ------------------------------------------------------------
    def text(self) -> str:
        lines = [
            "# written by Tests/python/audio_bed.py",
            f"pcm_type.constrain {{ lib {alsa_quote(self.plugin)} }}",
            f"pcm_type.constrain_null {{ lib {alsa_quote(self.plugin)} }}",
            "",
        ]
        for name, d in self.devices.items():
            fmts = " ".join(alsa_quote(f) for f in d["formats"])
            if d["direction"] == CAPTURE:
                io = (f"    file \"/dev/null\"\n"
                      f"    infile {alsa_quote(d['path'])}\n")
            else:
                io = f"    file {alsa_quote(d['path'])}\n    perm 0644\n"
            lines.append(
                f"pcm.{name}__end {{\n"
                f"    type constrain_null\n"
                f"    rate {d['rate']}\n"
                f"{'    paced 1' + chr(10) if d.get('paced') else ''}"
                f"}}\n"
                f"pcm.{name}__constrain {{\n"
                f"    type constrain\n"
                f"    slave.pcm \"{name}__end\"\n"
                f"    rate {d['rate']}\n"
                f"    channels {d['channels']}\n"
                f"    formats [ {fmts} ]\n"
                f"}}\n"
                f"pcm.{name} {{\n"
                f"    type file\n"
                f"    slave.pcm \"{name}__constrain\"\n"
                f"{io}"
                f"    format \"raw\"\n"
                f"    hint.description \"libmillis test {d['direction']} "
                f"{d['rate']} Hz {d['channels']} ch {'/'.join(d['formats'])}\"\n"
                f"}}\n")
        lines.extend(self.extra)
        return "\n".join(lines) + "\n"

    def write(self) -> Path:
        tmp = self.conf_path.with_suffix(".tmp")
        tmp.write_text(self.text())
        os.replace(tmp, self.conf_path)
        return self.conf_path

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        return alsa_env(self.conf_path, base)


# ---------------------------------------------------------------------------
# private PulseAudio daemon
# ---------------------------------------------------------------------------

class PulseBedError(RuntimeError):
    pass


def _die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM when the thread that started it
    ends, so a killed test run leaves no daemon behind (start PulseBed from
    the main thread or a thread that lives as long as the bed)."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except Exception:
        pass


def pulseaudio_available() -> bool:
    return shutil.which("pulseaudio") is not None and shutil.which("pactl") is not None


class PulseBed:
    """A private PulseAudio daemon with one null sink, run as a child process.

    `pulseaudio -n --daemonize=no` (a Popen child, stopped by `pactl exit`
    on its own socket, then by its PID; never by name) with its own
    XDG_RUNTIME_DIR/PULSE_RUNTIME_PATH (a short /tmp dir: the socket path
    must fit in 108 bytes) and its own HOME. As root it needs no --system:
    it logs "This program is not intended to be run as root" and runs.
    Realtime scheduling and high priority are off (shared 2-core machine).

    Latency: an idle null sink runs with its default 2 s latency, so a
    recorder that asks for a large buffer (arecord's default 500 ms) gets
    its first data only after up to ~2 s. With keepalive_ms (default 10) the
    bed keeps a `parec --latency-msec=10` reading spk.monitor (and throws
    the audio away), which holds the sink at ~10 ms: then a new recorder's first
    data comes after about one of its own periods and a played sound shows
    up in the monitor within ~10 ms (plus the recorder's period). A new
    low-latency client only takes effect at the end of the sink's current
    2 s block, so start() suspends and resumes the sink once the keepalive
    is connected and waits for its first data (start_seconds, daemon
    answering: ~0.03 s; ready_seconds, monitor flowing at low latency:
    ~0.06 s). keepalive_ms=None turns it off.

    env() gives a child process: PULSE_SERVER (our socket), PULSE_SINK=spk,
    PULSE_SOURCE=spk.monitor, PULSE_CLIENTCONFIG (autospawn = no, so a
    client never starts a daemon of its own), and ALSA_CONFIG_PATH with the
    named PCMs `pulse_play` (-> spk) and `pulse_rec` (-> spk.monitor). The
    plain ALSA device `pulse` works too (it follows PULSE_SINK/PULSE_SOURCE).
    """

    def __init__(self, directory: os.PathLike | str | None = None, *,
                 sink: str = "spk", rate: int = 48000, channels: int = 2,
                 start_timeout: float = 15.0, keepalive_ms: int | None = 10):
        self.sink = sink
        self.keepalive_ms = keepalive_ms
        self.keepalive: subprocess.Popen | None = None
        self.source = f"{sink}.monitor"
        self.rate = rate
        self.channels = channels
        self.start_timeout = start_timeout
        self._own_dir = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="pulsebed-")).resolve()
        self.proc: subprocess.Popen | None = None
        self.runtime_dir: Path | None = None
        self.socket: Path | None = None
        self.start_seconds: float | None = None   # launch -> `pactl info` answers
        self.ready_seconds: float | None = None   # ... -> monitor data flows at low latency
        self.log_path = self.directory / "pulseaudio.log"
        self.conf_path = self.directory / "pulse-asoundrc"
        self.client_conf = self.directory / "pulse-client.conf"

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> "PulseBed":
        if self.proc is not None:
            return self
        if not pulseaudio_available():
            raise PulseBedError("pulseaudio/pactl not installed")
        self.directory.mkdir(parents=True, exist_ok=True)
        home = self.directory / "pulse-home"
        home.mkdir(exist_ok=True)
        self.runtime_dir = Path(tempfile.mkdtemp(prefix="pb-", dir="/tmp"))  # 0700
        self.socket = self.runtime_dir / "native"
        self.client_conf.write_text("autospawn = no\n")
        self.conf_path.write_text(self.alsa_conf_text())

        env = dict(os.environ)
        for k in ("PULSE_SERVER", "PULSE_SINK", "PULSE_SOURCE", "DISPLAY",
                  "DBUS_SESSION_BUS_ADDRESS"):
            env.pop(k, None)
        env.update(HOME=str(home), XDG_RUNTIME_DIR=str(self.runtime_dir),
                   PULSE_RUNTIME_PATH=str(self.runtime_dir),
                   XDG_CONFIG_HOME=str(home / ".config"),
                   PULSE_STATE_PATH=str(home / "state"),
                   PULSE_CLIENTCONFIG=str(self.client_conf))
        cmd = [
            "pulseaudio", "-n", "--daemonize=no", "--system=no",
            "--exit-idle-time=-1", "--realtime=no", "--high-priority=no",
            "--use-pid-file=no", "--disable-shm=yes", "--log-target=stderr",
            f"--load=module-null-sink sink_name={self.sink} rate={self.rate} "
            f"channels={self.channels}",
            f"--load=module-native-protocol-unix socket={self.socket} auth-anonymous=1",
        ]
        t0 = time.monotonic()
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log,
                                         start_new_session=True,
                                         preexec_fn=_die_with_parent)
        finally:
            log.close()
        try:
            self._wait_ready(t0)
            self.start_seconds = time.monotonic() - t0
            if self.keepalive_ms and shutil.which("parec"):
                self._start_keepalive()
        except BaseException:
            self.stop()
            raise
        self.ready_seconds = time.monotonic() - t0
        return self

    def _start_keepalive(self) -> None:
        self.keepalive = subprocess.Popen(
            ["parec", f"--latency-msec={self.keepalive_ms}", "-d", self.source,
             f"--rate={self.rate}", "--channels=1", "--format=s16le", "--raw"],
            env=self._client_env(), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=_die_with_parent)
        got_data = threading.Event()
        pipe = self.keepalive.stdout

        def drain():  # discard the monitor's audio; note when it flows
            fd = pipe.fileno()
            try:
                while os.read(fd, 65536):
                    got_data.set()
            except OSError:
                pass
            finally:
                pipe.close()

        threading.Thread(target=drain, name="pulsebed-keepalive", daemon=True).start()
        # The idle null sink works in 2 s blocks: the first monitor data (and
        # the switch to low latency) would come at the end of the current
        # block. Suspending and resuming the sink once the keepalive is
        # connected restarts its timer at the low latency right away.
        deadline = time.monotonic() + self.start_timeout
        while not self.pactl("list", "short", "source-outputs", check=False).stdout.strip():
            if self.keepalive.poll() is not None:
                raise PulseBedError(f"parec keepalive exited with {self.keepalive.returncode}")
            if time.monotonic() > deadline:
                raise PulseBedError("parec keepalive did not connect")
            time.sleep(0.01)
        self.pactl("suspend-sink", self.sink, "1", check=False)
        self.pactl("suspend-sink", self.sink, "0", check=False)
        if not got_data.wait(max(0.0, deadline - time.monotonic())):
            raise PulseBedError("parec keepalive got no data from the monitor")

    def _wait_ready(self, t0: float) -> None:
        deadline = t0 + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                raise PulseBedError(
                    f"pulseaudio exited with {self.proc.returncode}:\n{self.log()}")
            if self.socket.exists():
                r = self.pactl("info", check=False, timeout=5)
                if r.returncode == 0 and f"Default Sink: {self.sink}" in r.stdout:
                    return
            if time.monotonic() > deadline:
                raise PulseBedError(
                    f"pulseaudio not ready after {self.start_timeout} s:\n{self.log()}")
            time.sleep(0.02)

    def stop(self) -> None:
        keepalive, self.keepalive = self.keepalive, None
        if keepalive is not None:
            keepalive.terminate()
            try:
                keepalive.wait(timeout=5)
            except subprocess.TimeoutExpired:
                keepalive.kill()
                keepalive.wait(timeout=5)
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                try:
                    subprocess.run(["pactl", "exit"], env=self._client_env(),
                                   capture_output=True, timeout=5)
                except (OSError, subprocess.TimeoutExpired):
                    pass
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(timeout=5)
        if self.runtime_dir is not None:
            shutil.rmtree(self.runtime_dir, ignore_errors=True)
            self.runtime_dir = None
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> "PulseBed":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- for clients -------------------------------------------------------
    def alsa_conf_text(self) -> str:
        return (f"pcm.pulse_play {{\n    type pulse\n    device {alsa_quote(self.sink)}\n}}\n"
                f"pcm.pulse_rec {{\n    type pulse\n    device {alsa_quote(self.source)}\n}}\n")

    def _client_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env.update(PULSE_SERVER=f"unix:{self.socket}", PULSE_SINK=self.sink,
                   PULSE_SOURCE=self.source,
                   PULSE_CLIENTCONFIG=str(self.client_conf))
        return env

    def env(self, base: Mapping[str, str] | None = None, *,
            alsa_conf: os.PathLike | str | None = None) -> dict[str, str]:
        """Environment for a child process that uses this daemon. alsa_conf:
        an ALSA config to load instead of the bed's own (e.g. a FileDevices
        conf that add_text()-ed alsa_conf_text(), to have both paths)."""
        if self.socket is None:
            raise PulseBedError("PulseBed not started")
        env = self._client_env(base)
        env["ALSA_CONFIG_PATH"] = alsa_config_path(alsa_conf or self.conf_path)
        return env

    def pactl(self, *args: str, check: bool = True, timeout: float = 10
              ) -> subprocess.CompletedProcess:
        return subprocess.run(["pactl", *args], env=self._client_env(),
                              capture_output=True, text=True, timeout=timeout,
                              check=check)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


# ---------------------------------------------------------------------------
# signal helpers for the tests
# ---------------------------------------------------------------------------

def sine_s16(freq: float, seconds: float, rate: int, channels: int = 1,
             amplitude: float = 0.5) -> bytes:
    import numpy as np
    t = np.arange(int(round(seconds * rate))) / rate
    x = np.round(amplitude * 32767 * np.sin(2 * np.pi * freq * t)).astype("<i2")
    return np.repeat(x[:, None], channels, axis=1).tobytes()


def dominant_frequency(samples, rate: int) -> float:
    import numpy as np
    x = np.asarray(samples, dtype=float)
    x = x - x.mean()
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


def measure_loop_latency(bed: PulseBed, *, rate: int = 48000,
                         device_play: str = "pulse", device_rec: str = "pulse",
                         extra_args: Sequence[str] = ()) -> dict:
    """Plays a click with `aplay -D pulse` while `arecord -D pulse` records
    the monitor and returns timings in seconds:

        launch_to_arrival  aplay started -> the click's samples reached us
                           through arecord's stdout (what a test waits)
        rec_start          arecord launched -> its first byte arrived
    """
    import numpy as np
    env = bed.env()
    click_at = 0.2  # s of silence before the click in the played stream
    frames = int(rate * 0.6)
    x = np.zeros(frames, dtype="<i2")
    c0 = int(click_at * rate)
    x[c0:c0 + int(0.005 * rate)] = 20000
    rec = subprocess.Popen(["arecord", "-q", "-D", device_rec, "-r", str(rate), "-c", "1",
                            "-f", "S16_LE", "-t", "raw", *extra_args],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    t_rec_launch = time.monotonic()
    chunks: list[tuple[float, int]] = []  # (arrival time, total bytes so far)
    data = bytearray()
    found: dict = {}
    play_started = threading.Event()
    t_play = [0.0]

    def reader():
        fd = rec.stdout.fileno()
        while True:
            b = os.read(fd, 4096)
            if not b:
                return
            now = time.monotonic()
            data.extend(b)
            chunks.append((now, len(data)))
            if play_started.is_set() and "t" not in found:
                s = np.frombuffer(bytes(data[: len(data) // 2 * 2]), dtype="<i2")
                hits = np.nonzero(np.abs(s.astype(int)) > 10000)[0]
                if len(hits):
                    found["t"] = now
                    found["index"] = int(hits[0])
            if "t" in found and now - found["t"] > 0.3:
                return

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    try:
        # let the recording run before playing
        deadline = time.monotonic() + 5
        while not chunks and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.3)
        play_started.set()
        t_play[0] = time.monotonic()
        subprocess.run(["aplay", "-q", "-D", device_play, "-r", str(rate), "-c", "1",
                        "-f", "S16_LE", "-t", "raw", *extra_args],
                       input=x.tobytes(), env=env, timeout=10, check=True)
        th.join(timeout=5)
    finally:
        rec.terminate()
        rec.wait(timeout=5)
    if "t" not in found:
        raise AssertionError("click not seen in the monitor recording")
    return {
        "launch_to_arrival": found["t"] - (t_play[0] + click_at),
        "rec_start": chunks[0][0] - t_rec_launch,
    }
