"""Micro-batching engine: advances the pending frames of all active streams together.

Streams submit jobs (whole frames of audio to encode, or frames of codes to decode) from the
event loop. One collector task takes a free worker slot, gathers the pending jobs (waiting at
most `batch_wait_s` after the oldest one arrived, or until `max_batch` streams are pending),
and runs them in a bounded thread pool. Torch never runs on the event loop.

A stream has at most one job in flight (its session awaits each job), so its state is never
touched by two threads at once. Jobs of different lengths are advanced together for the
common number of frames, then the longer ones continue (fewer streams per step); each job's
result goes back to its stream as soon as its own frames are done, not when the batch is.

A model step costs much less per frame for several frames than for one (the layers' per-call
work dominates at these sizes), so sessions hand the model groups of frames: an encode stream
waits until `encode_min_frames` frames are pending, and a decode stream, once the first
`decode_lead_frames` frames of a reply are out (they go at once: they are the reply's latency),
waits for `decode_min_frames`. A segment's end takes whatever is pending, and so does `force`,
which the server uses when frames have been held for its longest hold with nothing new arriving.

With `urgent_lane`, urgent jobs (a segment's end, a reply's first frames: someone is waiting on
them now) have a lane of their own, with its own collector and its own torch thread, so they
never wait behind a large step of the bulk lane.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch

from telugu_s2s.codec.metrics import CodecMetrics
from telugu_s2s.codec.streaming import StreamingCodec, StreamState

log = logging.getLogger(__name__)

ENCODE = "encode"
DECODE = "decode"


class EngineClosedError(RuntimeError):
    pass


@dataclass
class _Job:
    op: str
    state: StreamState
    data: np.ndarray  # encode: float32 [n*hop]; decode: int64 [K, n]
    n: int
    future: asyncio.Future
    t_enq: float
    urgent: bool = False  # someone waits on it now (a segment's end, a reply's first audio)
    pos: int = 0
    out: list = field(default_factory=list)


class _Lane:
    """Pending jobs, the collector's signals and the torch threads of one lane."""

    def __init__(self, name: str, workers: int) -> None:
        self.name = name
        self.pending: deque[_Job] = deque()
        self.has_work = asyncio.Event()
        self.full = asyncio.Event()
        self.slots = asyncio.Semaphore(workers)
        # Each worker runs torch with one intra-op thread: parallelism = number of workers.
        self.executor = ThreadPoolExecutor(
            workers, thread_name_prefix=f"codec-{name}", initializer=torch.set_num_threads, initargs=(1,)
        )
        self.collector: asyncio.Task | None = None


class CodecEngine:
    def __init__(
        self,
        codec: StreamingCodec,
        *,
        workers: int = 1,
        max_batch: int = 32,
        batch_wait_s: float = 0.002,
        encode_min_frames: int = 1,
        decode_min_frames: int = 1,
        decode_lead_frames: int = 0,
        urgent_lane: bool = False,
        metrics: CodecMetrics | None = None,
    ) -> None:
        if workers < 1 or max_batch < 1 or batch_wait_s < 0:
            raise ValueError("workers and max_batch must be >= 1 and batch_wait_s >= 0")
        if encode_min_frames < 1 or decode_min_frames < 1 or decode_lead_frames < 0:
            raise ValueError("encode_min_frames and decode_min_frames must be >= 1, decode_lead_frames >= 0")
        self.encode_min_frames = encode_min_frames
        self.decode_min_frames = decode_min_frames
        self.decode_lead_frames = decode_lead_frames
        self.codec = codec
        self.workers = workers
        self.max_batch = max_batch
        self.batch_wait_s = batch_wait_s
        self.metrics = metrics
        self._bulk = _Lane("torch", workers)
        self._urgent = _Lane("urgent", 1) if urgent_lane else self._bulk
        self._lanes = [self._bulk] if self._urgent is self._bulk else [self._bulk, self._urgent]
        self._tasks: set[asyncio.Task] = set()
        self._closed = False
        self._streams: dict[int, _Session] = {}
        self._ids = itertools.count()

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for lane in self._lanes:
            if lane.collector is None:
                lane.collector = loop.create_task(self._collect(lane), name=f"codec-batcher-{lane.name}")

    async def close(self) -> None:
        self._closed = True
        for lane in self._lanes:
            if lane.collector is not None:
                lane.collector.cancel()
                try:
                    await lane.collector
                except asyncio.CancelledError:
                    pass
        for t in list(self._tasks):
            try:
                await t
            except Exception:  # noqa: BLE001 - already delivered to the job futures
                pass
        for lane in self._lanes:
            while lane.pending:
                job = lane.pending.popleft()
                if not job.future.done():
                    job.future.set_exception(EngineClosedError("codec engine is shutting down"))
            await asyncio.get_running_loop().run_in_executor(None, lane.executor.shutdown, True)

    async def warm_up(self) -> None:
        """One encode and one decode pass on throwaway state (first-call costs paid here)."""
        enc = self.open_encoder()
        dec = self.open_decoder()
        try:
            audio = np.zeros(self.codec.hop * 2, dtype=np.float32)
            codes = await self.encode(enc.live_state(), audio)
            await self.decode(dec.live_state(), codes)
        finally:
            enc.close()
            dec.close()

    # ------------------------------------------------------------ streams
    @property
    def active_streams(self) -> int:
        return len(self._streams)

    def open_encoder(self) -> EncodeSession:
        return EncodeSession(self)

    def open_decoder(self) -> DecodeSession:
        return DecodeSession(self)

    def _register(self, session: _Session) -> int:
        sid = next(self._ids)
        self._streams[sid] = session
        if self.metrics:
            self.metrics.active_streams.labels(session.op).inc()
        return sid

    def _unregister(self, sid: int, op: str) -> None:
        if self._streams.pop(sid, None) is not None and self.metrics:
            self.metrics.active_streams.labels(op).dec()

    # ------------------------------------------------------------ jobs
    async def encode(self, state: StreamState, audio: np.ndarray, urgent: bool = False) -> np.ndarray:
        """Whole frames of float audio [n*hop] -> codes [K, n] (advances `state`). An `urgent`
        job is computed ahead of the others of its batch."""
        n = audio.shape[0] // self.codec.hop
        if n * self.codec.hop != audio.shape[0]:
            raise ValueError(f"encode needs whole frames of {self.codec.hop} samples")
        if n == 0:
            return np.zeros((self.codec.n_codebooks, 0), dtype=np.int64)
        return await self._submit(ENCODE, state, audio, n, urgent)

    async def decode(self, state: StreamState, codes: np.ndarray, urgent: bool = False) -> np.ndarray:
        """Codes [K, n] -> float audio [n*hop] (advances `state`); `urgent` as for encode."""
        n = codes.shape[1]
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        return await self._submit(DECODE, state, codes, n, urgent)

    async def _submit(self, op: str, state: StreamState, data: np.ndarray, n: int, urgent: bool = False):
        if self._closed:
            raise EngineClosedError("codec engine is shutting down")
        loop = asyncio.get_running_loop()
        job = _Job(op, state, data, n, loop.create_future(), loop.time(), urgent=urgent)
        lane = self._urgent if urgent else self._bulk
        lane.pending.append(job)
        lane.has_work.set()
        if len(lane.pending) >= self.max_batch:
            lane.full.set()
        return await job.future

    async def _collect(self, lane: _Lane) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await lane.slots.acquire()
            try:
                while not lane.pending:
                    lane.has_work.clear()
                    await lane.has_work.wait()
                deadline = lane.pending[0].t_enq + self.batch_wait_s
                remaining = deadline - loop.time()
                if remaining > 0 and len(lane.pending) < self.max_batch:
                    lane.full.clear()
                    try:
                        await asyncio.wait_for(lane.full.wait(), remaining)
                    except TimeoutError:
                        pass
                batch: list[_Job] = []
                while lane.pending and len(batch) < self.max_batch:
                    job = lane.pending.popleft()
                    if not job.future.done():  # a cancelled stream's job is dropped
                        batch.append(job)
                if not lane.pending:
                    lane.full.clear()
            except BaseException:
                lane.slots.release()
                raise
            if not batch:
                lane.slots.release()
                continue
            if self.metrics:
                now = loop.time()
                for job in batch:
                    self.metrics.queue_wait.labels(job.op).observe(now - job.t_enq)
            task = loop.create_task(self._run_batch(lane, batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run_batch(self, lane: _Lane, batch: list[_Job]) -> None:
        loop = asyncio.get_running_loop()
        try:
            try:
                await loop.run_in_executor(lane.executor, self._compute, batch, loop)
            except Exception as exc:
                log.exception("codec batch failed")
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)
                return
            for job in batch:
                self._deliver(job)
        finally:
            lane.slots.release()

    def _result(self, job: _Job) -> np.ndarray:
        if job.op == ENCODE:
            return np.concatenate(job.out, axis=1)
        return np.concatenate(job.out)

    # ------------------------------------------------------------ worker thread
    def _compute(self, batch: list[_Job], loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Urgent jobs first (each op in one step group), then the rest."""
        for urgent in (True, False):
            for op in (DECODE, ENCODE):
                jobs = [j for j in batch if j.op == op and j.urgent == urgent]
                if jobs:
                    self._compute_op(op, jobs, loop)

    def _deliver(self, job: _Job) -> None:
        """On the event loop: a finished job's result, unless its stream gave up on it."""
        if not job.future.done():
            job.future.set_result(self._result(job))

    def _compute_op(self, op: str, jobs: list[_Job], loop: asyncio.AbstractEventLoop | None = None) -> None:
        hop = self.codec.hop
        frames = 0
        while True:
            active = [j for j in jobs if j.pos < j.n]
            if not active:
                break
            t = min(j.n - j.pos for j in active)
            states = [j.state for j in active]
            t_step, cpu_step = time.perf_counter(), time.thread_time()
            if op == ENCODE:
                x = torch.from_numpy(np.stack([j.data[j.pos * hop : (j.pos + t) * hop] for j in active]))
                codes = self.codec.encode_batch(x, states).numpy()
                for j, c in zip(active, codes):
                    j.out.append(c)
            else:
                c = torch.from_numpy(np.stack([j.data[:, j.pos : j.pos + t] for j in active]))
                audio = self.codec.decode_batch(c, states).numpy()
                for j, a in zip(active, audio):
                    j.out.append(a)
            for j in active:
                j.pos += t
                if j.pos == j.n and loop is not None:  # done: its stream goes on while longer jobs step
                    loop.call_soon_threadsafe(self._deliver, j)
            frames += t * len(active)
            if self.metrics:
                dt = time.perf_counter() - t_step
                self.metrics.compute_cpu.labels(op).inc(time.thread_time() - cpu_step)
                self.metrics.batch_size.labels(op).observe(len(active))
                self.metrics.batch_compute.labels(op).observe(dt)
                audio_s = t * hop / self.codec.sample_rate * len(active)
                self.metrics.rtf.labels(op).observe(dt / audio_s)
        if self.metrics:
            self.metrics.frames.labels(op).inc(frames)
            self.metrics.audio_seconds.labels(op).inc(frames * hop / self.codec.sample_rate)


class _Session:
    op = ""

    def __init__(self, engine: CodecEngine, state: StreamState) -> None:
        self.engine = engine
        self.state: StreamState | None = state
        self._sid = engine._register(self)

    def live_state(self) -> StreamState:
        """The stream's model state; an error once the stream was closed."""
        if self.state is None:
            raise RuntimeError("the codec stream was closed")
        return self.state

    def close(self) -> None:
        """Free the model state and leave the registry (idempotent)."""
        self.state = None
        self.engine._unregister(self._sid, self.op)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class EncodeSession(_Session):
    """One Encode stream: int16 PCM in any chunk size -> code frames as soon as complete."""

    op = ENCODE

    def __init__(self, engine: CodecEngine) -> None:
        super().__init__(engine, engine.codec.new_encoder_state())
        self._buf = np.zeros(0, dtype=np.float32)
        self.next_frame = 0  # index (in the segment) of the next frame to emit
        self.segment_samples = 0

    @property
    def held_frames(self) -> int:
        """Complete frames waiting for `encode_min_frames` (0 = nothing held)."""
        return self._buf.size // self.engine.codec.hop

    async def push(self, pcm: np.ndarray, force: bool = False) -> tuple[int, np.ndarray]:
        """Add int16 samples; returns (first_frame, codes [K, n]) for the completed frames, once
        at least the engine's `encode_min_frames` are pending or `force` (none before)."""
        hop = self.engine.codec.hop
        if pcm.size:
            self._buf = np.concatenate([self._buf, pcm.astype(np.float32) / 32768.0])
            self.segment_samples += pcm.size
        n = self._buf.size // hop
        first = self.next_frame
        if n == 0 or (n < self.engine.encode_min_frames and not force):
            return first, np.zeros((self.engine.codec.n_codebooks, 0), dtype=np.int64)
        chunk, self._buf = self._buf[: n * hop], self._buf[n * hop :]
        codes = await self.engine.encode(self.live_state(), chunk, urgent=force)
        self.next_frame += n
        return first, codes

    async def end_segment(self) -> tuple[int, np.ndarray]:
        """Encode what is pending, the last partial frame padded with zeros; emit it, reset for
        the next segment."""
        hop = self.engine.codec.hop
        first = self.next_frame
        if self._buf.size:
            padded = np.zeros(-(-self._buf.size // hop) * hop, dtype=np.float32)
            padded[: self._buf.size] = self._buf
            codes = await self.engine.encode(self.live_state(), padded, urgent=True)
        else:
            codes = np.zeros((self.engine.codec.n_codebooks, 0), dtype=np.int64)
        self.reset()
        return first, codes

    def reset(self) -> None:
        self.state = self.engine.codec.new_encoder_state()
        self._buf = np.zeros(0, dtype=np.float32)
        self.next_frame = 0
        self.segment_samples = 0


class DecodeSession(_Session):
    """One Decode stream: code frames in -> float audio, hop samples per frame."""

    op = DECODE

    def __init__(self, engine: CodecEngine) -> None:
        super().__init__(engine, engine.codec.new_decoder_state())
        self.next_sample = 0
        self.segment_frames = 0  # received in this segment, decoded or pending
        self._pending: list[np.ndarray] = []
        self._pending_frames = 0

    @property
    def held_frames(self) -> int:
        """Frames waiting for `decode_min_frames` (0 = nothing held)."""
        return self._pending_frames

    async def push(self, codes: np.ndarray, force: bool = False) -> tuple[int, np.ndarray]:
        """Codes [K, n] -> (first_sample, float audio): hop samples per frame decoded now. The
        segment's first `decode_lead_frames` frames are decoded at once; after them, frames
        wait until `decode_min_frames` are pending, or `force` (the segment's end, or frames
        held too long)."""
        first = self.next_sample
        if codes.shape[1]:
            self._pending.append(codes)
            self._pending_frames += codes.shape[1]
            self.segment_frames += codes.shape[1]
        leading = self.segment_frames - self._pending_frames < self.engine.decode_lead_frames
        if not self._pending_frames or not (force or leading or self._pending_frames >= self.engine.decode_min_frames):
            return first, np.zeros(0, dtype=np.float32)
        first_audio = self.segment_frames == self._pending_frames  # nothing of this reply decoded yet
        block = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending, axis=1)
        self._pending, self._pending_frames = [], 0
        audio = await self.engine.decode(self.live_state(), block, urgent=force or leading or first_audio)
        self.next_sample += audio.size
        return first, audio

    def reset(self) -> None:
        self.state = self.engine.codec.new_decoder_state()
        self.next_sample = 0
        self.segment_frames = 0
        self._pending, self._pending_frames = [], 0
