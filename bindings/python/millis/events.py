"""The events of a conversation: their web SDK names, the arguments handlers get, and
the typed dataclasses that ``async for event in client`` yields.

This module is the one table of the events: :data:`EVENTS` (the names :meth:`Client.on
<millis.Client.on>` takes, in the order of ``millis_event_type``), each name's handler
signature, and the dataclass of each. A handler registered with ``client.on(name, fn)``
is called with ``event.handler_args()`` (its leading ones, when it takes fewer); each
class's ``event_name`` is its name.

==================  ==========================================  ============================
name                handler arguments                           typed event
==================  ==========================================  ============================
onopen              ()                                          Open()
onready             (session_id)                                Ready(session_id, payload)
onsessionended      ()                                          SessionEnded()
onaudio             (pcm: bytes)                                Audio(pcm)
onresponsetext      (text, {"is_final": bool})                  ResponseText(text, is_final)
ontranscript        (text, {"is_final": bool})                  Transcript(text, is_final)
onfunction          (text, {"name": str, "params": Any})        FunctionCall(name, params, text)
onlatency           (ms: float)                                 Latency(ms)
onagentstate        (state: AgentState)                         AgentStateChanged(state)
onclose             (code: int, reason: str)                    Close(code, reason)
onerror             (error: MillisError)                        Error(error)
onmessage           (method: str, message: dict)                Message(method, message)
onlog               (level: LogLevel, message: str)             Log(level, message)
onreconnecting      (attempt: int, delay_ms: int)               Reconnecting(attempt, delay_ms)
onreconnected       (session_id)                                Reconnected(session_id)
analyzer            (analyser: Analyser)                        Analyzer(analyser)
useraudioready      (analyser: Analyser, stream: dict)          UserAudioReady(analyser, stream)
oninputended        ()                                          InputEnded()
onturn              (turn: dict)                                Turn(turn)
==================  ==========================================  ============================

``onanalyzer`` and ``onuseraudioready`` (the names of earlier versions) are aliases of
``analyzer`` and ``useraudioready``. A handler of ``onclose`` or ``useraudioready`` that
takes one argument gets the typed event, as the web SDK's get one object:
``lambda event: event.code``, ``lambda data: data.analyser``.
"""

from __future__ import annotations

import ctypes
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, Optional, Tuple, Type, Union

from . import _native
from .analyser import Analyser
from .enums import AgentState, LogLevel, MillisError, Status

__all__ = [
    "Event", "EVENTS", "ALIASES", "EVENT_TYPES", "canonical_name", "event_type",
    "Open", "Ready", "SessionEnded", "Audio", "ResponseText", "Transcript",
    "FunctionCall", "Latency", "AgentStateChanged", "Close", "Error", "Message", "Log",
    "Reconnecting", "Reconnected", "Analyzer", "UserAudioReady", "InputEnded", "Turn",
]


class _EventBase:
    """What every event class has: its name and its handlers' signature."""

    #: The name given to :meth:`Client.on` (the web SDK's).
    event_name: ClassVar[str] = ""
    #: The arguments its handlers get, e.g. ``("text: str", "payload: {'is_final': bool}")``.
    handler_params: ClassVar[Tuple[str, ...]] = ()
    #: The handlers' signature, e.g. ``"ontranscript(text: str, payload: {...})"``.
    signature: ClassVar[str] = ""
    #: Where the web SDK hands its handlers one object (onclose's CloseEvent,
    #: useraudioready's ``{analyser, stream}``), a handler taking one argument gets the
    #: typed event, whose fields carry the same names (``event.code``, ``data.stream``).
    single_object: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.signature = f"{cls.event_name}({', '.join(cls.handler_params)})"

    def handler_args(self) -> Tuple[Any, ...]:
        """The positional arguments a handler of this event gets (the web SDK's)."""
        return ()


@dataclass(frozen=True)
class Open(_EventBase):
    """The WebSocket is open and ``initiate`` was sent; audio may be sent from now on."""

    event_name: ClassVar[str] = "onopen"
    handler_params: ClassVar[Tuple[str, ...]] = ()


@dataclass(frozen=True)
class Ready(_EventBase):
    """The server is ready: the conversation has begun."""

    session_id: str
    #: The server's onready message as parsed JSON (None when it had none).
    payload: Any = None
    event_name: ClassVar[str] = "onready"
    handler_params: ClassVar[Tuple[str, ...]] = ('session_id: str',)

    def handler_args(self) -> Tuple[Any, ...]:
        return (self.session_id,)


@dataclass(frozen=True)
class SessionEnded(_EventBase):
    """The server ended the session (the agent hung up); onclose follows."""

    event_name: ClassVar[str] = "onsessionended"
    handler_params: ClassVar[Tuple[str, ...]] = ()


@dataclass(frozen=True)
class Audio(_EventBase):
    """Agent audio in the application format (PCM16 LE 16 kHz mono by default)."""

    pcm: bytes = field(repr=False)
    event_name: ClassVar[str] = "onaudio"
    handler_params: ClassVar[Tuple[str, ...]] = ('pcm: bytes',)

    def handler_args(self) -> Tuple[Any, ...]:
        return (self.pcm,)

    def __repr__(self) -> str:
        return f"Audio(<{len(self.pcm)} bytes>)"


@dataclass(frozen=True)
class ResponseText(_EventBase):
    """The agent's words (``is_final``: the last update of this text)."""

    text: str
    is_final: bool
    event_name: ClassVar[str] = "onresponsetext"
    handler_params: ClassVar[Tuple[str, ...]] = ('text: str', "payload: {'is_final': bool}")

    def handler_args(self) -> Tuple[Any, ...]:
        return (self.text, {"is_final": self.is_final})


@dataclass(frozen=True)
class Transcript(_EventBase):
    """The user's words as the server heard them (``is_final``: the last update)."""

    text: str
    is_final: bool
    event_name: ClassVar[str] = "ontranscript"
    handler_params: ClassVar[Tuple[str, ...]] = ('text: str', "payload: {'is_final': bool}")

    def handler_args(self) -> Tuple[Any, ...]:
        return (self.text, {"is_final": self.is_final})


@dataclass(frozen=True)
class FunctionCall(_EventBase):
    """The agent called a function: ``name`` and its ``params`` (parsed JSON); ``text``
    is the web SDK's first argument (empty)."""

    name: str
    params: Any
    text: str = ""
    event_name: ClassVar[str] = "onfunction"
    handler_params: ClassVar[Tuple[str, ...]] = ('text: str', "payload: {'name': str, 'params': Any}")

    def handler_args(self) -> Tuple[Any, ...]:
        return (self.text, {"name": self.name, "params": self.params})


@dataclass(frozen=True)
class Latency(_EventBase):
    """A latency measurement in milliseconds (the web SDK's onlatency)."""

    ms: float
    event_name: ClassVar[str] = "onlatency"
    handler_params: ClassVar[Tuple[str, ...]] = ('ms: float',)

    def handler_args(self) -> Tuple[Any, ...]:
        return (self.ms,)


@dataclass(frozen=True)
class AgentStateChanged(_EventBase):
    """The agent's state changed (idle, prepare_answer, answer, pause)."""

    state: AgentState
    event_name: ClassVar[str] = "onagentstate"
    handler_params: ClassVar[Tuple[str, ...]] = ('state: AgentState',)

    def handler_args(self) -> Tuple[Any, ...]:
        return (self.state,)


@dataclass(frozen=True)
class Close(_EventBase):
    """The conversation ended: the WebSocket close ``code`` and ``reason``."""

    code: int
    reason: str
    event_name: ClassVar[str] = "onclose"
    handler_params: ClassVar[Tuple[str, ...]] = ('code: int', 'reason: str')
    single_object: ClassVar[bool] = True

    def handler_args(self) -> Tuple[Any, ...]:
        return (self.code, self.reason)


@dataclass(frozen=True)
class Error(_EventBase):
    """Something went wrong (``error.status``, ``error.message``); a fatal error is
    followed by onclose."""

    error: MillisError
    event_name: ClassVar[str] = "onerror"
    handler_params: ClassVar[Tuple[str, ...]] = ('error: MillisError',)

    def handler_args(self) -> Tuple[Any, ...]:
        return (self.error,)


@dataclass(frozen=True)
class Message(_EventBase):
    """A server message of a method this version does not know."""

    method: str
    message: Dict[str, Any]
    event_name: ClassVar[str] = "onmessage"
    handler_params: ClassVar[Tuple[str, ...]] = ('method: str', 'message: dict')

    def handler_args(self) -> Tuple[Any, ...]:
        return (self.method, self.message)


@dataclass(frozen=True)
class Log(_EventBase):
    """A library log line (also sent to ``logging.getLogger("millis")``)."""

    level: LogLevel
    message: str
    event_name: ClassVar[str] = "onlog"
    handler_params: ClassVar[Tuple[str, ...]] = ('level: LogLevel', 'message: str')

    def handler_args(self) -> Tuple[Any, ...]:
        return (self.level, self.message)


@dataclass(frozen=True)
class Reconnecting(_EventBase):
    """The connection dropped; attempt number ``attempt`` follows in ``delay_ms``."""

    attempt: int
    delay_ms: int
    event_name: ClassVar[str] = "onreconnecting"
    handler_params: ClassVar[Tuple[str, ...]] = ('attempt: int', 'delay_ms: int')

    def handler_args(self) -> Tuple[Any, ...]:
        return (self.attempt, self.delay_ms)


@dataclass(frozen=True)
class Reconnected(_EventBase):
    """The session goes on after a reconnection (onopen and onready are not repeated)."""

    session_id: str
    event_name: ClassVar[str] = "onreconnected"
    handler_params: ClassVar[Tuple[str, ...]] = ('session_id: str',)

    def handler_args(self) -> Tuple[Any, ...]:
        return (self.session_id,)


@dataclass(frozen=True)
class Analyzer(_EventBase):
    """The agent's analyser (the web SDK's ``analyzer``), right after onopen."""

    analyser: Analyser
    event_name: ClassVar[str] = "analyzer"
    handler_params: ClassVar[Tuple[str, ...]] = ('analyser: Analyser',)

    def handler_args(self) -> Tuple[Any, ...]:
        return (self.analyser,)


@dataclass(frozen=True)
class UserAudioReady(_EventBase):
    """The user's analyser and the microphone stream's description, e.g.
    ``{"source": "application", "encoding": "pcm16", "rate": 16000, "channels": 1}``."""

    analyser: Analyser
    stream: Dict[str, Any]
    event_name: ClassVar[str] = "useraudioready"
    handler_params: ClassVar[Tuple[str, ...]] = ('analyser: Analyser', 'stream: dict')
    single_object: ClassVar[bool] = True

    def handler_args(self) -> Tuple[Any, ...]:
        return (self.analyser, self.stream)


@dataclass(frozen=True)
class InputEnded(_EventBase):
    """The audio input file ended; silence follows."""

    event_name: ClassVar[str] = "oninputended"
    handler_params: ClassVar[Tuple[str, ...]] = ()


@dataclass(frozen=True)
class Turn(_EventBase):
    """An agent turn's latency breakdown, once its first sample was played (see the
    Python guide for its members)."""

    turn: Dict[str, Any]
    event_name: ClassVar[str] = "onturn"
    handler_params: ClassVar[Tuple[str, ...]] = ('turn: dict',)

    def handler_args(self) -> Tuple[Any, ...]:
        return (self.turn,)


#: One of the typed events; ``isinstance(event, millis.Transcript)`` tells which.
Event = Union[Open, Ready, SessionEnded, Audio, ResponseText, Transcript, FunctionCall,
              Latency, AgentStateChanged, Close, Error, Message, Log, Reconnecting,
              Reconnected, Analyzer, UserAudioReady, InputEnded, Turn]

#: The event classes in the order of millis_event_type (MILLIS_EVENT_OPEN is 1).
EVENT_TYPES: Tuple[Type[_EventBase], ...] = (
    Open, Ready, SessionEnded, Audio, ResponseText, Transcript, FunctionCall, Latency,
    AgentStateChanged, Close, Error, Message, Log, Reconnecting, Reconnected, Analyzer,
    UserAudioReady, InputEnded, Turn)

#: The names :meth:`Client.on <millis.Client.on>` takes (the web SDK's, and ours), in
#: the order of millis_event_type.
EVENTS: Tuple[str, ...] = tuple(t.event_name for t in EVENT_TYPES)

#: Other accepted spellings -> the name in :data:`EVENTS` (earlier versions' names).
ALIASES: Dict[str, str] = {"onanalyzer": "analyzer", "onuseraudioready": "useraudioready"}

_BY_NAME: Dict[str, Type[_EventBase]] = {t.event_name: t for t in EVENT_TYPES}


def canonical_name(name: str) -> str:
    """The name in :data:`EVENTS` for an accepted event name; ValueError otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"an event name is a str, not {type(name).__name__}")
    name = ALIASES.get(name, name)
    if name not in _BY_NAME:
        raise ValueError(f"unknown event {name!r}; events are: {', '.join(EVENTS)} "
                         f"(and the aliases {', '.join(ALIASES)})")
    return name


def event_type(name: str) -> Type[_EventBase]:
    """The class of an accepted event name (``"ontranscript"`` -> Transcript)."""
    return _BY_NAME[canonical_name(name)]


def events_table() -> str:
    """The events and their handlers' arguments, one per line (for docstrings)."""
    lines = []
    for t in EVENT_TYPES:
        lines.append(f"    {t.signature:<62} -> {t.__name__}")
    return "\n".join(lines)


# --- from the library's event queue --------------------------------------------------

#: An event copied out of a millis_event: (its type number, its fields as Python values).
RawEvent = Tuple[int, Tuple[Any, ...]]


def _string(address: Optional[int]) -> Optional[bytes]:
    return ctypes.string_at(address) if address else None


def copy_native(ev: "_native.Event") -> Optional[RawEvent]:
    """Copies what a millis_event lends (until the next take) into Python values; None
    for MILLIS_EVENT_NONE or a type this binding does not know."""
    kind = int(ev.type)
    if not 1 <= kind <= len(EVENT_TYPES):
        return None
    cls = EVENT_TYPES[kind - 1]
    s = _string
    fields: Tuple[Any, ...]
    if cls is Ready:
        fields = (s(ev.session_id), s(ev.json))
    elif cls is Audio:
        fields = (ctypes.string_at(ev.audio, ev.audio_bytes) if ev.audio and ev.audio_bytes else b"",)
    elif cls is ResponseText or cls is Transcript:
        fields = (s(ev.text), ev.is_final)
    elif cls is FunctionCall:
        fields = (s(ev.text), s(ev.name), s(ev.json))
    elif cls is Latency:
        fields = (ev.latency_ms,)
    elif cls is AgentStateChanged:
        fields = (ev.agent_state,)
    elif cls is Close:
        fields = (ev.code, s(ev.message))
    elif cls is Error:
        fields = (ev.status, s(ev.message))
    elif cls is Message:
        fields = (s(ev.name), s(ev.json))
    elif cls is Log:
        fields = (ev.level, s(ev.message))
    elif cls is Reconnecting:
        fields = (ev.attempt, ev.delay_ms)
    elif cls is Reconnected:
        fields = (s(ev.session_id),)
    elif cls is Analyzer:
        fields = (ev.analyser,)
    elif cls is UserAudioReady:
        fields = (ev.analyser, s(ev.json))
    elif cls is Turn:
        fields = (s(ev.json),)
    else:
        fields = ()
    return kind, fields


def _text(raw: Optional[bytes]) -> str:
    return _native.decode(raw)


def json_or_raw(raw: Optional[bytes]) -> Any:
    """Parsed JSON; the text itself when it does not parse; None for no text."""
    text = _text(raw)
    if text == "":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _object(raw: Optional[bytes]) -> Dict[str, Any]:
    value = json_or_raw(raw)
    return value if isinstance(value, dict) else {"raw": value}


def build(raw: RawEvent, client: Any) -> Event:
    """The typed event of a copied millis_event; ``client`` owns its analysers. A value
    the binding cannot read becomes an Error event saying so, never an exception."""
    kind, f = raw
    cls = EVENT_TYPES[kind - 1]
    try:
        return _build(cls, f, client)
    except Exception as exc:  # e.g. an enumeration value newer than this binding
        return Error(MillisError(Status.INTERNAL,
                                 f"the binding could not read a {cls.event_name} event: {exc!r}"))


def _build(cls: Type[_EventBase], f: Tuple[Any, ...], client: Any) -> Event:
    if cls is Open:
        return Open()
    if cls is Ready:
        return Ready(_text(f[0]), json_or_raw(f[1]))
    if cls is SessionEnded:
        return SessionEnded()
    if cls is Audio:
        return Audio(f[0])
    if cls is ResponseText:
        return ResponseText(_text(f[0]), bool(f[1]))
    if cls is Transcript:
        return Transcript(_text(f[0]), bool(f[1]))
    if cls is FunctionCall:
        return FunctionCall(_text(f[1]), json_or_raw(f[2]), _text(f[0]))
    if cls is Latency:
        return Latency(float(f[0]))
    if cls is AgentStateChanged:
        return AgentStateChanged(AgentState.from_number(int(f[0])))
    if cls is Close:
        return Close(int(f[0]), _text(f[1]))
    if cls is Error:
        return Error(MillisError(int(f[0]), _text(f[1])))
    if cls is Message:
        return Message(_text(f[0]), _object(f[1]))
    if cls is Log:
        return Log(LogLevel(int(f[0])), _text(f[1]))
    if cls is Reconnecting:
        return Reconnecting(int(f[0]), int(f[1]))
    if cls is Reconnected:
        return Reconnected(_text(f[0]))
    if cls is Analyzer:
        return Analyzer(Analyser._of_client(client, "agent", f[0]))
    if cls is UserAudioReady:
        return UserAudioReady(Analyser._of_client(client, "user", f[0]), _object(f[1]))
    if cls is InputEnded:
        return InputEnded()
    if cls is Turn:
        return Turn(_object(f[0]))
    raise AssertionError(f"no conversion for {cls.__name__}")
