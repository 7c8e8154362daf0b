"""asyncio-native client: ``millis.aio.AsyncClient``.

::

    import asyncio
    import millis
    from millis.aio import AsyncClient

    async def main() -> None:
        async with AsyncClient("test-public-key", "ws://127.0.0.1:8765/millis",
                               audio_mode="application") as client:
            client.on("ontranscript", lambda text, payload: print("user:", text))
            ready = await client.start(agent={"agent_id": "demo-agent"})
            async for event in client:
                if isinstance(event, millis.ResponseText) and event.is_final:
                    await client.stop()

    asyncio.run(main())

The client belongs to the event loop it was created in. The loop watches the library's
event descriptor (``loop.add_reader``): no thread per client, no polling. Each event
first runs its handlers (plain functions are called, coroutine functions become tasks),
then waits in the client's backlog for ``async for``: iteration yields every event from
the client's creation on, so one that begins after ``await start()`` still sees Open and
Ready. The backlog holds up to ``event_queue_bytes`` (8 MiB by default, about four
minutes of agent audio); past that, events are dropped and one :class:`millis.Error`
(NO_MEMORY) stands where they were, counting them. A Close is never dropped.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import (Any, AsyncIterator, Callable, Deque, Dict, List, Mapping, Optional,
                    TypeVar, Union, overload)

from .analyser import Analyser
from .client import _STOP, Client, start_options
from .config import Config, PathLike
from .enums import AgentState, AudioMode, ConnectionState, MillisError, Status
from .events import Audio, Close, Error, Event, Ready, events_table

__all__ = ["AsyncClient"]

_F = TypeVar("_F", bound=Callable[..., Any])

#: What an event counts for in the backlog besides its payload (as the library counts).
_EVENT_OVERHEAD = 64


def _event_bytes(event: Event) -> int:
    if isinstance(event, Audio):
        return _EVENT_OVERHEAD + len(event.pcm)
    return _EVENT_OVERHEAD + sum(len(v) for v in vars(event).values() if isinstance(v, (str, bytes)))


class AsyncClient:
    """One conversation at a time with a Millis voice agent, on the running event loop.

    Args:
        public_key: the public key from the Millis playground.
        endpoint: ``ws://`` or ``wss://`` URL; None keeps the library's default.
        config: a :class:`millis.Config`.
        **settings: the fields of :class:`millis.Config` as keywords, overriding those
            of ``config`` (``audio_mode="application"``, ``audio_encoding="mulaw"``, ...).

    Create it inside a coroutine (it belongs to the running loop). Use ``async with``,
    or call :meth:`close` at the end. Handlers (:meth:`on`) are those of
    :class:`millis.Client`, with the same names and arguments; they may also be
    coroutine functions. ``async for event in client`` yields typed events
    (:data:`millis.Event`) and ends after a :class:`millis.Close` (a new ``async for``
    goes on with the next conversation) or once the client is closed.

    Raises:
        RuntimeError: created outside a running event loop.
        MillisError, ValueError, TypeError: as :class:`millis.Client`.
    """

    def __init__(self, public_key: str, endpoint: Optional[str] = None, *,
                 config: Optional[Config] = None, **settings: Any) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError("millis.aio.AsyncClient belongs to the running event loop: "
                               "create it inside a coroutine (async def), e.g. under "
                               "asyncio.run()") from None
        self._loop = loop
        self._backlog: Deque[Event] = deque()
        self._backlog_bytes = 0
        self._drop_marker: Optional[Error] = None
        self._dropped = (0, 0)
        self._waiters: "List[asyncio.Future[None]]" = []
        self._stopped = False
        self._start_future: "Optional[asyncio.Future[Ready]]" = None
        self._start_ordinal = 0
        self._start_error: Optional[MillisError] = None
        self._client = Client(public_key, endpoint, config=config, loop=loop, **settings)
        self._limit = self._client._event_queue_bytes
        # The loop reads the descriptor from now on, for the handlers and the backlog.
        self._client._sinks.append(self._receive)
        self._client._consumers += 1
        self._client._update_reader()

    # --- what the loop's reader hands over --------------------------------------------

    def _receive(self, event: Any) -> None:
        if event is _STOP:
            self._stopped = True
            self._settle_start(None, MillisError(Status.INVALID_STATE,
                                                 "the client was closed (close() was called)"))
        else:
            self._watch_start(event)
            self._keep(event)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _watch_start(self, event: Event) -> None:
        if self._start_future is None:
            return
        closes = self._client._closes  # counts this event already when it is a Close
        if isinstance(event, Ready) and closes == self._start_ordinal - 1:
            self._settle_start(event, None)
        elif isinstance(event, Error) and closes == self._start_ordinal - 1:
            self._start_error = event.error
        elif isinstance(event, Close) and closes >= self._start_ordinal:
            error = self._start_error
            if error is None:
                error = MillisError(Status.SERVER_CLOSED,
                                    f"the conversation closed before it was ready (code "
                                    f"{event.code}{': ' + event.reason if event.reason else ''})")
            self._settle_start(None, error)

    def _settle_start(self, ready: Optional[Ready], error: Optional[MillisError]) -> None:
        future, self._start_future = self._start_future, None
        if future is None or future.done():
            return
        if ready is not None:
            future.set_result(ready)
        else:
            future.set_exception(error or MillisError(Status.INTERNAL, "start failed"))

    def _keep(self, event: Event) -> None:
        size = _event_bytes(event)
        if (self._backlog and not isinstance(event, Close)
                and self._backlog_bytes + size > self._limit):
            count, dropped = self._dropped
            self._dropped = (count + 1, dropped + size)
            marker = Error(MillisError(
                Status.NO_MEMORY,
                f"{count + 1} events ({dropped + size} bytes) were dropped here: the "
                f"AsyncClient's backlog was full ({self._limit} bytes, event_queue_bytes) "
                "because nothing iterated over its events"))
            if self._drop_marker is not None and self._backlog and self._backlog[-1] is self._drop_marker:
                self._backlog[-1] = marker
            else:
                self._backlog.append(marker)
                self._backlog_bytes += _EVENT_OVERHEAD
            self._drop_marker = marker
            return
        self._dropped = (0, 0)
        self._drop_marker = None
        self._backlog.append(event)
        self._backlog_bytes += size

    def _pop(self) -> Event:
        event = self._backlog.popleft()
        self._backlog_bytes -= _EVENT_OVERHEAD if event is self._drop_marker else _event_bytes(event)
        if event is self._drop_marker:
            self._drop_marker = None
            self._dropped = (0, 0)
        return event

    async def _next_event(self) -> Optional[Event]:
        """The next event of the backlog, waiting for one; None once the client is
        closed and the backlog empty."""
        while not self._backlog:
            if self._stopped:
                return None
            waiter = self._loop.create_future()
            self._waiters.append(waiter)
            await waiter
        return self._pop()

    # --- iteration ----------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Event]:
        return self.events()

    async def events(self, timeout: Optional[float] = None) -> AsyncIterator[Event]:
        """``async for event in client.events(timeout)``: as ``async for event in
        client``, and it also ends when no event comes within ``timeout`` seconds."""
        while True:
            if timeout is None:
                event = await self._next_event()
            else:
                try:
                    event = await asyncio.wait_for(self._next_event(), timeout)
                except asyncio.TimeoutError:
                    return
            if event is None:
                return
            yield event
            if isinstance(event, Close):
                return

    # --- handlers -----------------------------------------------------------------------

    @overload
    def on(self, event: str) -> Callable[[_F], _F]: ...

    @overload
    def on(self, event: str, fn: _F) -> _F: ...

    def on(self, event: str, fn: Optional[_F] = None) -> Union[_F, Callable[[_F], _F]]:
        """As :meth:`millis.Client.on`; ``fn`` may be a coroutine function (run as a
        task on the loop). Handlers run before the event reaches ``async for``."""
        if fn is None:
            return self._client.on(event)
        return self._client.on(event, fn)

    def off(self, event: str, fn: Optional[Callable[..., Any]] = None) -> None:
        """As :meth:`millis.Client.off`."""
        self._client.off(event, fn)

    # --- conversation -------------------------------------------------------------------

    async def start(
        self,
        agent_id: Union[str, Mapping[str, Any], None] = None,
        *,
        agent: Optional[Mapping[str, Any]] = None,
        metadata: Any = None,
        include_metadata_in_prompt: Optional[bool] = None,
        session_continuation: Union[Mapping[str, Any], str, None] = None,
        agent_config: Optional[Mapping[str, Any]] = None,
        session_id: Optional[str] = None,
    ) -> Ready:
        """Starts a conversation (the options as :meth:`millis.Client.start`) and returns
        the :class:`millis.Ready` event once the server is ready.

        Raises:
            MillisError: the options or the state refused at once (as Client.start);
                or, when the conversation closes before it is ready, the error that
                ended it (``.status``, ``.message``: e.g. SERVER_CLOSED for a refused
                key, CONNECT when the server cannot be reached).
            asyncio.CancelledError: cancelled (``asyncio.wait_for``): the conversation
                is stopped.
        """
        options = start_options(agent_id, agent=agent, metadata=metadata,
                                include_metadata_in_prompt=include_metadata_in_prompt,
                                session_continuation=session_continuation,
                                agent_config=agent_config, session_id=session_id)
        if self._start_future is not None:
            raise MillisError(Status.INVALID_STATE, "start() is already waiting for a "
                                                    "conversation to be ready")
        future: "asyncio.Future[Ready]" = self._loop.create_future()
        self._start_future = future
        self._start_ordinal = self._client._starts + 1
        self._start_error = None
        try:
            if self._client.audio_mode == AudioMode.DEVICE:
                # Opening ALSA devices and files takes a while: not on the loop.
                await self._loop.run_in_executor(None, self._client.start_raw, options)
            else:
                self._client.start_raw(options)
        except BaseException:
            if self._start_future is future:
                self._start_future = None
            raise
        try:
            return await future
        except asyncio.CancelledError:
            if self._start_future is future:
                self._start_future = None
            if not self._client.closed:
                self._client.stop()
            raise

    async def stop(self) -> Optional[Close]:
        """Ends the conversation and returns its :class:`millis.Close` once it is closed
        (None when none was under way). Harmless when idle."""
        if self._client.closed:
            return None
        running = self._client._closes < self._client._starts
        self._client.stop()
        if not running:
            return None
        await self._client.aclosed()
        last = self._client.last_close
        return None if last is None else Close(*last)

    def send_audio(self, pcm: Any) -> bool:
        """As :meth:`millis.Client.send_audio`; never blocks the loop (the audio is
        copied and queued)."""
        return self._client.send_audio(pcm)

    def send_json(self, message: Union[str, bytes, Dict[str, Any]]) -> None:
        """As :meth:`millis.Client.send_json`."""
        self._client.send_json(message)

    def mute(self) -> None:
        """As :meth:`millis.Client.mute`."""
        self._client.mute()

    def unmute(self) -> None:
        """As :meth:`millis.Client.unmute`."""
        self._client.unmute()

    def start_recording(self, path: PathLike, mono: bool = False) -> None:
        """As :meth:`millis.Client.start_recording`."""
        self._client.start_recording(path, mono)

    async def stop_recording(self) -> None:
        """As :meth:`millis.Client.stop_recording`, waiting off the loop for the files."""
        await self._loop.run_in_executor(None, self._client.stop_recording)

    # --- state --------------------------------------------------------------------------

    @property
    def client(self) -> Client:
        """The :class:`millis.Client` underneath (asyncio dispatch on this loop)."""
        return self._client

    @property
    def config(self) -> Config:
        """The settings in force."""
        return self._client.config

    @property
    def muted(self) -> bool:
        """True while the microphone is muted."""
        return self._client.muted

    @property
    def session_id(self) -> Optional[str]:
        """The session id from onready, or None."""
        return self._client.session_id

    @property
    def connection_state(self) -> ConnectionState:
        """The connection's state (a ConnectionState: ``== "ready"`` holds)."""
        return self._client.connection_state

    @property
    def agent_state(self) -> AgentState:
        """The agent's state (an AgentState: ``== "idle"`` holds)."""
        return self._client.agent_state

    @property
    def audio_mode(self) -> AudioMode:
        """The audio mode in force: APPLICATION or DEVICE."""
        return self._client.audio_mode

    @property
    def agent_analyser(self) -> Analyser:
        """The analyser of the agent's audio (see millis.Client.agent_analyser)."""
        return self._client.agent_analyser

    @property
    def user_analyser(self) -> Analyser:
        """The analyser of the user's audio (see millis.Client.user_analyser)."""
        return self._client.user_analyser

    @property
    def ready_payload(self) -> Any:
        """The onready payload of the current or last session (parsed JSON), or None."""
        return self._client.ready_payload

    @property
    def last_error(self) -> str:
        """The message of the last failing call ("" if none)."""
        return self._client.last_error

    @property
    def closed(self) -> bool:
        """True once close() was called."""
        return self._client.closed

    def stats(self) -> Dict[str, Any]:
        """As :meth:`millis.Client.stats`."""
        return self._client.stats()

    # --- life cycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Destroys the native client at once (no onclose follows); events already
        received stay readable through ``async for``. Idempotent."""
        self._client.close()

    async def aclose(self) -> None:
        """Stops the conversation under way (waiting for its close), then closes."""
        try:
            await self.stop()
        finally:
            self.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<millis.aio.AsyncClient {self._client!r}>"


if AsyncClient.__doc__:
    AsyncClient.__doc__ += "\n    Events (as :class:`millis.Client`):\n\n" + events_table() + "\n"
