"""Conversion between numpy code arrays [n_codebooks, n_frames] and the `Codes` message."""

from __future__ import annotations

import numpy as np

from telugu_s2s.v1 import common_pb2


class CodesError(ValueError):
    """The message does not describe a consistent [n_codebooks x n_frames] block."""


def to_proto(codes: np.ndarray) -> common_pb2.Codes:
    arr = np.asarray(codes)
    if arr.ndim != 2:
        raise CodesError(f"codes must be 2-D [n_codebooks, n_frames], got shape {arr.shape}")
    if arr.size and arr.min() < 0:
        raise CodesError("codes must be non-negative")
    msg = common_pb2.Codes(n_codebooks=arr.shape[0], n_frames=arr.shape[1])
    msg.values.extend(arr.astype(np.int64, copy=False).ravel().tolist())
    return msg


def from_proto(msg: common_pb2.Codes, *, codebook_size: int | None = None) -> np.ndarray:
    """Return an int64 array [n_codebooks, n_frames]; validate the shape and range."""
    n_q, n_t = int(msg.n_codebooks), int(msg.n_frames)
    values = np.fromiter(msg.values, dtype=np.int64, count=len(msg.values))
    if values.size != n_q * n_t:
        raise CodesError(f"codes carry {values.size} values but n_codebooks x n_frames = {n_q} x {n_t} = {n_q * n_t}")
    if codebook_size is not None and values.size and values.max() >= codebook_size:
        raise CodesError(f"code value {int(values.max())} is out of range for a codebook of size {codebook_size}")
    return values.reshape(n_q, n_t)


def concat(blocks: list[np.ndarray], n_codebooks: int) -> np.ndarray:
    """Concatenate code blocks along time; an empty list gives a [n_codebooks, 0] array."""
    if not blocks:
        return np.zeros((n_codebooks, 0), dtype=np.int64)
    return np.concatenate(blocks, axis=1)
