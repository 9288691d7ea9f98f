"""S2S checkpoints: `config.json` + `model.pt` in one directory; random weights only on request."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from telugu_s2s.s2s.config import S2SConfig
from telugu_s2s.s2s.network import S2STransformer

log = logging.getLogger(__name__)

FORMAT = "telugu-s2s-s2s/1"


@dataclass
class LoadedS2S:
    model: S2STransformer
    cfg: S2SConfig
    weights_id: str  # "<name>@<sha256[:12]>" or "random"
    random: bool
    meta: dict = field(default_factory=dict)


def save_checkpoint(model: S2STransformer, cfg: S2SConfig, directory: str | Path, meta: dict | None = None) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), directory / "model.pt")
    doc = {"format": FORMAT, "config": cfg.to_dict(), "meta": meta or {}}
    (directory / "config.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return directory


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_config(directory: str | Path) -> tuple[S2SConfig, dict]:
    doc = json.loads((Path(directory) / "config.json").read_text())
    if doc.get("format") != FORMAT:
        raise ValueError(f"{directory}: not a {FORMAT} checkpoint (format={doc.get('format')!r})")
    return S2SConfig.from_dict(doc["config"]), doc.get("meta", {})


def load_checkpoint(directory: str | Path, device: str | torch.device = "cpu") -> LoadedS2S:
    """Load dir/config.json + dir/model.pt (trained weights)."""
    directory = Path(directory)
    cfg, meta = read_config(directory)
    model = S2STransformer(cfg)
    state = torch.load(directory / "model.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.to(device).eval()
    name = meta.get("name", directory.name)
    return LoadedS2S(model, cfg, f"{name}@{_digest(directory / 'model.pt')[:12]}", False, meta)


def random_model(cfg: S2SConfig | None = None, seed: int = 0, device: str | torch.device = "cpu") -> LoadedS2S:
    """UNTRAINED weights. Only behind an explicit opt-in flag; announced with a WARNING."""
    cfg = cfg or S2SConfig()
    log.warning(
        "S2S MODEL USES RANDOM (UNTRAINED) WEIGHTS: replies are noise. Explicitly allowed by a flag.",
        extra={"s2s_config": cfg.to_dict()},
    )
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    model = S2STransformer(cfg).to(device).eval()
    torch.random.set_rng_state(gen_state)
    return LoadedS2S(model, cfg, "random", True, {"name": "random"})


def load_model(
    directory: str | Path,
    *,
    allow_random: bool = False,
    device: str | torch.device = "cpu",
    random_cfg: S2SConfig | None = None,
) -> LoadedS2S:
    """The checkpoint in `directory`; random weights only if it is missing AND allow_random."""
    directory = Path(directory)
    if (directory / "config.json").is_file() and (directory / "model.pt").is_file():
        return load_checkpoint(directory, device)
    if not allow_random:
        raise FileNotFoundError(
            f"no S2S checkpoint at {directory} (config.json + model.pt); train one, point "
            "TS2S_S2S_CHECKPOINT_DIR at it, or set TS2S_S2S_ALLOW_RANDOM_WEIGHTS=1 for untrained weights"
        )
    cfg = random_cfg
    if cfg is None and (directory / "config.json").is_file():
        cfg, _ = read_config(directory)
    return random_model(cfg, device=device)
