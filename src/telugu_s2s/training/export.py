"""Export: models/MANIFEST.json (sha256, command, data version, eval scores, timings) and the
Triton model repository copy of the S2S checkpoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from telugu_s2s.codec.checkpoint import file_digest

MAX_MODELS_BYTES = 40 * 1024 * 1024


def write_manifest(
    models_dir: Path,
    *,
    command: str,
    data_info: dict,
    eval_scores: dict | None,
    timings: dict | None,
    extra: dict | None = None,
) -> Path:
    models_dir = Path(models_dir)
    files = {}
    total = 0
    for sub in ("codec", "s2s"):
        for name in ("config.json", "model.pt"):
            p = models_dir / sub / name
            if p.is_file():
                files[f"{sub}/{name}"] = {"sha256": file_digest(p), "bytes": p.stat().st_size}
                total += p.stat().st_size
    if total > MAX_MODELS_BYTES:
        raise RuntimeError(f"models are {total / 2**20:.1f} MiB > 40 MiB: shrink the models")
    manifest = {
        "format": "telugu-s2s-models/1",
        "files": files,
        "total_bytes": total,
        "training_command": command,
        "data_version": data_info.get("data_version"),
        "data": {k: data_info.get(k) for k in ("espeak_ng", "held_out_callers", "counts")},
        "eval": eval_scores or {},
        "timings": timings or {},
        **(extra or {}),
    }
    path = models_dir / "MANIFEST.json"
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return path


def export_triton(s2s_dir: Path, model_repository: Path) -> Path:
    """Copy the S2S checkpoint to <repo>/s2s_transformer/1/checkpoint/ (config.json, model.pt)."""
    dst = Path(model_repository) / "s2s_transformer" / "1" / "checkpoint"
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.pt"):
        shutil.copy2(Path(s2s_dir) / name, dst / name)
    return dst
