"""The S2S transformer: a decoder-only transformer over codec tokens.

Sequence layout (one position = one *frame step*; all codebooks of a position are embedded
and summed, see docs/services/s2s.md):

    [VOICE] [context ...] [SEP] [user frame 0 .. T-1] [SEP] -> reply steps ... [EOS]

* Codebooks: a **delay pattern** (MusicGen-style). Reply step ``s`` predicts codebook ``q`` of
  frame ``s - q`` with one output head per codebook, so one decoding step per audio frame
  (plus ``K - 1`` steps to drain the delay) instead of ``K`` steps with flattened codebooks.
  Because codebook ``q`` of frame ``t`` is predicted one step after codebook ``q - 1`` of the
  same frame, it is conditioned on the lower codebooks of its frame.
* Voice: position 0 carries a learned voice embedding (``n_voices`` rows).
* Context: a bounded budget of positions built from the last <= 10 turns: for each segment
  (user or reply turn) a turn marker followed by every ``context_stride``-th first-codebook
  token. The newest segments are kept first; the oldest are dropped (the one that crosses the
  budget is cut, keeping its newest tokens).
* EOS: predicted on codebook 0 at the step right after the last frame.

Public API (kept stable; training and the Triton model use it):
  S2SConfig, S2STransformer, KVCache, save_checkpoint, load_checkpoint, load_model,
  random_model, build_prefix, build_context, TrainExample, TrainBatch, make_batch, loss,
  generate (implemented in ``telugu_s2s.s2s.decoding``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from telugu_s2s.s2s.protocol import GenerationParams, context_from_turns

log = logging.getLogger(__name__)

FORMAT = "telugu-s2s-s2s/1"
MAX_CONTEXT_TURNS = 10

# Special input tokens, offsets above codebook_size (same ids in every codebook).
EOS_OFFSET = 0  # also the output class index `codebook_size` of every head
PAD_OFFSET = 1  # filler (context positions of codebooks > 0, after a codebook finished)
SEP_OFFSET = 2
DELAY_OFFSET = 3  # reply steps before codebook q starts (s < q)
USER_TURN_OFFSET = 4
REPLY_TURN_OFFSET = 5
VOICE_OFFSET = 6
N_SPECIAL = 7


@dataclass(frozen=True)
class S2SConfig:
    n_codebooks: int = 2
    codebook_size: int = 1024
    n_layers: int = 4
    d_model: int = 256
    n_heads: int = 4
    ffn_mult: int = 4
    max_seq_len: int = 2048
    context_budget: int = 256  # positions (markers + tokens) given to earlier turns
    context_stride: int = 4  # keep every n-th first-codebook token of a context turn
    max_reply_frames: int = 600
    n_voices: int = 4
    dropout: float = 0.0  # embeddings and residual branches, training only
    frame_rate: float = 75.0  # codec frames per second (documentation, benchmarks)
    # Training only: classes of a linear head on the position that predicts the first reply
    # step (the SEP after the user turn). It learns which reply the turn asks for, so that
    # position has to carry what was said; generation never reads it. 0 = no head.
    aux_classes: int = 0
    # What helps the model hear the caller rather than recite (docs/training.md):
    # acoustic_dim > 0: every position also reads the codec's own dequantized latent of its
    # frame (the sum of its codes' codebook vectors, a frozen buffer copied from the codec)
    # through a learned projection, so frames that sound alike start out alike whoever speaks.
    acoustic_dim: int = 0
    # The voice embedding is added at the last prefix position (the SEP that predicts reply
    # step 0) too, next to where the reply starts, not only at position 0.
    voice_at_reply: bool = False
    # The prefix ([VOICE] [context] [SEP] [user] [SEP]) attends both ways: the whole user turn
    # is known at the end of speech, so each of its frames may read the ones after it. Reply
    # steps stay causal, and the KV-cache decode is unchanged (the prefix is one prefill).
    bidirectional_prefix: bool = False

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} must be divisible by n_heads {self.n_heads}")
        if self.n_codebooks < 1 or self.codebook_size < 2:
            raise ValueError("n_codebooks must be >= 1 and codebook_size >= 2")
        if self.context_budget < 0 or self.context_stride < 1:
            raise ValueError("context_budget must be >= 0 and context_stride >= 1")
        if self.max_seq_len < self.context_budget + 8:
            raise ValueError("max_seq_len is too small for the context budget")
        if self.acoustic_dim < 0:
            raise ValueError("acoustic_dim must be >= 0")

    # token ids
    @property
    def eos(self) -> int:
        return self.codebook_size + EOS_OFFSET

    @property
    def pad(self) -> int:
        return self.codebook_size + PAD_OFFSET

    @property
    def sep(self) -> int:
        return self.codebook_size + SEP_OFFSET

    @property
    def delay(self) -> int:
        return self.codebook_size + DELAY_OFFSET

    @property
    def user_turn(self) -> int:
        return self.codebook_size + USER_TURN_OFFSET

    @property
    def reply_turn(self) -> int:
        return self.codebook_size + REPLY_TURN_OFFSET

    @property
    def voice(self) -> int:
        return self.codebook_size + VOICE_OFFSET

    @property
    def in_vocab(self) -> int:
        return self.codebook_size + N_SPECIAL

    @property
    def out_vocab(self) -> int:
        """Output classes per head: the codes plus EOS (index codebook_size)."""
        return self.codebook_size + 1

    @property
    def drain_steps(self) -> int:
        """Reply steps after the last frame's step for the delay pattern (EOS included)."""
        return max(self.n_codebooks - 1, 1)

    def max_user_frames(self) -> int:
        """Longest user turn that still leaves room for a 1-frame reply at full context."""
        return self.max_seq_len - self.context_budget - 3 - self.drain_steps - 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> S2SConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown S2SConfig fields: {sorted(unknown)}")
        return cls(**d)


# ----------------------------------------------------------------------------- network


class KVCache:
    """Per-layer key/value buffers [slots, heads, max_seq_len, head_dim].

    Active streams occupy slots 0..n-1 (kept contiguous by `move`), so a decode step over n
    streams reads views, never copies.
    """

    def __init__(self, cfg: S2SConfig, slots: int, device: torch.device | str = "cpu", dtype=torch.float32):
        self.cfg = cfg
        self.device = torch.device(device)
        self.dtype = dtype
        self.head_dim = cfg.d_model // cfg.n_heads
        self.k: list[torch.Tensor] = []
        self.v: list[torch.Tensor] = []
        self.slots = 0
        self.grow(max(1, slots))

    def _alloc(self, slots: int) -> torch.Tensor:
        shape = (slots, self.cfg.n_heads, self.cfg.max_seq_len, self.head_dim)
        return torch.zeros(shape, device=self.device, dtype=self.dtype)

    def grow(self, slots: int) -> None:
        if slots <= self.slots:
            return
        new_k, new_v = [], []
        for i in range(self.cfg.n_layers):
            k, v = self._alloc(slots), self._alloc(slots)
            if self.slots:
                k[: self.slots].copy_(self.k[i])
                v[: self.slots].copy_(self.v[i])
            new_k.append(k)
            new_v.append(v)
        self.k, self.v, self.slots = new_k, new_v, slots

    def move(self, src: int, dst: int, length: int) -> None:
        """Copy slot `src`'s first `length` positions into slot `dst`."""
        for k, v in zip(self.k, self.v):
            k[dst, :, :length].copy_(k[src, :, :length])
            v[dst, :, :length].copy_(v[src, :, :length])


class _Attention(nn.Module):
    def __init__(self, cfg: S2SConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.head_dim = cfg.d_model // cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, length, _ = x.shape
        qkv = self.qkv(x).view(b, length, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return qkv[0], qkv[1], qkv[2]  # each [B, H, L, Dh]

    def _merge(self, y: torch.Tensor) -> torch.Tensor:
        b, _, length, _ = y.shape
        return self.out(y.transpose(1, 2).reshape(b, length, -1))

    def full(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Causal attention, or `mask` (bool [B, 1, L, L], True = may attend) when given."""
        q, k, v = self._split(x)
        # No dropout on the attention weights: with dropout_p > 0 the CPU picks the unfused
        # kernel, ~10x slower here. `dropout` acts on the embeddings and residual branches.
        if mask is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self._merge(y), k, v

    def step(
        self,
        x: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        rows: torch.Tensor,
        pos: torch.Tensor,
        span: int,
        mask: torch.Tensor,
    ) -> torch.Tensor:
        q, k, v = self._split(x)  # [B, H, 1, Dh]
        k_cache[rows, :, pos] = k[:, :, 0]
        v_cache[rows, :, pos] = v[:, :, 0]
        n = x.shape[0]
        keys = k_cache[:n, :, :span]
        values = v_cache[:n, :, :span]
        y = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        return self._merge(y)


class _Block(nn.Module):
    def __init__(self, cfg: S2SConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = _Attention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.ffn_mult * cfg.d_model),
            nn.GELU(),
            nn.Linear(cfg.ffn_mult * cfg.d_model, cfg.d_model),
        )
        self.drop = nn.Dropout(cfg.dropout)


class S2STransformer(nn.Module):
    """Decoder-only transformer; one position per frame step, one head per codebook."""

    def __init__(self, cfg: S2SConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.ModuleList(nn.Embedding(cfg.in_vocab, cfg.d_model) for _ in range(cfg.n_codebooks))
        self.pos_emb = nn.Embedding(cfg.max_seq_len, cfg.d_model)
        self.voice_emb = nn.Embedding(cfg.n_voices, cfg.d_model)
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.heads = nn.Linear(cfg.d_model, cfg.n_codebooks * cfg.out_vocab)
        self.aux_head = nn.Linear(cfg.d_model, cfg.aux_classes) if cfg.aux_classes else None
        self.drop = nn.Dropout(cfg.dropout)
        if cfg.acoustic_dim:
            # [K, in_vocab, acoustic_dim]; special tokens' rows stay zero. Saved with the weights.
            self.register_buffer("code_vectors", torch.zeros(cfg.n_codebooks, cfg.in_vocab, cfg.acoustic_dim))
            self.acoustic_norm = nn.LayerNorm(cfg.acoustic_dim)
            self.acoustic_proj = nn.Linear(cfg.acoustic_dim, cfg.d_model)
        self.apply(self._init)

    @torch.no_grad()
    def set_code_vectors(self, vectors: np.ndarray | torch.Tensor) -> None:
        """The codec's codebooks [>= n_codebooks, codebook_size, acoustic_dim] (training sets
        them once; a checkpoint carries them)."""
        if not self.cfg.acoustic_dim:
            raise ValueError("this model has no acoustic input (acoustic_dim = 0)")
        v = torch.as_tensor(np.asarray(vectors), dtype=self.code_vectors.dtype)
        want = (self.cfg.codebook_size, self.cfg.acoustic_dim)
        if v.dim() != 3 or v.shape[0] < self.cfg.n_codebooks or tuple(v.shape[1:]) != want:
            raise ValueError(
                f"code vectors must be [>= {self.cfg.n_codebooks}, {want[0]}, {want[1]}], got {tuple(v.shape)}"
            )
        self.code_vectors.zero_()
        self.code_vectors[:, : self.cfg.codebook_size] = v[: self.cfg.n_codebooks].to(self.code_vectors.device)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _embed(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        # tokens [B, K, L], positions [B, L] or [L]
        x = self.tok_emb[0](tokens[:, 0])
        for q in range(1, self.cfg.n_codebooks):
            x = x + self.tok_emb[q](tokens[:, q])
        if self.cfg.acoustic_dim:
            latent = F.embedding(tokens[:, 0], self.code_vectors[0])
            for q in range(1, self.cfg.n_codebooks):
                latent = latent + F.embedding(tokens[:, q], self.code_vectors[q])
            x = x + self.acoustic_proj(self.acoustic_norm(latent))
        return x + self.pos_emb(positions)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        # x [B, L, d] -> [B, K, L, V+1]
        b, length, _ = x.shape
        y = self.heads(self.ln_f(x)).view(b, length, self.cfg.n_codebooks, self.cfg.out_vocab)
        return y.permute(0, 2, 1, 3)

    def _check(self, tokens: torch.Tensor) -> None:
        if tokens.dim() != 3 or tokens.shape[1] != self.cfg.n_codebooks:
            raise ValueError(f"tokens must be [B, {self.cfg.n_codebooks}, L], got {tuple(tokens.shape)}")
        if tokens.shape[2] > self.cfg.max_seq_len:
            raise ValueError(f"sequence of {tokens.shape[2]} positions exceeds max_seq_len {self.cfg.max_seq_len}")

    def _full(self, tokens: torch.Tensor, voice: torch.Tensor, keep_kv: bool, prefix_len: torch.Tensor | None = None):
        """prefix_len [B]: each row's prefix length (where its reply starts); needed by
        `voice_at_reply` and `bidirectional_prefix`, ignored otherwise."""
        self._check(tokens)
        b, _, length = tokens.shape
        needs_prefix = self.cfg.voice_at_reply or self.cfg.bidirectional_prefix
        if needs_prefix and prefix_len is None:
            raise ValueError("this model needs each row's prefix length (prefix_len)")
        pos = torch.arange(length, device=tokens.device)
        x = self._embed(tokens, pos)
        x[:, 0] = x[:, 0] + self.voice_emb(voice)
        if self.cfg.voice_at_reply:
            rows = torch.arange(b, device=tokens.device)
            x[rows, prefix_len - 1] = x[rows, prefix_len - 1] + self.voice_emb(voice)
        mask = None
        if self.cfg.bidirectional_prefix:
            inside = pos[None, :] < prefix_len[:, None]  # [B, L]
            mask = (pos[:, None] >= pos[None, :])[None] | (inside[:, :, None] & inside[:, None, :])
            mask = mask[:, None]  # [B, 1, L, L]
        x = self.drop(x)
        kvs = []
        for blk in self.blocks:
            a, k, v = blk.attn.full(blk.ln1(x), mask)
            x = x + blk.drop(a)
            x = x + blk.drop(blk.mlp(blk.ln2(x)))
            if keep_kv:
                kvs.append((k, v))
        return x, kvs

    def forward(
        self, tokens: torch.Tensor, voice: torch.Tensor, prefix_len: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Teacher forcing: tokens [B, K, L] (position 0 = VOICE), voice [B] -> logits [B, K, L, V+1]."""
        x, _ = self._full(tokens, voice, keep_kv=False, prefix_len=prefix_len)
        return self._logits(x)

    def forward_with_hidden(
        self, tokens: torch.Tensor, voice: torch.Tensor, prefix_len: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """As `forward`, plus the final hidden states [B, L, d] (for training-only heads)."""
        x, _ = self._full(tokens, voice, keep_kv=False, prefix_len=prefix_len)
        return self._logits(x), x

    @torch.no_grad()
    def prefill(self, tokens: torch.Tensor, voice: int, cache: KVCache, slot: int) -> torch.Tensor:
        """Run a prefix [K, P] for one stream into cache `slot`; return the last logits [K, V+1]."""
        length = tokens.shape[1]
        x, kvs = self._full(
            tokens.unsqueeze(0),
            torch.tensor([voice], device=tokens.device),
            keep_kv=True,
            prefix_len=torch.tensor([length], device=tokens.device),
        )
        for i, (k, v) in enumerate(kvs):
            cache.k[i][slot, :, :length].copy_(k[0])
            cache.v[i][slot, :, :length].copy_(v[0])
        return self._logits(x[:, -1:])[0, :, 0]

    @torch.no_grad()
    def decode_step(self, tokens: torch.Tensor, positions: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """One step for the streams in cache slots 0..B-1.

        tokens [B, K] (input at `positions`), positions [B] -> logits [B, K, V+1].
        """
        n = tokens.shape[0]
        if n > cache.slots:
            raise ValueError(f"{n} streams but the cache has {cache.slots} slots")
        if int(positions.max()) >= self.cfg.max_seq_len:
            raise ValueError("a stream reached max_seq_len")
        x = self._embed(tokens.unsqueeze(-1), positions.unsqueeze(-1))  # [B, 1, d]
        span = int(positions.max()) + 1
        rows = torch.arange(n, device=tokens.device)
        mask = (torch.arange(span, device=tokens.device)[None, :] <= positions[:, None]).view(n, 1, 1, span)
        for i, blk in enumerate(self.blocks):
            x = x + blk.attn.step(blk.ln1(x), cache.k[i], cache.v[i], rows, positions, span, mask)
            x = x + blk.mlp(blk.ln2(x))
        return self._logits(x)[:, :, 0]


# ----------------------------------------------------------------------------- sequences


def _as_codes(codes: np.ndarray, cfg: S2SConfig, what: str) -> np.ndarray:
    arr = np.asarray(codes)
    if arr.ndim != 2:
        raise ValueError(f"{what} must be 2-D [n_codebooks, n_frames], got shape {arr.shape}")
    if arr.shape[0] < cfg.n_codebooks:
        raise ValueError(f"{what} has {arr.shape[0]} codebooks; the model needs at least {cfg.n_codebooks}")
    arr = arr[: cfg.n_codebooks].astype(np.int64, copy=False)
    if arr.size and (arr.min() < 0 or arr.max() >= cfg.codebook_size):
        raise ValueError(f"{what} values must be in [0, {cfg.codebook_size}); got [{arr.min()}, {arr.max()}]")
    return arr


def build_context(cfg: S2SConfig, context_codes: np.ndarray | None, context_segments: np.ndarray | None) -> np.ndarray:
    """Bounded context tokens [K, n <= context_budget] from CONTEXT_CODES/CONTEXT_SEGMENTS.

    Segments alternate user, reply, user, reply, ... oldest first. Only the last
    MAX_CONTEXT_TURNS turns are considered; the newest are kept first.
    """
    k = cfg.n_codebooks
    if context_codes is None or context_segments is None:
        return np.zeros((k, 0), np.int64)
    segments = np.asarray(context_segments, dtype=np.int64).reshape(-1)
    codes = np.asarray(context_codes)
    if codes.size == 0 and codes.ndim < 2:
        codes = np.zeros((k, 0), np.int64)
    codes = _as_codes(codes, cfg, "context codes")
    if segments.size and segments.min() < 0:
        raise ValueError("context segments must be non-negative frame counts")
    if int(segments.sum()) != codes.shape[1]:
        raise ValueError(
            f"context segments sum to {int(segments.sum())} frames but context codes have {codes.shape[1]}"
        )
    if segments.size % 2:
        raise ValueError(f"context segments must come in (user, reply) pairs; got {segments.size}")
    ends = np.cumsum(segments)
    starts = ends - segments
    first = max(0, segments.size - 2 * MAX_CONTEXT_TURNS)
    remaining = cfg.context_budget
    pieces: list[np.ndarray] = []
    for i in range(segments.size - 1, first - 1, -1):  # newest first
        if remaining < 2:
            break
        marker = cfg.user_turn if i % 2 == 0 else cfg.reply_turn
        toks = codes[0, starts[i] : ends[i]][:: cfg.context_stride]
        toks = toks[len(toks) - min(len(toks), remaining - 1) :]  # keep the newest of the segment
        piece = np.full((k, 1 + len(toks)), cfg.pad, np.int64)
        piece[:, 0] = marker
        piece[0, 1:] = toks
        pieces.append(piece)
        remaining -= piece.shape[1]
    if not pieces:
        return np.zeros((k, 0), np.int64)
    return np.concatenate(pieces[::-1], axis=1)


def build_prefix(
    cfg: S2SConfig,
    user_codes: np.ndarray,
    context_codes: np.ndarray | None = None,
    context_segments: np.ndarray | None = None,
) -> np.ndarray:
    """[VOICE][context][SEP][user][SEP] as tokens [K, P] (the voice row is added by the model)."""
    user = _as_codes(user_codes, cfg, "user codes")
    if user.shape[1] == 0:
        raise ValueError("user codes are empty (0 frames)")
    if user.shape[1] > cfg.max_user_frames():
        raise ValueError(
            f"user turn has {user.shape[1]} frames; this model accepts at most {cfg.max_user_frames()} "
            f"(max_seq_len {cfg.max_seq_len}); send a shorter turn"
        )
    ctx = build_context(cfg, context_codes, context_segments)
    k = cfg.n_codebooks
    col = lambda tok: np.full((k, 1), tok, np.int64)  # noqa: E731
    return np.concatenate([col(cfg.voice), ctx, col(cfg.sep), user, col(cfg.sep)], axis=1)


def delayed_reply(cfg: S2SConfig, reply: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reply codes [K, R] -> (delay-pattern grid D [K, R + drain_steps], loss mask).

    D[q, s] = reply[q, s - q] for 0 <= s - q < R; EOS at D[0, R]; DELAY before a codebook
    starts, PAD after it ends (those are not trained).
    """
    k, r = reply.shape
    steps = r + cfg.drain_steps
    grid = np.full((k, steps), cfg.pad, np.int64)
    mask = np.zeros((k, steps), bool)
    for q in range(k):
        grid[q, :q] = cfg.delay
        grid[q, q : q + r] = reply[q]
        mask[q, q : q + r] = True
    grid[0, r] = cfg.eos
    mask[0, r] = True
    return grid, mask


def undelay(cfg: S2SConfig, grid: np.ndarray, n_frames: int) -> np.ndarray:
    """Inverse of `delayed_reply` for the first n_frames frames."""
    k = cfg.n_codebooks
    return np.stack([grid[q, q : q + n_frames] for q in range(k)]).astype(np.int64)


# ----------------------------------------------------------------------------- training


@dataclass
class TrainExample:
    voice_index: int
    user_codes: np.ndarray  # [K', T] (K' >= n_codebooks; the first n_codebooks are used)
    reply_codes: np.ndarray  # [K', R]
    context_turns: Sequence[tuple[np.ndarray, np.ndarray]] = ()  # (user, reply), oldest first
    # Reply steps (delay-pattern columns) whose targets weigh `decision_weight` in the loss
    # instead of 1: where this reply parts from another reply the model could give instead.
    decision_steps: Sequence[int] = ()
    decision_weight: float = 1.0
    aux_class: int = -1  # the auxiliary head's target (cfg.aux_classes > 0); -1 = none


@dataclass
class TrainBatch:
    tokens: torch.Tensor  # long [B, K, L] inputs (right-padded with PAD)
    voice: torch.Tensor  # long [B]
    targets: torch.Tensor  # long [B, K, L] output class per position (0 where masked)
    loss_mask: torch.Tensor  # bool [B, K, L]
    loss_weight: torch.Tensor | None = None  # float [B, K, L]: 0 where masked; None = the mask
    aux_position: torch.Tensor | None = None  # long [B]: the position that predicts reply step 0
    aux_target: torch.Tensor | None = None  # long [B]: class, -1 = none
    prefix_len: torch.Tensor | None = None  # long [B]: where each row's reply starts

    def to(self, device: torch.device | str) -> TrainBatch:
        tensors = (
            self.tokens,
            self.voice,
            self.targets,
            self.loss_mask,
            self.loss_weight,
            self.aux_position,
            self.aux_target,
            self.prefix_len,
        )
        return TrainBatch(*(None if t is None else t.to(device) for t in tensors))


def make_example_arrays(cfg: S2SConfig, ex: TrainExample) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One example -> (inputs [K, L], targets [K, L], mask [K, L]); raises if it does not fit."""
    if not 0 <= ex.voice_index < cfg.n_voices:
        raise ValueError(f"voice index {ex.voice_index} out of range [0, {cfg.n_voices})")
    ctx_codes, ctx_segments = context_from_turns(
        [(np.asarray(u)[: cfg.n_codebooks], np.asarray(r)[: cfg.n_codebooks]) for u, r in ex.context_turns],
        cfg.n_codebooks,
    )
    prefix = build_prefix(cfg, ex.user_codes, ctx_codes, ctx_segments)
    reply = _as_codes(ex.reply_codes, cfg, "reply codes")
    grid, gmask = delayed_reply(cfg, reply)
    p, steps = prefix.shape[1], grid.shape[1]
    inputs = np.concatenate([prefix, grid[:, :-1]], axis=1)
    if inputs.shape[1] > cfg.max_seq_len:
        raise ValueError(f"example needs {inputs.shape[1]} positions > max_seq_len {cfg.max_seq_len}")
    targets = np.zeros_like(inputs)
    mask = np.zeros(inputs.shape, bool)
    tgt = np.where(gmask, grid, 0)
    tgt = np.where(grid == cfg.eos, cfg.codebook_size, tgt)
    targets[:, p - 1 : p - 1 + steps] = tgt
    mask[:, p - 1 : p - 1 + steps] = gmask
    return inputs, targets, mask


def make_batch(cfg: S2SConfig, examples: Sequence[TrainExample]) -> TrainBatch:
    """Teacher-forcing batch: inputs, targets and loss mask, right-padded to the longest."""
    arrays = [make_example_arrays(cfg, ex) for ex in examples]
    length = max(a[0].shape[1] for a in arrays)
    b, k = len(arrays), cfg.n_codebooks
    tokens = np.full((b, k, length), cfg.pad, np.int64)
    targets = np.zeros((b, k, length), np.int64)
    mask = np.zeros((b, k, length), bool)
    for i, (inp, tgt, msk) in enumerate(arrays):
        n = inp.shape[1]
        tokens[i, :, :n], targets[i, :, :n], mask[i, :, :n] = inp, tgt, msk
    voice = torch.tensor([ex.voice_index for ex in examples], dtype=torch.long)
    weight = None
    if any(ex.decision_steps and ex.decision_weight != 1.0 for ex in examples):
        weight = mask.astype(np.float32)
        for i, ex in enumerate(examples):
            start = int(np.argmax(mask[i, 0]))  # the position that predicts reply step 0
            for step in ex.decision_steps:
                if 0 <= start + step < length:
                    weight[i, :, start + step] *= ex.decision_weight
        weight = torch.from_numpy(weight)
    first = torch.from_numpy(mask[:, 0].argmax(axis=1).astype(np.int64))  # predicts reply step 0
    aux_pos = aux_tgt = None
    if cfg.aux_classes and any(ex.aux_class >= 0 for ex in examples):
        aux_pos = first
        aux_tgt = torch.tensor([ex.aux_class for ex in examples], dtype=torch.long)
    return TrainBatch(
        torch.from_numpy(tokens),
        voice,
        torch.from_numpy(targets),
        torch.from_numpy(mask),
        weight,
        aux_pos,
        aux_tgt,
        first + 1,
    )


def loss(model: S2STransformer, batch: TrainBatch, aux_weight: float = 0.0) -> torch.Tensor:
    """Cross-entropy over the masked target positions of all codebooks, weighted by
    `loss_weight` when the batch has one (a weighted mean), else a plain mean; plus
    `aux_weight` x the auxiliary head's cross-entropy when the batch has its targets."""
    logits, hidden = model.forward_with_hidden(batch.tokens, batch.voice, batch.prefix_len)  # [B, K, L, V+1]
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.targets.reshape(-1), reduction="none")
    w = batch.loss_mask if batch.loss_weight is None else batch.loss_weight
    m = w.reshape(-1).to(ce.dtype)
    value = (ce * m).sum() / m.sum().clamp_min(1.0)
    if aux_weight and model.aux_head is not None and batch.aux_target is not None:
        h = hidden[torch.arange(hidden.shape[0], device=hidden.device), batch.aux_position]
        value = value + aux_weight * F.cross_entropy(model.aux_head(h), batch.aux_target, ignore_index=-1)
    return value


# ----------------------------------------------------------------------------- checkpoints


@dataclass
class LoadedS2S:
    model: S2STransformer
    cfg: S2SConfig
    weights_id: str  # "<name>@<sha256[:12]>" or "random"
    random: bool
    meta: dict = field(default_factory=dict)


def save_checkpoint(model: S2STransformer, cfg: S2SConfig, directory: str | Path, meta: dict | None = None) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), directory / "model.pt")
    doc = {"format": FORMAT, "config": cfg.to_dict(), "meta": meta or {}}
    (directory / "config.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return directory


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_config(directory: str | Path) -> tuple[S2SConfig, dict]:
    doc = json.loads((Path(directory) / "config.json").read_text())
    if doc.get("format") != FORMAT:
        raise ValueError(f"{directory}: not a {FORMAT} checkpoint (format={doc.get('format')!r})")
    return S2SConfig.from_dict(doc["config"]), doc.get("meta", {})


def load_checkpoint(directory: str | Path, device: str | torch.device = "cpu") -> LoadedS2S:
    """Load dir/config.json + dir/model.pt (trained weights)."""
    directory = Path(directory)
    cfg, meta = read_config(directory)
    model = S2STransformer(cfg)
    state = torch.load(directory / "model.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.to(device).eval()
    name = meta.get("name", directory.name)
    return LoadedS2S(model, cfg, f"{name}@{_digest(directory / 'model.pt')[:12]}", False, meta)


def random_model(cfg: S2SConfig | None = None, seed: int = 0, device: str | torch.device = "cpu") -> LoadedS2S:
    """UNTRAINED weights. Only behind an explicit opt-in flag; announced with a WARNING."""
    cfg = cfg or S2SConfig()
    log.warning(
        "S2S MODEL USES RANDOM (UNTRAINED) WEIGHTS: replies are noise. Explicitly allowed by a flag.",
        extra={"s2s_config": cfg.to_dict()},
    )
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    model = S2STransformer(cfg).to(device).eval()
    torch.random.set_rng_state(gen_state)
    return LoadedS2S(model, cfg, "random", True, {"name": "random"})


def load_model(
    directory: str | Path,
    *,
    allow_random: bool = False,
    device: str | torch.device = "cpu",
    random_cfg: S2SConfig | None = None,
) -> LoadedS2S:
    """The checkpoint in `directory`; random weights only if it is missing AND allow_random."""
    directory = Path(directory)
    if (directory / "config.json").is_file() and (directory / "model.pt").is_file():
        return load_checkpoint(directory, device)
    if not allow_random:
        raise FileNotFoundError(
            f"no S2S checkpoint at {directory} (config.json + model.pt); train one, point "
            "TS2S_S2S_CHECKPOINT_DIR at it, or set TS2S_S2S_ALLOW_RANDOM_WEIGHTS=1 for untrained weights"
        )
    cfg = random_cfg
    if cfg is None and (directory / "config.json").is_file():
        cfg, _ = read_config(directory)
    return random_model(cfg, device=device)


# ----------------------------------------------------------------------------- generation


def generate(
    model: S2STransformer,
    user_codes: np.ndarray,
    voice_index: int,
    context_codes: np.ndarray | None = None,
    context_segments: np.ndarray | None = None,
    params: GenerationParams = GenerationParams(),
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[np.ndarray]:
    """Stream reply code blocks int64 [K, n] (n <= params.frames_per_response). See decoding."""
    from telugu_s2s.s2s.decoding import generate as _generate

    return _generate(model, user_codes, voice_index, context_codes, context_segments, params, should_stop)


__all__ = [
    "FORMAT",
    "KVCache",
    "LoadedS2S",
    "S2SConfig",
    "S2STransformer",
    "TrainBatch",
    "TrainExample",
    "build_context",
    "build_prefix",
    "delayed_reply",
    "generate",
    "load_checkpoint",
    "load_model",
    "loss",
    "make_batch",
    "make_example_arrays",
    "random_model",
    "read_config",
    "save_checkpoint",
    "undelay",
]
