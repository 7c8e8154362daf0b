"""The Pythonic client over libmillis. See the package docstring for the dispatch modes."""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import json
import logging
import os
import queue
import select
import threading
import time
import weakref
from typing import (Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple,
                    Union)

from . import _native
from ._native import lib
from .analyser import Analyser, _Gate
from .analyser import _after_fork_in_child as _analysers_after_fork_in_child
from .enums import (
    AgentState,
    AudioEncoding,
    AudioMode,
    FilePacing,
    LogLevel,
    MillisError,
    RecordFlags,
    Status,
)

__all__ = ["Client", "EVENTS", "audio_devices"]

log = logging.getLogger("millis")

#: The event names accepted by :meth:`Client.on` (the web SDK's names, plus onagentstate,
#: onmessage for methods this version does not know, and onlog for library logs; the web
#: SDK's ``analyzer`` and ``useraudioready`` are onanalyzer and onuseraudioready;
#: oninputended (the input file ended) and onturn (a turn's latency breakdown) are
#: libmillis' own).
EVENTS = (
    "onopen",
    "onready",
    "onsessionended",
    "onaudio",
    "onresponsetext",
    "ontranscript",
    "onfunction",
    "onlatency",
    "onagentstate",
    "onclose",
    "onerror",
    "onmessage",
    "onlog",
    "onreconnecting",
    "onreconnected",
    "onanalyzer",
    "onuseraudioready",
    "oninputended",
    "onturn",
)

_STOP = object()  # wakes a consumer of the event queue when the client is closed

_live_clients: "weakref.WeakSet[Client]" = weakref.WeakSet()


@atexit.register
def _close_live_clients() -> None:
    # The network thread must not call into an interpreter that is shutting down.
    for client in list(_live_clients):
        try:
            client.close()
        except Exception:
            pass


def _after_fork_in_child() -> None:
    # A child made by fork() has only the thread that forked: the dispatcher threads
    # and the library's network thread are gone, and a lock any of them held at that
    # moment stays held in the child forever. The parent's clients get fresh locks
    # here; the library refuses their calls in the child (MILLIS_ERR_INVALID_STATE,
    # "Processes and fork" in millis.h), so they raise MillisError with its message.
    _analysers_after_fork_in_child()
    for client in list(_live_clients):
        try:
            client._inherited_by_fork()
        except Exception:
            pass


os.register_at_fork(after_in_child=_after_fork_in_child)

Event = Tuple[str, tuple]


def _text(raw: Optional[bytes]) -> str:
    return _native.decode(raw)


def _json_or_raw(raw: Optional[bytes]) -> Any:
    text = _text(raw)
    if text == "":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _uint(value: Any, what: str) -> int:
    """An int for a C ``unsigned int`` (ctypes would wrap -1 to 4294967295 silently)."""
    number = int(value)
    if not 0 <= number <= 0xFFFFFFFF:
        raise MillisError(Status.INVALID_ARGUMENT, f"{what} {number} is out of range")
    return number


def _path(value: Any, what: str) -> bytes:
    """A file path (str, bytes or os.PathLike) -> bytes for a C ``const char *``.

    An empty path is passed on: the library refuses it with INVALID_ARGUMENT and says so.
    """
    try:
        return os.fsencode(value)
    except TypeError:
        raise TypeError(f"{what} must be a str, bytes or os.PathLike, "
                        f"not {type(value).__name__}") from None


def _headers(headers: Any) -> List[Tuple[bytes, bytes]]:
    """``headers=``: a mapping, or an iterable of (name, value) pairs (order kept, a name
    may repeat) -> [(name, value)] as UTF-8 bytes for millis_config_add_header.

    Validation of the names and values is the library's (its message is raised); only
    what ctypes cannot pass on faithfully is refused here: a non-str item, and a NUL,
    which would silently cut a C string short.
    """
    if isinstance(headers, (str, bytes, bytearray)):
        raise TypeError("headers must be a mapping or an iterable of (name, value) pairs, "
                        f"not {type(headers).__name__}")
    items = headers.items() if hasattr(headers, "items") else headers
    pairs: List[Tuple[bytes, bytes]] = []
    try:
        iterator = iter(items)
    except TypeError:
        raise TypeError("headers must be a mapping or an iterable of (name, value) pairs, "
                        f"not {type(headers).__name__}") from None
    for item in iterator:
        if isinstance(item, (str, bytes)) or not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(f"headers: each header is a (name, value) pair, not {item!r}")
        name, value = item
        for what, text in (("name", name), ("value", value)):
            if not isinstance(text, str):
                raise TypeError(f"headers: the {what} of a header must be a str, "
                                f"not {type(text).__name__} ({item!r})")
        # A C string ends at the first NUL: passed on, the rest would vanish silently.
        if "\0" in name:
            raise MillisError(Status.INVALID_ARGUMENT,
                              f"header name {name!r} holds a NUL character (U+0000)")
        if "\0" in value:
            raise MillisError(Status.INVALID_ARGUMENT,
                              f"value of header {name!r} holds the control character U+0000 "
                              "(NUL): only tab and printable text are allowed")
        pairs.append((name.encode("utf-8"), value.encode("utf-8")))
    return pairs


def _record_flags(mono: bool) -> int:
    return int(RecordFlags.MONO if mono else RecordFlags.STEREO)


def _level(value: Any, enum: type, what: str) -> int:
    """An IntEnum member, an int, or a name ("debug") -> int; range checks are the library's."""
    if isinstance(value, str):
        try:
            return int(enum[value.upper()])
        except KeyError:
            names = ", ".join(m.name.lower() for m in enum)
            raise ValueError(f"{what}: unknown name {value!r} (one of {names})") from None
    return int(value)


#: The library's event queue per client (millis_config_set_event_queue): about four
#: minutes of agent audio. Events wait there until the program takes them.
DEFAULT_EVENT_QUEUE_BYTES = 8 << 20


def _raw_event(ev: "_native.Event") -> Optional[Event]:
    """Copies a millis_event (its payloads are lent until the next take) into the raw
    tuple :func:`_materialize` reads; None for MILLIS_EVENT_NONE."""
    kind = ev.type
    if not 1 <= kind <= len(EVENTS):
        return None
    name = EVENTS[kind - 1]  # MILLIS_EVENT_* follows EVENTS (test_version checks it)

    def s(address: Optional[int]) -> Optional[bytes]:
        return ctypes.string_at(address) if address else None

    if name == "onready":
        return name, (s(ev.session_id), s(ev.json))
    if name == "onaudio":
        return name, (ctypes.string_at(ev.audio, ev.audio_bytes) if ev.audio and ev.audio_bytes else b"",)
    if name in ("onresponsetext", "ontranscript"):
        return name, (s(ev.text), ev.is_final)
    if name == "onfunction":
        return name, (s(ev.text), s(ev.name), s(ev.json))
    if name == "onlatency":
        return name, (ev.latency_ms,)
    if name == "onagentstate":
        return name, (ev.agent_state,)
    if name == "onclose":
        return name, (ev.code, s(ev.message))
    if name == "onerror":
        return name, (ev.status, s(ev.message))
    if name == "onmessage":
        return name, (s(ev.name), s(ev.json))
    if name == "onlog":
        return name, (ev.level, s(ev.message))
    if name == "onreconnecting":
        return name, (ev.attempt, ev.delay_ms)
    if name == "onreconnected":
        return name, (s(ev.session_id),)
    if name == "onanalyzer":
        return name, (ev.analyser,)
    if name == "onuseraudioready":
        return name, (ev.analyser, s(ev.json))
    if name == "onturn":
        return name, (s(ev.json),)
    return name, ()


class _Pump:
    """Takes one client's events from the library's queue (millis_client_next_event)
    and waits for them on its descriptor. No Python code runs on libmillis' network
    thread: the events wait in the library until a dispatcher takes them.

    Holds no reference to the Client, so that a dispatcher thread waiting here never
    keeps it alive. After close the events the library still held are kept here
    (``leftovers``), then ``_STOP``.
    """

    def __init__(self, handle, lock: "threading.RLock"):
        self.handle = handle
        self.lock = lock  # the client's: serialises native calls with their last_error
        # A duplicate, owned here: it stays valid after millis_client_destroy closes the
        # library's, so a waiter or an asyncio reader never watches a closed (or reused)
        # descriptor.
        self.fd = os.dup(lib.millis_client_event_fd(handle))
        self.event = _native.Event()
        self.event.size = ctypes.sizeof(_native.Event)
        self.leftovers: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        # Written once by close(): wakes a waiter whose descriptor close() took away.
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)

    def _take(self) -> Optional[Event]:
        with self.lock:
            if self.handle is None:
                return None
            status = lib.millis_client_next_event(self.handle, ctypes.byref(self.event), 0)
            if status != Status.OK:
                log.error("millis: millis_client_next_event: %s",
                          _native.decode(lib.millis_client_last_error(self.handle)))
                return None
            return _raw_event(self.event)

    def next(self, timeout: Optional[float]) -> Any:
        """The next raw event, waiting up to ``timeout`` seconds (None: no limit);
        None when none came in time, ``_STOP`` once the client is closed and drained."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                return self.leftovers.get_nowait()
            except queue.Empty:
                pass
            event = self._take()
            if event is not None:
                return event
            if self.handle is None:
                return _STOP
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            try:
                select.select([self.fd, self.wake_r], [], [], remaining)
            except (OSError, ValueError):
                pass  # the descriptor went with a concurrent close(): look again

    def close_native(self):
        """Keeps what the library still holds, then gives up the handle (the caller
        destroys it). Under ``lock``."""
        handle = self.handle
        while handle is not None:
            event = self._take()
            if event is None:
                break
            self.leftovers.put(event)
        self.handle = None
        self.leftovers.put(_STOP)
        try:
            os.write(self.wake_w, b"x")
        except OSError:
            pass
        return handle

    def _inherited_by_fork(self, lock: "threading.RLock") -> None:
        """In a child made by fork(): the library's queue is the parent's (the library
        refuses it here), and the wake pipe is shared with the parent's waiters. Nothing
        is taken any more; a new pipe wakes only this process's waiters."""
        self.lock = lock
        self.handle = None
        self.leftovers = queue.SimpleQueue()
        self.leftovers.put(_STOP)
        for fd in (self.wake_r, self.wake_w):
            try:
                os.close(fd)  # this process's copies: the parent's stay open
            except OSError:
                pass
        self.wake_r, self.wake_w = os.pipe()
        os.write(self.wake_w, b"x")

    def release(self) -> None:
        """Closes the descriptors, once nothing will wait on them again: after
        close_native nothing selects (the leftovers end with _STOP), and a waiter still
        inside select wakes, since the wake pipe's closed write end reads as end of file."""
        for name in ("fd", "wake_w", "wake_r"):
            fd = getattr(self, name, -1)
            setattr(self, name, -1)
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def __del__(self) -> None:
        self.release()


def _materialize(event: Event, client: "Optional[Client]" = None) -> Event:
    """Turns a raw event from the network thread into (name, args) for handlers."""
    name, raw = event
    if name == "onanalyzer":
        return name, (Analyser._of_client(client, "agent", raw[0]),)
    if name == "onuseraudioready":
        stream = _json_or_raw(raw[1])
        return name, (Analyser._of_client(client, "user", raw[0]),
                      stream if isinstance(stream, dict) else {"raw": stream})
    if name == "onready":
        return name, (_text(raw[0]),)
    if name in ("onresponsetext", "ontranscript"):
        return name, (_text(raw[0]), {"is_final": bool(raw[1])})
    if name == "onfunction":
        return name, (_text(raw[0]), {"name": _text(raw[1]), "params": _json_or_raw(raw[2])})
    if name == "onagentstate":
        try:
            return name, (str(AgentState(raw[0])),)
        except ValueError:
            return name, (_text(lib.millis_agent_state_string(raw[0])),)
    if name == "onclose":
        return name, (int(raw[0]), _text(raw[1]))
    if name == "onerror":
        return name, (MillisError(raw[0], _text(raw[1])),)
    if name == "onmessage":
        message = _json_or_raw(raw[1])
        return name, (_text(raw[0]), message if isinstance(message, dict) else {"raw": message})
    if name == "onlog":
        try:
            level = LogLevel(raw[0])
        except ValueError:
            level = raw[0]
        return name, (level, _text(raw[1]))
    if name == "onlatency":
        return name, (float(raw[0]),)
    if name == "onreconnecting":
        return name, (int(raw[0]), int(raw[1]))
    if name == "onreconnected":
        return name, (_text(raw[0]),)
    if name == "onturn":
        turn = _json_or_raw(raw[0])
        return name, (turn if isinstance(turn, dict) else {"raw": turn},)
    return name, raw


def _thread_dispatcher(pump: _Pump, client_ref: "weakref.ref[Client]") -> None:
    while True:
        event = pump.next(None)
        if event is _STOP or event is None:
            return
        client = client_ref()
        if client is None:
            return
        try:
            client._dispatch(event, propagate=False)
        except Exception:
            log.exception("millis: dispatching %r failed", event[0])
        finally:
            del client


def _asyncio_drain(client_ref: "weakref.ref[Client]") -> None:
    client = client_ref()
    if client is not None:
        client._drain_async()


class Client:
    """One conversation at a time with a Millis voice agent.

    Args:
        public_key: the public key from the Millis playground (required, non-empty).
        endpoint: ``ws://`` or ``wss://`` URL; None keeps the library's default
            (``wss://api-west.millis.ai:8080/millis``).
        log_level: :class:`LogLevel`, an int, or a name ("debug"); library logs arrive
            as ``onlog`` events.
        audio_mode: :class:`AudioMode`, an int, or a name ("application", "device").
            DEFAULT (the library's default) picks DEVICE when the configured ALSA
            devices can be opened when the client is created, APPLICATION otherwise;
            :attr:`audio_mode` tells which. Pass APPLICATION to push audio yourself.
        frame_ms: duration of the audio frames sent to the server (5..200, default 20).
        capture_device, playback_device: ALSA PCM names for device audio ("default",
            "hw:1,0", "pulse", ...; :func:`millis.audio_devices` lists them). None
            keeps "default".
        echo_cancellation, noise_suppression, auto_gain_control: microphone processing
            of device audio (bools; all on by default). The library sets the three
            together: when any is given, those left None are on.
        audio_period_ms: the ALSA period of device audio: 5, 10 (default) or 20.
        playout_prebuffer_ms: agent audio queued before the speaker starts, 0..2000
            (default 60).
        audio_encoding, audio_sample_rate: the format of application audio, both ways
            (what :meth:`send_audio` takes and ``onaudio`` gives):
            :class:`AudioEncoding` (or "pcm16", "mulaw", "alaw") and a rate in Hz.
            PCM16 takes 8000, 16000 (default), 24000 or 48000; MULAW and ALAW take
            8000. When only one is given, the encoding defaults to PCM16 and the rate
            to 8000 for G.711, 16000 for PCM16.
        input_file: a WAV (PCM 8/16/24/32-bit or 32-bit float, any rate and channel
            count) or Ogg Opus (``.opus``, ``.ogg``) file that stands in for the
            microphone (str or os.PathLike). It is mixed to mono, resampled to 16 kHz
            and streamed from onready on; when it ends, ``oninputended`` fires once and
            silence follows in real time. The file is opened by :meth:`start`: a
            missing or undecodable file makes start raise MillisError(FILE) naming it.
            A client with an input or output file is in device audio mode (asking
            for APPLICATION as well raises MillisError(INVALID_STATE)); a side
            without a file uses its ALSA device (``capture_device`` /
            ``playback_device``; "null" discards).
        input_pacing: how ``input_file`` is streamed: :class:`FilePacing`, an int, or
            "realtime" (default: 20 ms every 20 ms, as a microphone) or "fast" (as fast
            as the connection takes it, never dropped; only for endpoints that accept
            audio faster than real time, as the devserver does). Needs ``input_file``.
        output_file: the agent's audio goes to this file instead of the speaker: 16 kHz
            mono, WAV for ``.wav``, Ogg Opus for ``.opus`` / ``.ogg``. It is written as
            a speaker would play it (silence in real time between answers, so it keeps
            the conversation's timing), created by :meth:`start` (MillisError(FILE)
            when it cannot be) and complete once ``onclose`` has been dispatched.
        recording: records every conversation of this client, from :meth:`start` to
            onclose, into this path (``.wav``: PCM16, ``.opus`` / ``.ogg``: Ogg Opus),
            16 kHz, user on the left and agent on the right, plus a JSON Lines timeline
            beside it (the same path with ``.jsonl``). Each conversation replaces the
            previous one's files; :meth:`start_recording` takes a path per
            conversation. The files are created by :meth:`start` (MillisError(FILE)).
        recording_mono: True mixes both sides of ``recording`` into one channel.
            Needs ``recording``.
        max_message_bytes: the largest message accepted from the server.
        ready_timeout_ms: how long start may take until the server's onready.
        reconnect: ``(max_attempts, initial_delay_ms, max_delay_ms)``: how a dropped
            session is resumed (``max_attempts`` 0 disables it); None keeps the
            library's default (5 attempts, 250 ms to 8 s). Reconnection is reported
            as ``onreconnecting(attempt, delay_ms)`` then ``onreconnected(session_id)``.
        send_queue_bytes: the most bytes that may wait to be written to the socket;
            audio beyond it is dropped (counted in the stats).
        ca_file: a PEM file of CA certificates to verify ``wss://`` servers with,
            instead of the system's store.
        tls_verification_disabled_insecure: DANGEROUS. True turns off verification of
            the server's certificate and host name (local experiments only; prefer
            ``ca_file``). Every such connection logs a warning.
        headers: extra headers for the WebSocket upgrade request, sent after the
            library's own in the order given: a mapping (``{"Origin":
            "https://example.com"}``) or an iterable of ``(name, value)`` pairs, where
            a name may repeat. ``Origin`` serves a key limited to a site; an
            ``Authorization`` or routing header a proxy or gateway; a ``User-Agent``
            replaces the library's ``libmillis/x.y.z``. Names are HTTP tokens (1 to 256
            bytes); values up to 8192 bytes, no control characters but tab, leading and
            trailing spaces dropped; Host, Upgrade, Connection, Content-Length,
            Transfer-Encoding and Sec-WebSocket-* are refused; at most 64 headers.
        dispatch: "thread" (default), "manual" or "asyncio"; see the package docstring.
        loop: an asyncio event loop; implies dispatch="asyncio".
        event_queue_bytes: how much the library keeps of the events not yet
            dispatched (payload bytes: audio, text, JSON), from 65536 to 2**30; default
            :data:`DEFAULT_EVENT_QUEUE_BYTES` (8 MiB, about four minutes of agent audio),
            or four times ``max_message_bytes`` when that is larger.
            Events past it are dropped, and an ``onerror`` (NO_MEMORY) stands where
            they were, counting them; ``onclose`` is never dropped.

    Raises:
        MillisError: a setting the library refused (the message says which and why),
            e.g. INVALID_ARGUMENT for an empty path, a file extension the library does
            not know (``"x.mp3"``), a pacing out of range, or a header it refuses (a
            reserved name, a CR or LF in a value, the 65th header).
        ValueError: an unknown name for an enumeration ("slow" pacing, ...), or
            ``input_pacing`` / ``recording_mono`` without their file.
        TypeError: a path that is not a str, bytes or os.PathLike; ``headers`` that are
            not a mapping or (name, value) pairs of str.
    """

    def __init__(
        self,
        public_key: str,
        endpoint: Optional[str] = None,
        *,
        log_level: Union[LogLevel, int, str, None] = None,
        audio_mode: Union[AudioMode, int, str, None] = None,
        frame_ms: Optional[int] = None,
        max_message_bytes: Optional[int] = None,
        ready_timeout_ms: Optional[int] = None,
        reconnect: Optional[Tuple[int, int, int]] = None,
        send_queue_bytes: Optional[int] = None,
        ca_file: Union[str, "os.PathLike[str]", None] = None,
        tls_verification_disabled_insecure: bool = False,
        headers: Union[Mapping[str, str], Iterable[Tuple[str, str]], None] = None,
        capture_device: Optional[str] = None,
        playback_device: Optional[str] = None,
        echo_cancellation: Optional[bool] = None,
        noise_suppression: Optional[bool] = None,
        auto_gain_control: Optional[bool] = None,
        audio_period_ms: Optional[int] = None,
        playout_prebuffer_ms: Optional[int] = None,
        audio_encoding: Union[AudioEncoding, int, str, None] = None,
        audio_sample_rate: Optional[int] = None,
        input_file: Union[str, "os.PathLike[str]", None] = None,
        input_pacing: Union[FilePacing, int, str, None] = None,
        output_file: Union[str, "os.PathLike[str]", None] = None,
        recording: Union[str, "os.PathLike[str]", None] = None,
        recording_mono: bool = False,
        dispatch: str = "thread",
        loop: Optional[asyncio.AbstractEventLoop] = None,
        event_queue_bytes: Optional[int] = None,
    ) -> None:
        self._handle = None
        self._closed = True  # until the native client exists; makes __del__ safe
        self._inherited = False  # a client of the parent, in a child made by fork()
        # Analyser calls pass through this gate; close() shuts it before destroying.
        self._analyser_gate = _Gate("the client of this analyser is closed (close() was called)")
        if loop is not None:
            if dispatch not in ("thread", "asyncio"):
                raise ValueError(f"loop= goes with dispatch='asyncio', not {dispatch!r}")
            dispatch = "asyncio"
        if dispatch not in ("thread", "manual", "asyncio"):
            raise ValueError(f"dispatch must be 'thread', 'manual' or 'asyncio', not {dispatch!r}")
        if dispatch == "asyncio" and loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                raise ValueError(
                    "dispatch='asyncio' needs loop=<event loop>, or must be created "
                    "inside a running event loop") from None
        if not isinstance(public_key, str):
            raise TypeError(f"public_key must be a str, not {type(public_key).__name__}")
        for what, device in (("capture_device", capture_device), ("playback_device", playback_device)):
            if device is not None and not isinstance(device, str):
                raise TypeError(f"{what} must be a str, not {type(device).__name__}")
        if input_pacing is not None and input_file is None:
            raise ValueError("input_pacing goes with input_file=<path>")
        if recording_mono and recording is None:
            raise ValueError("recording_mono goes with recording=<path>")
        header_pairs = [] if headers is None else _headers(headers)
        pacing = (int(FilePacing.REALTIME) if input_pacing is None
                  else _level(input_pacing, FilePacing, "input_pacing"))
        paths = {what: None if value is None else _path(value, what)
                 for what, value in (("input_file", input_file), ("output_file", output_file),
                                     ("recording", recording))}

        self._dispatch_mode = dispatch
        self._loop = loop
        self._lock = threading.RLock()  # serialises native calls with their last_error
        self._handlers: Dict[str, List[Callable[..., Any]]] = {name: [] for name in EVENTS}
        self._handlers_lock = threading.Lock()
        self._cv = threading.Condition()
        self._starts = 0
        self._closes = 0
        self._aqueues: List[asyncio.Queue] = []
        # asyncio: what takes events from the library (aevents iterators, close waiters);
        # with handlers, the loop's reader on the event descriptor runs while any is set.
        self._consumers = 0
        self._reader_on = False
        self._aclose_waiters: List[asyncio.Future] = []
        self._thread: Optional[threading.Thread] = None
        #: The onready payload of the current/last session (parsed JSON), or None.
        self.ready_payload: Any = None
        #: (code, reason) of the last onclose dispatched, or None.
        self.last_close: Optional[Tuple[int, str]] = None

        cfg = lib.millis_config_create()
        if not cfg:
            raise MillisError(Status.NO_MEMORY, "millis_config_create returned NULL")
        try:
            def check(status: int) -> None:
                if status != Status.OK:
                    raise MillisError(status, _native.decode(lib.millis_config_last_error(cfg)))

            check(lib.millis_config_set_public_key(cfg, public_key.encode("utf-8")))
            if event_queue_bytes is None:
                # Room for a few of the largest messages accepted (their audio may grow
                # threefold in the application format), beside the default.
                largest = max_message_bytes if isinstance(max_message_bytes, int) and max_message_bytes > 0 else 0
                event_queue_bytes = min(1 << 30, max(DEFAULT_EVENT_QUEUE_BYTES, 4 * largest))
            check(lib.millis_config_set_event_queue(cfg, _uint(event_queue_bytes, "event_queue_bytes")))
            if endpoint is not None:
                check(lib.millis_config_set_endpoint(cfg, endpoint.encode("utf-8")))
            if log_level is not None:
                check(lib.millis_config_set_log_level(cfg, _level(log_level, LogLevel, "log_level")))
            if audio_mode is not None:
                check(lib.millis_config_set_audio_mode(cfg, _level(audio_mode, AudioMode, "audio_mode")))
            if frame_ms is not None:
                check(lib.millis_config_set_frame_ms(cfg, int(frame_ms)))
            if max_message_bytes is not None:
                check(lib.millis_config_set_max_message_bytes(cfg, int(max_message_bytes)))
            if ready_timeout_ms is not None:
                check(lib.millis_config_set_ready_timeout_ms(cfg, int(ready_timeout_ms)))
            if reconnect is not None:
                try:
                    attempts, initial_ms, max_ms = (int(v) for v in reconnect)
                except (TypeError, ValueError):
                    raise ValueError("reconnect must be (max_attempts, initial_delay_ms, "
                                     f"max_delay_ms), not {reconnect!r}") from None
                if min(attempts, initial_ms, max_ms) < 0:
                    raise ValueError(f"reconnect values must not be negative: {reconnect!r}")
                check(lib.millis_config_set_reconnect(cfg, attempts, initial_ms, max_ms))
            if send_queue_bytes is not None:
                check(lib.millis_config_set_send_queue_bytes(cfg, int(send_queue_bytes)))
            if ca_file is not None:
                check(lib.millis_config_set_ca_file(cfg, os.fsencode(ca_file)))
            if tls_verification_disabled_insecure:
                check(lib.millis_config_set_tls_verification_disabled_insecure(cfg, 1))
            for name, value in header_pairs:
                check(lib.millis_config_add_header(cfg, name, value))
            if capture_device is not None or playback_device is not None:
                check(lib.millis_config_set_audio_devices(
                    cfg, None if capture_device is None else capture_device.encode("utf-8"),
                    None if playback_device is None else playback_device.encode("utf-8")))
            processing = (echo_cancellation, noise_suppression, auto_gain_control)
            if any(p is not None for p in processing):
                check(lib.millis_config_set_audio_processing(
                    cfg, *(1 if p is None or p else 0 for p in processing)))
            if audio_period_ms is not None:
                check(lib.millis_config_set_audio_period_ms(cfg, _uint(audio_period_ms, "audio_period_ms")))
            if playout_prebuffer_ms is not None:
                check(lib.millis_config_set_playout_prebuffer_ms(
                    cfg, _uint(playout_prebuffer_ms, "playout_prebuffer_ms")))
            if audio_encoding is not None or audio_sample_rate is not None:
                encoding = (int(AudioEncoding.PCM16) if audio_encoding is None
                            else _level(audio_encoding, AudioEncoding, "audio_encoding"))
                if audio_sample_rate is None:
                    rate = 16000 if encoding == AudioEncoding.PCM16 else 8000
                else:
                    rate = _uint(audio_sample_rate, "audio_sample_rate")
                check(lib.millis_config_set_application_audio_format(cfg, encoding, rate))
            if paths["input_file"] is not None:
                check(lib.millis_config_set_audio_input_file(cfg, paths["input_file"], pacing))
            if paths["output_file"] is not None:
                check(lib.millis_config_set_audio_output_file(cfg, paths["output_file"]))
            if paths["recording"] is not None:
                check(lib.millis_config_set_recording(cfg, paths["recording"],
                                                      _record_flags(recording_mono)))
            err = ctypes.c_int(Status.OK)
            handle = lib.millis_client_create(cfg, ctypes.byref(err))
            if not handle:
                raise MillisError(err.value or Status.INTERNAL,
                                  _native.decode(lib.millis_config_last_error(cfg)))
        finally:
            lib.millis_config_destroy(cfg)

        self._handle = handle
        self._closed = False
        self._pump = _Pump(handle, self._lock)
        _live_clients.add(self)
        if dispatch == "thread":
            self._thread = threading.Thread(
                target=_thread_dispatcher, args=(self._pump, weakref.ref(self)),
                name="millis-dispatch", daemon=True)
            self._thread.start()

    # --- event handlers -------------------------------------------------------------

    def on(self, event: str, fn: Optional[Callable[..., Any]] = None):
        """Registers ``fn`` for ``event`` (a web SDK event name) and returns it.

        Usable as a decorator: ``@client.on("ontranscript")``. Handlers of one event run
        in registration order, never on libmillis' network thread.
        """
        if event not in self._handlers:
            raise ValueError(f"unknown event {event!r}; events are: {', '.join(EVENTS)}")
        if fn is None:
            return lambda f: self.on(event, f)
        if not callable(fn):
            raise TypeError("handler must be callable")
        with self._handlers_lock:
            self._handlers[event].append(fn)
        self._consumers_changed()
        return fn

    def off(self, event: str, fn: Optional[Callable[..., Any]] = None) -> None:
        """Removes ``fn`` from ``event``, or every handler of ``event`` when fn is None."""
        if event not in self._handlers:
            raise ValueError(f"unknown event {event!r}; events are: {', '.join(EVENTS)}")
        with self._handlers_lock:
            if fn is None:
                self._handlers[event].clear()
            else:
                try:
                    self._handlers[event].remove(fn)
                except ValueError:
                    pass
        self._consumers_changed()

    # --- dispatch ---------------------------------------------------------------------

    def _dispatch(self, event: Event, propagate: bool) -> Event:
        if event[0] == "onready":
            self.ready_payload = _json_or_raw(event[1][1])
        name, args = _materialize(event, self)
        if name == "onclose":
            self.last_close = (args[0], args[1])
        with self._handlers_lock:
            handlers = list(self._handlers.get(name, ()))
        try:
            for handler in handlers:
                if propagate:
                    handler(*args)
                else:
                    try:
                        handler(*args)
                    except Exception:
                        log.exception("millis: the %s handler %r raised", name, handler)
        finally:
            if name == "onclose":
                # wait_closed() returns once the onclose handlers have run.
                with self._cv:
                    self._closes += 1
                    self._cv.notify_all()
                self._wake_aclose_waiters()
        return name, args

    # --- asyncio: the loop's reader on the event descriptor ----------------------------

    def _consumers_changed(self) -> None:
        """Re-decides, on the loop's thread, whether the loop reads the descriptor."""
        if self._dispatch_mode != "asyncio" or self._loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._update_reader()
        else:
            try:
                self._loop.call_soon_threadsafe(self._update_reader)
            except RuntimeError:
                pass  # the loop is closed

    def _update_reader(self) -> None:
        # Events are taken only while someone consumes them; until then they wait in the
        # library's queue, so an aevents() started late still sees onopen and onready.
        with self._handlers_lock:
            has_handlers = any(self._handlers.values())
        want = not self._closed and (self._consumers > 0 or has_handlers)
        if want and not self._reader_on:
            self._loop.add_reader(self._pump.fd, self._drain_async)
            self._reader_on = True
            self._drain_async()  # what came before the reader
        elif not want and self._reader_on:
            self._loop.remove_reader(self._pump.fd)
            self._reader_on = False

    def _drain_async(self) -> None:
        while True:
            event = self._pump.next(0)
            if event is None:
                return
            if event is _STOP:
                for q in list(self._aqueues):
                    q.put_nowait(_STOP)
                self._wake_aclose_waiters()
                return
            name, args = self._dispatch(event, propagate=False)
            for q in list(self._aqueues):
                q.put_nowait((name, args))

    def _wake_aclose_waiters(self) -> None:
        waiters, self._aclose_waiters = self._aclose_waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)

    def _require(self, mode: str, what: str) -> None:
        if self._dispatch_mode != mode:
            raise RuntimeError(f"{what} needs dispatch={mode!r}; this client uses "
                               f"dispatch={self._dispatch_mode!r}")

    def poll(self, timeout: Optional[float] = None) -> int:
        """Manual dispatch: runs the pending handlers on this thread.

        Waits up to ``timeout`` seconds for the first event (None: until one arrives or
        the client is closed; 0: not at all), then runs every event already queued.
        Returns how many events were dispatched. A handler's exception propagates
        (the event counts as consumed).
        """
        self._require("manual", "poll()")
        count = 0
        while True:
            event = self._pump.next(timeout if count == 0 else 0)
            if event is None or event is _STOP:
                return count
            count += 1
            self._dispatch(event, propagate=True)

    def events(self, timeout: Optional[float] = None) -> Iterator[Tuple[str, tuple]]:
        """Manual dispatch as a generator of ``(event_name, args)`` tuples.

        Each event's handlers (if any) run first, on this thread; then it is yielded.
        The generator ends after yielding ``onclose``, when no event arrives within
        ``timeout`` seconds (None: wait forever), or when the client is closed.
        """
        self._require("manual", "events()")
        while True:
            event = self._pump.next(timeout)
            if event is None or event is _STOP:
                return
            name, args = self._dispatch(event, propagate=True)
            yield name, args
            if name == "onclose":
                return

    async def aevents(self, timeout: Optional[float] = None):
        """asyncio dispatch: ``async for name, args in client.aevents(): ...``.

        Yields every event not yet dispatched, from the client's creation on (the
        handlers have run): events wait in the library's queue until something takes
        them, so nothing is lost when iteration starts after :meth:`start`. Ends after
        ``onclose``, when no event arrives within ``timeout`` seconds, or when the
        client is closed. The loop reads the library's event descriptor (add_reader):
        no thread, no polling.
        """
        self._require("asyncio", "aevents()")
        q: asyncio.Queue = asyncio.Queue()
        self._aqueues.append(q)
        self._consumers += 1
        self._update_reader()
        try:
            while not self._closed or not q.empty():
                try:
                    if timeout is None:
                        item = await q.get()
                    else:
                        item = await asyncio.wait_for(q.get(), timeout)
                except asyncio.TimeoutError:
                    return
                if item is _STOP:
                    return
                yield item
                if item[0] == "onclose":
                    return
        finally:
            try:
                self._aqueues.remove(q)
            except ValueError:
                pass
            self._consumers -= 1
            self._consumers_changed()

    def wait_closed(self, timeout: Optional[float] = None) -> bool:
        """Waits until every started conversation's onclose has been dispatched.

        Returns True then (also when nothing was started, or the client was closed),
        False on timeout. In manual mode it dispatches events itself while waiting.
        In asyncio mode, from the loop's thread, use ``await client.aclosed()``.
        """
        deadline = None if timeout is None else time.monotonic() + timeout

        def done() -> bool:
            return self._closed or self._closes >= self._starts

        if self._dispatch_mode == "manual":
            while not done():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self.poll(0.05 if remaining is None else min(remaining, 0.05))
            return True
        if self._thread is not None and threading.current_thread() is self._thread:
            raise RuntimeError("wait_closed() from inside a handler would wait forever")
        if self._loop is not None and self._loop.is_running():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is self._loop:
                raise RuntimeError("wait_closed() would block the event loop: await aclosed()")
        if self._dispatch_mode == "asyncio":
            self._consumers += 1  # the loop takes events while this thread waits
            self._consumers_changed()
        try:
            with self._cv:
                return self._cv.wait_for(done, timeout)
        finally:
            if self._dispatch_mode == "asyncio":
                self._consumers -= 1
                self._consumers_changed()

    async def aclosed(self, timeout: Optional[float] = None) -> bool:
        """asyncio counterpart of :meth:`wait_closed`: in asyncio mode the loop takes
        events while it waits."""
        def done() -> bool:
            return self._closed or self._closes >= self._starts

        if self._dispatch_mode != "asyncio":
            deadline = None if timeout is None else time.monotonic() + timeout
            while not done():
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                await asyncio.sleep(0.02)
            return True
        deadline = None if timeout is None else self._loop.time() + timeout
        self._consumers += 1
        self._update_reader()
        try:
            while not done():
                future = self._loop.create_future()
                self._aclose_waiters.append(future)
                remaining = None if deadline is None else deadline - self._loop.time()
                if remaining is not None and remaining <= 0:
                    return False
                try:
                    await asyncio.wait_for(future, remaining)
                except asyncio.TimeoutError:
                    return done()
            return True
        finally:
            self._consumers -= 1
            self._consumers_changed()

    def _inherited_by_fork(self) -> None:
        """In a child made by fork(): this client is the parent's (see
        _after_fork_in_child). Its locks, queue and analyser gate are replaced (their
        holders and waiters were the parent's threads); its dispatcher thread and
        asyncio loop stay the parent's. It counts as closed here, so that nothing waits
        for events that only the parent receives; its native calls raise the library's
        MillisError(INVALID_STATE), and close() forgets it without touching the parent's
        connection."""
        self._lock = threading.RLock()
        self._handlers_lock = threading.Lock()
        self._cv = threading.Condition()
        self._pump._inherited_by_fork(self._lock)
        self._aqueues = []
        self._aclose_waiters = []
        self._consumers = 0
        self._reader_on = False
        self._thread = None
        self._loop = None
        self._inherited = True
        self._closed = True
        self._analyser_gate._reset_after_fork(
            "this client belongs to the process that created it (this is a child made by "
            "fork()): create a new Client here")

    def _refused(self, handle, fallback: str) -> MillisError:
        """The error for a native getter that returned NULL: the library's message
        for a client of the parent process, ``fallback`` otherwise."""
        if self._inherited:
            return MillisError(Status.INVALID_STATE, _native.decode(lib.millis_client_last_error(handle)))
        return MillisError(Status.INTERNAL, fallback)

    # --- native calls -------------------------------------------------------------------

    def _raise_closed(self):
        raise MillisError(Status.INVALID_STATE, "the client is closed (close() was called)")

    def _call(self, fn, *args) -> int:
        """Calls fn(handle, *args); raises MillisError for any status but OK/allowed."""
        with self._lock:
            if self._handle is None:
                self._raise_closed()
            status = fn(self._handle, *args)
            if status != Status.OK:
                raise MillisError(status, _native.decode(lib.millis_client_last_error(self._handle)))
            return status

    def start(
        self,
        agent_id: Optional[str] = None,
        agent_config: Optional[Dict[str, Any]] = None,
        metadata: Any = None,
        include_metadata_in_prompt: Optional[bool] = None,
        session_id: Optional[str] = None,
    ) -> None:
        """Starts a conversation, as the web SDK's ``client.start(options)``.

        Builds ``{"agent": {"agent_id", "agent_config"}, "metadata",
        "include_metadata_in_prompt", "session_continuation": {"session_id"}}``, leaving
        out what is None; the values are passed to the server untouched. Progress
        arrives as events (onopen, onready, or onerror + onclose).
        """
        agent: Dict[str, Any] = {}
        if agent_id is not None:
            agent["agent_id"] = agent_id
        if agent_config is not None:
            agent["agent_config"] = agent_config
        options: Dict[str, Any] = {"agent": agent}
        if metadata is not None:
            options["metadata"] = metadata
        if include_metadata_in_prompt is not None:
            options["include_metadata_in_prompt"] = include_metadata_in_prompt
        if session_id is not None:
            options["session_continuation"] = {"session_id": session_id}
        self.start_raw(json.dumps(options, ensure_ascii=False))

    def start_raw(self, options_json: str) -> None:
        """Starts a conversation with the options given as a JSON text (millis_client_start)."""
        if not isinstance(options_json, str):
            raise TypeError("options_json must be a str (use start() for keyword options)")
        with self._cv:
            self._starts += 1
        try:
            self._call(lib.millis_client_start, options_json.encode("utf-8"))
        except BaseException:
            with self._cv:
                self._starts -= 1
                self._cv.notify_all()
            raise

    def stop(self) -> None:
        """Ends the conversation (close 1000); onclose follows. Harmless when idle."""
        self._call(lib.millis_client_stop)

    def start_recording(self, path: Union[str, "os.PathLike[str]"], mono: bool = False) -> None:
        """Starts recording now (millis_client_start_recording), during a conversation
        or before one (the recording then begins with the next :meth:`start`).

        ``path`` ends in ``.wav`` (PCM16) or ``.opus`` / ``.ogg`` (Ogg Opus): 16 kHz,
        the user's audio as sent on the left and the agent's as played on the right,
        or both mixed into one channel when ``mono`` is True. A JSON Lines timeline is
        written beside it (``path`` with ``.jsonl``): a ``recording`` header line,
        every event and control message with its time ``t`` on the audio's clock, a
        ``turn`` line per agent turn, and an ``end`` line. The recording ends with the
        conversation (the files are complete once ``onclose`` has been dispatched) or
        with :meth:`stop_recording`.

        Raises:
            MillisError: INVALID_ARGUMENT for an empty path or another extension;
                INVALID_STATE when a recording is already under way; FILE when a file
                cannot be created (the message names it and says why).
            TypeError: a path that is not a str, bytes or os.PathLike.
        """
        self._call(lib.millis_client_start_recording, _path(path, "path"), _record_flags(mono))

    def stop_recording(self) -> None:
        """Ends the recording under way and returns once both files are complete (the
        encoder drained, headers written). Without a recording it does nothing, so it
        may be called after onclose to be sure the files of a conversation are
        complete. It may be called from a handler."""
        self._call(lib.millis_client_stop_recording)

    def mute(self) -> None:
        """Sends silence instead of the microphone audio (frames keep flowing)."""
        self._call(lib.millis_client_mute)

    def unmute(self) -> None:
        self._call(lib.millis_client_unmute)

    @property
    def muted(self) -> bool:
        with self._lock:
            return self._handle is not None and bool(lib.millis_client_is_muted(self._handle))

    def send_audio(self, pcm) -> bool:
        """Hands microphone audio over (application audio mode): any bytes-like object in
        the client's application format, PCM16 LE 16 kHz mono (even length) unless
        ``audio_encoding`` / ``audio_sample_rate`` said otherwise.

        Audio is accepted from the moment the WebSocket is open and ``initiate`` sent
        (``onopen``), before the server's ``onready``, as the web client streams it.
        Returns True when accepted, False while no WebSocket is open: before ``onopen``
        or during a reconnection (MILLIS_ERR_NOT_READY: the audio is dropped and
        counted, never queued). Raises MillisError otherwise (INVALID_STATE in device
        audio mode, where the library records the microphone).
        """
        keep = None
        if isinstance(pcm, bytes):
            ptr, size = pcm, len(pcm)
        else:
            view = memoryview(pcm)
            size = view.nbytes
            if view.readonly or not view.c_contiguous:
                ptr = keep = view.tobytes()
            else:
                keep = (ctypes.c_char * size).from_buffer(view.cast("B")) if size else None
                ptr = keep
        if size == 0:
            ptr = None
        with self._lock:
            if self._handle is None:
                self._raise_closed()
            status = lib.millis_client_send_audio(self._handle, ptr, size)
            if status == Status.OK:
                return True
            if status == Status.NOT_READY:
                return False
            raise MillisError(status, _native.decode(lib.millis_client_last_error(self._handle)))

    def send_json(self, message: Union[str, bytes, Dict[str, Any]]) -> None:
        """Sends a raw control message: a JSON text, or an object serialised with json."""
        if isinstance(message, bytes):
            data = message
        elif isinstance(message, str):
            data = message.encode("utf-8")
        else:
            data = json.dumps(message, ensure_ascii=False).encode("utf-8")
        self._call(lib.millis_client_send_json, data)

    @property
    def session_id(self) -> Optional[str]:
        """The session id from onready, or None."""
        with self._lock:
            if self._handle is None:
                return None
            return _native.take_string(lib.millis_client_session_id(self._handle))

    @property
    def connection_state(self) -> str:
        """"idle", "connecting", "open", "ready", "closing" or "reconnecting"."""
        with self._lock:
            state = lib.millis_client_connection_state(self._handle) if self._handle else 0
        return _native.decode(lib.millis_connection_state_string(state))

    @property
    def agent_state(self) -> str:
        """"idle", "prepare_answer", "answer" or "pause"."""
        with self._lock:
            state = lib.millis_client_agent_state(self._handle) if self._handle else 0
        return _native.decode(lib.millis_agent_state_string(state))

    @property
    def audio_mode(self) -> AudioMode:
        """The audio mode in force: APPLICATION or DEVICE (DEFAULT is resolved when the
        client is created); AudioMode.DEFAULT once the client is closed."""
        with self._lock:
            mode = lib.millis_client_audio_mode(self._handle) if self._handle else 0
        try:
            return AudioMode(mode)
        except ValueError:
            return mode

    def _analyser(self, getter, kind: str) -> Analyser:
        with self._lock:
            if self._handle is None:
                self._raise_closed()
            ptr = getter(self._handle)
            if not ptr:
                raise self._refused(self._handle, f"millis_client_{kind}_analyser returned NULL")
        return Analyser._of_client(self, kind, ptr)

    @property
    def agent_analyser(self) -> Analyser:
        """The analyser of the agent's audio (as played; in application mode as received).

        It belongs to the native client: the returned :class:`Analyser` keeps this
        Client alive, and :meth:`close` invalidates it (its calls then raise
        MillisError(INVALID_STATE)). Every access returns an equal wrapper of the same
        native analyser; settings (fft_size, ...) are the analyser's, shared by all.
        """
        return self._analyser(lib.millis_client_agent_analyser, "agent")

    @property
    def user_analyser(self) -> Analyser:
        """The analyser of the user's audio (the processed microphone; in application
        mode as sent). Same ownership as :attr:`agent_analyser`."""
        return self._analyser(lib.millis_client_user_analyser, "user")

    def stats(self) -> Dict[str, Any]:
        """The client's counters (millis_client_stats_json) as a dict: the network
        counters, "audio_mode", and the device audio counters (capture/playback
        periods, overruns and underruns, playout queue, clears, echo_erle_db)."""
        with self._lock:
            if self._handle is None:
                self._raise_closed()
            text = _native.take_string(lib.millis_client_stats_json(self._handle))
            if text is None:
                raise self._refused(self._handle, "millis_client_stats_json returned NULL")
        return json.loads(text)

    @property
    def last_error(self) -> str:
        """millis_client_last_error: the message of the last failing call ("" if none)."""
        with self._lock:
            if self._handle is None:
                return ""
            return _native.decode(lib.millis_client_last_error(self._handle))

    @property
    def closed(self) -> bool:
        """True once close() was called."""
        return self._closed

    @property
    def native_thread_ids(self) -> frozenset:
        """Idents of the threads on which the binding ran Python code for libmillis:
        none, since events come through the library's queue (kept for compatibility)."""
        return frozenset()

    # --- life cycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Destroys the native client (millis_client_destroy). Idempotent.

        An open conversation is closed without waiting and no onclose follows. Events
        already received are still dispatched in thread mode before close() returns
        (unless called from a handler); in manual and asyncio mode they stay readable
        through poll()/events() until drained. The client's analysers are invalidated
        (calls in progress on other threads finish first).

        A recording under way is finished first (:meth:`stop_recording`), so that its
        files are complete when close() returns. An ``output_file`` is complete once
        ``onclose`` has been dispatched: to be sure of it, :meth:`stop` and
        :meth:`wait_closed` before closing.
        """
        with self._lock:
            if self._closed and self._handle is None:
                return
            self._closed = True
            handle, self._handle = self._handle, None
            self._analyser_gate.close()
            if handle:
                # What the library still holds stays readable here (leftovers).
                self._pump.close_native()
                # millis_client_destroy finishes a recording's files on a thread of its
                # own, after it returns: a process that exits right away would leave
                # them truncated. stop_recording returns once they are complete.
                lib.millis_client_stop_recording(handle)
                lib.millis_client_destroy(handle)
        with self._cv:
            self._cv.notify_all()
        if self._dispatch_mode == "asyncio" and self._loop is not None:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is self._loop:
                self._finish_close_on_loop()
            else:
                try:
                    self._loop.call_soon_threadsafe(self._finish_close_on_loop)
                except RuntimeError:  # the loop is closed: no reader can be left on it
                    self._pump.release()
            return
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self._pump.release()

    def _finish_close_on_loop(self) -> None:
        # The reader goes before its descriptor; the leftovers still reach aevents().
        self._update_reader()
        self._pump.release()
        self._drain_async()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if not getattr(self, "_closed", True) or getattr(self, "_handle", None):
                self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        if self._closed:
            return "<millis.Client closed>"
        return f"<millis.Client {self.connection_state} dispatch={self._dispatch_mode}>"


def audio_devices() -> Dict[str, Any]:
    """The PCMs ALSA knows (millis_audio_devices_json), for a device picker:
    ``{"capture": [{"name", "description"}, ...], "playback": [...]}``; the names go to
    ``Client(capture_device=..., playback_device=...)``.

    Raises:
        MillisError: AUDIO_DEVICE when ALSA cannot list its devices.
    """
    text = _native.take_string(lib.millis_audio_devices_json())
    if text is None:
        raise MillisError(Status.AUDIO_DEVICE, "ALSA could not list its devices")
    return json.loads(text)
