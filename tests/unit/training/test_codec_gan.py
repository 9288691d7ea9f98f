"""The voice-keeping codec training: critics, spectral losses, decoder-only fine-tuning,
the packed training set, and resuming a run with its critics."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from telugu_s2s.codec.checkpoint import load
from telugu_s2s.training import discriminators as D
from telugu_s2s.training.codec_train import CLIPS_FILE, load_clips, pack_clips, train_codec


def test_every_critic_gives_logits_and_features_for_any_length():
    critics = D.CodecCritics()
    for n in (3999, 4000):
        logits, feats = critics(torch.randn(2, 1, n))
        assert len(logits) == len(feats) == 8  # 5 periods + 3 STFT scales
        assert all(x.shape[0] == 2 and x.ndim == 2 for x in logits)
        assert all(len(f) >= 4 for f in feats)


def test_least_squares_losses_and_feature_matching():
    ones, zeros = [torch.ones(2, 5)], [torch.zeros(2, 5)]
    assert D.critic_loss(ones, zeros).item() == 0.0  # a perfect critic
    assert D.critic_loss(zeros, ones).item() == 2.0  # the worst one
    assert D.generator_loss(ones).item() == 0.0
    f = [[torch.randn(2, 3, 4)]]
    assert D.feature_matching(f, f).item() == 0.0
    assert D.feature_matching(f, [[f[0][0] + 1]]).item() > 0


def test_the_stft_loss_sees_what_the_mel_loss_hides_a_shifted_harmonic():
    t = torch.arange(16000) / 16000
    a = torch.sin(2 * torch.pi * 200 * t)[None]
    b = torch.sin(2 * torch.pi * 215 * t)[None]  # within one mel band at 200 Hz
    assert D.multires_stft_loss(a, a).item() < 1e-4
    assert D.multires_stft_loss(b, a).item() > 0.5


def _differs(a: dict, b: dict, part: str) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a if k.startswith(part))


def test_decoder_only_fine_tuning_keeps_every_code(tiny_codec, tmp_path):
    cfg, _ = tiny_codec
    ft = replace(cfg, run_dir=tmp_path / "run", out_dir=tmp_path / "out", init_from=cfg.out_dir, freeze_codes=True,
                 adversarial=True, stft_weight=1.0, bypass_steps=0, reinit_below=0.0, steps=2, lr=1e-2)
    result = train_codec(ft)
    assert {"critic", "adv", "fm", "stft"} <= set(result["final"])
    before = torch.load(cfg.out_dir / "model.pt")
    after = torch.load(ft.out_dir / "model.pt")
    assert _differs(before, after, "decoder")
    assert not _differs(before, after, "encoder") and not _differs(before, after, "quantizer")
    x = torch.randn(1, 1, 4000)
    m0, m1 = load(cfg.out_dir).model, load(ft.out_dir).model
    with torch.no_grad():
        assert torch.equal(m0.encode(x)[0][0], m1.encode(x)[0][0])
    # resumes with its critics and their optimizer
    again = train_codec(replace(ft, steps=3))
    assert again["steps"] == 3
    assert [h["step"] for h in json.loads((ft.run_dir / "history.json").read_text())] == [1, 2, 3]


def test_freezing_the_codes_needs_a_trained_codec(tiny_codec, tmp_path):
    cfg, _ = tiny_codec
    with pytest.raises(ValueError, match="init_from"):
        train_codec(replace(cfg, run_dir=tmp_path / "r", freeze_codes=True, bypass_steps=0))


def test_a_packed_training_set_holds_the_references_and_wins_over_the_split(tiny_data, tiny_codec, tmp_path):
    cfg, _ = tiny_codec
    refs = [json.loads(x) for x in (tiny_data / "references.jsonl").read_text().splitlines() if x]
    info = pack_clips(tiny_data, tmp_path / CLIPS_FILE, 16000, max_files=len(refs) + 2, seed=0)
    assert info["references"] == len(refs) and info["files"] == len(refs) + 2
    (tmp_path / "data_info.json").write_text((tiny_data / "data_info.json").read_text())
    clips = load_clips(replace(cfg, data_dir=tmp_path))
    assert len(clips) == info["files"]
    assert all(c.dtype == np.float32 and np.abs(c).max() <= 1.0 for c in clips)
    with pytest.raises(ValueError, match="16000"):
        load_clips(replace(cfg, data_dir=tmp_path, arch=replace(cfg.arch, sample_rate=24000)))


def test_a_run_started_without_critics_does_not_resume_with_them(tiny_codec, tmp_path):
    cfg, _ = tiny_codec
    plain = replace(cfg, run_dir=tmp_path / "run", out_dir=tmp_path / "out", steps=2)
    train_codec(plain)
    with pytest.raises(ValueError, match="critics"):
        train_codec(replace(plain, steps=3, adversarial=True))


def test_the_harmonic_decoder_trains_from_a_codecs_encoder_with_pitch_losses(tiny_codec, tmp_path):
    cfg, _ = tiny_codec
    h = replace(cfg, run_dir=tmp_path / "run", out_dir=tmp_path / "out", init_from=cfg.out_dir,
                arch=replace(cfg.arch, decoder="harmonic"), stft_weight=1.0, bypass_steps=0, reinit_below=0.0,
                steps=2, lr=1e-2)
    result = train_codec(h)
    assert {"f0", "voicing", "stft"} <= set(result["final"])
    before = torch.load(cfg.out_dir / "model.pt")
    after = torch.load(h.out_dir / "model.pt")
    # the encoder starts from the trained codec and learns on (pitch must reach the codes)
    assert set(before) - set(after) == {k for k in before if k.startswith("decoder.")}
    assert _differs({k: before[k] for k in after if k.startswith("encoder.")}, after, "encoder")
    assert load(h.out_dir).arch.decoder == "harmonic"
