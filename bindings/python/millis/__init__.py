"""millis — Python binding of libmillis, a native client for Millis AI voice agents.

A ctypes binding with no compilation step: it loads ``libmillis.so`` (see
:mod:`millis._native` for where it looks; ``MILLIS_LIBRARY=/path/to/libmillis.so``
overrides) and mirrors the web SDK (``@millisai/web-sdk``)::

    import millis

    with millis.Client("my-public-key", "ws://127.0.0.1:8765/millis",
                       audio_mode="application") as client:
        @client.on("ontranscript")
        def transcript(text, payload):
            print("user:", text, payload["is_final"])

        client.on("onaudio", lambda pcm: speaker.write(pcm))
        client.start(agent_id="demo-agent")
        ...                          # client.send_audio(pcm16) every 20 ms from onopen on
        client.wait_closed(60)

Events and handler signatures (web SDK names): ``onopen()``, ``onready(session_id)``,
``onsessionended()``, ``onaudio(pcm: bytes)``, ``onresponsetext(text, {"is_final"})``,
``ontranscript(text, {"is_final"})``, ``onfunction(text, {"name", "params"})``,
``onlatency(ms)``, ``onagentstate(state)`` ("idle", "prepare_answer", "answer",
"pause"), ``onclose(code, reason)``, ``onerror(err: MillisError)``,
``onmessage(method, message: dict)`` (server methods this version does not know),
``onreconnecting(attempt: int, delay_ms: int)`` (the connection dropped and will be
resumed in delay_ms), ``onreconnected(session_id)`` (the session goes on; onopen and
onready are not repeated), ``onanalyzer(analyser: Analyser)`` (the web SDK's
``analyzer``: the agent's analyser, right after onopen), ``onuseraudioready(analyser:
Analyser, stream: dict)`` (``useraudioready``: the user's analyser and the microphone
stream, e.g. ``{"source": "device", "device": ..., "rate": ..., ...}`` or
``{"source": "application", "encoding": ..., "rate": ..., "channels": 1}``),
``oninputended()`` (the input file ended; silence follows), ``onturn(turn: dict)`` (an
agent turn's latency breakdown, once its first sample was played: ``{"turn",
"user_speech_end", "start_answering", "first_audio", "first_played", "latency_ms":
{"end_of_speech_to_start_answering", "start_answering_to_first_audio",
"first_audio_to_played", "total"}}``, times in seconds since start, null when the
turn was cut short) and ``onlog(level: LogLevel, message)``.

Device audio and analysers: ``Client(audio_mode=AudioMode.DEVICE, capture_device=...,
playback_device=...)`` lets the library record and play through ALSA (with echo
cancellation, noise suppression and gain control; ``audio_devices()`` lists the PCMs);
``audio_encoding`` / ``audio_sample_rate`` set the format of application audio.
``client.agent_analyser`` / ``client.user_analyser`` and standalone
``Analyser.create(rate)`` compute what a Web Audio AnalyserNode does; their getters
return numpy arrays when numpy is installed (``bytes`` / ``array('f')`` otherwise).

Audio files and recording: ``Client(input_file="user.wav", input_pacing="fast",
output_file="agent.wav")`` lets a WAV or Ogg Opus file stand in for the microphone and
a file for the speaker (test bots, batch evaluation); ``recording="call.opus"`` (or
``client.start_recording(path, mono=False)`` / ``client.stop_recording()``) keeps both
sides of a conversation in one file, with a JSON Lines timeline beside it. File
problems raise :class:`MillisError` with status ``FILE``, naming the file.

Reliability and security settings of :class:`Client`: ``reconnect=(max_attempts,
initial_delay_ms, max_delay_ms)`` (0 attempts disables it), ``send_queue_bytes``,
``ca_file`` (PEM CAs for ``wss://``), ``tls_verification_disabled_insecure``
(dangerous; local experiments only) and ``headers`` (extra upgrade-request headers,
e.g. ``{"Origin": "https://app.example.com"}``).

Where handlers run — the three dispatch modes
---------------------------------------------
libmillis runs one network thread for every client of the process. The binding runs no
Python code there: it registers no C callback, and each client's events wait in the
library's event queue (``millis_client_next_event``, bounded by ``event_queue_bytes``)
from the client's creation until they are taken. Who takes them is chosen with
``dispatch``:

``dispatch="thread"`` (default)
    A daemon thread owned by the client runs the handlers, one event at a time, in
    arrival order. Handlers may call any client method (including ``close()``). An
    exception in a handler is logged (logger ``"millis"``) and dispatch goes on.

``dispatch="manual"``
    Nothing runs until you ask: ``client.poll(timeout=None)`` runs the pending handlers
    on the calling thread and returns how many events it dispatched (a handler's
    exception propagates), and ``for name, args in client.events(timeout=None): ...``
    yields ``(event_name, args)`` tuples (after running that event's handlers), ending
    after ``onclose``. Suits game loops and single-threaded programs.

``dispatch="asyncio"`` or ``loop=<event loop>``
    The event loop reads the library's event descriptor (``loop.add_reader``): no
    thread, no polling (``dispatch="asyncio"`` alone uses the running loop). Handlers
    run on the loop. ``async for name, args in client.aevents(): ...`` yields every
    event not yet taken, from the client's creation on, so an iteration that starts
    after ``start()`` still sees ``onopen`` and ``onready``; ``await
    client.aclosed(timeout)`` waits for the close. Events are taken while handlers are
    registered, an iteration runs or a close is awaited; otherwise they wait.

In every mode, ``wait_closed(timeout)`` returns True once the conversation's
``onclose`` has been dispatched (manual mode dispatches while it waits).

Errors: every failing call raises :class:`MillisError` (``.status``, ``.name``,
``.message``), except ``send_audio`` which returns False while the session is not
ready. Asynchronous errors arrive as ``onerror(MillisError)``.
"""

from . import _native
from .analyser import Analyser
from .client import DEFAULT_EVENT_QUEUE_BYTES, Client, audio_devices
from .config import Config
from .enums import (
    AgentState,
    AudioEncoding,
    AudioMode,
    ConnectionState,
    FilePacing,
    LogLevel,
    MillisError,
    RecordFlags,
    Status,
    status_string,
)
from .events import (
    ALIASES,
    EVENTS,
    AgentStateChanged,
    Analyzer,
    Audio,
    Close,
    Error,
    Event,
    FunctionCall,
    InputEnded,
    Latency,
    Log,
    Message,
    Open,
    Ready,
    Reconnected,
    Reconnecting,
    ResponseText,
    SessionEnded,
    Transcript,
    Turn,
    UserAudioReady,
    events_table,
)

__all__ = [
    "Client",
    "Config",
    "MillisError",
    "Status",
    "AgentState",
    "ConnectionState",
    "LogLevel",
    "AudioMode",
    "AudioEncoding",
    "FilePacing",
    "RecordFlags",
    "Analyser",
    "audio_devices",
    "EVENTS",
    "ALIASES",
    "Event",
    "Open",
    "Ready",
    "SessionEnded",
    "Audio",
    "ResponseText",
    "Transcript",
    "FunctionCall",
    "Latency",
    "AgentStateChanged",
    "Close",
    "Error",
    "Message",
    "Log",
    "Reconnecting",
    "Reconnected",
    "Analyzer",
    "UserAudioReady",
    "InputEnded",
    "Turn",
    "DEFAULT_EVENT_QUEUE_BYTES",
    "version",
    "version_number",
    "status_string",
    "library_path",
]

if Client.__doc__:
    Client.__doc__ = Client.__doc__.replace("__EVENTS_TABLE__", events_table())

library_path = _native.library_path


def version() -> str:
    """The version of the loaded library, e.g. "0.1.0" (millis_version)."""
    return _native.decode(_native.lib.millis_version())


def version_number() -> int:
    """The loaded library's MAJOR*1000000 + MINOR*1000 + PATCH (millis_version_number)."""
    return int(_native.lib.millis_version_number())


def _own_version() -> str:
    """Installed by pip: the version its build read from millis.h. Copied in place by
    `make install`, or used from the checkout: the library's, from the same header."""
    try:
        import importlib.metadata as metadata
        from pathlib import Path

        dist = metadata.distribution("millis")
        here = Path(__file__).resolve()
        if any(f.name == "__init__.py" and Path(str(dist.locate_file(f))).resolve() == here
               for f in dist.files or ()):
            return dist.version
    except Exception:  # not installed by pip (PackageNotFoundError)
        pass
    return version()


__version__ = _own_version()

_major, _minor, _patch = (int(part) for part in (__version__.split(".") + ["0", "0"])[:3])
#: The MILLIS_VERSION_NUMBER this binding was written against (from __version__).
BINDING_VERSION_NUMBER = _major * 1_000_000 + _minor * 1000 + _patch

if BINDING_VERSION_NUMBER != version_number():
    raise ImportError(
        f"millis: this binding is version {__version__} but the library it loaded, "
        f"{library_path}, is version {version()}: they must agree. Install the wheel of "
        f"the library's version, or point MILLIS_LIBRARY at the libmillis.so of "
        f"version {__version__}.")
