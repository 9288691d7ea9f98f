"""The paced output of one call: the only writer to the caller, and the playback position.

Two lanes (see buffers.Outbox): events go first and never wait; reply audio is bounded and
written at most `playback_lead_ms` ahead of real-time playback. Audio of a stopped reply is
dropped, so a barge-in stops audio within the chunk being written. A caller that takes no
message for `write_stall_s` ends the call (WriterStalled).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np

from telugu_s2s.gateway.buffers import CLOSED, Barrier, Outbox
from telugu_s2s.gateway.events import ResponseAudioEvent, ServerEvent

# At the end of a call, how long the write in flight may take before it is cancelled.
WRITER_STOP_S = 1.0


class WriterStalled(Exception):
    pass


@dataclass
class Reply:
    """What one turn's reply produced, and how much of it was written to the caller."""

    out_rate: int
    stopped: bool = False
    seq: int = 0
    sent_samples: int = 0  # written to the caller (up to playback_lead_ms ahead of playback)
    generated: list[np.ndarray] = field(default_factory=list)  # reply codes blocks, in order
    gen_error: BaseException | None = None
    gen_sent_t: float | None = None
    first_frame_t: float | None = None
    first_decode_sent_t: float | None = None
    first_audio_t: float | None = None
    first_write_t: float | None = None
    last_write_t: float | None = None

    @property
    def sent_ms(self) -> int:
        return round(1000.0 * self.sent_samples / self.out_rate)

    def heard_ms(self, at: float) -> int:
        """How much of the reply the caller had heard at perf_counter `at`: playback runs in real
        time from the first chunk written, and cannot pass what was sent."""
        if self.first_write_t is None:
            return 0
        return max(0, min(self.sent_ms, round(1000.0 * (at - self.first_write_t))))

    def ahead_s(self) -> float:
        """How far the written audio runs ahead of real-time playback (<= 0: all heard)."""
        if self.first_write_t is None:
            return 0.0
        return self.sent_samples / self.out_rate - (time.perf_counter() - self.first_write_t)


@dataclass
class _AudioItem:
    turn_id: str
    reply: Reply
    data: bytes
    n_samples: int


class PacedOutput:
    def __init__(
        self, send: Callable[[ServerEvent], Awaitable[None]], write_stall_s: float, playback_lead_ms: float
    ) -> None:
        self._send = send
        self._stall_s = write_stall_s
        self._lead_s = playback_lead_ms / 1000.0
        self._outbox = Outbox()
        self.task: asyncio.Task | None = None
        self._stalled: asyncio.Future | None = None

    def start(self) -> asyncio.Task:
        self.task = asyncio.create_task(self._write_loop(), name="call-writer")
        return self.task

    def put_event(self, event: ServerEvent) -> None:
        self._outbox.put_event(event)

    async def put_audio(self, turn_id: str, reply: Reply, data: bytes, n_samples: int) -> None:
        """Queue reply audio (waits while the audio lane is full)."""
        await self._outbox.put_audio(_AudioItem(turn_id, reply, data, n_samples))

    async def barrier(self) -> None:
        """Returns once everything queued so far was written, or dropped if its reply stopped."""
        await self._outbox.barrier()

    async def finish(self) -> None:
        """Write what is queued, then end the writer."""
        self._outbox.close()
        if self.task is not None:
            await self.task

    async def stop(self) -> None:
        """End the writer now. Cancelling a write in flight can leave the RPC unable to send its
        status, so the writer is asked to stop after its current write, and cancelled only if stuck."""
        writer = self.task
        if writer is None or writer.done():
            return
        self._outbox.close(discard=True)
        done, _ = await asyncio.wait({writer}, timeout=WRITER_STOP_S)
        if not done:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    async def _write_loop(self) -> None:
        while True:
            item = await self._outbox.get()
            if item is CLOSED:
                return
            if isinstance(item, _AudioItem):
                reply = item.reply
                if reply.stopped:
                    continue
                await self._pace(reply)
                if reply.stopped:  # barge-in while waiting: this audio is never heard
                    continue
                seq = reply.seq
                reply.seq += 1
                await self._send_bounded(ResponseAudioEvent(item.turn_id, seq, item.data))
                now = time.perf_counter()
                reply.sent_samples += item.n_samples
                if reply.first_write_t is None:
                    reply.first_write_t = now
                reply.last_write_t = now
            elif isinstance(item, Barrier):
                item.event.set()
            else:
                await self._send_bounded(item)

    async def _send_bounded(self, event: ServerEvent) -> None:
        """Write one message; WriterStalled when the caller takes nothing for write_stall_s.

        The write itself is not cancelled (that can leave the RPC unable to send its
        status): it stays pending until the RPC ends."""
        send = asyncio.ensure_future(self._send(event))
        done, _ = await asyncio.wait({send}, timeout=self._stall_s)
        if not done:
            self._stalled = send  # keep the pending write referenced until the RPC ends
            send.add_done_callback(lambda f: f.cancelled() or f.exception())  # ends with the RPC
            raise WriterStalled(f"the caller took no message for {self._stall_s:g} s (reply buffers are full)")
        send.result()

    async def _pace(self, reply: Reply) -> None:
        """Keep the written audio at most `playback_lead_ms` ahead of real-time playback. Events
        queued meanwhile (a barge-in's SpeechStarted) are written at once, not after the wait:
        a reply's chunk can be 256 ms of audio, and the caller stops playback on the event."""
        if not self._lead_s or reply.first_write_t is None:
            return
        while not reply.stopped:
            wait = reply.ahead_s() - self._lead_s
            if wait <= 0:
                return
            await self._outbox.wait_event(wait)
            while (event := self._outbox.take_event()) is not None:
                await self._send_bounded(event)
