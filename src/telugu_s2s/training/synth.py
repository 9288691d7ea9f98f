"""`data synth`: render the Telugu corpus with espeak-ng, write the manifest and splits.

Layout under the data dir:
  audio/user/<caller>/<sha>.wav      caller questions (24 kHz mono PCM16)
  audio/reply/<voice>/<sha>.wav      product-voice answers
  manifest.jsonl                     one line per turn (all splits)
  splits/{train,val,test}.jsonl      the same lines, split by dialogue
  data_info.json                     data version, voices, counts

Deterministic: the same corpus and settings give byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import subprocess
import tempfile
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from telugu_s2s.common.voices import VOICE_IDS
from telugu_s2s.training import corpus

log = logging.getLogger(__name__)

SAMPLE_RATE = 24000
FORMAT = "telugu-s2s-data/1"
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class EspeakVoice:
    id: str
    variant: str  # espeak-ng voice, e.g. "te+m3"
    speed: int  # words per minute
    pitch: int  # 0..99
    # Vocal-tract scale: the render is resampled so that its formants (and pitch, and pace)
    # move by this factor, as between a shorter and a longer vocal tract. espeak-ng's pitch
    # flag moves only the pitch; 1.0 = the variant as espeak-ng speaks it.
    formant: float = 1.0

    def args(self) -> list[str]:
        return ["-v", self.variant, "-s", str(self.speed), "-p", str(self.pitch)]

    def describe(self) -> dict:
        """As data_info.json and the data version list it (the scale only where it is not 1)."""
        d = asdict(self)
        if self.formant == 1.0:
            del d["formant"]
        return d


# The four product voices: fixed, distinct variant, pitch and speed.
PRODUCT_VOICES: dict[str, EspeakVoice] = {
    "arjun": EspeakVoice("arjun", "te+m3", 175, 55),
    "ravi": EspeakVoice("ravi", "te+m6", 150, 25),
    "priya": EspeakVoice("priya", "te+f3", 170, 70),
    "lakshmi": EspeakVoice("lakshmi", "te+f2", 155, 50),
}
assert tuple(PRODUCT_VOICES) == VOICE_IDS

# Caller voices. The last two never appear in training (held out for val/test).
CALLER_VOICES: tuple[EspeakVoice, ...] = (
    EspeakVoice("c_m1", "te+m1", 160, 45),
    EspeakVoice("c_m2", "te+m2", 145, 35),
    EspeakVoice("c_m5", "te+m5", 180, 50),
    EspeakVoice("c_f1", "te+f1", 165, 65),
    EspeakVoice("c_f4", "te+f4", 150, 75),
    EspeakVoice("c_m7", "te+m7", 170, 40),
    EspeakVoice("c_andy", "te+Andy", 158, 48),
    EspeakVoice("c_linda", "te+Linda", 166, 62),
    EspeakVoice("c_klatt", "te+klatt", 152, 45),
    EspeakVoice("c_annie", "te+Annie", 172, 70),
    EspeakVoice("c_m4", "te+m4", 155, 42),  # held out
    EspeakVoice("c_f5", "te+f5", 162, 68),  # held out
)
HELD_OUT_CALLERS: tuple[str, ...] = ("c_m4", "c_f5")

# `data synth --more-callers`: twelve more training callers (22 in all). Tried for the demo
# with the vocal-tract jitter (docs/training.md, run 8) and not shipped.
MORE_CALLER_VOICES: tuple[EspeakVoice, ...] = (
    EspeakVoice("c_m8", "te+m8", 158, 38),
    EspeakVoice("c_klatt2", "te+klatt2", 165, 55),
    EspeakVoice("c_klatt3", "te+klatt3", 148, 60),
    EspeakVoice("c_adam", "te+adam", 162, 40),
    EspeakVoice("c_aunty", "te+aunty", 150, 72),
    EspeakVoice("c_edward", "te+edward", 170, 45),
    EspeakVoice("c_grandma", "te+grandma", 145, 66),
    EspeakVoice("c_jacky", "te+Jacky", 175, 50),
    EspeakVoice("c_michael", "te+Michael", 155, 35),
    EspeakVoice("c_steph", "te+steph", 168, 74),
    EspeakVoice("c_travis", "te+travis", 160, 44),
    EspeakVoice("c_belinda", "te+belinda", 158, 64),
)


def callers_with_more(callers: tuple[EspeakVoice, ...], held_out: tuple[str, ...]) -> tuple[EspeakVoice, ...]:
    """`callers` with MORE_CALLER_VOICES added to the training callers (held-out ones stay last)."""
    train = tuple(c for c in callers if c.id not in held_out)
    held = tuple(c for c in callers if c.id in held_out)
    return train + MORE_CALLER_VOICES + held


class DataValidationError(RuntimeError):
    def __init__(self, problems: list[str]) -> None:
        shown = "\n  ".join(problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"data validation failed: {len(problems)} problem(s):\n  {shown}{more}")
        self.problems = problems


@dataclass(frozen=True)
class SynthConfig:
    data_dir: Path = Path(".data")
    seed: int = 0
    workers: int = 2
    trim_db: float = 40.0  # trim leading/trailing silence below peak - trim_db
    pad_ms: int = 40
    callers: tuple[EspeakVoice, ...] = CALLER_VOICES
    held_out: tuple[str, ...] = HELD_OUT_CALLERS
    scripts_limit: int = 0  # 0 = all (tests use a few)
    # Training dialogues render their caller at a per-dialogue speed (+- wpm) and pitch (+-),
    # so the model hears each question many ways; val/test callers stay as listed.
    jitter_speed: int = 20
    jitter_pitch: int = 15
    # ... and, when set, at a per-dialogue vocal-tract scale in 1 +- jitter_formant (see
    # EspeakVoice.formant; `data synth --formant-jitter`): an unseen caller differs from every
    # training caller most in its formants. 0 = off (the shipped demo's data).
    jitter_formant: float = 0.0


def espeak_version() -> str:
    out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip().split("Data at")[0].strip()


def data_version(cfg: SynthConfig) -> str:
    blob = json.dumps(
        {
            "format": FORMAT,
            "corpus": corpus.corpus_digest(),
            "product": {k: v.describe() for k, v in PRODUCT_VOICES.items()},
            "callers": [c.describe() for c in cfg.callers],
            "held_out": cfg.held_out,
            "seed": cfg.seed,
            "trim": [cfg.trim_db, cfg.pad_ms],
            "limit": cfg.scripts_limit,
            "jitter": [cfg.jitter_speed, cfg.jitter_pitch] + ([cfg.jitter_formant] if cfg.jitter_formant else []),
            "espeak": espeak_version(),
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return "telugu-synth-" + hashlib.sha256(blob.encode()).hexdigest()[:10]


def _text_key(text: str, voice: EspeakVoice) -> str:
    formant = "" if voice.formant == 1.0 else f"|{voice.formant:.3f}"
    return hashlib.sha256(f"{voice.variant}|{voice.speed}|{voice.pitch}{formant}|{text}".encode()).hexdigest()[:16]


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise ValueError(f"{path}: expected mono PCM16")
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return data.astype(np.float32) / 32768.0, rate


def read_audio(path: Path) -> np.ndarray:
    """float32 mono 24 kHz samples of a corpus file (raises on a wrong rate)."""
    x, rate = _read_wav(path)
    if rate != SAMPLE_RATE:
        raise ValueError(f"{path}: sample rate {rate}, expected {SAMPLE_RATE}")
    return x


def write_wav(path: Path, x: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    pcm = np.clip(np.round(x * 32767.0), -32768, 32767).astype("<i2")
    tmp = path.with_suffix(".tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    os.replace(tmp, path)


def _trim(x: np.ndarray, rate: int, trim_db: float, pad_ms: int) -> np.ndarray:
    if x.size == 0:
        return x
    frame = rate // 100
    n = len(x) // frame
    if n == 0:
        return x
    energy = np.sqrt((x[: n * frame].reshape(n, frame) ** 2).mean(1) + 1e-12)
    thresh = energy.max() * 10 ** (-trim_db / 20)
    voiced = np.nonzero(energy > thresh)[0]
    pad = rate * pad_ms // 1000
    start = max(0, voiced[0] * frame - pad)
    end = min(len(x), (voiced[-1] + 1) * frame + pad)
    return x[start:end]


def render(text: str, voice: EspeakVoice, out: Path, cfg: SynthConfig) -> None:
    """espeak-ng -> resample to 24 kHz (soxr, deterministic; read as if sampled at
    rate x formant, which scales the formants) -> trim -> PCM16 WAV."""
    import soxr

    if out.exists():
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run(["espeak-ng", *voice.args(), "-w", str(raw), text], check=True, capture_output=True)
        x, rate = _read_wav(raw)
    if rate != SAMPLE_RATE or voice.formant != 1.0:
        x = soxr.resample(x, rate * voice.formant, SAMPLE_RATE, quality="HQ").astype(np.float32)
    x = _trim(x, SAMPLE_RATE, cfg.trim_db, cfg.pad_ms)
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak > 0:
        x = x * (0.9 / peak)
    write_wav(out, x)


def jittered(caller: EspeakVoice, dialogue_id: str, cfg: SynthConfig) -> EspeakVoice:
    """The caller as one training dialogue renders it (deterministic per dialogue)."""
    rng = random.Random(f"{cfg.seed}|{dialogue_id}")
    speed = caller.speed + rng.randint(-cfg.jitter_speed, cfg.jitter_speed)
    pitch = min(99, max(0, caller.pitch + rng.randint(-cfg.jitter_pitch, cfg.jitter_pitch)))
    if not cfg.jitter_formant:
        return replace(caller, speed=speed, pitch=pitch)
    formant = round(caller.formant * (1.0 + rng.uniform(-cfg.jitter_formant, cfg.jitter_formant)), 3)
    return replace(caller, speed=speed, pitch=pitch, formant=formant)


def plan(cfg: SynthConfig) -> tuple[list[dict], dict[str, tuple[str, EspeakVoice]]]:
    """Manifest rows (without validation) and the renders they need (relpath -> text, voice)."""
    scripts = corpus.build_scripts(cfg.seed)
    if cfg.scripts_limit:
        # keep some of each kind
        qa = [s for s in scripts if s.script_id.startswith("qa")]
        nm = [s for s in scripts if s.script_id.startswith("name")]
        half = max(1, cfg.scripts_limit // 2)
        scripts = qa[:half] + nm[: cfg.scripts_limit - half]
    callers = {c.id: c for c in cfg.callers}
    train_callers = [c for c in cfg.callers if c.id not in cfg.held_out]
    held = [callers[c] for c in cfg.held_out]
    renders: dict[str, tuple[str, EspeakVoice]] = {}
    rows: list[dict] = []

    def add(split: str, script: corpus.Script, caller: EspeakVoice, voice: str) -> None:
        dialogue_id = f"{split}-{script.script_id}-{caller.id}-{voice}"
        if split == "train":
            caller = jittered(caller, dialogue_id, cfg)
        pv = PRODUCT_VOICES[voice]
        for i, turn in enumerate(script.turns):
            upath = f"audio/user/{caller.id}/{_text_key(turn.user_text, caller)}.wav"
            rpath = f"audio/reply/{voice}/{_text_key(turn.reply_text, pv)}.wav"
            renders[upath] = (turn.user_text, caller)
            renders[rpath] = (turn.reply_text, pv)
            rows.append(
                {
                    "split": split,
                    "dialogue_id": dialogue_id,
                    "script_id": script.script_id,
                    "turn_index": i,
                    "kind": turn.kind,
                    "topic": turn.topic,
                    "depends_on": turn.depends_on,
                    "caller": caller.id,
                    "caller_speed": caller.speed,
                    "caller_pitch": caller.pitch,
                    # only with the vocal-tract jitter on, so the default data stays as it was
                    **({"caller_formant": caller.formant} if cfg.jitter_formant else {}),
                    "voice": voice,
                    "user_text": turn.user_text,
                    "user_audio": upath,
                    "reply_text": turn.reply_text,
                    "reply_audio": rpath,
                }
            )

    for s_idx, script in enumerate(scripts):
        for caller in train_callers:
            for voice in VOICE_IDS:
                add("train", script, caller, voice)
        for h_idx, caller in enumerate(held):
            add("test", script, caller, VOICE_IDS[(s_idx + h_idx) % 4])
            add("val", script, caller, VOICE_IDS[(s_idx + h_idx + 2) % 4])
    # Every (reply, voice) is rendered so that eval can compare against all answers.
    for text in corpus.all_reply_texts():
        for voice, pv in PRODUCT_VOICES.items():
            renders[f"audio/reply/{voice}/{_text_key(text, pv)}.wav"] = (text, pv)
    return rows, renders


def validate(data_dir: Path, rows: list[dict]) -> None:
    """Every listed file exists and is readable mono PCM16 at 24 kHz; raise with the full list."""
    problems: list[str] = []
    seen: set[str] = set()
    for row in rows:
        for key in ("user_audio", "reply_audio"):
            rel = row[key]
            if rel in seen:
                continue
            seen.add(rel)
            path = data_dir / rel
            if not path.is_file():
                problems.append(f"missing: {rel}")
                continue
            try:
                x, rate = _read_wav(path)
            except Exception as exc:  # noqa: BLE001 - report every unreadable file
                problems.append(f"unreadable: {rel} ({exc})")
                continue
            if rate != SAMPLE_RATE:
                problems.append(f"wrong rate: {rel} ({rate} Hz, expected {SAMPLE_RATE})")
            elif x.size < SAMPLE_RATE // 10:
                problems.append(f"too short: {rel} ({x.size} samples)")
    if problems:
        raise DataValidationError(problems)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def synth(cfg: SynthConfig, progress: bool = True) -> dict:
    from tqdm import tqdm

    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    data_dir = Path(cfg.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    version = data_version(cfg)
    rows, renders = plan(cfg)
    todo = sorted(renders)
    with ThreadPoolExecutor(max_workers=max(1, cfg.workers)) as pool:
        futures = [pool.submit(render, *renders[rel], data_dir / rel, cfg) for rel in todo]
        for fut in tqdm(futures, desc="render", unit="utt", disable=not progress):
            fut.result()
    all_rows = rows + [
        {"reply_audio": rel, "user_audio": rel} for rel in todo if rel.startswith("audio/reply/")
    ]
    validate(data_dir, all_rows)  # raises before any split is written
    splits_dir = data_dir / "splits"
    splits_dir.mkdir(exist_ok=True)
    for name in SPLITS:
        _write_jsonl(splits_dir / f"{name}.jsonl", [r for r in rows if r["split"] == name])
    _write_jsonl(data_dir / "manifest.jsonl", rows)
    references = [
        {"text": text, "voice": voice, "audio": f"audio/reply/{voice}/{_text_key(text, pv)}.wav"}
        for text in corpus.all_reply_texts()
        for voice, pv in PRODUCT_VOICES.items()
    ]
    _write_jsonl(data_dir / "references.jsonl", references)
    info = {
        "format": FORMAT,
        "data_version": version,
        "sample_rate": SAMPLE_RATE,
        "espeak_ng": espeak_version(),
        "product_voices": {k: v.describe() for k, v in PRODUCT_VOICES.items()},
        "caller_voices": [c.describe() for c in cfg.callers],
        "held_out_callers": list(cfg.held_out),
        "counts": {
            "files": len(todo),
            **{f"{s}_turns": sum(r["split"] == s for r in rows) for s in SPLITS},
            **{f"{s}_dialogues": len({r["dialogue_id"] for r in rows if r["split"] == s}) for s in SPLITS},
        },
    }
    (data_dir / "data_info.json").write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    log.info("data %s: %s", version, info["counts"])
    return info


def load_info(data_dir: Path) -> dict:
    path = Path(data_dir) / "data_info.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `telugu-s2s data synth --data-dir {data_dir}` first")
    return json.loads(path.read_text())
