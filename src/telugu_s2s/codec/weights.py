"""Which codec weights to load, in order of preference. Nothing here downloads anything.

1. an explicit path (TS2S_CODEC_WEIGHTS): the official `encodec_24khz-d7cc33bc.th` file or a
   project checkpoint directory; a configured path that does not exist is an error;
2. the official file in torch's hub cache (<torch hub dir>/checkpoints/encodec_24khz-d7cc33bc.th);
3. the project's own checkpoint directory (TS2S_CODEC_CHECKPOINT_DIR, default models/codec);
4. random weights, only when explicitly allowed (announced loudly by the caller).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from telugu_s2s.codec import checkpoint
from telugu_s2s.codec.checkpoint import OFFICIAL_24KHZ_NAME, CodecArch, LoadedCodec

log = logging.getLogger(__name__)


class WeightsNotFoundError(RuntimeError):
    pass


HOW_TO_GET_WEIGHTS = (
    "no codec weights found. Either put the official EnCodec file "
    f"{OFFICIAL_24KHZ_NAME} in the torch hub cache (<torch hub dir>/checkpoints/, e.g. "
    "~/.cache/torch/hub/checkpoints/) or point TS2S_CODEC_WEIGHTS at it; or train the project's "
    "codec into TS2S_CODEC_CHECKPOINT_DIR (config.json + model.pt); or, for development only, "
    "set TS2S_CODEC_ALLOW_RANDOM_WEIGHTS=1 to run with untrained (random) weights"
)


def _verify_official(path: Path) -> None:
    """Official file names carry a sha256 prefix (name-<hex>.th): check it like encodec does."""
    m = re.search(r"-([0-9a-f]{8,})\.th$", path.name)
    if m and not checkpoint.file_digest(path).startswith(m.group(1)):
        raise WeightsNotFoundError(f"{path}: sha256 does not start with {m.group(1)}; the file is corrupt")


def _load_path(path: Path) -> LoadedCodec:
    if path.is_dir():
        if not (path / "config.json").is_file() or not (path / "model.pt").is_file():
            raise WeightsNotFoundError(f"{path}: a codec checkpoint directory needs config.json and model.pt")
        return checkpoint.load(path)
    if path.is_file():
        _verify_official(path)
        return checkpoint.load_official(path)
    raise WeightsNotFoundError(f"codec weights {path} do not exist")


def resolve(
    *,
    weights: str | None,
    hub_dir: Path | None,
    checkpoint_dir: Path | None,
    allow_random: bool,
    random_arch: CodecArch | None = None,
) -> LoadedCodec:
    """Load the preferred available weights (see module doc)."""
    if weights:
        log.info("loading codec weights", extra={"source": "configured", "path": str(weights)})
        return _load_path(Path(weights))
    if hub_dir is not None:
        hub_file = Path(hub_dir) / "checkpoints" / OFFICIAL_24KHZ_NAME
        if hub_file.is_file():
            log.info("loading codec weights", extra={"source": "torch hub cache", "path": str(hub_file)})
            return _load_path(hub_file)
    if checkpoint_dir is not None and (Path(checkpoint_dir) / "config.json").is_file():
        log.info("loading codec weights", extra={"source": "project checkpoint", "path": str(checkpoint_dir)})
        return _load_path(Path(checkpoint_dir))
    if allow_random:
        loaded = checkpoint.random_weights(random_arch or CodecArch())
        log.warning(
            "codec is running with RANDOM (untrained) weights: its output is noise. "
            "Only for development; see docs/services/codec.md for how to get real weights.",
            extra={"weights": "random"},
        )
        return loaded
    raise WeightsNotFoundError(HOW_TO_GET_WEIGHTS)
