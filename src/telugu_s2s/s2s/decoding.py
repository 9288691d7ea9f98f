"""Incremental decoding: per-request state, a batched decode engine, and `generate`.

`DecodeEngine` keeps every active stream's keys/values in one `KVCache` (active streams in
slots 0..n-1) and advances all of them with ONE batched forward per step; streams join
(prefill) and leave (EOS, max frames, cancel) between steps. `generate` runs a single stream
on it; the Triton model runs many (continuous batching).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from telugu_s2s.s2s.config import S2SConfig
from telugu_s2s.s2s.layout import build_prefix
from telugu_s2s.s2s.network import KVCache, S2STransformer
from telugu_s2s.s2s.protocol import GenerationParams


def validate_params(params: GenerationParams) -> None:
    if params.max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {params.max_frames}")
    if not np.isfinite(params.temperature) or params.temperature < 0:
        raise ValueError(f"temperature must be a finite number >= 0 (0 = greedy), got {params.temperature}")
    if params.top_k < 0:
        raise ValueError(f"top_k must be >= 0 (0 = no filter), got {params.top_k}")
    if params.frames_per_response < 1:
        raise ValueError(f"frames_per_response must be >= 1, got {params.frames_per_response}")
    if params.max_frames_per_response and params.max_frames_per_response < params.frames_per_response:
        raise ValueError(
            f"max_frames_per_response must be 0 or >= frames_per_response ({params.frames_per_response}), "
            f"got {params.max_frames_per_response}"
        )


class ReplyStream:
    """Decoding state of one reply under the delay pattern.

    Step s samples column D[:, s]; codebook q of frame t is sampled at step t + q, so frame t
    is complete after step t + K - 1. EOS on codebook 0 at step R ends the reply at R frames;
    the remaining steps only finish the upper codebooks of the last frames.
    """

    def __init__(self, cfg: S2SConfig, prefix: np.ndarray, voice_index: int, params: GenerationParams, tag=None):
        validate_params(params)
        if not 0 <= voice_index < cfg.n_voices:
            raise ValueError(f"voice index {voice_index} out of range [0, {cfg.n_voices})")
        self.cfg = cfg
        self.prefix = prefix
        self.voice_index = int(voice_index)
        self.params = params
        self.tag = tag
        self.prefix_len = prefix.shape[1]
        room = cfg.max_seq_len - self.prefix_len - cfg.drain_steps
        self.max_frames = min(params.max_frames, cfg.max_reply_frames, room)
        if self.max_frames < 1:
            raise ValueError("no room for a reply: the user turn plus context fill max_seq_len")
        self.generator: torch.Generator | None = None
        if params.temperature > 0:
            self.generator = torch.Generator().manual_seed(int(params.seed))
        self.steps = 0  # columns sampled so far
        self.n_frames: int | None = None  # R, known once EOS is sampled
        self.columns: list[np.ndarray] = []
        self.emitted = 0
        self.block = params.frames_per_response  # frames in the next response
        self.slot = -1
        self.done = False
        self.stopped_early = False

    # -- engine interface
    @property
    def next_input(self) -> np.ndarray:
        return self.columns[-1]

    @property
    def next_position(self) -> int:
        """Sequence position of `next_input` (= positions already in the KV cache)."""
        return self.prefix_len + self.steps - 1

    def consume(self, logits: torch.Tensor) -> None:
        """Sample column D[:, steps] from logits [K, V+1] (CPU) and advance."""
        cfg, p = self.cfg, self.params
        k, v, s = cfg.n_codebooks, cfg.codebook_size, self.steps
        lg = logits.float().clone()
        lg[1:, v] = float("-inf")  # EOS only on codebook 0
        if s == 0:
            lg[0, v] = float("-inf")  # at least one frame
        if self.generator is None:
            tok = lg.argmax(-1)
        else:
            lg = lg / p.temperature
            if 0 < p.top_k < lg.shape[-1]:
                kth = torch.topk(lg, p.top_k, dim=-1).values[:, -1:]
                lg = lg.masked_fill(lg < kth, float("-inf"))
            tok = torch.multinomial(torch.softmax(lg, -1), 1, generator=self.generator)[:, 0]
        col = tok.numpy().astype(np.int64)
        r = self.n_frames
        for q in range(k):
            if s < q:
                col[q] = cfg.delay
            elif r is not None and s - q >= r:
                col[q] = cfg.pad
            elif q == 0 and s == self.max_frames:
                col[q] = cfg.eos
        if r is None and col[0] == cfg.eos:
            self.n_frames = r = s
        self.columns.append(col)
        self.steps += 1
        if r is not None and self.steps >= r + cfg.drain_steps:
            self.done = True

    def stop(self) -> None:
        """Cancel: no more steps; frames already complete can still be popped."""
        self.stopped_early = not self.done
        self.done = True

    # -- output
    def ready_frames(self) -> int:
        ready = max(0, self.steps - self.cfg.n_codebooks + 1)
        if self.n_frames is not None:
            ready = min(ready, self.n_frames)
        return ready

    def pop_blocks(self) -> list[np.ndarray]:
        """Complete frames not yet emitted, as int32 [K, n] blocks of `block` frames (the last
        may be shorter once the stream is done). `block` starts at frames_per_response and, with
        max_frames_per_response, doubles after each full block up to it."""
        p = self.params
        ready = self.ready_frames()
        out = []
        while ready - self.emitted >= self.block or (self.done and ready > self.emitted):
            n = min(self.block, ready - self.emitted)
            t0 = self.emitted
            block = np.stack(
                [np.array([self.columns[t + q][q] for t in range(t0, t0 + n)]) for q in range(self.cfg.n_codebooks)]
            )
            out.append(block.astype(np.int32))
            self.emitted += n
            if n == self.block and p.max_frames_per_response:
                self.block = min(2 * self.block, p.max_frames_per_response)
        return out


class DecodeEngine:
    """Batched incremental decoding of many ReplyStreams over one KV cache."""

    def __init__(self, model: S2STransformer, initial_slots: int = 4) -> None:
        self.model = model.eval()
        self.cfg = model.cfg
        self.device = next(model.parameters()).device
        self.cache = KVCache(self.cfg, initial_slots, self.device, next(model.parameters()).dtype)
        self.active: list[ReplyStream] = []

    def __len__(self) -> int:
        return len(self.active)

    def add(self, stream: ReplyStream) -> None:
        """Prefill the stream's prefix into a free slot and sample its first column."""
        n = len(self.active)
        if n >= self.cache.slots:
            self.cache.grow(2 * self.cache.slots)
        tokens = torch.from_numpy(stream.prefix).to(self.device)
        logits = self.model.prefill(tokens, stream.voice_index, self.cache, n)
        stream.slot = n
        self.active.append(stream)
        stream.consume(logits.cpu())
        if stream.done:
            self.remove(stream)

    def step(self) -> None:
        """One batched decode step for all active streams; finished ones leave."""
        if not self.active:
            return
        tokens = torch.from_numpy(np.stack([s.next_input for s in self.active])).to(self.device)
        positions = torch.tensor([s.next_position for s in self.active], device=self.device)
        logits = self.model.decode_step(tokens, positions, self.cache).cpu()
        for stream, lg in zip(list(self.active), logits):
            stream.consume(lg)
        for stream in [s for s in self.active if s.done]:
            self.remove(stream)

    def remove(self, stream: ReplyStream) -> None:
        """Free the stream's slot (the last active stream moves into it)."""
        i = stream.slot
        if i < 0:
            return
        last = len(self.active) - 1
        if i != last:
            mover = self.active[last]
            self.cache.move(last, i, mover.next_position)
            mover.slot = i
            self.active[i] = mover
        self.active.pop()
        stream.slot = -1
        if not stream.done:
            stream.stop()


def generate(
    model: S2STransformer,
    user_codes: np.ndarray,
    voice_index: int,
    context_codes: np.ndarray | None = None,
    context_segments: np.ndarray | None = None,
    params: GenerationParams = GenerationParams(),
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[np.ndarray]:
    """Stream the reply to one user turn as int32 [K, n] blocks (n <= frames_per_response).

    Greedy when params.temperature == 0, else temperature/top-k sampling seeded by
    params.seed. Stops at EOS, at max frames, or within one step of should_stop() -> True.
    Input errors raise ValueError here, before the first block.
    """
    cfg = model.cfg
    prefix = build_prefix(cfg, user_codes, context_codes, context_segments)
    stream = ReplyStream(cfg, prefix, voice_index, params)
    engine = DecodeEngine(model, initial_slots=1)

    def _run() -> Iterator[np.ndarray]:
        engine.add(stream)
        while True:
            yield from stream.pop_blocks()
            if stream.done:
                return
            if should_stop is not None and should_stop():
                engine.remove(stream)
                return
            engine.step()

    return _run()
