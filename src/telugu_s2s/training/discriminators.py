"""Adversarial critics and spectral losses that make the codec hear pitch and phase.

A log-mel loss cannot see phase or the fine harmonic structure of voiced speech: a decoder
trained on it alone learns a noise-excited envelope (a whisper). These critics look at the
waveform the way the codec literature does:

- `MultiPeriodDiscriminator` (HiFi-GAN): the waveform folded into a 2-D grid at prime periods,
  so each critic sees samples one period apart, which is where a voice's periodicity shows;
- `MultiScaleSTFTDiscriminator` (EnCodec): 2-D convolutions over the complex STFT (real and
  imaginary parts as channels) at several window sizes.

Each critic returns its logits and its feature maps; `feature_matching` compares the feature
maps of real and decoded audio. Least-squares GAN losses. Sizes are small, for a small codec.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm

Outputs = tuple[list[torch.Tensor], list[list[torch.Tensor]]]  # logits per critic, features per critic


def _stack(
    convs: nn.ModuleList, out: nn.Module, h: torch.Tensor, slope: float
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Convolutions with leaky ReLUs, then the output layer: (logits [B, N], every layer's output)."""
    feats = []
    for conv in convs:
        h = F.leaky_relu(conv(h), slope)
        feats.append(h)
    h = out(h)
    feats.append(h)
    return h.flatten(1), feats


class PeriodCritic(nn.Module):
    def __init__(self, period: int, channels: tuple[int, ...] = (32, 64, 128, 128)) -> None:
        super().__init__()
        self.period = period
        layers, c_in = [], 1
        for i, c in enumerate(channels):
            stride = (3, 1) if i < len(channels) - 1 else (1, 1)
            layers.append(weight_norm(nn.Conv2d(c_in, c, (5, 1), stride, padding=(2, 0))))
            c_in = c
        self.convs = nn.ModuleList(layers)
        self.out = weight_norm(nn.Conv2d(c_in, 1, (3, 1), padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, c, t = x.shape
        if t % self.period:
            x = F.pad(x, (0, self.period - t % self.period), mode="reflect")
        return _stack(self.convs, self.out, x.view(b, c, -1, self.period), 0.1)


class _Ensemble(nn.Module):
    """Several critics over the same audio: (logits of each, features of each)."""

    critics: nn.ModuleList

    def forward(self, x: torch.Tensor) -> Outputs:
        outs = [c(x) for c in self.critics]
        return [o[0] for o in outs], [o[1] for o in outs]


class MultiPeriodDiscriminator(_Ensemble):
    def __init__(self, periods: tuple[int, ...] = (2, 3, 5, 7, 11)) -> None:
        super().__init__()
        self.critics = nn.ModuleList(PeriodCritic(p) for p in periods)


class STFTCritic(nn.Module):
    def __init__(self, n_fft: int, channels: int = 32, dilations: tuple[int, ...] = (1, 2, 4)) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, n_fft // 4
        self.window: torch.Tensor
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        layers = [weight_norm(nn.Conv2d(2, channels, (3, 9), padding=(1, 4)))]
        for d in dilations:  # dilated in time, strided in frequency
            layers.append(weight_norm(nn.Conv2d(channels, channels, (3, 9), (1, 2), padding=(d, 4), dilation=(d, 1))))
        layers.append(weight_norm(nn.Conv2d(channels, channels, (3, 3), padding=(1, 1))))
        self.convs = nn.ModuleList(layers)
        self.out = weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spec = torch.stft(x.squeeze(1), self.n_fft, self.hop, window=self.window, return_complex=True)
        h = torch.stack([spec.real, spec.imag], dim=1).transpose(2, 3)  # [B, 2, frames, freq]
        return _stack(self.convs, self.out, h, 0.2)


class MultiScaleSTFTDiscriminator(_Ensemble):
    def __init__(self, n_ffts: tuple[int, ...] = (1024, 512, 256)) -> None:
        super().__init__()
        self.critics = nn.ModuleList(STFTCritic(n) for n in n_ffts)


class CodecCritics(nn.Module):
    """All critics together: logits and features of each, MPD first."""

    def __init__(self) -> None:
        super().__init__()
        self.mpd = MultiPeriodDiscriminator()
        self.mstft = MultiScaleSTFTDiscriminator()

    def forward(self, x: torch.Tensor) -> Outputs:
        a_logits, a_feats = self.mpd(x)
        b_logits, b_feats = self.mstft(x)
        return a_logits + b_logits, a_feats + b_feats


def critic_loss(real_logits: list[torch.Tensor], fake_logits: list[torch.Tensor]) -> torch.Tensor:
    """Least squares: real towards 1, decoded towards 0; mean over critics."""
    terms = [(1 - r).pow(2).mean() + f.pow(2).mean() for r, f in zip(real_logits, fake_logits, strict=True)]
    return torch.stack(terms).mean()


def generator_loss(fake_logits: list[torch.Tensor]) -> torch.Tensor:
    """Least squares: the decoder wants every critic to say 1; mean over critics."""
    return torch.stack([(1 - f).pow(2).mean() for f in fake_logits]).mean()


def feature_matching(real_feats: list[list[torch.Tensor]], fake_feats: list[list[torch.Tensor]]) -> torch.Tensor:
    """L1 between feature maps, each relative to the real map's mean magnitude (so every layer
    of every critic weighs the same); mean over critics and layers."""
    terms = []
    for rs, fs in zip(real_feats, fake_feats, strict=True):
        for r, f in zip(rs, fs, strict=True):
            r = r.detach()
            terms.append((r - f).abs().mean() / (r.abs().mean() + 1e-5))
    return torch.stack(terms).mean()


def multires_stft_loss(
    y_hat: torch.Tensor, y: torch.Tensor, n_ffts: tuple[int, ...] = (256, 512, 1024, 2048)
) -> torch.Tensor:
    """Linear-frequency magnitude STFT loss (spectral convergence + log-magnitude L1), mean over
    resolutions. At 2048 points (16 kHz) the bins are 7.8 Hz apart: the harmonics of even a
    low voice are resolved, which a mel scale blurs."""
    total = y.new_zeros(())
    for n in n_ffts:
        w = torch.hann_window(n, device=y.device)
        a = torch.stft(y_hat, n, n // 4, window=w, return_complex=True).abs()
        b = torch.stft(y, n, n // 4, window=w, return_complex=True).abs()
        sc = torch.linalg.norm(b - a) / (torch.linalg.norm(b) + 1e-7)
        mag = (torch.log(a + 1e-5) - torch.log(b + 1e-5)).abs().mean()
        total = total + sc + mag
    return total / len(n_ffts)
