"""Shared audio features: log-mel spectrograms (multi-resolution for losses), SI-SNR."""

from __future__ import annotations

import functools

import torch

LOG_FLOOR = 1e-5


@functools.cache
def _mel(sample_rate: int, n_fft: int, hop: int, n_mels: int):
    import torchaudio

    return torchaudio.transforms.MelSpectrogram(
        sample_rate=sample_rate,
        n_fft=n_fft,
        hop_length=hop,
        n_mels=n_mels,
        power=1.0,
        center=True,
        f_min=0.0,
        f_max=sample_rate / 2,
    )


def log_mel(
    x: torch.Tensor, sample_rate: int, n_fft: int = 1024, hop: int | None = None, n_mels: int = 80
) -> torch.Tensor:
    """Natural-log mel magnitude, log(mel + 1e-5). x: [..., T] -> [..., n_mels, frames].

    An additive floor, not a clamp: a clamp has no gradient below the floor, so a decoder
    that starts near silence never learns to get out of it."""
    mel = _mel(sample_rate, n_fft, hop or n_fft // 4, n_mels).to(x.device)
    return torch.log(mel(x) + LOG_FLOOR)


def multires_mel_loss(
    y_hat: torch.Tensor, y: torch.Tensor, sample_rate: int, scales: tuple[int, ...] = (256, 512, 1024, 2048)
) -> torch.Tensor:
    """Sum over resolutions of L1 + L2 between log-mels (the codec reconstruction loss)."""
    total = y.new_zeros(())
    for n_fft in scales:
        n_mels = min(80, n_fft // 8)
        a = log_mel(y_hat, sample_rate, n_fft, n_fft // 4, n_mels)
        b = log_mel(y, sample_rate, n_fft, n_fft // 4, n_mels)
        total = total + (a - b).abs().mean() + 0.5 * (a - b).pow(2).mean()
    return total / len(scales)


def si_snr(est: torch.Tensor, ref: torch.Tensor, eps: float = 1e-8) -> float:
    n = min(est.shape[-1], ref.shape[-1])
    est, ref = est[..., :n] - est[..., :n].mean(), ref[..., :n] - ref[..., :n].mean()
    s = (est * ref).sum() / (ref.pow(2).sum() + eps) * ref
    e = est - s
    return float(10 * torch.log10(s.pow(2).sum() / (e.pow(2).sum() + eps) + eps))
