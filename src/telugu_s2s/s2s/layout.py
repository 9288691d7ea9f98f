"""The sequence layout: prefix (voice, bounded context, user turn) and the delay pattern of
reply codebooks (see docs/services/s2s.md)."""

from __future__ import annotations

import numpy as np

from telugu_s2s.s2s.config import MAX_CONTEXT_TURNS, S2SConfig


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
