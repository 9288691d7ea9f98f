import numpy as np
import pytest
import torch

from telugu_s2s.s2s.model import S2SConfig, S2STransformer

torch.set_num_threads(1)


TINY = S2SConfig(
    n_codebooks=2,
    codebook_size=16,
    n_layers=2,
    d_model=32,
    n_heads=2,
    max_seq_len=128,
    context_budget=24,
    context_stride=2,
    max_reply_frames=40,
)


@pytest.fixture
def cfg() -> S2SConfig:
    return TINY


@pytest.fixture
def model(cfg) -> S2STransformer:
    torch.manual_seed(0)
    return S2STransformer(cfg).eval()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
