"""The objective codec report: does the codec keep the voice? (`telugu-s2s eval --codec-report`)

The same files go through every system in one run, and each output is compared with its input
at 16 kHz:

- files: replies in the four product voices (the references the S2S model learns to say) and
  clean clips of the held-out callers (test split: no noise, no telephone band);
- systems: the trained codec at its default bandwidth; Opus (opusenc/opusdec, VBR off) at its
  lowest bitrate, 6 kbps, and at 24 kbps; the 8 kHz mu-law telephone copy (64 kbps);
- figures: STOI, wide-band PESQ, SI-SNR, log-mel L1, the F0 median ratio (output / input,
  voiced frames, YIN) and voicing agreement; per product voice, which voice the codec's output
  is nearest to by median F0; the codec's codebook usage on these files.

Opus cannot go below 6 kbps, so no Opus row matches the codec's own 1.25-1.5 kbps: 6 kbps is
the nearest anchor (about four times the bits, as in the EnCodec paper's comparison).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch

from telugu_s2s.codec.checkpoint import load
from telugu_s2s.common.audio import AudioFormat, Encoding, decode_bytes, encode_samples, float_to_int16, int16_to_float
from telugu_s2s.training import pitch, synth
from telugu_s2s.training.audio_feats import log_mel, si_snr
from telugu_s2s.training.encode import codec_codes, codec_decode

RATE = 16000  # STOI and wide-band PESQ are defined on 16 kHz (STOI resamples to 10 kHz itself)
OPUS_KBPS = (6, 24)


@dataclass(frozen=True)
class ReportConfig:
    data_dir: Path
    codec_dir: Path
    per_voice: int = 5  # replies per product voice
    per_caller: int = 5  # clean test clips per held-out caller
    progress: bool = True


def pick_files(data_dir: Path, per_voice: int, per_caller: int) -> list[tuple[str, str]]:
    """(relative path, who: a product voice or a held-out caller), spread over the corpus."""
    picked: list[tuple[str, str]] = []
    refs = synth.read_jsonl(data_dir / "references.jsonl")
    for voice in sorted({r["voice"] for r in refs}):
        mine = sorted(r["audio"] for r in refs if r["voice"] == voice)
        picked += [(rel, voice) for rel in mine[:: max(1, len(mine) // per_voice)][:per_voice]]
    rows = synth.read_jsonl(data_dir / "splits" / "test.jsonl")
    clean = [r for r in rows if r["aug"] is None or (r["aug"]["snr_db"] is None and not r["aug"]["telephone"])]
    for caller in sorted({r["caller"] for r in clean}):
        mine = sorted({r["user_audio"] for r in clean if r["caller"] == caller})
        picked += [(rel, caller) for rel in mine[:: max(1, len(mine) // per_caller)][:per_caller]]
    return picked


def _resample(x: np.ndarray, a: int, b: int) -> np.ndarray:
    import soxr

    return x if a == b else soxr.resample(x, a, b, quality="HQ").astype(np.float32)


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    return np.pad(y[:n], (0, max(0, n - len(y)))).astype(np.float32)


def opus_roundtrip(x: np.ndarray, sr: int, kbps: int) -> np.ndarray:
    """x through opusenc (hard CBR at `kbps`, speech tuning) and opusdec, back at `sr`."""
    with tempfile.TemporaryDirectory() as tmp:
        src, enc, dec = Path(tmp) / "in.wav", Path(tmp) / "x.opus", Path(tmp) / "out.wav"
        synth.write_wav(src, _resample(x, sr, synth.SAMPLE_RATE))
        subprocess.run(
            ["opusenc", "--quiet", "--hard-cbr", "--bitrate", str(kbps), "--speech", str(src), str(enc)], check=True
        )
        subprocess.run(["opusdec", "--quiet", "--rate", "48000", str(enc), str(dec)], check=True)
        y, rate = soundfile.read(str(dec), dtype="float32", always_2d=True)
    y = y.mean(axis=1)
    return _fit(_resample(y, rate, sr), len(x))


def telephone_roundtrip(x: np.ndarray, sr: int) -> np.ndarray:
    """8 kHz mu-law, as a phone line carries it."""
    line = AudioFormat(Encoding.MULAW, 8000)
    y = int16_to_float(decode_bytes(encode_samples(float_to_int16(_resample(x, sr, 8000)), line), line))
    return _fit(_resample(y, 8000, sr), len(x))


def _scores(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    from pesq import PesqError, pesq
    from pystoi import stoi

    f0_in, f0_out = pitch.yin(x, RATE), pitch.yin(y, RATE)
    level = pitch.frame_level_db(x, RATE)
    mel_x = log_mel(torch.from_numpy(x), RATE, n_fft=1024, hop=256, n_mels=80)
    mel_y = log_mel(torch.from_numpy(y), RATE, n_fft=1024, hop=256, n_mels=80)
    try:
        pesq_wb = float(pesq(RATE, x, y, "wb"))
    except PesqError:  # e.g. no utterance found in the output
        pesq_wb = float("nan")
    return {
        "stoi": float(stoi(x, y, RATE, extended=False)),
        "pesq_wb": pesq_wb,
        "si_snr_db": si_snr(torch.from_numpy(y), torch.from_numpy(x)),
        "log_mel_l1": float((mel_x - mel_y).abs().mean()),
        "f0_ratio": pitch.median_f0(f0_out) / pitch.median_f0(f0_in),
        "voicing_agreement": pitch.voicing_agreement(f0_in, f0_out, level),
        "median_f0_out": pitch.median_f0(f0_out),
        "median_f0_in": pitch.median_f0(f0_in),
    }


def _median(values: list[float]) -> float:
    v = np.array(values, np.float64)
    v = v[np.isfinite(v)]
    return round(float(np.median(v)), 4) if v.size else float("nan")


def codec_report(cfg: ReportConfig) -> dict[str, Any]:
    from tqdm import tqdm

    # Without opus-tools the report goes on without the Opus anchors (and says so): an eval at the
    # end of a long training run must not fail on a missing anchor.
    has_opus = bool(shutil.which("opusenc") and shutil.which("opusdec"))
    data_dir = Path(cfg.data_dir)
    files = pick_files(data_dir, cfg.per_voice, cfg.per_caller)
    loaded = load(Path(cfg.codec_dir))
    model, arch = loaded.model, loaded.arch
    model.set_target_bandwidth(arch.default_bandwidth)
    codebooks = arch.codebooks_for(arch.default_bandwidth)
    used: list[set[int]] = [set() for _ in range(codebooks)]

    def through_codec(x: np.ndarray) -> np.ndarray:
        codes = codec_codes(model, _resample(x, RATE, synth.SAMPLE_RATE), arch.sample_rate)
        for q in range(codes.shape[0]):
            used[q].update(np.unique(codes[q]).tolist())
        return _fit(_resample(codec_decode(model, codes), arch.sample_rate, RATE), len(x))

    bitrate = codebooks * np.log2(arch.bins) * arch.frame_rate / 1000
    systems: dict[str, Callable[[np.ndarray], np.ndarray]] = {"codec": through_codec}
    for kbps in OPUS_KBPS if has_opus else ():
        systems[f"opus_{kbps}kbps"] = functools.partial(opus_roundtrip, sr=RATE, kbps=kbps)
    systems["telephone_8k_mulaw"] = functools.partial(telephone_roundtrip, sr=RATE)
    rows: list[dict[str, Any]] = []
    for rel, who in tqdm(files, desc="codec report", unit="file", disable=not cfg.progress):
        x = _resample(synth.read_audio(data_dir / rel), synth.SAMPLE_RATE, RATE)
        for name, run in systems.items():
            rows.append({"file": rel, "who": who, "system": name, **_scores(x, run(x))})
    metrics = ("stoi", "pesq_wb", "si_snr_db", "log_mel_l1", "f0_ratio", "voicing_agreement")
    table = {name: {m: _median([r[m] for r in rows if r["system"] == name]) for m in metrics} for name in systems}
    voices = sorted({who for _, who in files if not who.startswith("c_")})
    ref_f0 = {v: _median([r["median_f0_in"] for r in rows if r["who"] == v and r["system"] == "codec"]) for v in voices}
    nearest = {}
    for v in voices:
        out = _median([r["median_f0_out"] for r in rows if r["who"] == v and r["system"] == "codec"])
        nearest[v] = min(voices, key=lambda u: abs(np.log(out / ref_f0[u])) if np.isfinite(out) else 0.0)
    return {
        "n_files": len(files),
        "files_by_who": {w: sum(1 for _, who in files if who == w) for w in sorted({w for _, w in files})},
        "sample_rate": RATE,
        "codec": loaded.weights_id,
        "codec_kbps": round(float(bitrate), 3),
        "systems": {
            "codec": f"{bitrate:.2f} kbps",
            **{f"opus_{k}kbps": f"{k} kbps" for k in OPUS_KBPS if has_opus},
            "telephone_8k_mulaw": "64 kbps",
        },
        "median": table,
        "codebook_usage": [round(len(u) / arch.bins, 4) for u in used],
        "voice_median_f0_in": ref_f0,
        "voice_nearest_by_f0_through_codec": nearest,
        **({} if has_opus else {"missing": "Opus anchors: opusenc/opusdec not installed (apt-get install opus-tools)"}),
        "details": rows,
    }
