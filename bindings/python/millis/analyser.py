"""Analysers: the Web Audio ``AnalyserNode`` of libmillis (``millis_analyser *``).

An :class:`Analyser` is either one of a client's two analysers (``client.agent_analyser``,
``client.user_analyser``, or the ``analyzer`` / ``useraudioready`` events), or a
standalone one that the application feeds itself (``Analyser.create(sample_rate)`` and
``write_pcm16()``).

The data getters fill a preallocated buffer with one native call (no per-sample Python
work) and return numpy arrays when numpy can be imported (``uint8`` / ``float32``),
otherwise ``bytes`` (byte data) and ``array.array('f')`` (float data).

Lifetime, and why no call can reach freed memory:

* A client's analyser belongs to the native client. Its :class:`Analyser` holds a
  reference to the :class:`~millis.Client`, so the client is not collected while the
  analyser is in use; ``client.close()`` invalidates it (it waits for calls in progress,
  then every further call raises ``MillisError(INVALID_STATE)``). ``Analyser.close()``
  on a client's analyser only lets go of the client; it never destroys the native one.
* A standalone analyser is destroyed by ``close()`` (or the ``with`` block's end, or
  garbage collection). Calls after that raise ``MillisError(INVALID_STATE)``.

Every method may be called from any thread, while audio flows.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import math
import sys
import threading
import weakref
from typing import Any, Iterator, Optional

from . import _native
from ._native import lib
from .enums import MillisError, Status

_np: Any
try:  # optional: the getters return numpy arrays when it is there
    import numpy as _numpy
    _np = _numpy
except ImportError:  # pragma: no cover - depends on the environment
    _np = None

__all__ = ["Analyser", "CLIENT_ANALYSER_SAMPLE_RATE"]

#: The rate at which libmillis feeds a client's analysers: the wire format's 16 kHz
#: (what the analysers of millis.h are created with; the header does not state it).
CLIENT_ANALYSER_SAMPLE_RATE = 16000.0

# One lock for every setter call and the last_error read that follows it, so that the
# message raised is the message of that call (setters are rare: no contention).
_setter_lock = threading.Lock()

# Every gate, for _after_fork_in_child.
_gates: "weakref.WeakSet[_Gate]" = weakref.WeakSet()

_PCM16_FORMATS = ("h", "<h", "=h", "@h") if sys.byteorder == "little" else ("<h",)


class _Gate:
    """Lets any number of calls use a native handle at once, and close() wait for them.

    ``use()`` raises MillisError(INVALID_STATE) once ``close()`` has begun; ``close()``
    returns when no call is inside any more (True the first time, False afterwards).
    """

    __slots__ = ("_cv", "_active", "_closed", "_why", "__weakref__")

    def __init__(self, why: str) -> None:
        self._cv = threading.Condition(threading.Lock())
        self._active = 0
        self._closed = False
        self._why = why
        _gates.add(self)

    def _reset_after_fork(self, closed_because: Optional[str] = None) -> None:
        """In a child made by fork(): the calls counted in, and the lock, were the
        parent's threads', which the child does not have; a lock one of them held stays
        held, and close() would wait for calls that never end. Closes the gate when
        ``closed_because`` is given."""
        self._cv = threading.Condition(threading.Lock())
        self._active = 0
        if closed_because is not None:
            self._closed = True
            self._why = closed_because

    @property
    def closed(self) -> bool:
        return self._closed

    @contextlib.contextmanager
    def use(self) -> Iterator[None]:
        with self._cv:
            if self._closed:
                raise MillisError(Status.INVALID_STATE, self._why)
            self._active += 1
        try:
            yield
        finally:
            with self._cv:
                self._active -= 1
                if self._active == 0:
                    self._cv.notify_all()

    def close(self) -> bool:
        with self._cv:
            if self._closed:
                return False
            self._closed = True
            self._cv.wait_for(lambda: self._active == 0)
            return True


class Analyser:
    """A Web Audio AnalyserNode (``millis_analyser *``), by the specification's definitions.

    ``Analyser(sample_rate)`` and ``Analyser.create(sample_rate)`` make a standalone
    analyser fed with :meth:`write_pcm16`; a client's analysers come from
    ``client.agent_analyser`` / ``client.user_analyser`` (see the module docstring for
    their lifetime). Usable as a context manager (``close()`` at the end).

    Properties: ``fft_size`` (settable: a power of two from 32 to 32768, default 2048),
    ``frequency_bin_count`` (fft_size / 2), ``min_decibels`` / ``max_decibels``
    (settable, or both at once with :meth:`set_decibel_range`; default -100 / -30),
    ``smoothing_time_constant`` (settable, [0, 1], default 0.8), ``rms_dbfs`` (the level
    of the last fft_size samples; -120 for silence), ``sample_rate``, ``kind``
    ("standalone", "agent" or "user") and ``closed``.

    Errors raise :class:`MillisError` with the analyser's own message
    (``millis_analyser_last_error``), e.g. INVALID_ARGUMENT for ``fft_size = 48``.
    """

    def __init__(self, sample_rate: float = 16000.0) -> None:
        self._ptr = None
        self._client: Any = None
        self._gate = _Gate("the analyser is closed (close() was called)")
        try:
            rate = float(sample_rate)
        except (TypeError, ValueError):
            raise TypeError(f"sample_rate must be a number, not {type(sample_rate).__name__}") from None
        ptr = lib.millis_analyser_create(rate)
        if not ptr:
            raise MillisError(Status.INVALID_ARGUMENT,
                              f"sample_rate {sample_rate!r} is not allowed: it must be a "
                              f"positive, finite number of Hz")
        self._ptr = ptr
        self._kind = "standalone"
        self._sample_rate = rate

    @classmethod
    def create(cls, sample_rate: float = 16000.0) -> "Analyser":
        """A standalone analyser for audio at ``sample_rate`` Hz (millis_analyser_create)."""
        return cls(sample_rate)

    @classmethod
    def _of_client(cls, client: Any, kind: str, address: Any) -> "Analyser":
        """Wraps one of ``client``'s analysers (a pointer or an address); no native call."""
        self = cls.__new__(cls)
        if not isinstance(address, _native.AnalyserP):
            address = ctypes.cast(ctypes.c_void_p(address), _native.AnalyserP)
        self._ptr = address
        self._client = client
        self._gate = client._analyser_gate
        self._kind = kind
        self._sample_rate = CLIENT_ANALYSER_SAMPLE_RATE
        return self

    # --- life cycle -----------------------------------------------------------------

    @contextlib.contextmanager
    def _use(self) -> Iterator[Any]:
        """Yields the native pointer while it is guaranteed to stay valid."""
        with self._gate.use():
            ptr = self._ptr
            if not ptr:  # a client's analyser after Analyser.close()
                raise MillisError(Status.INVALID_STATE, "the analyser is closed (close() was called)")
            yield ptr

    def close(self) -> None:
        """Standalone: destroys the native analyser (millis_analyser_destroy). A client's:
        lets go of the client (the native analyser stays the client's). Idempotent."""
        if self._client is not None:
            self._ptr = None
            self._client = None
            return
        if self._gate.close():
            ptr, self._ptr = self._ptr, None
            if ptr:
                lib.millis_analyser_destroy(ptr)

    @property
    def closed(self) -> bool:
        """True once close() was called (or, for a client's analyser, the client closed)."""
        return self._ptr is None or self._gate.closed

    def __enter__(self) -> "Analyser":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if getattr(self, "_client", None) is None and getattr(self, "_ptr", None):
                self.close()
        except Exception:
            pass

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Analyser):
            return NotImplemented
        if self is other:
            return True
        return self._address() is not None and self._address() == other._address()

    def __hash__(self) -> int:
        return hash(self._address())

    def _address(self) -> Optional[int]:
        ptr = self._ptr
        return ctypes.cast(ptr, ctypes.c_void_p).value if ptr else None

    def __repr__(self) -> str:
        if self.closed:
            return f"<millis.Analyser {self._kind} closed>"
        try:
            return f"<millis.Analyser {self._kind} fft_size={self.fft_size} rms_dbfs={self.rms_dbfs:.1f}>"
        except MillisError:
            return f"<millis.Analyser {self._kind} closed>"

    # --- errors -----------------------------------------------------------------------

    @staticmethod
    def _check(ptr: Any, status: int) -> None:
        if status != Status.OK:
            raise MillisError(status, _native.decode(lib.millis_analyser_last_error(ptr)))

    # --- feeding ----------------------------------------------------------------------

    def write_pcm16(self, pcm: Any) -> None:
        """Appends mono PCM16 samples (millis_analyser_write_pcm16).

        ``pcm``: bytes-like data of native-endian (little-endian) 16-bit samples, an
        ``array.array('h')``, or a numpy ``int16`` array; zero-copy when contiguous and
        writable. Meant for standalone analysers (a client feeds its own).
        """
        if isinstance(pcm, (bytes, bytearray)):
            view = memoryview(pcm)
        else:
            try:
                view = memoryview(pcm)
            except TypeError:
                raise TypeError("write_pcm16 takes bytes-like 16-bit samples (bytes, "
                                f"array('h'), numpy int16), not {type(pcm).__name__}") from None
        if view.itemsize == 2:
            if view.format not in _PCM16_FORMATS:
                raise TypeError(f"write_pcm16 takes signed 16-bit samples, not format {view.format!r}")
        elif view.itemsize != 1:
            raise TypeError(f"write_pcm16 takes signed 16-bit samples, not {view.itemsize}-byte "
                            f"items (format {view.format!r}); convert first, e.g. "
                            f"numpy: (x * 32767).astype('<i2')")
        nbytes = view.nbytes
        if nbytes % 2:
            raise MillisError(Status.INVALID_ARGUMENT,
                              f"write_pcm16: {nbytes} bytes is not a whole number of 16-bit samples")
        keep: Any = None
        data: Any
        if nbytes == 0:
            data = None
        elif isinstance(pcm, bytes):
            data = pcm
        elif view.readonly or not view.c_contiguous:
            data = keep = view.tobytes()
        else:
            data = keep = (ctypes.c_char * nbytes).from_buffer(view.cast("B"))
        with self._use() as ptr:
            status = lib.millis_analyser_write_pcm16(ptr, data, nbytes // 2)
        del keep
        if status != Status.OK:
            raise MillisError(status, "millis_analyser_write_pcm16 refused the samples")

    # --- parameters -------------------------------------------------------------------

    @property
    def fft_size(self) -> int:
        """fftSize: a power of two from 32 to 32768 (default 2048). Setting it resets
        the smoothing."""
        with self._use() as ptr:
            return int(lib.millis_analyser_fft_size(ptr))

    @fft_size.setter
    def fft_size(self, value: int) -> None:
        with self._use() as ptr, _setter_lock:
            self._check(ptr, lib.millis_analyser_set_fft_size(ptr, _uint(value, "fft_size")))

    def set_fft_size(self, value: int) -> None:
        """Same as ``analyser.fft_size = value``."""
        self.fft_size = value

    @property
    def frequency_bin_count(self) -> int:
        """frequencyBinCount: fft_size / 2, the length of the frequency data."""
        with self._use() as ptr:
            return int(lib.millis_analyser_frequency_bin_count(ptr))

    @property
    def min_decibels(self) -> float:
        """minDecibels: the dB value mapped to byte 0 (default -100)."""
        with self._use() as ptr:
            return float(lib.millis_analyser_min_decibels(ptr))

    @min_decibels.setter
    def min_decibels(self, value: float) -> None:
        with self._use() as ptr, _setter_lock:
            high = lib.millis_analyser_max_decibels(ptr)
            self._check(ptr, lib.millis_analyser_set_decibel_range(ptr, float(value), high))

    @property
    def max_decibels(self) -> float:
        """maxDecibels: the dB value mapped to byte 255 (default -30)."""
        with self._use() as ptr:
            return float(lib.millis_analyser_max_decibels(ptr))

    @max_decibels.setter
    def max_decibels(self, value: float) -> None:
        with self._use() as ptr, _setter_lock:
            low = lib.millis_analyser_min_decibels(ptr)
            self._check(ptr, lib.millis_analyser_set_decibel_range(ptr, low, float(value)))

    def set_decibel_range(self, min_decibels: float, max_decibels: float) -> None:
        """Sets both ends of the byte mapping at once (finite, min < max)."""
        with self._use() as ptr, _setter_lock:
            self._check(ptr, lib.millis_analyser_set_decibel_range(
                ptr, float(min_decibels), float(max_decibels)))

    @property
    def smoothing_time_constant(self) -> float:
        """smoothingTimeConstant in [0, 1] (default 0.8)."""
        with self._use() as ptr:
            return float(lib.millis_analyser_smoothing_time_constant(ptr))

    @smoothing_time_constant.setter
    def smoothing_time_constant(self, value: float) -> None:
        with self._use() as ptr, _setter_lock:
            self._check(ptr, lib.millis_analyser_set_smoothing_time_constant(ptr, float(value)))

    @property
    def rms_dbfs(self) -> float:
        """The RMS level of the last fft_size samples in dBFS (full-scale sine: -3.01;
        silence: -120)."""
        with self._use() as ptr:
            return float(lib.millis_analyser_rms_dbfs(ptr))

    @property
    def sample_rate(self) -> float:
        """The audio's rate in Hz: the standalone analyser's own, 16000 for a client's.
        Bin i of the frequency data is centred on ``i * sample_rate / fft_size`` Hz."""
        return self._sample_rate

    @property
    def kind(self) -> str:
        """"standalone", "agent" or "user"."""
        return self._kind

    # --- data -------------------------------------------------------------------------

    def _get(self, fn: Any, size_fn: Any, floats: bool) -> Any:
        with self._use() as ptr:
            n = int(size_fn(ptr))
            if _np is not None:
                out = _np.empty(n, dtype=_np.float32 if floats else _np.uint8)
                written = fn(ptr, out.ctypes.data if n else None, n)
                return out if written == n else out[:written].copy()
            if floats:
                buf = array.array("f", [0.0]) * n
                written = fn(ptr, buf.buffer_info()[0] if n else None, n)
                if written < n:
                    del buf[written:]
                return buf
            raw = ctypes.create_string_buffer(n)
            written = fn(ptr, raw, n)
            return raw.raw[:written]

    def byte_frequency_data(self) -> Any:
        """getByteFrequencyData: frequency_bin_count values, the dB spectrum scaled from
        [min_decibels, max_decibels] to [0, 255]. Each call computes a fresh frame and
        advances the smoothing once (call one frequency getter per displayed frame).
        numpy ``uint8`` array, or ``bytes`` without numpy."""
        return self._get(lib.millis_analyser_get_byte_frequency_data,
                         lib.millis_analyser_frequency_bin_count, floats=False)

    def float_frequency_data(self) -> Any:
        """getFloatFrequencyData: frequency_bin_count values in dB (-inf for a silent
        bin); advances the smoothing like :meth:`byte_frequency_data`.
        numpy ``float32`` array, or ``array.array('f')`` without numpy."""
        return self._get(lib.millis_analyser_get_float_frequency_data,
                         lib.millis_analyser_frequency_bin_count, floats=True)

    def byte_time_domain_data(self) -> Any:
        """getByteTimeDomainData: the last fft_size samples, oldest first, as
        128 * (1 + x). numpy ``uint8`` array, or ``bytes`` without numpy."""
        return self._get(lib.millis_analyser_get_byte_time_domain_data,
                         lib.millis_analyser_fft_size, floats=False)

    def float_time_domain_data(self) -> Any:
        """getFloatTimeDomainData: the last fft_size samples, oldest first, in [-1, 1].
        numpy ``float32`` array, or ``array.array('f')`` without numpy."""
        return self._get(lib.millis_analyser_get_float_time_domain_data,
                         lib.millis_analyser_fft_size, floats=True)


def _uint(value: Any, what: str) -> int:
    """An int for a C ``unsigned int`` parameter (which ctypes would silently wrap)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__index__"):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if isinstance(value, float) and not (math.isfinite(value) and value == int(value)):
        raise MillisError(Status.INVALID_ARGUMENT, f"{what} {value!r} is not a whole number")
    number = int(value)
    if not 0 <= number <= 0xFFFFFFFF:
        raise MillisError(Status.INVALID_ARGUMENT, f"{what} {number} is out of range")
    return number


def _after_fork_in_child() -> None:
    """Called by the client module's os.register_at_fork hook, in the child."""
    global _setter_lock
    _setter_lock = threading.Lock()
    for gate in list(_gates):
        gate._reset_after_fork()
