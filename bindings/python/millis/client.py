"""The thread-based client over libmillis (millis.aio holds the asyncio one)."""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import inspect
import json
import logging
import os
import queue
import select
import sys
import threading
import time
import weakref
from typing import (Any, AsyncIterator, Callable, Dict, Iterator, List, Mapping,
                    NoReturn, Optional, Tuple, Type, TypeVar, Union, overload)

from . import _native, events
from ._native import lib
from .config import Config, PathLike, merged
from .events import EVENTS, Close, Event, Log, Ready, RawEvent
from .analyser import Analyser, _Gate
from .analyser import _after_fork_in_child as _analysers_after_fork_in_child
from .enums import (
    AgentState,
    AudioEncoding,
    ConnectionState,
    AudioMode,
    EchoCanceller,
    FilePacing,
    LogLevel,
    MillisError,
    RecordFlags,
    Status,
)

__all__ = ["Client", "EVENTS", "audio_devices", "audio_test", "DEFAULT_EVENT_QUEUE_BYTES"]

# No NullHandler: as asyncio's, this logger's warnings and errors (a handler that
# raised, a connection that failed) reach stderr through logging's last resort when the
# application configures no logging; debug and info lines only when it asks for them.
log = logging.getLogger("millis")

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


def _create_config() -> Any:
    cfg = lib.millis_config_create()
    if not cfg:
        raise MillisError(Status.NO_MEMORY, "millis_config_create returned NULL")
    return cfg


def _config_checker(cfg: Any) -> Callable[[int], None]:
    """A status of a setter of ``cfg`` -> MillisError with the config's message."""
    def check(status: int) -> None:
        if status != Status.OK:
            raise MillisError(status, _native.decode(lib.millis_config_last_error(cfg)))
    return check


def _set_audio_devices(cfg: Any, capture: Optional[str], playback: Optional[str]) -> int:
    return int(lib.millis_config_set_audio_devices(cfg, None if capture is None else capture.encode("utf-8"),
                                                   None if playback is None else playback.encode("utf-8")))


def _level(value: Any, enum: Any, what: str) -> int:
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


class _Pump:
    """Takes one client's events from the library's queue (millis_client_next_event)
    and waits for them on its descriptor. No Python code runs on libmillis' network
    thread: the events wait in the library until a dispatcher takes them.

    Holds no reference to the Client, so that a dispatcher thread waiting here never
    keeps it alive. After close the events the library still held are kept here
    (``leftovers``), then ``_STOP``.
    """

    def __init__(self, handle: Any, lock: "threading.RLock") -> None:
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

    def _take(self) -> Optional[RawEvent]:
        with self.lock:
            if self.handle is None:
                return None
            status = lib.millis_client_next_event(self.handle, ctypes.byref(self.event), 0)
            if status != Status.OK:
                log.error("millis: millis_client_next_event: %s",
                          _native.decode(lib.millis_client_last_error(self.handle)))
                return None
            return events.copy_native(self.event)

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

    def close_native(self) -> Any:
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
            log.exception("millis: dispatching event type %r failed", event[0])
        finally:
            del client


_F = TypeVar("_F", bound=Callable[..., Any])


def _settle(future: "asyncio.Future[None]") -> None:
    if not future.done():
        future.set_result(None)


def _is_async(fn: Any) -> bool:
    """A coroutine function, or an object whose __call__ is one."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None))


def _python_log_level(level: int) -> int:
    """The logging level of a millis_log_level."""
    return {int(LogLevel.ERROR): logging.ERROR, int(LogLevel.WARN): logging.WARNING,
            int(LogLevel.INFO): logging.INFO}.get(int(level), logging.DEBUG)


def _library_log_level_for(logger: logging.Logger) -> Optional[int]:
    """The library level that lets through what ``logger`` shows, when it differs from
    the library's default (WARN): DEBUG/INFO for a verbose logger, ERROR for a quiet one."""
    level = logger.getEffectiveLevel()
    if level <= logging.DEBUG:
        return int(LogLevel.DEBUG)
    if level <= logging.INFO:
        return int(LogLevel.INFO)
    if level <= logging.WARNING:
        return None
    return int(LogLevel.ERROR)


def _create_native(public_key: str, endpoint: Optional[str], c: Config) -> Any:
    """Makes the native client of a Config (millis_config_* then millis_client_create).
    Every setting is parsed here and nowhere else."""
    if not isinstance(public_key, str):
        raise TypeError(f"public_key must be a str, not {type(public_key).__name__}")
    if endpoint is not None and not isinstance(endpoint, str):
        raise TypeError(f"endpoint must be a str, not {type(endpoint).__name__}")
    for what, device in (("capture_device", c.capture_device), ("playback_device", c.playback_device)):
        if device is not None and not isinstance(device, str):
            raise TypeError(f"{what} must be a str, not {type(device).__name__}")
    if c.input_pacing is not None and c.input_file is None:
        raise ValueError("input_pacing goes with input_file=<path>")
    if c.recording_mono and c.recording is None:
        raise ValueError("recording_mono goes with recording=<path>")
    header_pairs = [] if c.headers is None else _headers(c.headers)
    pacing = (int(FilePacing.REALTIME) if c.input_pacing is None
              else _level(c.input_pacing, FilePacing, "input_pacing"))
    paths = {what: None if value is None else _path(value, what)
             for what, value in (("input_file", c.input_file), ("output_file", c.output_file),
                                 ("recording", c.recording))}
    log_level = c.log_level
    if log_level is None and c.python_logging is not False:
        log_level = _library_log_level_for(log)

    cfg = _create_config()
    try:
        check = _config_checker(cfg)
        check(lib.millis_config_set_public_key(cfg, public_key.encode("utf-8")))
        check(lib.millis_config_set_event_queue(cfg, _event_queue_bytes(c)))
        if endpoint is not None:
            check(lib.millis_config_set_endpoint(cfg, endpoint.encode("utf-8")))
        if log_level is not None:
            check(lib.millis_config_set_log_level(cfg, _level(log_level, LogLevel, "log_level")))
        if c.audio_mode is not None:
            check(lib.millis_config_set_audio_mode(cfg, _level(c.audio_mode, AudioMode, "audio_mode")))
        if c.frame_ms is not None:
            check(lib.millis_config_set_frame_ms(cfg, _uint(c.frame_ms, "frame_ms")))
        if c.max_message_bytes is not None:
            check(lib.millis_config_set_max_message_bytes(cfg, int(c.max_message_bytes)))
        if c.ready_timeout_ms is not None:
            check(lib.millis_config_set_ready_timeout_ms(cfg, _uint(c.ready_timeout_ms, "ready_timeout_ms")))
        if c.reconnect is not None:
            try:
                attempts, initial_ms, max_ms = (int(v) for v in c.reconnect)
            except (TypeError, ValueError):
                raise ValueError("reconnect must be (max_attempts, initial_delay_ms, "
                                 f"max_delay_ms), not {c.reconnect!r}") from None
            if min(attempts, initial_ms, max_ms) < 0:
                raise ValueError(f"reconnect values must not be negative: {c.reconnect!r}")
            check(lib.millis_config_set_reconnect(cfg, attempts, initial_ms, max_ms))
        if c.send_queue_bytes is not None:
            check(lib.millis_config_set_send_queue_bytes(cfg, int(c.send_queue_bytes)))
        if c.ca_file is not None:
            check(lib.millis_config_set_ca_file(cfg, _path(c.ca_file, "ca_file")))
        if c.tls_verification_disabled_insecure:
            check(lib.millis_config_set_tls_verification_disabled_insecure(cfg, 1))
        for name, value in header_pairs:
            check(lib.millis_config_add_header(cfg, name, value))
        if c.capture_device is not None or c.playback_device is not None:
            check(_set_audio_devices(cfg, c.capture_device, c.playback_device))
        processing = (c.echo_cancellation, c.noise_suppression, c.auto_gain_control)
        if any(p is not None for p in processing):
            check(lib.millis_config_set_audio_processing(
                cfg, *(1 if p is None or p else 0 for p in processing)))
        if c.echo_canceller is not None:
            check(lib.millis_config_set_echo_canceller(
                cfg, _level(c.echo_canceller, EchoCanceller, "echo_canceller")))
        if c.audio_period_ms is not None:
            check(lib.millis_config_set_audio_period_ms(cfg, _uint(c.audio_period_ms, "audio_period_ms")))
        if c.playout_prebuffer_ms is not None:
            check(lib.millis_config_set_playout_prebuffer_ms(
                cfg, _uint(c.playout_prebuffer_ms, "playout_prebuffer_ms")))
        if c.audio_encoding is not None or c.audio_sample_rate is not None:
            encoding = _application_encoding(c)
            if c.audio_sample_rate is None:
                rate = 16000 if encoding == AudioEncoding.PCM16 else 8000
            else:
                rate = _uint(c.audio_sample_rate, "audio_sample_rate")
            check(lib.millis_config_set_application_audio_format(cfg, int(encoding), rate))
        if paths["input_file"] is not None:
            check(lib.millis_config_set_audio_input_file(cfg, paths["input_file"], pacing))
        if paths["output_file"] is not None:
            check(lib.millis_config_set_audio_output_file(cfg, paths["output_file"]))
        if paths["recording"] is not None:
            check(lib.millis_config_set_recording(cfg, paths["recording"],
                                                  _record_flags(bool(c.recording_mono))))
        err = ctypes.c_int(Status.OK)
        handle = lib.millis_client_create(cfg, ctypes.byref(err))
        if not handle:
            raise MillisError(err.value or Status.INTERNAL,
                              _native.decode(lib.millis_config_last_error(cfg)))
        return handle
    finally:
        lib.millis_config_destroy(cfg)


def _event_queue_bytes(c: Config) -> int:
    """The library's event queue of a client: the setting, or the default with room for
    a few of the largest messages accepted (their audio may grow threefold in the
    application format)."""
    if c.event_queue_bytes is not None:
        return _uint(c.event_queue_bytes, "event_queue_bytes")
    largest = c.max_message_bytes if isinstance(c.max_message_bytes, int) and c.max_message_bytes > 0 else 0
    return min(1 << 30, max(DEFAULT_EVENT_QUEUE_BYTES, 4 * largest))


def _application_encoding(c: Config) -> int:
    """The application audio encoding as a number (the library checks its range)."""
    if c.audio_encoding is None:
        return int(AudioEncoding.PCM16)
    return _level(c.audio_encoding, AudioEncoding, "audio_encoding")


#: A registered handler: the function, and how many of the event's arguments it takes
#: (None: all of them; _WHOLE_EVENT: the typed event itself).
_Handler = Tuple[Callable[..., Any], Optional[int]]
_WHOLE_EVENT = -1


def _handler_arity(fn: Callable[..., Any], cls: Type[Any]) -> Optional[int]:
    """How many leading arguments of the event ``cls`` to give ``fn``; TypeError when it
    needs more than the event gives. None: all (or a callable whose signature Python
    cannot read, as some builtins and C functions, which is taken as it is);
    _WHOLE_EVENT: one argument where the web SDK gives one object (cls.single_object)."""
    count = len(cls.handler_params)
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    required = 0
    accepted = 0
    for p in signature.parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            accepted = -1
        elif p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            if accepted >= 0:
                accepted += 1
            if p.default is p.empty:
                required += 1
        elif p.kind is p.KEYWORD_ONLY and p.default is p.empty:
            raise TypeError(f"the {cls.event_name} handler {fn!r} needs the keyword argument "
                            f"{p.name!r}, which events never give; the event calls "
                            f"handlers as {cls.signature}")
    if required > count:
        raise TypeError(f"the {cls.event_name} handler {fn!r} needs {required} argument"
                        f"{'s' if required != 1 else ''} but the event gives {count}: "
                        f"handlers are called as {cls.signature} (a handler may take fewer)")
    if accepted == 1 and cls.single_object:
        return _WHOLE_EVENT
    if accepted < 0 or accepted >= count:
        return None
    return accepted


def start_options(
    options: Union[str, Mapping[str, Any], None] = None,
    *,
    agent: Optional[Mapping[str, Any]] = None,
    metadata: Any = None,
    include_metadata_in_prompt: Optional[bool] = None,
    session_continuation: Union[Mapping[str, Any], str, None] = None,
    agent_config: Optional[Mapping[str, Any]] = None,
    session_id: Optional[str] = None,
) -> str:
    """The options JSON of millis_client_start from :meth:`Client.start`'s arguments:
    ``{"agent": {"agent_id", "agent_config"}, "metadata", "include_metadata_in_prompt",
    "session_continuation": {"session_id"}}``, leaving out what is None."""
    keywords = {"agent": agent, "metadata": metadata,
                "include_metadata_in_prompt": include_metadata_in_prompt,
                "session_continuation": session_continuation,
                "agent_config": agent_config, "session_id": session_id}
    given = [k for k, v in keywords.items() if v is not None]
    document: Dict[str, Any]
    if isinstance(options, Mapping):
        if given:
            raise TypeError(f"start(): the options come either as one dict or as keywords, "
                            f"not both (got a dict and {', '.join(given)})")
        document = dict(options)
    else:
        if options is not None and not isinstance(options, str):
            raise TypeError("start(): the first argument is an agent id (str) or the web "
                            "SDK's options object (a dict), not "
                            f"{type(options).__name__}")
        agent_object: Dict[str, Any] = {}
        if agent is not None:
            if not isinstance(agent, Mapping):
                raise TypeError("start(): agent is a dict {\"agent_id\": ..., \"agent_config\": "
                                f"...}}, not {type(agent).__name__}")
            agent_object.update(agent)
        for key, value in (("agent_id", options), ("agent_config", agent_config)):
            if value is None:
                continue
            if key in agent_object and agent_object[key] != value:
                raise TypeError(f"start(): {key} given twice, in agent= and as {key}=")
            agent_object[key] = value
        document = {"agent": agent_object}
        if metadata is not None:
            document["metadata"] = metadata
        if include_metadata_in_prompt is not None:
            document["include_metadata_in_prompt"] = include_metadata_in_prompt
        if session_continuation is not None and session_id is not None:
            raise TypeError("start(): give session_continuation or session_id, not both")
        if isinstance(session_continuation, str):
            session_continuation = {"session_id": session_continuation}
        if session_id is not None:
            session_continuation = {"session_id": session_id}
        if session_continuation is not None:
            document["session_continuation"] = dict(session_continuation)
    try:
        return json.dumps(document, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"start(): the options must be JSON values: {exc}") from None


_FLOAT_FORMATS = frozenset("efd")
_WAV_MAGIC = (b"RIFF", b"RF64")


def _describe(pcm: Any, view: Optional[memoryview]) -> str:
    dtype = getattr(pcm, "dtype", None)
    shape = getattr(pcm, "shape", None)
    if dtype is not None and shape is not None:
        return f"a {type(pcm).__module__.split('.')[0]} {dtype} array of shape {tuple(shape)}"
    if view is not None and view.format not in ("B", "b", "c"):
        return (f"a {type(pcm).__name__} of {view.itemsize}-byte items (format "
                f"{view.format!r}, shape {view.shape})")
    return f"a {type(pcm).__name__}"


def _audio_buffer(pcm: Any, encoding: AudioEncoding) -> Tuple[Any, int, Any]:
    """``(pointer, size, keep-alive)`` of the audio given to send_audio, after checking
    that it is what the application format wants."""
    wanted = ("PCM16 mono: bytes-like, or a numpy int16 array of shape (n,) or (n, 1)"
              if encoding == AudioEncoding.PCM16 else
              f"{encoding.name} (G.711, one byte per sample): bytes-like, or a numpy "
              "uint8 array of shape (n,)")
    if isinstance(pcm, str):
        raise TypeError(f"send_audio takes audio samples, not a str; wanted {wanted}")
    try:
        view = memoryview(pcm)
    except TypeError:
        raise TypeError(f"send_audio takes {wanted}; got {_describe(pcm, None)}") from None

    def refuse(why: str) -> MillisError:
        return MillisError(Status.INVALID_ARGUMENT,
                           f"send_audio: got {_describe(pcm, view)}: {why}; wanted {wanted}")

    fmt = view.format.lstrip("@=<>!")
    if fmt in _FLOAT_FORMATS:
        return_hint = ("convert with (x * 32767).clip(-32768, 32767).astype(numpy.int16)"
                       if encoding == AudioEncoding.PCM16 else "encode it to G.711 first")
        raise refuse(f"float samples are not sent as they are ({return_hint})")
    if view.ndim > 2 or (view.ndim == 2 and view.shape is not None and view.shape[1] != 1):
        channels = view.shape[1] if view.ndim == 2 and view.shape is not None else "several"
        raise refuse(f"{channels} channels; the server takes one (mix them down, e.g. "
                     "x.mean(axis=1).astype(x.dtype), or take one column x[:, 0])")
    if view.itemsize != 1:
        if encoding != AudioEncoding.PCM16:
            raise refuse(f"{view.itemsize}-byte samples")
        order = view.format[:1] if view.format[:1] in ("@", "=", "<", ">", "!") else "@"
        little = order == "<" or (order in ("@", "=") and sys.byteorder == "little")
        if view.itemsize != 2 or fmt != "h" or not little:
            raise refuse("samples that are not signed 16-bit little-endian integers")
    size = view.nbytes
    if size >= 12:
        head = view.cast("B")[:12].tobytes() if view.c_contiguous else view.tobytes()[:12]
        if head[:4] in _WAV_MAGIC and head[8:12] == b"WAVE":
            raise refuse("it begins with a WAV file's RIFF header: send the samples, "
                         "without the header (wave.open(path).readframes(n))")
    if size == 0:
        return None, 0, None
    if isinstance(pcm, bytes):
        return pcm, size, None
    if view.readonly or not view.c_contiguous:
        data = view.tobytes()
        return data, size, data
    keep = (ctypes.c_char * size).from_buffer(view.cast("B") if view.ndim == 1 else view.cast("B", (size,)))
    return keep, size, keep


class Client:
    """One conversation at a time with a Millis voice agent, its handlers run on a
    thread of its own (or as ``dispatch`` says); see :class:`millis.aio.AsyncClient`
    for asyncio.

    Args:
        public_key: the public key from the Millis playground (required, non-empty).
        endpoint: ``ws://`` or ``wss://`` URL; None keeps the library's default
            (``wss://api-west.millis.ai:8080/millis``).
        config: a :class:`millis.Config` holding the settings below.
        **settings: the fields of :class:`millis.Config` as keywords (``audio_mode=
            "application"``, ``log_level="debug"``, ...); each overrides the field
            of ``config``. ``help(millis.Config)`` describes them.
        dispatch: who takes the events and runs the handlers: "thread" (default: a
            daemon thread of the client, one event at a time, in order; an exception in
            a handler is logged and dispatch goes on), "manual" (your thread, in
            :meth:`poll` or :meth:`events`; a handler's exception propagates) or
            "asyncio" (the event loop, which reads the library's event descriptor while
            handlers are registered or :meth:`aevents` iterates; prefer
            :class:`millis.aio.AsyncClient`). No Python code runs on the library's
            network thread: events wait in its queue from the client's creation.
        loop: an asyncio event loop; implies dispatch="asyncio".

    Raises:
        MillisError: a setting the library refused (the message says which and why),
            e.g. INVALID_ARGUMENT for an empty path, a file extension the library does
            not know (``"x.mp3"``), a pacing out of range, or a header it refuses (a
            reserved name, a CR or LF in a value, the 65th header).
        ValueError: an unknown name for an enumeration ("slow" pacing, ...), or
            ``input_pacing`` / ``recording_mono`` without their file.
        TypeError: an unknown setting; a path that is not a str, bytes or
            os.PathLike; ``headers`` that are not a mapping or (name, value) pairs of str.

    Events: ``client.on(name, handler)`` with these names; each handler is called with
    the arguments shown, or with the leading ones it takes (``on("onready", lambda:
    ...)`` as in the web SDK). ``onanalyzer`` and ``onuseraudioready`` are aliases of
    ``analyzer`` and ``useraudioready``. The typed event of each (``millis.Transcript``,
    ...) is what ``async for`` over a :class:`millis.aio.AsyncClient` yields.

__EVENTS_TABLE__
    """

    def __init__(
        self,
        public_key: str,
        endpoint: Optional[str] = None,
        *,
        config: Optional[Config] = None,
        dispatch: str = "thread",
        loop: Optional[asyncio.AbstractEventLoop] = None,
        **settings: Any,
    ) -> None:
        self._handle: Any = None
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
        c = merged(config, settings)
        self.config: Config = c
        self._python_logging = c.python_logging is not False
        self._event_queue_bytes = _event_queue_bytes(c)

        self._dispatch_mode = dispatch
        self._loop = loop
        self._lock = threading.RLock()  # serialises native calls with their last_error
        self._handlers: Dict[str, List[_Handler]] = {name: [] for name in EVENTS}
        self._handlers_lock = threading.Lock()
        self._cv = threading.Condition()
        self._starts = 0
        self._closes = 0
        self._ever_started = False
        # asyncio: whoever receives each typed event after its handlers (aevents
        # iterators, an AsyncClient), then _STOP once the client is closed.
        self._sinks: List[Callable[[Any], None]] = []
        self._tasks: "set[asyncio.Task[Any]]" = set()
        # asyncio: what takes events from the library (aevents iterators, close waiters);
        # with handlers, the loop's reader on the event descriptor runs while any is set.
        self._consumers = 0
        self._reader_on = False
        self._aclose_waiters: "List[asyncio.Future[None]]" = []
        self._thread: Optional[threading.Thread] = None
        #: The onready payload of the current/last session (parsed JSON), or None.
        self.ready_payload: Any = None
        #: (code, reason) of the last onclose dispatched, or None.
        self.last_close: Optional[Tuple[int, str]] = None

        handle = _create_native(public_key, endpoint, c)
        self._encoding = AudioEncoding(_application_encoding(c))  # the library took it
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

    @overload
    def on(self, event: str) -> Callable[[_F], _F]: ...

    @overload
    def on(self, event: str, fn: _F) -> _F: ...

    def on(self, event: str, fn: Optional[_F] = None) -> Union[_F, Callable[[_F], _F]]:
        """Registers ``fn`` for ``event`` and returns it; usable as a decorator:
        ``@client.on("ontranscript")``.

        ``event`` is a web SDK name (``help(millis.Client)`` lists them with their
        arguments). ``fn`` is checked now: one that needs more arguments than the event
        gives raises TypeError, naming the event's signature; one that takes fewer is
        called with the leading ones. Handlers of one event run in registration order,
        never on libmillis' network thread. Coroutine functions are awaited as tasks
        on the loop (asyncio dispatch and :class:`millis.aio.AsyncClient` only).
        """
        name = events.canonical_name(event)
        if fn is None:
            def decorator(f: _F) -> _F:
                return self.on(name, f)
            return decorator
        if not callable(fn):
            raise TypeError(f"a handler must be callable, not {type(fn).__name__}")
        arity = _handler_arity(fn, events.event_type(name))
        if _is_async(fn) and self._dispatch_mode != "asyncio":
            raise TypeError(f"the {name} handler {fn!r} is a coroutine function: it needs "
                            f"millis.aio.AsyncClient (or dispatch='asyncio'), where it is "
                            f"awaited on the loop; this client uses dispatch="
                            f"{self._dispatch_mode!r}")
        with self._handlers_lock:
            self._handlers[name].append((fn, arity))
        self._consumers_changed()
        return fn

    def off(self, event: str, fn: Optional[Callable[..., Any]] = None) -> None:
        """Removes ``fn`` from ``event``, or every handler of ``event`` when fn is None."""
        name = events.canonical_name(event)
        with self._handlers_lock:
            handlers = self._handlers[name]
            if fn is None:
                handlers.clear()
            else:
                for i, (registered, _) in enumerate(handlers):
                    if registered == fn:
                        del handlers[i]
                        break
        self._consumers_changed()

    # --- dispatch ---------------------------------------------------------------------

    def _dispatch(self, raw: RawEvent, propagate: bool) -> Event:
        """Turns a raw event into its typed event and runs its handlers."""
        event = events.build(raw, self)
        if isinstance(event, Ready):
            self.ready_payload = event.payload
        elif isinstance(event, Close):
            self.last_close = (event.code, event.reason)
        elif isinstance(event, Log) and self._python_logging:
            log.log(_python_log_level(event.level), "%s", event.message)
        name = event.event_name
        with self._handlers_lock:
            handlers = list(self._handlers.get(name, ()))
        args = event.handler_args()
        try:
            for handler, arity in handlers:
                given = args if arity is None else (event,) if arity == _WHOLE_EVENT else args[:arity]
                if propagate:
                    self._await_later(handler(*given), name, handler)
                else:
                    try:
                        self._await_later(handler(*given), name, handler)
                    except Exception:
                        log.exception("millis: the %s handler %r raised", name, handler)
        finally:
            if isinstance(event, Close):
                # wait_closed() returns once the onclose handlers have run.
                with self._cv:
                    self._closes += 1
                    self._cv.notify_all()
                self._wake_aclose_waiters()
        return event

    def _await_later(self, result: Any, name: str, handler: Any) -> None:
        """A coroutine handler's coroutine runs as a task on the loop."""
        if not inspect.isawaitable(result):
            return
        if self._dispatch_mode != "asyncio" or self._loop is None:
            if inspect.iscoroutine(result):
                result.close()
            log.error("millis: the %s handler %r returned an awaitable, which only an "
                      "asyncio client awaits; it was dropped", name, handler)
            return
        task = asyncio.ensure_future(result, loop=self._loop)
        self._tasks.add(task)

        def done(t: "asyncio.Task[Any]") -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("millis: the %s handler %r raised", name, handler,
                          exc_info=t.exception())
        task.add_done_callback(done)


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
        loop = self._loop
        if loop is None:
            return
        if want and not self._reader_on:
            loop.add_reader(self._pump.fd, self._drain_async)
            self._reader_on = True
            self._drain_async()  # what came before the reader
        elif not want and self._reader_on:
            loop.remove_reader(self._pump.fd)
            self._reader_on = False

    def _drain_async(self) -> None:
        while True:
            event = self._pump.next(0)
            if event is None:
                return
            if event is _STOP:
                for sink in list(self._sinks):
                    sink(_STOP)
                self._wake_aclose_waiters()
                return
            typed = self._dispatch(event, propagate=False)
            for sink in list(self._sinks):
                sink(typed)

    def _wake_aclose_waiters(self) -> None:
        """Wakes aclosed(), from the loop's thread or (thread dispatch, close()) another."""
        waiters, self._aclose_waiters = self._aclose_waiters, []
        try:
            running: Optional[asyncio.AbstractEventLoop] = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for future in waiters:
            loop = future.get_loop()
            if loop is running:
                _settle(future)
            else:
                try:
                    loop.call_soon_threadsafe(_settle, future)
                except RuntimeError:
                    pass  # that loop is closed: nobody waits on it any more

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

    def events(self, timeout: Optional[float] = None) -> Iterator[Tuple[str, Tuple[Any, ...]]]:
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
            typed = self._dispatch(event, propagate=True)
            yield typed.event_name, typed.handler_args()
            if isinstance(typed, Close):
                return

    async def aevents(self, timeout: Optional[float] = None) -> AsyncIterator[Tuple[str, Tuple[Any, ...]]]:
        """asyncio dispatch: ``async for name, args in client.aevents(): ...``.

        Yields every event not yet dispatched (after its handlers ran): events wait in
        the library's queue until something takes them, so an iteration that starts
        after :meth:`start` still sees onopen, unless registered handlers took them
        meanwhile (the loop takes events as they come while any handler is
        registered). :class:`millis.aio.AsyncClient` keeps every event for its
        iteration, handlers or not, and yields typed events. Ends after ``onclose``,
        when no event arrives within ``timeout`` seconds, or when the client is
        closed. The loop reads the library's event descriptor (add_reader): no
        thread, no polling.
        """
        self._require("asyncio", "aevents()")
        q: "asyncio.Queue[Any]" = asyncio.Queue()
        self._sinks.append(q.put_nowait)
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
                yield item.event_name, item.handler_args()
                if isinstance(item, Close):
                    return
        finally:
            try:
                self._sinks.remove(q.put_nowait)
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
        """asyncio counterpart of :meth:`wait_closed`, without polling: the dispatch
        that runs the onclose handlers wakes it (in asyncio mode the loop takes events
        while it waits; in manual mode it dispatches them itself, every 20 ms)."""
        def done() -> bool:
            return self._closed or self._closes >= self._starts

        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        if self._dispatch_mode == "manual":
            while not done():
                self.poll(0)
                if deadline is not None and loop.time() >= deadline:
                    return done()
                await asyncio.sleep(0.02)
            return True
        consuming = self._dispatch_mode == "asyncio"
        if consuming:
            self._consumers += 1
            self._update_reader()
        future: "Optional[asyncio.Future[None]]" = None
        try:
            while True:
                # Registered before done() is read: a close dispatched in between (on
                # the dispatcher thread) counts before it wakes the waiters.
                future = loop.create_future()
                self._aclose_waiters.append(future)
                if done():
                    return True
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    return False
                try:
                    await asyncio.wait_for(future, remaining)
                except asyncio.TimeoutError:
                    return done()
        finally:
            if future is not None and future in self._aclose_waiters:
                try:
                    self._aclose_waiters.remove(future)
                except ValueError:
                    pass  # taken by _wake_aclose_waiters meanwhile
            if consuming:
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
        self._sinks = []
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

    def _refused(self, handle: Any, fallback: str) -> MillisError:
        """The error for a native getter that returned NULL: the library's message
        for a client of the parent process, ``fallback`` otherwise."""
        if self._inherited:
            return MillisError(Status.INVALID_STATE, _native.decode(lib.millis_client_last_error(handle)))
        return MillisError(Status.INTERNAL, fallback)

    # --- native calls -------------------------------------------------------------------

    def _raise_closed(self) -> NoReturn:
        raise MillisError(Status.INVALID_STATE, "the client is closed (close() was called)")

    def _call(self, fn: Callable[..., int], *args: Any) -> int:
        """Calls fn(handle, *args); raises MillisError for any status but OK/allowed."""
        with self._lock:
            if self._handle is None:
                self._raise_closed()
            status = fn(self._handle, *args)
            if status != Status.OK:
                raise MillisError(status, _native.decode(lib.millis_client_last_error(self._handle)))
            return int(status)

    def start(
        self,
        agent_id: Union[str, Mapping[str, Any], None] = None,
        *,
        agent: Optional[Mapping[str, Any]] = None,
        metadata: Any = None,
        include_metadata_in_prompt: Optional[bool] = None,
        session_continuation: Union[Mapping[str, Any], str, None] = None,
        agent_config: Optional[Mapping[str, Any]] = None,
        session_id: Optional[str] = None,
    ) -> None:
        """Starts a conversation, as the web SDK's ``client.start(options)``.

        The options come as keywords, ``start(agent={"agent_id": "...", "agent_config":
        {...}}, metadata={...}, include_metadata_in_prompt=True,
        session_continuation={"session_id": "..."})``, or as the web SDK's one object,
        ``start({"agent": {...}, "metadata": {...}, ...})``. Shortcuts:
        ``start("agent-id")`` (``agent_id``), ``agent_config=`` and ``session_id=``.
        The values go to the server untouched. Progress arrives as events (onopen,
        onready, or onerror + onclose).

        Raises:
            MillisError: INVALID_JSON for options the library refuses (no agent,
                ...), INVALID_STATE while a conversation is under way, FILE or
                AUDIO_DEVICE for a file or device that cannot be opened.
            TypeError: options given both as a dict and as keywords, or not JSON.
        """
        options = start_options(agent_id, agent=agent, metadata=metadata,
                                include_metadata_in_prompt=include_metadata_in_prompt,
                                session_continuation=session_continuation,
                                agent_config=agent_config, session_id=session_id)
        self.start_raw(options)

    def start_raw(self, options_json: str) -> None:
        """Starts a conversation with the options given as a JSON text (millis_client_start)."""
        if not isinstance(options_json, str):
            raise TypeError("options_json must be a str (use start() for keyword options)")
        with self._cv:
            self._starts += 1
        try:
            self._call(lib.millis_client_start, options_json.encode("utf-8"))
            self._ever_started = True
        except BaseException:
            with self._cv:
                self._starts -= 1
                self._cv.notify_all()
            raise

    def stop(self) -> None:
        """Ends the conversation (close 1000); onclose follows. Harmless when idle."""
        self._call(lib.millis_client_stop)

    def start_recording(self, path: PathLike, mono: bool = False) -> None:
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

    def send_audio(self, pcm: Any) -> bool:
        """Hands microphone audio over (application audio mode), in the client's
        application format: PCM16 LE 16 kHz mono (even length) unless
        ``audio_encoding`` / ``audio_sample_rate`` said otherwise.

        ``pcm`` is bytes-like (bytes, bytearray, memoryview, ``array('h')``), or a numpy
        int16 array of shape (n,) or (n, 1); for MULAW / ALAW, bytes or a uint8 array.
        Float samples, several channels and a WAV file's header are refused with
        MillisError(INVALID_ARGUMENT) saying what was passed and what is wanted. It
        never blocks: the audio is copied and queued for the network thread.

        Audio is accepted from the moment the WebSocket is open and ``initiate`` sent
        (``onopen``), before the server's ``onready``, as the web client streams it.
        Returns True when accepted, False while no WebSocket is open: before ``onopen``,
        during a reconnection, or once the conversation has closed (the audio is
        dropped and counted, never queued). Raises MillisError(INVALID_STATE) before
        the first :meth:`start` ("not started") and in device audio mode.
        """
        ptr, size, keep = _audio_buffer(pcm, self._encoding)
        with self._lock:
            if self._handle is None:
                self._raise_closed()
            if not self._ever_started:
                raise MillisError(Status.INVALID_STATE,
                                  "send_audio: not started: call start() first (audio is "
                                  "accepted from onopen on)")
            status = lib.millis_client_send_audio(self._handle, ptr, size)
            del keep
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
    def connection_state(self) -> ConnectionState:
        """The connection's state: ConnectionState.IDLE ("idle"), CONNECTING, OPEN,
        READY, CLOSING or RECONNECTING (str enums: ``== "ready"`` holds)."""
        with self._lock:
            state = lib.millis_client_connection_state(self._handle) if self._handle else 0
        return ConnectionState.from_number(int(state))

    @property
    def agent_state(self) -> AgentState:
        """The agent's state: AgentState.IDLE ("idle"), PREPARE_ANSWER, ANSWER or PAUSE."""
        with self._lock:
            state = lib.millis_client_agent_state(self._handle) if self._handle else 0
        return AgentState.from_number(int(state))

    @property
    def audio_mode(self) -> AudioMode:
        """The audio mode in force: APPLICATION or DEVICE (DEFAULT is resolved when the
        client is created); AudioMode.DEFAULT once the client is closed."""
        with self._lock:
            mode = lib.millis_client_audio_mode(self._handle) if self._handle else 0
        return AudioMode(mode)

    def _analyser(self, getter: Callable[..., Any], kind: str) -> Analyser:
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
        stats: Dict[str, Any] = json.loads(text)
        return stats

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
    def native_thread_ids(self) -> "frozenset[int]":
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
        self._wake_aclose_waiters()
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

    def __exit__(self, *exc: Any) -> None:
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


def audio_test(capture_device: Optional[str] = None, playback_device: Optional[str] = None, *,
               echo_canceller: Union[EchoCanceller, int, str, None] = None,
               seconds: float = 3.0) -> Dict[str, Any]:
    """Checks a speaker and a microphone without a server (millis_audio_test): plays a
    probe through the speaker and records the microphone, as it is and through the
    echo canceller, and returns the report: ``capture`` and ``playback`` (the devices
    as opened), ``echo_heard``, ``echo_delay_ms``, ``echo_level_db``,
    ``noise_floor_dbfs``, ``microphone_peak_dbfs``, ``clipped_samples``, ``erle_db``,
    ``erle_recent_db``, the underrun and overrun counts, and ``advice`` (a list of
    sentences). Blocks for about ``2 * seconds + 3`` seconds (the GIL is released).

    Args:
        capture_device, playback_device: ALSA PCM names (None: "default").
        echo_canceller: :class:`EchoCanceller` or its name (None: the default, WebRTC).
        seconds: the probe's length, 1 to 30.

    Raises:
        MillisError: AUDIO_DEVICE when a device does not open or fails (the message
            names it); INVALID_ARGUMENT for a bad device name.
        ValueError: seconds out of range, or an unknown canceller name.
    """
    if not isinstance(seconds, (int, float)) or not 1 <= seconds <= 30:
        raise ValueError(f"seconds must be a number from 1 to 30, not {seconds!r}")
    cfg = _create_config()
    try:
        check = _config_checker(cfg)
        check(_set_audio_devices(cfg, capture_device, playback_device))
        if echo_canceller is not None:
            check(lib.millis_config_set_echo_canceller(cfg, _level(echo_canceller, EchoCanceller, "echo_canceller")))
        report = ctypes.c_void_p()
        check(lib.millis_audio_test(cfg, int(round(seconds * 1000)), ctypes.byref(report)))
        result: Dict[str, Any] = json.loads(_native.take_string(report.value) or "{}")
        return result
    finally:
        lib.millis_config_destroy(cfg)


def audio_devices() -> Dict[str, Any]:
    """The PCMs ALSA knows (millis_audio_devices_json), for a device picker:
    ``{"capture": [{"name", "description"}, ...], "playback": [...]}``; the names go to
    ``Client(capture_device=..., playback_device=...)``.

    Raises:
        MillisError: AUDIO_DEVICE when ALSA cannot list its devices, or is not
            installed; the message says which (millis_audio_devices_last_error).
    """
    text = _native.take_string(lib.millis_audio_devices_json())
    if text is None:
        why = _native.decode(lib.millis_audio_devices_last_error())
        raise MillisError(Status.AUDIO_DEVICE, why or "ALSA could not list its devices")
    devices: Dict[str, Any] = json.loads(text)
    return devices
