"""A harmonic-plus-noise decoder for the codec: pitch comes from an oscillator, not from a
waveform network that has to learn periodicity.

The SEANet decoder of the demo codec, trained on spectral losses alone, writes every 16 ms
frame with the same phase: its output buzzes at the frame rate and loses the voice's pitch
(docs/training.md, "Codec"). This decoder reads the same quantized latent and predicts, per
frame, a fundamental frequency (F0), a voicing probability, a loudness, the distribution of
energy over the harmonics of F0, and the magnitudes of a filtered noise in `noise_bands`
bands. A sum of sinusoids at k * F0 (their phase carried from frame to frame) plus the
filtered noise is the audio (differentiable digital signal processing, Engel et al. 2020).
F0 and voicing are trained against a pitch tracker's reading of the input (when the encoder
trains too, that makes it keep pitch in the codes); the amplitudes learn from spectral losses.

Everything is causal and frame by frame: a frame's audio depends on its latent, earlier
latents (the dilated causal convolutions) and the previous frame's controls (the ramps within
a frame start at the previous frame's values), so the same module streams with a small
state (`HarmonicState`) and gives the same samples as a whole-signal decode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn
from torch.nn import functional as F

F0_MIN_HZ = 50.0
F0_MAX_HZ = 500.0
_LOG_F0_CENTRE = math.log(150.0)
_TWO_PI = 2 * math.pi


def _scale(x: torch.Tensor) -> torch.Tensor:
    """Positive amplitude from a logit (DDSP's exponentiated sigmoid: 0 .. 2, smooth near 0)."""
    return 2.0 * torch.sigmoid(x) ** math.log(10.0) + 1e-7


@dataclass
class Controls:
    """Per-frame synthesis controls, [B, T] or [B, T, n]."""

    log_f0: torch.Tensor  # natural log of F0 in Hz
    voiced_logit: torch.Tensor
    harmonic_amps: torch.Tensor  # [B, T, H], zero above Nyquist
    noise_mags: torch.Tensor  # [B, T, noise_bands]

    @property
    def f0_hz(self) -> torch.Tensor:
        return self.log_f0.exp()


@dataclass
class HarmonicState:
    """What a stream carries from one chunk to the next (batch dimension first)."""

    conv: list[torch.Tensor]  # each causal conv's last (kernel - 1) * dilation inputs
    f0: torch.Tensor  # [B] previous frame's F0 (Hz); 0 before the first frame
    amps: torch.Tensor  # [B, H] previous frame's harmonic amplitudes
    phase: torch.Tensor  # [B] float64 phase of the fundamental at the next sample, in [0, 2 pi)
    frame: torch.Tensor  # [B] int64 frames decoded so far (indexes the noise table)


class HarmonicDecoder(nn.Module):
    """Quantized latent [B, D, T] -> audio [B, 1, T * hop] (the SEANet decoder's interface)."""

    noise_fft: torch.Tensor
    band_to_bin: torch.Tensor
    harmonic_numbers: torch.Tensor
    ramp: torch.Tensor

    def __init__(
        self,
        dimension: int = 64,
        hop: int = 256,
        sample_rate: int = 16000,
        hidden: int = 192,
        kernel: int = 3,
        dilations: tuple[int, ...] = (1, 2, 4, 8, 1, 2),
        harmonics: int = 64,
        noise_bands: int = 32,
        noise_table_frames: int = 64,
        seed: int = 1234,
    ) -> None:
        super().__init__()
        self.hop, self.sample_rate, self.harmonics, self.noise_bands = hop, sample_rate, harmonics, noise_bands
        self.kernel, self.dilations = kernel, tuple(dilations)
        self.inp = nn.Conv1d(dimension, hidden, 1)
        self.convs = nn.ModuleList(nn.Conv1d(hidden, hidden, kernel, dilation=d) for d in self.dilations)
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in self.dilations)
        self.out = nn.Conv1d(hidden, 3 + harmonics + noise_bands, 1)
        # A fixed noise source, one row per frame, cycled: the same samples offline and streaming.
        g = torch.Generator().manual_seed(seed)
        table = torch.rand(noise_table_frames, hop, generator=g) * 2 - 1
        self.register_buffer("noise_fft", torch.view_as_real(torch.fft.rfft(table, dim=-1)), persistent=False)
        # Linear interpolation from the noise bands to the rfft bins of one frame.
        bins = hop // 2 + 1
        pos = torch.linspace(0, noise_bands - 1, bins)
        lo = pos.floor().long().clamp(max=noise_bands - 2)
        frac = pos - lo
        interp = torch.zeros(noise_bands, bins)
        interp[lo, torch.arange(bins)] = 1 - frac
        interp[lo + 1, torch.arange(bins)] += frac
        self.register_buffer("band_to_bin", interp, persistent=False)
        self.register_buffer("harmonic_numbers", torch.arange(1, harmonics + 1, dtype=torch.float32), persistent=False)
        self.register_buffer("ramp", torch.arange(1, hop + 1, dtype=torch.float32) / hop, persistent=False)
        self._frozen_taps: list[torch.Tensor] | None = None

    @staticmethod
    def _tap_weight(conv: nn.Conv1d) -> torch.Tensor:
        """A causal convolution's weight [C_out, C_in, k] as one matrix over its stacked taps."""
        return conv.weight.permute(0, 2, 1).reshape(conv.out_channels, -1)

    def freeze(self) -> None:
        """For serving: the tap matrices computed once, not at every step (a copy of each
        weight, about a quarter of a one-stream step). Call after the last change to the
        weights or their dtype; training never calls it."""
        with torch.no_grad():
            self._frozen_taps = [self._tap_weight(cast(nn.Conv1d, c)).contiguous() for c in self.convs]

    # -- the network -------------------------------------------------------------------------
    def new_state(self, batch: int = 1, device: torch.device | str = "cpu") -> HarmonicState:
        """A fresh stream: zero context, silence before the first frame (in the weights' dtype)."""
        hidden, dt = self.inp.out_channels, self.inp.weight.dtype
        return HarmonicState(
            conv=[torch.zeros(batch, hidden, (self.kernel - 1) * d, device=device, dtype=dt) for d in self.dilations],
            f0=torch.zeros(batch, device=device, dtype=dt),
            amps=torch.zeros(batch, self.harmonics, device=device, dtype=dt),
            phase=torch.zeros(batch, dtype=torch.float64, device=device),
            frame=torch.zeros(batch, dtype=torch.long, device=device),
        )

    def _network(self, latent: torch.Tensor, state: HarmonicState) -> torch.Tensor:
        h = self.inp(latent)
        t = h.shape[-1]
        for i, (module, norm, d) in enumerate(zip(self.convs, self.norms, self.dilations)):
            conv = cast(nn.Conv1d, module)
            ctx = state.conv[i]
            padded = torch.cat([ctx, h], dim=-1)
            if ctx.shape[-1]:
                state.conv[i] = padded[..., -ctx.shape[-1] :].detach()
            # The dilated convolution as one product over its stacked taps: torch's CPU kernel
            # for dilated convolutions is slow (9 ms for 16 streams x 1 frame in float64).
            taps = torch.cat([padded[..., k * d : k * d + t] for k in range(self.kernel)], dim=1)
            weight = self._tap_weight(conv) if self._frozen_taps is None else self._frozen_taps[i]
            y = F.linear(taps.transpose(1, 2), weight, conv.bias)  # [B, T, C]: one GEMM
            h = h + F.gelu(norm(y)).transpose(1, 2)
        return self.out(h).transpose(1, 2)  # [B, T, channels]

    def controls(self, latent: torch.Tensor, state: HarmonicState | None = None) -> Controls:
        if state is None:
            state = self.new_state(latent.shape[0], latent.device)
        o = self._network(latent, state)
        log_f0 = (_LOG_F0_CENTRE + o[..., 0]).clamp(math.log(F0_MIN_HZ), math.log(F0_MAX_HZ))
        voiced_logit = o[..., 1]
        loudness = _scale(o[..., 2])
        dist = o[..., 3 : 3 + self.harmonics]
        nyquist_ok = (log_f0.detach().exp()[..., None] * self.harmonic_numbers) < self.sample_rate / 2 - 200
        dist = dist.masked_fill(~nyquist_ok, -1e4).softmax(-1) * nyquist_ok
        amps = loudness[..., None] * torch.sigmoid(voiced_logit)[..., None] * dist
        noise = _scale(o[..., 3 + self.harmonics :] - 5.0)
        return Controls(log_f0, voiced_logit, amps, noise)

    # -- synthesis ---------------------------------------------------------------------------
    def synthesize(self, c: Controls, state: HarmonicState | None = None) -> torch.Tensor:
        """Controls of T frames -> audio [B, T * hop]; advances `state` when given. F0 is not
        trained through the oscillator (it has its own loss): phase is computed without grad."""
        b, t = c.log_f0.shape
        if state is None:
            state = self.new_state(b, c.log_f0.device)
        hop = self.hop
        f0 = c.f0_hz.detach()
        prev_f0 = torch.cat([torch.where(state.f0 > 0, state.f0, f0[:, 0])[:, None], f0[:, :-1]], dim=1)
        ramp = self.ramp
        with torch.no_grad():
            # per-sample F0 rises linearly from the previous frame's value to this frame's
            f_inst = prev_f0[..., None] + (f0 - prev_f0)[..., None] * ramp  # [B, T, hop]
            omega = (_TWO_PI / self.sample_rate) * f_inst.double()
            within = omega.cumsum(-1)  # phase advance at each sample of the frame
            starts = state.phase[:, None] + torch.cat([omega.new_zeros(b, 1), within[:, :-1, -1].cumsum(1)], dim=1)
            starts = torch.remainder(starts, _TWO_PI)
            phase = torch.remainder(starts[..., None] + within - omega, _TWO_PI).float()  # [B, T, hop]
            state.phase = torch.remainder(starts[:, -1] + within[:, -1, -1], _TWO_PI)
        prev_amps = torch.cat([state.amps[:, None, :], c.harmonic_amps[:, :-1]], dim=1)
        # harmonic sum, frame by frame: amplitudes ramp from the previous frame's to this one's.
        # In float32 whatever the weights' dtype: per sample the same operations in a whole
        # decode and in any chunking (only F0's integral needs float64, above).
        waves = torch.sin(phase[..., None] * self.harmonic_numbers.float())  # [B, T, hop, H]
        both = torch.stack([prev_amps, c.harmonic_amps], dim=-1).float()  # [B, T, H, 2]
        a = torch.matmul(waves, both)  # [B, T, hop, 2]
        harmonic = a[..., 0] + (a[..., 1] - a[..., 0]) * ramp.float()
        # noise: this frame's row of the table, shaped by the band magnitudes
        rows = (state.frame[:, None] + torch.arange(t, device=f0.device)) % self.noise_fft.shape[0]
        spec = torch.view_as_complex(self.noise_fft[rows])  # [B, T, bins]
        noise = torch.fft.irfft(spec * (c.noise_mags @ self.band_to_bin), n=hop, dim=-1).float()
        state.f0 = f0[:, -1].clone()
        state.amps = c.harmonic_amps[:, -1].detach().clone()
        state.frame = state.frame + t
        return (harmonic + noise).reshape(b, t * hop)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        state = self.new_state(latent.shape[0], latent.device)
        return self.synthesize(self.controls(latent, state), state)[:, None, :]

    def step(self, latent: torch.Tensor, state: HarmonicState) -> torch.Tensor:
        """Streaming: the next frames of a stream (latent [B, D, n]) -> audio [B, 1, n * hop]."""
        return self.synthesize(self.controls(latent, state), state)[:, None, :]
