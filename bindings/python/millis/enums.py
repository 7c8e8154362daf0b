"""Enumerations of millis.h as IntEnums, and the MillisError exception."""

from __future__ import annotations

from enum import Enum, IntEnum, IntFlag
from typing import Type, TypeVar

from . import _native

_E = TypeVar("_E", bound="_NativeStrEnum")

__all__ = ["Status", "AgentState", "ConnectionState", "LogLevel", "AudioMode",
           "AudioEncoding", "FilePacing", "EchoCanceller", "RecordFlags", "MillisError", "status_string"]


class Status(IntEnum):
    """millis_status: MILLIS_OK and MILLIS_ERR_<NAME> become Status.OK and Status.<NAME>."""

    OK = 0
    INVALID_ARGUMENT = 1
    INVALID_JSON = 2
    INVALID_STATE = 3
    NOT_READY = 4
    NO_MEMORY = 5
    CONNECT = 6
    TLS = 7
    HANDSHAKE = 8
    PROTOCOL = 9
    MESSAGE_TOO_BIG = 10
    BAD_MESSAGE = 11
    CONNECTION_LOST = 12
    TIMEOUT = 13
    SERVER_CLOSED = 14
    UNSUPPORTED = 15
    INTERNAL = 16
    AUDIO_DEVICE = 17
    FILE = 18


class _NativeStrEnum(str, Enum):
    """A C enumeration whose members are the web SDK's strings ("idle", ...), so that
    comparisons with the strings of earlier versions still hold; ``int(member)`` is the
    C value (the members are listed in the C order)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    def __int__(self) -> int:
        return list(type(self)).index(self)

    @classmethod
    def from_number(cls: Type[_E], number: int) -> _E:
        """The member of a C value; ValueError for a value outside the enumeration."""
        members = list(cls)
        if not 0 <= number < len(members):
            raise ValueError(f"{number} is not a valid {cls.__name__}")
        return members[number]


class AgentState(_NativeStrEnum):
    """millis_agent_state, as the web SDK names it: ``AgentState.PREPARE_ANSWER ==
    "prepare_answer"``; ``int(state)`` is the C value."""

    IDLE = "idle"
    PREPARE_ANSWER = "prepare_answer"
    ANSWER = "answer"
    PAUSE = "pause"


class ConnectionState(_NativeStrEnum):
    """millis_connection_state: ``ConnectionState.READY == "ready"``; ``int(state)`` is
    the C value."""

    IDLE = "idle"
    CONNECTING = "connecting"
    OPEN = "open"
    READY = "ready"
    CLOSING = "closing"
    RECONNECTING = "reconnecting"


class LogLevel(IntEnum):
    """millis_log_level, from quietest to most verbose."""

    NONE = 0
    ERROR = 1
    WARN = 2
    INFO = 3
    DEBUG = 4


class AudioMode(IntEnum):
    """millis_audio_mode: MILLIS_AUDIO_MODE_<NAME> becomes AudioMode.<NAME>.

    DEFAULT resolves, when the client is created, to DEVICE if the configured ALSA
    devices can be opened and to APPLICATION otherwise (``Client.audio_mode`` tells).
    """

    DEFAULT = 0
    APPLICATION = 1
    DEVICE = 2


class AudioEncoding(IntEnum):
    """millis_audio_encoding, the application audio formats: MILLIS_AUDIO_<NAME>.

    PCM16 (signed 16-bit little-endian, mono; 8000, 16000, 24000 or 48000 Hz), MULAW and
    ALAW (G.711, 8000 Hz, one byte per sample).
    """

    PCM16 = 0
    MULAW = 1
    ALAW = 2


class FilePacing(IntEnum):
    """millis_file_pacing: how an input file is streamed (MILLIS_FILE_<NAME>).

    REALTIME sends 20 ms of audio every 20 ms, as a microphone would. FAST sends as
    fast as the connection takes it (never dropped for backpressure: the file waits
    for the socket); only for endpoints that accept audio faster than real time.
    ``str(pacing)`` is "realtime" or "fast".
    """

    REALTIME = 0
    FAST = 1

    def __str__(self) -> str:
        return self.name.lower()


class EchoCanceller(IntEnum):
    """millis_echo_canceller: the module that processes the microphone of device audio
    (MILLIS_ECHO_CANCELLER_<NAME>), with the switches ``echo_cancellation``,
    ``noise_suppression`` and ``auto_gain_control``.

    WEBRTC (the default) is the WebRTC audio processing module: far more echo removed
    (25 dB and more within the first second on a room, against 6 to 12 for speexdsp),
    the user's voice lowered by 6 to 10 dB while the agent speaks. SPEEX is speexdsp's
    canceller and preprocessor: the user's voice kept nearly whole, much more echo
    left. ``str(canceller)`` is "webrtc" or "speex".
    """

    WEBRTC = 0
    SPEEX = 1

    def __str__(self) -> str:
        return self.name.lower()


class RecordFlags(IntFlag):
    """millis_record_flags, the recording options (a bit set): MILLIS_RECORD_<NAME>.

    STEREO (0, the default) puts the user on the left channel and the agent on the
    right; MONO mixes both sides into one channel.
    """

    STEREO = 0
    MONO = 1


def status_string(status: int) -> str:
    """millis_status_string(): a short English description of a status code."""
    return _native.decode(_native.lib.millis_status_string(int(status)))


class MillisError(Exception):
    """A libmillis failure.

    Attributes:
        status: the millis_status code (int; compare with :class:`Status`).
        name: the code's name, e.g. ``"INVALID_JSON"``.
        message: the library's detailed message (millis_client_last_error, or the
            message of an asynchronous error), or the status' description when the
            library gave none.
    """

    def __init__(self, status: int, message: str = "") -> None:
        self.status = int(status)
        try:
            self.name = Status(self.status).name
        except ValueError:
            self.name = f"STATUS_{self.status}"
        self.message = message or status_string(self.status)
        super().__init__(self.status, self.message)

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"

    def __repr__(self) -> str:
        return f"MillisError({self.name}, {self.message!r})"
