"""Codec checkpoints: one format for the official EnCodec weights and the project's own.

A project checkpoint is a directory with
  config.json  {"format": "telugu-s2s-codec/1", "arch": {...CodecArch...}, "meta": {...}}
  model.pt     state dict of an `encodec.EncodecModel` built from `arch`

The official `encodec_24khz-d7cc33bc.th` is a bare state dict for the default 24 kHz
architecture (`CodecArch()`), loadable with `load_official`.
Nothing here downloads anything.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "telugu-s2s-codec/1"
OFFICIAL_24KHZ_NAME = "encodec_24khz-d7cc33bc.th"


# EnCodec 24 kHz at 1.5 kbps (2 codebooks) is the product default.
DEFAULT_BANDWIDTH_KBPS = 1.5


@dataclass(frozen=True)
class CodecArch:
    """Architecture of an EnCodec-family model. Defaults = the official 24 kHz model."""

    sample_rate: int = 24000
    channels: int = 1
    n_filters: int = 32
    n_residual_layers: int = 1
    ratios: tuple[int, ...] = (8, 5, 4, 2)
    dimension: int = 128
    lstm: int = 2
    bins: int = 1024
    target_bandwidths: tuple[float, ...] = (1.5, 3.0, 6.0, 12.0, 24.0)
    causal: bool = True
    norm: str = "weight_norm"
    # "reflect" matches the official weights; "constant" is what the project trains with.
    pad_mode: str = "reflect"
    normalize: bool = False
    # "seanet": EnCodec's waveform decoder; "harmonic": `codec.harmonic.HarmonicDecoder`
    # (an oscillator at the F0 read from the latent, plus filtered noise).
    decoder: str = "seanet"

    @property
    def hop_length(self) -> int:
        return int(math.prod(self.ratios))

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    @property
    def n_q(self) -> int:
        """Codebooks in the quantizer (enough for the highest target bandwidth)."""
        frame_rate = math.ceil(self.sample_rate / self.hop_length)
        return int(1000 * self.target_bandwidths[-1] // (frame_rate * math.log2(self.bins)))

    @property
    def default_bandwidth(self) -> float:
        """What the codec serves unless told otherwise: 1.5 kbps, or the checkpoint's highest
        bandwidth when that is lower (a small demo codec may top out below 1.5)."""
        return min(DEFAULT_BANDWIDTH_KBPS, max(self.target_bandwidths))

    def codebooks_for(self, bandwidth_kbps: float) -> int:
        frame_rate = math.ceil(self.sample_rate / self.hop_length)
        return max(1, int(1000 * bandwidth_kbps // (frame_rate * math.log2(self.bins))))

    @classmethod
    def from_dict(cls, d: dict) -> CodecArch:
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown codec arch fields: {sorted(unknown)}")
        d = dict(d)
        for key in ("ratios", "target_bandwidths"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)


# 16 kHz, hop 256 -> 62.5 frames/s; 2 codebooks x 1024 at the served 1.5 kbps.
# (A hop of 640, 25 frames/s, would shorten the S2S sequences 2.5x, but its autoencoder sat on
# the initial loss plateau for 450+ steps where this one left it at ~300; see docs/training.md.)
DEMO_ARCH = CodecArch(
    sample_rate=16000,
    n_filters=16,
    ratios=(8, 4, 4, 2),
    dimension=64,
    target_bandwidths=(1.5,),
    pad_mode="constant",
)


@dataclass
class LoadedCodec:
    model: Any  # encodec.EncodecModel (no type stubs)
    arch: CodecArch
    weights_id: str  # e.g. "telugu-codec-v1@1a2b3c4d" or "random"
    random: bool
    meta: dict = field(default_factory=dict)


def build_model(arch: CodecArch):
    """An untrained `encodec.EncodecModel` with this architecture."""
    from encodec import EncodecModel
    from encodec.modules import SEANetDecoder, SEANetEncoder
    from encodec.quantization import ResidualVectorQuantizer

    common = {
        "channels": arch.channels,
        "dimension": arch.dimension,
        "n_filters": arch.n_filters,
        "n_residual_layers": arch.n_residual_layers,
        "ratios": list(arch.ratios),
        "norm": arch.norm,
        "causal": arch.causal,
        "pad_mode": arch.pad_mode,
        "lstm": arch.lstm,
    }
    encoder = SEANetEncoder(**common)
    if arch.decoder == "harmonic":
        from telugu_s2s.codec.harmonic import HarmonicDecoder

        decoder = HarmonicDecoder(arch.dimension, arch.hop_length, arch.sample_rate)
    elif arch.decoder == "seanet":
        decoder = SEANetDecoder(**common)
    else:
        raise ValueError(f"unknown codec decoder {arch.decoder!r} (seanet or harmonic)")
    quantizer = ResidualVectorQuantizer(dimension=arch.dimension, n_q=arch.n_q, bins=arch.bins)
    model = EncodecModel(
        encoder,
        decoder,
        quantizer,
        list(arch.target_bandwidths),
        arch.sample_rate,
        arch.channels,
        normalize=arch.normalize,
        segment=None,
        name="telugu-s2s",
    )
    return model.eval()


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save(model, arch: CodecArch, directory: Path, meta: dict | None = None) -> Path:
    import torch

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), directory / "model.pt")
    config = {"format": FORMAT, "arch": asdict(arch), "meta": meta or {}}
    (directory / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    return directory


def load(directory: Path) -> LoadedCodec:
    """Load a project checkpoint directory (config.json + model.pt)."""
    import torch

    directory = Path(directory)
    config = json.loads((directory / "config.json").read_text())
    if config.get("format") != FORMAT:
        raise ValueError(f"{directory}: not a {FORMAT} checkpoint (format={config.get('format')!r})")
    arch = CodecArch.from_dict(config["arch"])
    model = build_model(arch)
    state = torch.load(directory / "model.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    name = config.get("meta", {}).get("name", directory.name)
    digest = file_digest(directory / "model.pt")[:12]
    return LoadedCodec(model.eval(), arch, f"{name}@{digest}", False, config.get("meta", {}))


def load_official(path: Path) -> LoadedCodec:
    """Load the official 24 kHz EnCodec state dict (encodec_24khz-d7cc33bc.th)."""
    import torch

    path = Path(path)
    arch = CodecArch()
    model = build_model(arch)
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return LoadedCodec(model.eval(), arch, f"{path.name}@{file_digest(path)[:12]}", False)


def random_weights(arch: CodecArch | None = None, seed: int = 0) -> LoadedCodec:
    """Untrained weights. Only for an explicit opt-in; callers must announce it loudly."""
    import torch

    arch = arch or CodecArch()
    torch.manual_seed(seed)
    return LoadedCodec(build_model(arch), arch, "random", True)
