"""Codec service configuration: built once at the entry point from env vars and flags."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from telugu_s2s.common import settings
from telugu_s2s.common.settings import SettingError, derived, setting
from telugu_s2s.security.tls import ServerTls

DEFAULT_PORT = 50052
DEFAULT_METRICS_PORT = 9102


def _repo_root() -> Path:
    here = Path(__file__).resolve()
    root = here.parents[3]  # src/telugu_s2s/codec/config.py -> repo
    return root if (root / "pyproject.toml").is_file() else Path.cwd()


def default_checkpoint_dir() -> Path:
    return _repo_root() / "models" / "codec"


PREFIX = "TS2S_CODEC_"
ConfigError = SettingError


@dataclass(frozen=True)
class Config:
    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    metrics_port: int = setting(DEFAULT_METRICS_PORT, help="Prometheus /metrics port (0 disables)")
    # Weights, in order: explicit path -> torch hub cache -> project checkpoint -> random (opt-in).
    weights: str | None = setting(
        None, parse=str, help="official encodec_24khz-d7cc33bc.th file or a project checkpoint dir"
    )
    hub_dir: Path | None = derived()  # torch's hub cache (TORCH_HOME), read at the entry point
    checkpoint_dir: Path = setting(default_factory=default_checkpoint_dir, help="project codec checkpoint")
    allow_random_weights: bool = setting(False, help="run on UNTRAINED weights when none are found (loudly)")
    bandwidth_kbps: float | None = setting(
        None, parse=float, help="default: 1.5, or the checkpoint's highest bandwidth when lower"
    )
    device: str = setting("cpu", choices=("cpu", "cuda"))
    # Torch compute threads = worker threads of the pool (each runs torch with 1 intra-op thread).
    torch_threads: int = 1
    batch_wait_ms: float = 2.0
    max_batch: int = 32
    # Frames per model step (docs/benchmarks.md): an Encode stream's frames go to the model once
    # this many are pending (the segment's end takes the rest); a Decode stream's first
    # `decode_lead_frames` go at once, later ones once `decode_min_frames` are pending. 1 = each
    # frame as soon as it is complete.
    encode_min_frames: int = setting(1, help="an Encode stream's frames per model step, at least")
    decode_min_frames: int = setting(1, help="a Decode stream's frames per model step after its lead")
    decode_lead_frames: int = setting(0, help="a reply's first frames, decoded as soon as they arrive")
    max_hold_ms: float = setting(30.0, help="held frames go to the model when a stream is quiet this long")
    urgent_lane: bool = setting(
        False, help="a torch thread of its own for jobs someone waits on (a segment's end, a reply's first frames)"
    )
    grace_s: float = 5.0
    log_level: str = setting("INFO", env="TS2S_LOG_LEVEL")
    # TLS/mTLS of the gRPC port (TS2S_CODEC_TLS_CERT_FILE/_KEY_FILE/_CLIENT_CA_FILE).
    tls: ServerTls = derived(ServerTls())

    def __post_init__(self) -> None:
        if self.torch_threads < 1:
            raise ConfigError("--torch-threads / TS2S_CODEC_TORCH_THREADS must be >= 1")
        if self.max_batch < 1:
            raise ConfigError("--max-batch / TS2S_CODEC_MAX_BATCH must be >= 1")
        if self.batch_wait_ms < 0:
            raise ConfigError("--batch-wait-ms / TS2S_CODEC_BATCH_WAIT_MS must be >= 0")
        if self.encode_min_frames < 1 or self.decode_min_frames < 1 or self.decode_lead_frames < 0:
            raise ConfigError(
                "TS2S_CODEC_ENCODE_MIN_FRAMES and TS2S_CODEC_DECODE_MIN_FRAMES must be >= 1, "
                "TS2S_CODEC_DECODE_LEAD_FRAMES >= 0"
            )
        if self.max_hold_ms < 0:
            raise ConfigError("TS2S_CODEC_MAX_HOLD_MS must be >= 0")
        if self.bandwidth_kbps is not None and self.bandwidth_kbps <= 0:
            raise ConfigError("--bandwidth-kbps / TS2S_CODEC_BANDWIDTH_KBPS must be > 0")

    @classmethod
    def from_env(cls, argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
        """Defaults < TS2S_CODEC_* environment variables < command-line flags."""
        env = os.environ if env is None else env
        tls = ServerTls.from_env(PREFIX, env)  # a TlsConfigError is a SettingError
        return settings.load(
            cls,
            PREFIX,
            argv,
            env,
            prog="python -m telugu_s2s.codec",
            description="Codec gRPC service",
            extra={"hub_dir": _torch_hub_dir(), "tls": tls},
        )

    def to_env(self) -> dict[str, str]:
        """The TS2S_CODEC_* variables that make `from_env` build this config."""
        return settings.to_env(self, PREFIX)


def _torch_hub_dir() -> Path:
    import torch.hub

    return Path(torch.hub.get_dir())  # honours TORCH_HOME
