"""Weight resolution order and the service configuration."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from telugu_s2s.codec import checkpoint
from telugu_s2s.codec.checkpoint import OFFICIAL_24KHZ_NAME
from telugu_s2s.codec.config import Config
from telugu_s2s.codec.weights import WeightsNotFoundError, resolve


@pytest.fixture(scope="module")
def project_ckpt(tmp_path_factory, tiny_loaded, tiny_arch) -> Path:
    d = tmp_path_factory.mktemp("codec_ckpt")
    return checkpoint.save(tiny_loaded.model, tiny_arch, d, meta={"name": "tiny-test"})


def test_nothing_available_is_a_clear_error(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="TS2S_CODEC_ALLOW_RANDOM_WEIGHTS=1"):
        resolve(weights=None, hub_dir=tmp_path, checkpoint_dir=tmp_path / "missing", allow_random=False)


def test_random_only_when_allowed_and_announced(tmp_path, caplog, tiny_arch):
    with caplog.at_level(logging.WARNING):
        loaded = resolve(weights=None, hub_dir=tmp_path, checkpoint_dir=tmp_path / "missing",
                         allow_random=True, random_arch=tiny_arch)
    assert loaded.random and loaded.weights_id == "random"
    assert any("RANDOM" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_project_checkpoint_dir_is_used(tmp_path, project_ckpt, tiny_arch):
    loaded = resolve(weights=None, hub_dir=tmp_path, checkpoint_dir=project_ckpt, allow_random=True)
    assert not loaded.random and loaded.weights_id.startswith("tiny-test@")
    assert loaded.arch == tiny_arch


def test_explicit_path_wins_and_must_exist(tmp_path, project_ckpt):
    loaded = resolve(weights=str(project_ckpt), hub_dir=None, checkpoint_dir=None, allow_random=False)
    assert loaded.weights_id.startswith("tiny-test@")
    with pytest.raises(WeightsNotFoundError, match="do not exist"):
        resolve(weights=str(tmp_path / "nope.th"), hub_dir=None, checkpoint_dir=project_ckpt, allow_random=True)


def test_hub_cache_before_project_checkpoint(tmp_path, project_ckpt):
    """A (fake) official file in the hub cache is preferred; a bad checksum is refused."""
    hub = tmp_path / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    official = checkpoint.random_weights(seed=5)
    torch.save(official.model.state_dict(), hub / "checkpoints" / OFFICIAL_24KHZ_NAME)
    # The name carries a sha256 prefix that this fake file does not have.
    with pytest.raises(WeightsNotFoundError, match="sha256"):
        resolve(weights=None, hub_dir=hub, checkpoint_dir=project_ckpt, allow_random=False)
    renamed = tmp_path / "official.th"  # no checksum in the name: loads as the official arch
    (hub / "checkpoints" / OFFICIAL_24KHZ_NAME).rename(renamed)
    loaded = resolve(weights=str(renamed), hub_dir=hub, checkpoint_dir=project_ckpt, allow_random=False)
    assert loaded.arch.sample_rate == 24000 and loaded.weights_id.startswith("official.th@")


def test_config_from_env_and_flags(tmp_path):
    env = {
        "TS2S_CODEC_PORT": "6000", "TS2S_CODEC_METRICS_PORT": "0", "TS2S_CODEC_ALLOW_RANDOM_WEIGHTS": "1",
        "TS2S_CODEC_BANDWIDTH_KBPS": "3.0", "TS2S_CODEC_TORCH_THREADS": "2", "TS2S_CODEC_BATCH_WAIT_MS": "4",
        "TS2S_CODEC_MAX_BATCH": "8", "TS2S_CODEC_CHECKPOINT_DIR": str(tmp_path),
    }
    cfg = Config.from_env(["--port", "6001"], env=env)
    assert (cfg.port, cfg.metrics_port, cfg.allow_random_weights) == (6001, 0, True)
    assert (cfg.bandwidth_kbps, cfg.torch_threads, cfg.batch_wait_ms, cfg.max_batch) == (3.0, 2, 4.0, 8)
    assert cfg.checkpoint_dir == tmp_path
    default = Config.from_env([], env={})
    # No bandwidth given: the checkpoint decides (1.5 kbps, or its highest when lower).
    assert (default.port, default.metrics_port, default.bandwidth_kbps) == (50052, 9102, None)
    assert not default.allow_random_weights and default.checkpoint_dir.parts[-2:] == ("models", "codec")
    with pytest.raises(ValueError, match="TS2S_CODEC_TORCH_THREADS must be >= 1"):  # the entry point: one line, exit 2
        Config.from_env(["--torch-threads", "0"], env={})
    with pytest.raises(ValueError, match="TS2S_CODEC_MAX_BATCH='many': must be an integer"):
        Config.from_env([], env={"TS2S_CODEC_MAX_BATCH": "many"})


def test_default_bandwidth_follows_the_checkpoint():
    from telugu_s2s.codec.checkpoint import CodecArch

    official = CodecArch()
    assert official.default_bandwidth == 1.5 and official.codebooks_for(official.default_bandwidth) == 2
    small = CodecArch(sample_rate=16000, n_filters=16, ratios=(8, 5, 4, 4), dimension=64,
                      target_bandwidths=(1.0,), pad_mode="constant")
    assert small.frame_rate == 25 and small.default_bandwidth == 1.0
    assert small.codebooks_for(small.default_bandwidth) == 4
