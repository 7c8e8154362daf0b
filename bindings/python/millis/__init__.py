"""millis — Python binding of libmillis, a native client for Millis AI voice agents.

A ctypes binding with no compilation step (it loads ``libmillis.so``; see
:mod:`millis._native` for where it looks, ``MILLIS_LIBRARY=/path/to/libmillis.so``
overrides), with the web SDK's names (``@millisai/web-sdk``). With threads::

    import millis

    with millis.Client("test-public-key", "ws://127.0.0.1:8765/millis",
                       audio_mode="application") as client:      # you push the audio
        client.on("onready", lambda: print("ready"))
        client.on("ontranscript", lambda text, payload: print("user:", text))
        client.on("onaudio", lambda pcm: speaker.write(pcm))   # PCM16 LE 16 kHz mono
        client.start(agent={"agent_id": "demo-agent"})
        ...                          # client.send_audio(pcm16) every 20 ms from onopen on
        client.wait_closed(60)

With asyncio (:mod:`millis.aio`)::

    async with millis.aio.AsyncClient(key, url, audio_mode="application") as client:
        ready = await client.start(agent={"agent_id": "demo-agent"})   # or MillisError
        async for event in client:                                     # typed events
            if isinstance(event, millis.Transcript) and event.is_final:
                print(event.text)

``help(millis.Client)`` lists the events and their handlers' arguments;
``help(millis.Config)`` the settings (keywords of both clients); :mod:`millis.events`
the typed events. Handlers are checked when registered and get the leading arguments
they take. ``Client(dispatch="manual")`` runs handlers on your thread (``poll()``,
``events()``). Library log lines go to ``logging.getLogger("millis")``. Every failing
call raises :class:`MillisError` (``.status``, ``.name``, ``.message``); errors during a
conversation arrive as ``onerror`` events. The Python guide (docs/python.md in the
repository) covers all of it.
"""

from . import _native
from .analyser import Analyser
from .client import DEFAULT_EVENT_QUEUE_BYTES, Client, audio_devices, audio_test
from .config import Config
from .enums import (
    AgentState,
    AudioEncoding,
    AudioMode,
    ConnectionState,
    EchoCanceller,
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
    "EchoCanceller",
    "RecordFlags",
    "Analyser",
    "audio_devices",
    "audio_test",
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


#: The library version this binding was built for: its build writes it into
#: millis/_version.py from millis.h, a checkout reads that header. _native loads only a
#: libmillis.so of that version (ImportError naming both otherwise).
__version__ = _native.BINDING_VERSION or version()

_major, _minor, _patch = (int(part) for part in (__version__.split(".") + ["0", "0"])[:3])
#: The MILLIS_VERSION_NUMBER this binding was written against (from __version__).
BINDING_VERSION_NUMBER = _major * 1_000_000 + _minor * 1000 + _patch
