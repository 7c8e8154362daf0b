"""Low-level ctypes declarations of libmillis (include/millis.h).

This module finds and loads the shared library and declares ``argtypes`` and
``restype`` for every function of the C header, plus one ``CFUNCTYPE`` per callback
typedef. It adds nothing else: the Pythonic surface lives in :mod:`millis.client`.

Where the library comes from, in this order (the first that loads and whose version
is the binding's wins):

1. the environment variable ``MILLIS_LIBRARY`` (a path to ``libmillis.so``); when it
   is set, nothing else is tried, and a version other than the binding's is an error;
2. the copy bundled in the package, ``millis/_lib/libmillis.so.0``: a wheel made by
   ``make wheel`` carries it, with the libraries it links in ``millis.libs/``;
3. the dynamic loader's search path: ``libmillis.so.0``, then ``libmillis.so``
   (``LD_LIBRARY_PATH``, ``/etc/ld.so.conf``, what ``make install`` installed), for the
   pure package (``pip install ./bindings/python``);
4. the build tree of the checkout this file belongs to, ``<repo>/build/libmillis.so``
   (what ``make build`` produces), when the package is used in place from a checkout.

The binding's version is the one its build read from ``include/millis.h``
(``millis/_version.py``, written by setup.py), or, in a checkout, that header itself.
A library of another version is passed over (and named if nothing else loads): the
declarations below are those of one version of the header.

Ownership rules that the declarations encode:

* ``const char *`` returns that are static or owned by a handle are declared
  ``c_char_p`` (ctypes copies them into ``bytes`` at once);
* ``char *`` returns owned by the caller (session id, stats, audio devices) are declared
  ``c_void_p`` so that :func:`take_string` can copy them and hand them back to
  ``millis_free``;
* handles are pointers to opaque structures, so that a config cannot be passed where a
  client is expected; ``None`` is NULL.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import re
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char_p,
    c_double,
    c_int,
    c_size_t,
    c_uint,
    c_void_p,
)
from pathlib import Path
from typing import List, Optional

__all__ = [
    "lib",
    "library_path",
    "take_string",
    "decode",
    "ConfigP",
    "ClientP",
    "AnalyserP",
    "OPEN_CB",
    "READY_CB",
    "SESSION_ENDED_CB",
    "AUDIO_CB",
    "RESPONSE_TEXT_CB",
    "TRANSCRIPT_CB",
    "FUNCTION_CB",
    "LATENCY_CB",
    "AGENT_STATE_CB",
    "CLOSE_CB",
    "ERROR_CB",
    "MESSAGE_CB",
    "LOG_CB",
    "RECONNECTING_CB",
    "RECONNECTED_CB",
    "ANALYZER_CB",
    "USER_AUDIO_READY_CB",
    "INPUT_ENDED_CB",
    "TURN_CB",
    "FUNCTIONS",
]

LIBRARY_ENV = "MILLIS_LIBRARY"
SONAMES = ("libmillis.so.0", "libmillis.so")


def _checkout_root() -> Optional[Path]:
    """The repository this file is part of, when it is used in place: an installed
    package (site-packages/millis) has no bindings/python above it."""
    here = Path(__file__).resolve()
    if len(here.parents) < 4 or (here.parents[1].name, here.parents[2].name) != ("python", "bindings"):
        return None
    root = here.parents[3]
    return root if (root / "include" / "millis.h").is_file() else None


def _build_tree_candidate() -> Optional[Path]:
    root = _checkout_root()
    return root / "build" / "libmillis.so" if root is not None else None


def _bundled_candidate() -> Path:
    return Path(__file__).resolve().parent / "_lib" / "libmillis.so.0"


def _binding_version() -> Optional[str]:
    """MAJOR.MINOR.PATCH of the header these declarations follow, or None when neither
    a build nor a checkout says (a copy of the sources): then no version is checked."""
    try:  # by name: the module exists only in a build, not in the checkout
        return str(importlib.import_module(f"{__package__}._version").VERSION)
    except ImportError:
        pass
    root = _checkout_root()
    if root is None:
        return None
    text = (root / "include" / "millis.h").read_text()
    parts = [re.search(rf"^#define MILLIS_VERSION_{part} (\d+)$", text, re.M)
             for part in ("MAJOR", "MINOR", "PATCH")]
    if not all(parts):
        return None
    return ".".join(m.group(1) for m in parts if m)


#: The version of libmillis this binding was built for (None: unknown, not checked).
BINDING_VERSION = _binding_version()


def _library_version(handle: ctypes.CDLL) -> str:
    try:
        get = handle.millis_version_number
    except AttributeError:
        return "unknown (no millis_version_number: not libmillis)"
    get.restype, get.argtypes = c_int, []
    number = int(get())
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"


def _open(name: str) -> "tuple[Optional[ctypes.CDLL], str]":
    """Loads name: (handle, its version) when the version is the binding's, else
    (None, why). Raises OSError when the loader cannot load it."""
    handle = ctypes.CDLL(name)
    found = _library_version(handle)
    if BINDING_VERSION is None or found == BINDING_VERSION:
        return handle, found
    # Left loaded (RTLD_LOCAL: none of its symbols can be bound by another library):
    # unloading a runtime that may have registered exit handlers is the riskier choice.
    return None, f"libmillis {found}, not {BINDING_VERSION}"


def _load() -> "tuple[ctypes.CDLL, str]":
    wanted = f"libmillis {BINDING_VERSION}" if BINDING_VERSION else "libmillis"
    tried: List[str] = []
    explicit = os.environ.get(LIBRARY_ENV)
    if explicit:
        try:
            handle, why = _open(explicit)
        except OSError as exc:
            raise ImportError(
                f"libmillis: could not load {explicit!r} named by ${LIBRARY_ENV}: {exc}. "
                f"Unset {LIBRARY_ENV} to use the bundled library, the loader path or the "
                f"build tree, or point it at a built libmillis.so (run `make build`)."
            ) from exc
        if handle is None:
            raise ImportError(
                f"libmillis: {explicit!r} named by ${LIBRARY_ENV} is {why}: this Python "
                f"package (millis {BINDING_VERSION}) declares the functions of {wanted}. "
                f"Point {LIBRARY_ENV} at a libmillis.so of version {BINDING_VERSION}, or "
                f"install the millis package of the library's version."
            )
        return handle, explicit
    tried.append(f"${LIBRARY_ENV} (not set)")

    # (what to load, or None with why it is not tried), in the order of the docstring.
    bundled = _bundled_candidate()
    build_tree = _build_tree_candidate()
    candidates: "List[tuple[Optional[str], str]]" = [
        (str(bundled), "") if bundled.exists() else (None, f"{bundled} (not bundled: a pure package)"),
        *((name, "") for name in SONAMES),
        (None, "the build tree (not a checkout)") if build_tree is None
        else (str(build_tree), "") if build_tree.exists()
        else (None, f"{build_tree} (no such file: run `make build`)"),
    ]
    for name, skipped in candidates:
        if name is None:
            tried.append(skipped)
            continue
        where = name if "/" in name else f"{name} via the dynamic loader"
        try:
            handle, why = _open(name)
        except OSError as exc:
            tried.append(f"{where} ({exc})")
            continue
        if handle is not None:
            return handle, name
        tried.append(f"{where} ({why})")
    raise ImportError(
        f"libmillis: no usable {wanted} was found. Tried:\n  - "
        + "\n  - ".join(tried)
        + f"\nInstall the wheel made by `make wheel` (it carries the library), install "
        f"{wanted} (`make install`), build it in the checkout "
        f"(`make build`), or set {LIBRARY_ENV}=/path/to/libmillis.so."
    )


lib, library_path = _load()


# --- opaque handles -------------------------------------------------------------------

class _Config(Structure):
    """struct millis_config (opaque)."""


class _Client(Structure):
    """struct millis_client (opaque)."""


class _Analyser(Structure):
    """struct millis_analyser (opaque)."""


ConfigP = POINTER(_Config)
ClientP = POINTER(_Client)
AnalyserP = POINTER(_Analyser)

# Enumerations travel as C int; millis_status likewise.
status_t = c_int
enum_t = c_int

# --- callback types (one per typedef in millis.h) -------------------------------------
# The client pointer is declared c_void_p: the binding never dereferences it, and a
# plain integer (or None) is cheaper to build on the network thread.
# Text parameters are c_char_p: ctypes copies them into bytes before Python code runs,
# which is exactly the "borrowed for the call's duration" rule of the header.

OPEN_CB = CFUNCTYPE(None, c_void_p, c_void_p)
READY_CB = CFUNCTYPE(None, c_void_p, c_char_p, c_char_p, c_void_p)
SESSION_ENDED_CB = CFUNCTYPE(None, c_void_p, c_void_p)
AUDIO_CB = CFUNCTYPE(None, c_void_p, c_void_p, c_size_t, c_void_p)
RESPONSE_TEXT_CB = CFUNCTYPE(None, c_void_p, c_char_p, c_int, c_void_p)
TRANSCRIPT_CB = CFUNCTYPE(None, c_void_p, c_char_p, c_int, c_void_p)
FUNCTION_CB = CFUNCTYPE(None, c_void_p, c_char_p, c_char_p, c_char_p, c_void_p)
LATENCY_CB = CFUNCTYPE(None, c_void_p, c_double, c_void_p)
AGENT_STATE_CB = CFUNCTYPE(None, c_void_p, enum_t, c_void_p)
CLOSE_CB = CFUNCTYPE(None, c_void_p, c_int, c_char_p, c_void_p)
ERROR_CB = CFUNCTYPE(None, c_void_p, status_t, c_char_p, c_void_p)
MESSAGE_CB = CFUNCTYPE(None, c_void_p, c_char_p, c_char_p, c_void_p)
LOG_CB = CFUNCTYPE(None, c_void_p, enum_t, c_char_p, c_void_p)
RECONNECTING_CB = CFUNCTYPE(None, c_void_p, c_uint, c_uint, c_void_p)
RECONNECTED_CB = CFUNCTYPE(None, c_void_p, c_char_p, c_void_p)
# The analyser pointer is a c_void_p too (an int): the client turns it into an Analyser
# on the dispatching thread (ctypes.cast to AnalyserP).
ANALYZER_CB = CFUNCTYPE(None, c_void_p, c_void_p, c_void_p)
USER_AUDIO_READY_CB = CFUNCTYPE(None, c_void_p, c_void_p, c_char_p, c_void_p)
INPUT_ENDED_CB = CFUNCTYPE(None, c_void_p, c_void_p)
TURN_CB = CFUNCTYPE(None, c_void_p, c_char_p, c_void_p)

# --- the event queue's struct (millis_event) -------------------------------------------
# Field for field as millis.h declares it (Tests/python/test_version.py compares them).
# Its char pointers are c_void_p, not c_char_p: they are lent until the next
# millis_client_next_event, and the binding copies them (string_at) at once.

class Event(Structure):
    """struct millis_event."""

    _fields_ = [
        ("size", c_size_t),
        ("type", enum_t),
        ("text", c_void_p),
        ("session_id", c_void_p),
        ("json", c_void_p),
        ("name", c_void_p),
        ("message", c_void_p),
        ("audio", c_void_p),
        ("audio_bytes", c_size_t),
        ("is_final", c_int),
        ("code", c_int),
        ("status", status_t),
        ("level", enum_t),
        ("agent_state", enum_t),
        ("attempt", c_uint),
        ("delay_ms", c_uint),
        ("latency_ms", c_double),
        ("analyser", c_void_p),
    ]


# --- function declarations ------------------------------------------------------------
# name -> (restype, argtypes). Every function of millis.h appears here exactly once;
# Tests/python/test_version.py checks that against the header.

FUNCTIONS = {
    # version
    "millis_version_number": (c_int, []),
    "millis_version": (c_char_p, []),  # static
    # status
    "millis_status_string": (c_char_p, [status_t]),  # static
    # enumerations
    "millis_agent_state_string": (c_char_p, [enum_t]),  # static
    "millis_connection_state_string": (c_char_p, [enum_t]),  # static
    # memory
    "millis_free": (None, [c_void_p]),
    # configuration
    "millis_config_create": (ConfigP, []),
    "millis_config_destroy": (None, [ConfigP]),
    "millis_config_last_error": (c_char_p, [ConfigP]),  # owned by the config
    "millis_config_set_public_key": (status_t, [ConfigP, c_char_p]),
    "millis_config_set_endpoint": (status_t, [ConfigP, c_char_p]),
    "millis_config_set_log_level": (status_t, [ConfigP, enum_t]),
    "millis_config_set_audio_mode": (status_t, [ConfigP, enum_t]),
    "millis_config_set_frame_ms": (status_t, [ConfigP, c_uint]),
    "millis_config_set_max_message_bytes": (status_t, [ConfigP, c_size_t]),
    "millis_config_set_ready_timeout_ms": (status_t, [ConfigP, c_uint]),
    "millis_config_set_reconnect": (status_t, [ConfigP, c_uint, c_uint, c_uint]),
    "millis_config_set_send_queue_bytes": (status_t, [ConfigP, c_size_t]),
    "millis_config_set_ca_file": (status_t, [ConfigP, c_char_p]),
    "millis_config_set_tls_verification_disabled_insecure": (status_t, [ConfigP, c_int]),
    # extra headers of the WebSocket upgrade request (name, value: UTF-8, copied)
    "millis_config_add_header": (status_t, [ConfigP, c_char_p, c_char_p]),
    "millis_config_clear_headers": (status_t, [ConfigP]),
    "millis_config_set_audio_devices": (status_t, [ConfigP, c_char_p, c_char_p]),
    "millis_config_set_audio_processing": (status_t, [ConfigP, c_int, c_int, c_int]),
    "millis_config_set_echo_canceller": (status_t, [ConfigP, c_int]),
    "millis_audio_test": (status_t, [ConfigP, c_uint, POINTER(c_void_p)]),
    "millis_config_set_audio_period_ms": (status_t, [ConfigP, c_uint]),
    "millis_config_set_playout_prebuffer_ms": (status_t, [ConfigP, c_uint]),
    "millis_config_set_application_audio_format": (status_t, [ConfigP, enum_t, c_uint]),
    # audio files as devices (paths are bytes: os.fsencode)
    "millis_config_set_audio_input_file": (status_t, [ConfigP, c_char_p, enum_t]),
    "millis_config_set_audio_output_file": (status_t, [ConfigP, c_char_p]),
    # recording (flags: millis_record_flags, a bit set passed as unsigned int)
    "millis_config_set_recording": (status_t, [ConfigP, c_char_p, c_uint]),
    # audio devices
    "millis_audio_devices_json": (c_void_p, []),  # caller frees (millis_free)
    "millis_audio_devices_last_error": (c_char_p, []),  # owned by the library, per thread
    # analysers (the pointers returned by the client's getters are owned by the client)
    "millis_client_agent_analyser": (AnalyserP, [ClientP]),
    "millis_client_user_analyser": (AnalyserP, [ClientP]),
    "millis_analyser_create": (AnalyserP, [c_double]),
    "millis_analyser_destroy": (None, [AnalyserP]),
    "millis_analyser_write_pcm16": (status_t, [AnalyserP, c_void_p, c_size_t]),  # count: samples
    "millis_analyser_last_error": (c_char_p, [AnalyserP]),  # owned by the analyser
    "millis_analyser_set_fft_size": (status_t, [AnalyserP, c_uint]),
    "millis_analyser_fft_size": (c_uint, [AnalyserP]),
    "millis_analyser_frequency_bin_count": (c_uint, [AnalyserP]),
    "millis_analyser_set_decibel_range": (status_t, [AnalyserP, c_double, c_double]),
    "millis_analyser_min_decibels": (c_double, [AnalyserP]),
    "millis_analyser_max_decibels": (c_double, [AnalyserP]),
    "millis_analyser_set_smoothing_time_constant": (status_t, [AnalyserP, c_double]),
    "millis_analyser_smoothing_time_constant": (c_double, [AnalyserP]),
    # out buffers are c_void_p: a ctypes array, or an address (numpy's .ctypes.data)
    "millis_analyser_get_byte_frequency_data": (c_size_t, [AnalyserP, c_void_p, c_size_t]),
    "millis_analyser_get_float_frequency_data": (c_size_t, [AnalyserP, c_void_p, c_size_t]),
    "millis_analyser_get_byte_time_domain_data": (c_size_t, [AnalyserP, c_void_p, c_size_t]),
    "millis_analyser_get_float_time_domain_data": (c_size_t, [AnalyserP, c_void_p, c_size_t]),
    "millis_analyser_rms_dbfs": (c_double, [AnalyserP]),
    # client
    "millis_client_create": (ClientP, [ConfigP, POINTER(status_t)]),
    "millis_client_destroy": (None, [ClientP]),
    "millis_client_last_error": (c_char_p, [ClientP]),  # owned by the client
    "millis_client_start": (status_t, [ClientP, c_char_p]),
    "millis_client_start_agent": (status_t, [ClientP, c_char_p]),
    "millis_client_stop": (status_t, [ClientP]),
    "millis_client_mute": (status_t, [ClientP]),
    "millis_client_unmute": (status_t, [ClientP]),
    "millis_client_is_muted": (c_int, [ClientP]),
    "millis_client_send_audio": (status_t, [ClientP, c_void_p, c_size_t]),
    "millis_client_send_json": (status_t, [ClientP, c_char_p]),
    "millis_client_session_id": (c_void_p, [ClientP]),  # caller frees (millis_free)
    "millis_client_connection_state": (enum_t, [ClientP]),
    "millis_client_audio_mode": (enum_t, [ClientP]),
    "millis_client_agent_state": (enum_t, [ClientP]),
    "millis_client_stats_json": (c_void_p, [ClientP]),  # caller frees (millis_free)
    "millis_client_start_recording": (status_t, [ClientP, c_char_p, c_uint]),
    "millis_client_stop_recording": (status_t, [ClientP]),  # blocks until the files are complete
    # callbacks
    "millis_client_on_open": (status_t, [ClientP, OPEN_CB, c_void_p]),
    "millis_client_on_ready": (status_t, [ClientP, READY_CB, c_void_p]),
    "millis_client_on_session_ended": (status_t, [ClientP, SESSION_ENDED_CB, c_void_p]),
    "millis_client_on_audio": (status_t, [ClientP, AUDIO_CB, c_void_p]),
    "millis_client_on_response_text": (status_t, [ClientP, RESPONSE_TEXT_CB, c_void_p]),
    "millis_client_on_transcript": (status_t, [ClientP, TRANSCRIPT_CB, c_void_p]),
    "millis_client_on_function": (status_t, [ClientP, FUNCTION_CB, c_void_p]),
    "millis_client_on_latency": (status_t, [ClientP, LATENCY_CB, c_void_p]),
    "millis_client_on_agent_state": (status_t, [ClientP, AGENT_STATE_CB, c_void_p]),
    "millis_client_on_close": (status_t, [ClientP, CLOSE_CB, c_void_p]),
    "millis_client_on_error": (status_t, [ClientP, ERROR_CB, c_void_p]),
    "millis_client_on_message": (status_t, [ClientP, MESSAGE_CB, c_void_p]),
    "millis_client_on_log": (status_t, [ClientP, LOG_CB, c_void_p]),
    "millis_client_on_reconnecting": (status_t, [ClientP, RECONNECTING_CB, c_void_p]),
    "millis_client_on_reconnected": (status_t, [ClientP, RECONNECTED_CB, c_void_p]),
    "millis_client_on_analyzer": (status_t, [ClientP, ANALYZER_CB, c_void_p]),
    "millis_client_on_user_audio_ready": (status_t, [ClientP, USER_AUDIO_READY_CB, c_void_p]),
    "millis_client_on_input_ended": (status_t, [ClientP, INPUT_ENDED_CB, c_void_p]),
    "millis_client_on_turn": (status_t, [ClientP, TURN_CB, c_void_p]),
    # the event queue (the binding's only way to receive events)
    "millis_config_set_event_queue": (status_t, [ConfigP, c_size_t]),
    "millis_client_next_event": (status_t, [ClientP, POINTER(Event), c_int]),
    "millis_client_event_fd": (c_int, [ClientP]),
}


def _declare() -> None:
    missing = []
    for name, (restype, argtypes) in FUNCTIONS.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            missing.append(name)
            continue
        fn.restype = restype
        fn.argtypes = argtypes
    if missing:
        raise ImportError(
            f"libmillis at {library_path} lacks {', '.join(missing)}: the library is "
            f"older than this binding, or not libmillis. Rebuild it with `make build`."
        )


_declare()


def decode(raw: Optional[bytes]) -> str:
    """bytes from a ``c_char_p`` (or None for NULL) -> str; invalid UTF-8 is replaced."""
    if raw is None:
        return ""
    return raw.decode("utf-8", errors="replace")


def take_string(address: Optional[int]) -> Optional[str]:
    """Copies a caller-owned C string, releases it with millis_free, returns str/None."""
    if not address:
        return None
    try:
        return ctypes.string_at(address).decode("utf-8", errors="replace")
    finally:
        lib.millis_free(address)
