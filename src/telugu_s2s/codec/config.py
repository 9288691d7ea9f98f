"""Codec service configuration: built once at the entry point from env vars and flags."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from telugu_s2s.common.settings import SettingError, env_number
from telugu_s2s.security.tls import ServerTls, TlsConfigError

DEFAULT_PORT = 50052
DEFAULT_METRICS_PORT = 9102


def _repo_root() -> Path:
    here = Path(__file__).resolve()
    root = here.parents[3]  # src/telugu_s2s/codec/config.py -> repo
    return root if (root / "pyproject.toml").is_file() else Path.cwd()


def default_checkpoint_dir() -> Path:
    return _repo_root() / "models" / "codec"


ConfigError = SettingError


def _bool(value: str | None) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Config:
    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    metrics_port: int = DEFAULT_METRICS_PORT
    # Weights, in order: explicit path -> torch hub cache -> project checkpoint -> random (opt-in).
    weights: str | None = None
    hub_dir: Path | None = None
    checkpoint_dir: Path | None = None
    allow_random_weights: bool = False
    bandwidth_kbps: float | None = None  # None: the checkpoint's default (see CodecArch.default_bandwidth)
    device: str = "cpu"
    # Torch compute threads = worker threads of the pool (each runs torch with 1 intra-op thread).
    torch_threads: int = 1
    batch_wait_ms: float = 2.0
    max_batch: int = 32
    grace_s: float = 5.0
    log_level: str = "INFO"
    # TLS/mTLS of the gRPC port (TS2S_CODEC_TLS_CERT_FILE/_KEY_FILE/_CLIENT_CA_FILE).
    tls: ServerTls = ServerTls()

    @classmethod
    def from_env(cls, argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
        env = os.environ if env is None else env
        p = argparse.ArgumentParser(prog="python -m telugu_s2s.codec", description="Codec gRPC service")
        p.add_argument("--host", default=env.get("TS2S_CODEC_HOST", "0.0.0.0"))
        p.add_argument("--port", type=int, default=env_number(env, "TS2S_CODEC_PORT", int, DEFAULT_PORT))
        p.add_argument(
            "--metrics-port",
            type=int,
            default=env_number(env, "TS2S_CODEC_METRICS_PORT", int, DEFAULT_METRICS_PORT),
            help="Prometheus /metrics port (0 disables)",
        )
        p.add_argument(
            "--weights",
            default=env.get("TS2S_CODEC_WEIGHTS") or None,
            help="official encodec_24khz-d7cc33bc.th file or a project checkpoint dir",
        )
        p.add_argument(
            "--checkpoint-dir",
            type=Path,
            default=Path(env["TS2S_CODEC_CHECKPOINT_DIR"])
            if env.get("TS2S_CODEC_CHECKPOINT_DIR")
            else default_checkpoint_dir(),
        )
        p.add_argument(
            "--allow-random-weights", action="store_true", default=_bool(env.get("TS2S_CODEC_ALLOW_RANDOM_WEIGHTS"))
        )
        p.add_argument(
            "--bandwidth-kbps",
            type=float,
            default=env_number(env, "TS2S_CODEC_BANDWIDTH_KBPS", float, None),
            help="default: 1.5, or the checkpoint's highest bandwidth when lower",
        )
        p.add_argument("--device", choices=["cpu", "cuda"], default=env.get("TS2S_CODEC_DEVICE", "cpu"))
        p.add_argument("--torch-threads", type=int, default=env_number(env, "TS2S_CODEC_TORCH_THREADS", int, 1))
        p.add_argument("--batch-wait-ms", type=float, default=env_number(env, "TS2S_CODEC_BATCH_WAIT_MS", float, 2.0))
        p.add_argument("--max-batch", type=int, default=env_number(env, "TS2S_CODEC_MAX_BATCH", int, 32))
        p.add_argument("--grace-s", type=float, default=5.0)
        p.add_argument("--log-level", default=env.get("TS2S_LOG_LEVEL", "INFO"))
        a = p.parse_args(argv)
        try:
            tls = ServerTls.from_env("TS2S_CODEC_", env)
        except TlsConfigError as exc:
            raise ConfigError(str(exc)) from exc
        if a.torch_threads < 1:
            raise ConfigError("--torch-threads / TS2S_CODEC_TORCH_THREADS must be >= 1")
        if a.max_batch < 1:
            raise ConfigError("--max-batch / TS2S_CODEC_MAX_BATCH must be >= 1")
        if a.batch_wait_ms < 0:
            raise ConfigError("--batch-wait-ms / TS2S_CODEC_BATCH_WAIT_MS must be >= 0")
        if a.bandwidth_kbps is not None and a.bandwidth_kbps <= 0:
            raise ConfigError("--bandwidth-kbps / TS2S_CODEC_BANDWIDTH_KBPS must be > 0")
        return cls(
            host=a.host,
            port=a.port,
            metrics_port=a.metrics_port,
            weights=a.weights,
            hub_dir=_torch_hub_dir(),
            checkpoint_dir=a.checkpoint_dir,
            allow_random_weights=a.allow_random_weights,
            bandwidth_kbps=a.bandwidth_kbps,
            device=a.device,
            torch_threads=a.torch_threads,
            batch_wait_ms=a.batch_wait_ms,
            max_batch=a.max_batch,
            grace_s=a.grace_s,
            log_level=a.log_level,
            tls=tls,
        )


def _torch_hub_dir() -> Path:
    import torch.hub

    return Path(torch.hub.get_dir())  # honours TORCH_HOME
