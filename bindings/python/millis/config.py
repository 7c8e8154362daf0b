"""millis.Config: every setting of a client, as one dataclass.

``Client(key, endpoint, config=cfg, **kw)`` and ``AsyncClient(...)`` take a Config and
keywords of the same names; a keyword given overrides the Config's field. A field left
None keeps the library's default.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional, Tuple, Union

from .enums import AudioEncoding, AudioMode, EchoCanceller, FilePacing, LogLevel

__all__ = ["Config", "PathLike", "merged"]

#: A file path: str, bytes or os.PathLike.
PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


@dataclass
class Config:
    """The settings of a client; every field None by default (the library's default).

    Attributes:
        log_level: :class:`LogLevel`, an int, or a name ("debug"); library logs arrive
            as ``onlog`` events and, unless ``python_logging`` is False, on the logger
            ``"millis"``. None: the library's WARN, or DEBUG / INFO when that logger's
            effective level is DEBUG / INFO (and ERROR above WARNING).
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
        echo_canceller: the module that does that processing: :class:`EchoCanceller`
            (or "webrtc", the default, or "speex"), or an int.
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
        event_queue_bytes: how much the library keeps of the events not yet
            dispatched (payload bytes: audio, text, JSON), from 65536 to 2**30; default
            ``DEFAULT_EVENT_QUEUE_BYTES`` (8 MiB, about four minutes of agent audio),
            or four times ``max_message_bytes`` when that is larger.
            Events past it are dropped, and an ``onerror`` (NO_MEMORY) stands where
            they were, counting them; ``onclose`` is never dropped.

        python_logging: True (None, the default) sends the library's log lines to
            ``logging.getLogger("millis")`` at the matching level (ERROR, WARNING, INFO,
            DEBUG); False leaves them to ``onlog`` handlers alone.
    """

    log_level: Union[LogLevel, int, str, None] = None
    audio_mode: Union[AudioMode, int, str, None] = None
    frame_ms: Optional[int] = None
    max_message_bytes: Optional[int] = None
    ready_timeout_ms: Optional[int] = None
    reconnect: Optional[Tuple[int, int, int]] = None
    send_queue_bytes: Optional[int] = None
    ca_file: Optional[PathLike] = None
    tls_verification_disabled_insecure: Optional[bool] = None
    headers: Union[Mapping[str, str], Iterable[Tuple[str, str]], None] = None
    capture_device: Optional[str] = None
    playback_device: Optional[str] = None
    echo_cancellation: Optional[bool] = None
    noise_suppression: Optional[bool] = None
    auto_gain_control: Optional[bool] = None
    echo_canceller: Union[EchoCanceller, int, str, None] = None
    audio_period_ms: Optional[int] = None
    playout_prebuffer_ms: Optional[int] = None
    audio_encoding: Union[AudioEncoding, int, str, None] = None
    audio_sample_rate: Optional[int] = None
    input_file: Optional[PathLike] = None
    input_pacing: Union[FilePacing, int, str, None] = None
    output_file: Optional[PathLike] = None
    recording: Optional[PathLike] = None
    recording_mono: Optional[bool] = None
    event_queue_bytes: Optional[int] = None
    python_logging: Optional[bool] = None


FIELDS = tuple(f.name for f in dataclasses.fields(Config))


def merged(config: Optional[Config], overrides: Mapping[str, Any]) -> Config:
    """``config`` (or a default Config) with the keywords ``overrides`` applied."""
    if config is None:
        config = Config()
    elif not isinstance(config, Config):
        raise TypeError(f"config must be a millis.Config, not {type(config).__name__}")
    unknown = sorted(set(overrides) - set(FIELDS))
    if unknown:
        raise TypeError(f"unknown setting{'s' if len(unknown) > 1 else ''} "
                        f"{', '.join(unknown)}; the settings are the fields of millis.Config: "
                        f"{', '.join(FIELDS)}")
    return dataclasses.replace(config, **overrides)
