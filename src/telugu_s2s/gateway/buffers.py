"""Small per-call buffers: recent input audio (prefix padding) and the outbound queue."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class AudioHistory:
    """The most recent `capacity` samples of a stream, addressed by absolute sample index."""

    def __init__(self, rate: int, capacity: int) -> None:
        self.rate = rate
        self.capacity = max(1, capacity)
        self._buf = np.zeros(0, dtype=np.int16)
        self._start = 0  # absolute index of _buf[0]

    @property
    def end(self) -> int:
        return self._start + len(self._buf)

    def index_at_ms(self, ms: float) -> int:
        return round(ms * self.rate / 1000.0)

    def append(self, samples: np.ndarray, keep_from: int | None = None) -> None:
        """Append; drop what is older than `capacity` (but nothing from `keep_from` on)."""
        self._buf = np.concatenate([self._buf, np.asarray(samples, dtype=np.int16)])
        drop_to = self.end - self.capacity
        if keep_from is not None:
            drop_to = min(drop_to, keep_from)
        if drop_to > self._start:
            self._buf = self._buf[drop_to - self._start :]
            self._start = drop_to

    def slice(self, start: int, stop: int | None = None) -> tuple[np.ndarray, int]:
        """Samples [start, stop) that are still held; returns (samples, stop index used)."""
        stop = self.end if stop is None else min(stop, self.end)
        start = max(start, self._start)
        if stop <= start:
            return np.zeros(0, dtype=np.int16), max(stop, start)
        return self._buf[start - self._start : stop - self._start], stop


class OutboxOverflow(Exception):
    pass


@dataclass
class Barrier:
    """Set by the writer once everything queued before it has been written or skipped."""

    event: asyncio.Event = field(default_factory=asyncio.Event)


CLOSED = object()


class Outbox:
    """What the call writes to the caller, in two lanes.

    Events (SpeechStarted, errors, ...) never wait and go before queued audio, so a
    barge-in is announced at once; audio is bounded (back-pressure on the reply
    pipeline when the caller reads slowly). Barriers travel in the audio lane.
    """

    def __init__(self, audio_items: int = 32, max_events: int = 1024) -> None:
        self._events: deque[Any] = deque()
        self._audio: deque[Any] = deque()
        self._audio_max = audio_items
        self._max_events = max_events
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._closed = False

    def put_event(self, item: Any) -> None:
        if len(self._events) >= self._max_events:
            raise OutboxOverflow(f"{len(self._events)} events are waiting; the caller is not reading the stream")
        self._events.append(item)
        self._wake.set()

    async def put_audio(self, item: Any) -> None:
        while len(self._audio) >= self._audio_max:
            self._space.clear()
            await self._space.wait()
        self._audio.append(item)
        self._wake.set()

    async def barrier(self) -> None:
        b = Barrier()
        self._audio.append(b)  # never blocks: a barrier is tiny and must not deadlock
        self._wake.set()
        await b.event.wait()

    def close(self, discard: bool = False) -> None:
        """No more items; the reader gets CLOSED after what is queued (or at once with discard)."""
        self._closed = True
        if discard:
            for item in self._audio:
                if isinstance(item, Barrier):
                    item.event.set()
            self._events.clear()
            self._audio.clear()
        self._wake.set()
        self._space.set()

    def take_event(self) -> Any | None:
        """The oldest queued event, or None."""
        return self._events.popleft() if self._events else None

    async def wait_event(self, timeout: float) -> None:
        """Returns once an event is queued (or anything else wakes the reader), or after `timeout` s."""
        if self._events:
            return
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            pass

    async def get(self) -> Any:
        while True:
            if self._events:
                return self._events.popleft()
            if self._audio:
                item = self._audio.popleft()
                self._space.set()
                return item
            if self._closed:
                return CLOSED
            self._wake.clear()
            await self._wake.wait()
