"""The harmonic-plus-noise decoder: its oscillator plays the F0 it is given, and the codec
checkpoint format carries which decoder a codec has."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from telugu_s2s.codec.checkpoint import CodecArch, load, random_weights, save
from telugu_s2s.codec.harmonic import Controls, HarmonicDecoder
from telugu_s2s.training import pitch


def _controls(f0_hz: float, frames: int, harmonics: int = 64, noise_bands: int = 32) -> Controls:
    amps = torch.zeros(1, frames, harmonics)
    amps[..., :3] = torch.tensor([0.5, 0.25, 0.125])
    return Controls(
        log_f0=torch.full((1, frames), math.log(f0_hz)),
        voiced_logit=torch.full((1, frames), 5.0),
        harmonic_amps=amps,
        noise_mags=torch.zeros(1, frames, noise_bands),
    )


def test_the_oscillator_plays_the_f0_it_is_given_across_frames():
    dec = HarmonicDecoder()
    for f0 in (80.0, 107.0, 190.0, 242.0):  # the product voices' medians
        with torch.no_grad():
            y = dec.synthesize(_controls(f0, 62))[0].numpy()
        read = pitch.median_f0(pitch.yin(y, 16000))
        assert abs(read / f0 - 1) < 0.01, (f0, read)


def test_the_phase_runs_on_across_chunks_of_a_stream():
    dec = HarmonicDecoder()
    whole = dec.synthesize(_controls(150.0, 40))
    state = dec.new_state()
    parts = torch.cat([dec.synthesize(_controls(150.0, n), state) for n in (1, 9, 30)], -1)
    torch.testing.assert_close(parts, whole, rtol=0, atol=1e-5)


def test_frozen_tap_weights_give_the_same_controls():
    dec = HarmonicDecoder().eval()
    latent = torch.randn(2, 64, 7)
    with torch.no_grad():
        before = dec.controls(latent)
        dec.freeze()
        after = dec.controls(latent)
    for a, b in zip(dataclasses.astuple(before), dataclasses.astuple(after)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_frame_f0_reads_a_tone_at_every_codec_frame():
    t = np.arange(16000) / 16000
    x = (0.5 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    f0 = pitch.frame_f0(x, 16000, 256, 62)
    assert f0.shape == (62,)
    assert np.all(np.abs(f0[2:-2] / 200 - 1) < 0.01)
    assert np.all(pitch.frame_f0(np.zeros(16000, np.float32), 16000, 256, 62) == 0)


def test_a_checkpoint_says_which_decoder_it_has(tmp_path):
    arch = CodecArch(sample_rate=16000, n_filters=4, ratios=(8, 4, 4, 2), dimension=16, lstm=1, bins=64,
                     target_bandwidths=(1.2,), pad_mode="constant", decoder="harmonic")
    loaded = random_weights(arch, seed=0)
    assert isinstance(loaded.model.decoder, HarmonicDecoder)
    save(loaded.model, arch, tmp_path / "h")
    back = load(tmp_path / "h")
    assert back.arch.decoder == "harmonic"
    codes = torch.randint(0, 64, (1, 2, 20))
    with torch.no_grad():
        a = loaded.model.decode([(codes, None)])
        b = back.model.decode([(codes, None)])
    assert a.shape == (1, 1, 20 * 256)
    torch.testing.assert_close(a, b)
    # a config written before the field existed is a SEANet codec
    plain = dataclasses.asdict(dataclasses.replace(arch, decoder="seanet"))
    del plain["decoder"]
    assert CodecArch.from_dict(plain).decoder == "seanet"
