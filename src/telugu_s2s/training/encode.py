"""Encode every corpus file with the trained codec: codes.npz (relpath -> int16 [K, T])."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from telugu_s2s.codec.checkpoint import load
from telugu_s2s.training import synth

log = logging.getLogger(__name__)


def codec_codes(model, x: np.ndarray, sample_rate: int) -> np.ndarray:
    """24 kHz float32 samples -> codes int64 [K, T] at the model's bandwidth."""
    import soxr

    if sample_rate != synth.SAMPLE_RATE:
        x = soxr.resample(x, synth.SAMPLE_RATE, sample_rate, quality="HQ").astype(np.float32)
    with torch.no_grad():
        frames = model.encode(torch.from_numpy(x)[None, None])
    return frames[0][0][0].numpy().astype(np.int64)


def codec_decode(model, codes: np.ndarray) -> np.ndarray:
    """codes [K, T] -> float32 samples at the codec's rate."""
    with torch.no_grad():
        y = model.decode([(torch.from_numpy(np.asarray(codes, dtype=np.int64))[None], None)])
    return y[0, 0].numpy()


def pad_silence(codes: np.ndarray, silence: np.ndarray, lead: int, tail: int) -> np.ndarray:
    """codes [K, T] with `lead` frames of silence codes before and `tail` after (silence [K, S],
    repeated as needed)."""
    if lead <= 0 and tail <= 0:
        return codes
    reps = -(-max(lead, tail, 1) // silence.shape[1])
    fill = np.tile(silence[: codes.shape[0]], (1, reps))
    return np.concatenate([fill[:, :lead], codes, fill[:, :tail]], axis=1)


def silence_codes(codec, n_codebooks: int) -> np.ndarray:
    """A loaded codec's codes for steady digital silence, at its default bandwidth: [K, S]."""
    codec.model.set_target_bandwidth(codec.arch.default_bandwidth)
    codes = codec_codes(codec.model, np.zeros(synth.SAMPLE_RATE, np.float32), codec.arch.sample_rate)
    return codes[:n_codebooks, codes.shape[1] // 2 :]  # past the causal start-up


def encode_corpus(data_dir: Path, codec_dir: Path, out: Path | None = None, progress: bool = True) -> Path:
    from tqdm import tqdm

    data_dir = Path(data_dir)
    loaded = load(Path(codec_dir))
    model, arch = loaded.model, loaded.arch
    model.set_target_bandwidth(arch.default_bandwidth)
    rels: set[str] = set()
    for split in synth.SPLITS:
        for r in synth.read_jsonl(data_dir / "splits" / f"{split}.jsonl"):
            rels.add(r["user_audio"])
            if r["reply_audio"]:  # training clips have none: their replies are the references
                rels.add(r["reply_audio"])
    for r in synth.read_jsonl(data_dir / "references.jsonl"):
        rels.add(r["audio"])
    out = Path(out) if out else data_dir / "codes.npz"
    codes: dict[str, np.ndarray] = {}
    stamp = out.with_name(out.stem + ".codec")  # which codec made `out`: reuse its codes only then
    if out.exists() and stamp.exists() and stamp.read_text() == loaded.weights_id:
        with np.load(out) as z:
            codes = {k.replace("|", "/"): z[k] for k in z.files if k.replace("|", "/") in rels}
        log.info("reusing %d codes of %s (same codec)", len(codes), out)
    for rel in tqdm(sorted(rels - set(codes)), desc="encode", unit="utt", disable=not progress):
        codes[rel] = codec_codes(model, synth.read_audio(data_dir / rel), arch.sample_rate).astype(np.int16)
    tmp = out.with_name(out.stem + ".tmp.npz")
    np.savez_compressed(tmp, **{k.replace("/", "|"): v for k, v in codes.items()})
    tmp.replace(out)
    stamp.write_text(loaded.weights_id)
    log.info("encoded %d files with %s -> %s", len(codes), loaded.weights_id, out)
    return out


def load_codes(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k.replace("|", "/"): z[k].astype(np.int64) for k in z.files}
