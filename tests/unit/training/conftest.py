import shutil
from pathlib import Path

import pytest
import torch

from telugu_s2s.codec.checkpoint import CodecArch
from telugu_s2s.training.codec_train import CodecTrainConfig, train_codec
from telugu_s2s.training.synth import CALLER_VOICES, SynthConfig, synth

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


def tiny_cfg(data_dir: Path) -> SynthConfig:
    # 6 utterances per training caller, a few test/val dialogues; 3 callers of which 1 held out
    return SynthConfig(data_dir=data_dir, callers=CALLER_VOICES[:2] + CALLER_VOICES[-1:],
                       held_out=(CALLER_VOICES[-1].id,), limit=6, workers=2)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    d = tmp_path_factory.mktemp("data")
    synth(tiny_cfg(d), progress=False)
    return d


TINY_ARCH = CodecArch(sample_rate=16000, n_filters=4, ratios=(8, 8, 4), dimension=16, bins=64,
                      target_bandwidths=(1.5,), pad_mode="constant", lstm=0)


@pytest.fixture(scope="session")
def tiny_codec(tiny_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("codec")
    cfg = CodecTrainConfig(data_dir=tiny_data, run_dir=root / "run", out_dir=root / "out", arch=TINY_ARCH,
                           steps=3, batch_size=2, crop_s=0.25, bypass_steps=1, kmeans_frames=256, kmeans_iters=3,
                           ckpt_every=2, log_every=1,
                           progress=False)
    result = train_codec(cfg)
    return cfg, result
