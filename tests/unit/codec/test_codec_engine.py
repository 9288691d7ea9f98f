"""CodecEngine with a stand-in codec: when each job's result goes back to its stream."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import numpy as np
import torch

from telugu_s2s.codec.engine import CodecEngine


class _SlowCodec:
    """Decodes a frame to `hop` samples of its code value; each step takes `step_s`."""

    hop = 4
    n_codebooks = 1
    sample_rate = 16000

    def __init__(self, step_s: float, per_frame: bool = False) -> None:
        self.step_s = step_s
        self.per_frame = per_frame  # a step takes step_s per frame, not per step
        self.steps: list[tuple[int, int]] = []  # (streams, frames) per step
        self.lock = threading.Lock()

    def new_decoder_state(self):
        return object()

    def decode_batch(self, codes: torch.Tensor, states) -> torch.Tensor:
        with self.lock:
            self.steps.append((codes.shape[0], codes.shape[2]))
        time.sleep(self.step_s * (codes.shape[2] if self.per_frame else 1))
        return codes[:, 0].float().repeat_interleave(self.hop, dim=1)


@contextlib.asynccontextmanager
async def _engine(step_s: float, per_frame: bool = False, **options):
    """A started engine over a `_SlowCodec` (batches wait 20 ms for company): (engine, codec)."""
    codec = _SlowCodec(step_s, per_frame)
    engine = CodecEngine(codec, batch_wait_s=0.02, **options)  # type: ignore[arg-type]
    await engine.start()
    try:
        yield engine, codec
    finally:
        await engine.close()


async def test_a_short_job_is_answered_before_the_long_job_it_was_batched_with_ends():
    async with _engine(step_s=0.05) as (engine, codec):
        short, long = engine.open_decoder(), engine.open_decoder()
        done: dict[str, float] = {}

        async def run(name: str, session, n: int) -> np.ndarray:
            _, audio = await session.push(np.full((1, n), 7 if name == "short" else 9))
            done[name] = time.perf_counter()
            return audio

        a, b = await asyncio.gather(run("short", short, 1), run("long", long, 4))
        # one batch: both streams for their common frame, then the long one alone for its other 3
        assert codec.steps == [(2, 1), (1, 3)]
        assert np.array_equal(a, np.full(4, 7.0)) and np.array_equal(b, np.full(16, 9.0))
        assert done["long"] - done["short"] >= 0.04  # the short one did not wait for the second step


async def test_a_replys_first_frames_are_computed_ahead_of_the_rest_of_their_batch():
    async with _engine(step_s=0.03) as (engine, codec):
        going, new = engine.open_decoder(), engine.open_decoder()
        await going.push(np.full((1, 1), 1))  # this reply's first audio is out already
        codec.steps.clear()
        done: dict[str, float] = {}

        async def run(name: str, session, n: int) -> None:
            await session.push(np.full((1, n), 5))
            done[name] = time.perf_counter()

        await asyncio.gather(run("going", going, 4), run("new", new, 1))
        # one batch; the new reply's first frame is urgent: its own step first, then the rest
        assert codec.steps == [(1, 1), (1, 4)]
        assert done["going"] - done["new"] >= 0.02


async def test_with_an_urgent_lane_a_replys_first_frame_does_not_wait_for_a_running_step():
    for lane, first_before_bulk_ends in ((True, True), (False, False)):
        async with _engine(step_s=0.03, per_frame=True, urgent_lane=lane) as (engine, codec):
            going, new = engine.open_decoder(), engine.open_decoder()
            await going.push(np.full((1, 1), 1))  # this reply's first audio is out already
            done: dict[str, float] = {}

            async def run(name: str, session, n: int, delay: float) -> np.ndarray:
                await asyncio.sleep(delay)
                _, audio = await session.push(np.full((1, n), 5 if name == "new" else 6))
                done[name] = time.perf_counter()
                return audio

            # the bulk step starts first; the new reply's first frame arrives while it runs
            bulk, first = await asyncio.gather(run("going", going, 8, 0.0), run("new", new, 1, 0.04))
            assert np.array_equal(first, np.full(4, 5.0)) and np.array_equal(bulk, np.full(32, 6.0))
            assert (done["new"] < done["going"]) is first_before_bulk_ends, lane
