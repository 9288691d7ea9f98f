"""Tiny seeded codec models for fast tests (one torch thread)."""

from __future__ import annotations

import pytest
import torch

from telugu_s2s.codec.checkpoint import CodecArch, random_weights

torch.set_num_threads(1)

# A tiny causal codec: 16 kHz, hop 320 (50 Hz), codebooks of 64 entries (2 at 0.6 kbps), kept
# small so that a forward pass takes well under a millisecond per frame.
TINY_ARCH = CodecArch(
    sample_rate=16000,
    n_filters=4,
    ratios=(8, 5, 4, 2),
    dimension=16,
    lstm=1,
    bins=64,
    target_bandwidths=(0.6, 1.2),
    pad_mode="constant",
)


@pytest.fixture(scope="session")
def tiny_arch() -> CodecArch:
    return TINY_ARCH


@pytest.fixture(scope="session")
def tiny_loaded():
    return random_weights(TINY_ARCH, seed=1)


@pytest.fixture(scope="session")
def tiny_reflect_loaded():
    import dataclasses

    return random_weights(dataclasses.replace(TINY_ARCH, pad_mode="reflect"), seed=2)


@pytest.fixture(scope="session")
def tiny_harmonic_loaded():
    import dataclasses

    return random_weights(dataclasses.replace(TINY_ARCH, decoder="harmonic"), seed=4)


@pytest.fixture(scope="session")
def default_loaded():
    """The official-size 24 kHz architecture with random weights."""
    return random_weights(CodecArch(), seed=3)
