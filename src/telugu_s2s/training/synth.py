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

# Two more held-out callers (test and val only), from espeak-ng variants no training caller uses.
MORE_HELD_OUT_VOICES: tuple[EspeakVoice, ...] = (
    EspeakVoice("c_iven", "te+iven", 160, 40),
    EspeakVoice("c_anika", "te+anika", 165, 66),
)

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
    EspeakVoice("c_john", "te+john", 156, 40),
    EspeakVoice("c_david", "te+david", 162, 36),
    EspeakVoice("c_paul", "te+paul", 150, 45),
    EspeakVoice("c_robert", "te+robert", 168, 42),
    EspeakVoice("c_zac", "te+zac", 172, 52),
    EspeakVoice("c_shelby", "te+shelby", 160, 70),
    EspeakVoice("c_alicia", "te+Alicia", 164, 66),
    EspeakVoice("c_mike", "te+Mike", 154, 38),
)


# `data synth --wide-callers`: 24 more training callers (54 in all with --more-callers), from
# espeak-ng variants no other caller or product voice uses, at pitch settings spread from low to
# high; none shares a variant file or name with a held-out caller (iven*, anika*, f5, m4). Run E
# (docs/training.md): the held-out voices far from the training ones were the weakest.
WIDE_CALLER_VOICES: tuple[EspeakVoice, ...] = (
    EspeakVoice("c_alex", "te+Alex", 160, 60),
    EspeakVoice("c_andrea", "te+Andrea", 165, 70),
    EspeakVoice("c_denis", "te+Denis", 150, 40),
    EspeakVoice("c_diogo", "te+Diogo", 170, 45),
    EspeakVoice("c_gene", "te+Gene", 155, 50),
    EspeakVoice("c_gene2", "te+Gene2", 162, 65),
    EspeakVoice("c_hugo", "te+Hugo", 158, 72),
    EspeakVoice("c_lee", "te+Lee", 148, 45),
    EspeakVoice("c_marco", "te+Marco", 172, 55),
    EspeakVoice("c_mario", "te+Mario", 160, 68),
    EspeakVoice("c_nguyen", "te+Nguyen", 166, 60),
    EspeakVoice("c_antonio", "te+antonio", 152, 42),
    EspeakVoice("c_benjamin", "te+benjamin", 164, 58),
    EspeakVoice("c_gustave", "te+gustave", 150, 38),
    EspeakVoice("c_klatt4", "te+klatt4", 168, 70),
    EspeakVoice("c_klatt6", "te+klatt6", 158, 74),
    EspeakVoice("c_marcelo", "te+marcelo", 154, 50),
    EspeakVoice("c_max", "te+max", 170, 66),
    EspeakVoice("c_miguel", "te+miguel", 162, 76),
    EspeakVoice("c_norbert", "te+norbert", 156, 52),
    EspeakVoice("c_pedro", "te+pedro", 166, 70),
    EspeakVoice("c_quincy", "te+quincy", 150, 46),
    EspeakVoice("c_steph2", "te+steph2", 168, 68),
    EspeakVoice("c_steph3", "te+steph3", 160, 72),
)


def _with_callers(
    callers: tuple[EspeakVoice, ...],
    held_out: tuple[str, ...],
    train: tuple[EspeakVoice, ...],
    held: tuple[EspeakVoice, ...] = (),
) -> tuple[EspeakVoice, ...]:
    """`callers` with `train` after its training callers and `held` after its held-out ones
    (held-out ones stay last)."""
    return (
        tuple(c for c in callers if c.id not in held_out) + train + tuple(c for c in callers if c.id in held_out) + held
    )


def callers_with_wide(callers: tuple[EspeakVoice, ...], held_out: tuple[str, ...]) -> tuple[EspeakVoice, ...]:
    """`callers` with WIDE_CALLER_VOICES added to the training callers."""
    return _with_callers(callers, held_out, WIDE_CALLER_VOICES)


def callers_with_more(callers: tuple[EspeakVoice, ...], held_out: tuple[str, ...]) -> tuple[EspeakVoice, ...]:
    """`callers` with MORE_CALLER_VOICES added to the training callers and MORE_HELD_OUT_VOICES
    to the held-out ones."""
    return _with_callers(callers, held_out, MORE_CALLER_VOICES, MORE_HELD_OUT_VOICES)


def held_out_with_more(held_out: tuple[str, ...]) -> tuple[str, ...]:
    return held_out + tuple(c.id for c in MORE_HELD_OUT_VOICES)


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
    limit: int = 0  # utterances per training caller and test/val dialogues (0 = all; tests use a few)
    # Every training clip renders its caller at its own speed (+- wpm) and pitch (+-); the
    # held-out callers' test and val clips too (a caller never says a thing twice alike).
    jitter_speed: int = 20
    jitter_pitch: int = 15
    # ... and, when set, training clips at a vocal-tract scale in 1 +- jitter_formant (see
    # EspeakVoice.formant; `data synth --formant-jitter`): an unseen caller differs from every
    # training caller most in its formants. 0 = off.
    jitter_formant: float = 0.0
    # Caller-side audio augmentation of every user clip (see `Aug`): level, noise, telephone
    # band, the silence around a turn. False = clean, peak-normalized renders.
    augment: bool = True
    test_dialogues: int = 40  # composed multi-turn test dialogues (and as many val / 2)
    # Clips per (training caller, training utterance), each its own jittered, degraded render.
    train_variants: int = 1
    # ... for the --wide-callers (WIDE_CALLER_VOICES) instead, when set (0 = train_variants).
    wide_variants: int = 0
    # Clips per (training caller, sentence of corpus.more_utterances()): the training-only
    # phrasings and out-of-domain sentences of `data synth --more-sentences`; 0 = without them.
    more_sentences: int = 0


@dataclass(frozen=True)
class Aug:
    """How one caller clip is degraded, as a real line would: silence around the turn (the
    gateway hands a turn over with its VAD padding), background noise at an SNR, the
    telephone band (8 kHz mu-law round trip) and a peak level (callers are not normalized)."""

    level_db: float  # peak, dBFS
    snr_db: float | None  # None = no noise
    noise: str  # "white" | "pink" | "brown"
    telephone: bool
    lead_ms: int
    tail_ms: int
    seed: int

    def key(self) -> str:
        snr = "-" if self.snr_db is None else f"{self.snr_db:.1f}{self.noise}"
        return f"{self.level_db:.1f}|{snr}|{int(self.telephone)}|{self.lead_ms}|{self.tail_ms}|{self.seed}"

    def describe(self) -> dict:
        return asdict(self)


def draw_aug(rng: random.Random, noise_share: float = 0.5, telephone_share: float = 0.3) -> Aug:
    """A random degradation: peak -30..0 dBFS, noise at 10..30 dB SNR for `noise_share` of the
    clips, the telephone band for `telephone_share`, 0..350 ms before and 50..200 ms after."""
    noisy = rng.random() < noise_share
    return Aug(
        level_db=round(rng.uniform(-30.0, 0.0), 1),
        snr_db=round(rng.uniform(10.0, 30.0), 1) if noisy else None,
        noise=rng.choice(("white", "pink", "brown")),
        telephone=rng.random() < telephone_share,
        lead_ms=rng.randrange(0, 351, 10),
        tail_ms=rng.randrange(50, 201, 10),
        seed=rng.getrandbits(31),
    )


def _colored_noise(n: int, kind: str, g: np.random.Generator) -> np.ndarray:
    white = g.standard_normal(n).astype(np.float32)
    if kind == "white" or n < 2:
        return white
    spec = np.fft.rfft(white)
    f = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
    spec = spec / (np.sqrt(f) if kind == "pink" else f)
    return np.fft.irfft(spec, n).astype(np.float32)


def apply_aug(x: np.ndarray, aug: Aug, rate: int = SAMPLE_RATE) -> np.ndarray:
    """The clip as a caller's line delivers it (see Aug); float32 at `rate`."""
    import soxr

    from telugu_s2s.common.audio import AudioFormat, Encoding, decode_bytes, encode_samples, float_to_int16

    speech_power = float(np.mean(x**2)) if x.size else 0.0
    x = np.concatenate(
        [np.zeros(rate * aug.lead_ms // 1000, np.float32), x, np.zeros(rate * aug.tail_ms // 1000, np.float32)]
    )
    if aug.snr_db is not None and speech_power > 0:
        noise = _colored_noise(len(x), aug.noise, np.random.default_rng(aug.seed))
        noise *= np.sqrt(speech_power / (float(np.mean(noise**2)) + 1e-12) / 10 ** (aug.snr_db / 10))
        x = x + noise
    if aug.telephone:
        mulaw = AudioFormat(Encoding.MULAW, 8000)
        peak = float(np.abs(x).max()) or 1.0
        narrow = soxr.resample(x / peak * 0.9, rate, 8000, quality="HQ")
        narrow = decode_bytes(encode_samples(float_to_int16(narrow), mulaw), mulaw).astype(np.float32) / 32768.0
        x = soxr.resample(narrow, 8000, rate, quality="HQ").astype(np.float32)
    peak = float(np.abs(x).max())
    if peak > 0:
        x = x * (10 ** (aug.level_db / 20) / peak)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


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
            "limit": cfg.limit,
            "jitter": [cfg.jitter_speed, cfg.jitter_pitch] + ([cfg.jitter_formant] if cfg.jitter_formant else []),
            "augment": cfg.augment,
            "test_dialogues": cfg.test_dialogues,
            **({"train_variants": cfg.train_variants} if cfg.train_variants != 1 else {}),
            **({"wide_variants": cfg.wide_variants} if cfg.wide_variants else {}),
            **({"more_sentences": [cfg.more_sentences, corpus.more_digest()]} if cfg.more_sentences else {}),
            "espeak": espeak_version(),
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return "telugu-synth-" + hashlib.sha256(blob.encode()).hexdigest()[:10]


def _text_key(text: str, voice: EspeakVoice, aug: Aug | None = None) -> str:
    formant = "" if voice.formant == 1.0 else f"|{voice.formant:.3f}"
    degraded = "" if aug is None else f"|{aug.key()}"
    return hashlib.sha256(
        f"{voice.variant}|{voice.speed}|{voice.pitch}{formant}{degraded}|{text}".encode()
    ).hexdigest()[:16]


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


def speak(text: str, voice: EspeakVoice, trim_db: float = 40.0, pad_ms: int = 40, ssml: bool = False) -> np.ndarray:
    """espeak-ng (`text` as SSML when `ssml`) -> resample to 24 kHz (soxr, deterministic; read
    as if sampled at rate x formant, which scales the formants) -> trim -> peak 0.9; float32."""
    import soxr

    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        flags = ["-m"] if ssml else []
        subprocess.run(["espeak-ng", *voice.args(), *flags, "-w", str(raw), text], check=True, capture_output=True)
        x, rate = _read_wav(raw)
    if rate != SAMPLE_RATE or voice.formant != 1.0:
        x = soxr.resample(x, rate * voice.formant, SAMPLE_RATE, quality="HQ").astype(np.float32)
    x = _trim(x, SAMPLE_RATE, trim_db, pad_ms)
    peak = float(np.abs(x).max()) if x.size else 0.0
    return x * (0.9 / peak) if peak > 0 else x


def render(text: str, voice: EspeakVoice, out: Path, cfg: SynthConfig, aug: Aug | None = None) -> None:
    """`speak` -> `aug` -> PCM16 WAV (nothing to do if `out` exists)."""
    if out.exists():
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    x = speak(text, voice, cfg.trim_db, cfg.pad_ms)
    if aug is not None:
        x = apply_aug(x, aug)
    write_wav(out, x)


def jittered(caller: EspeakVoice, clip_id: str, cfg: SynthConfig, formant: bool = True) -> EspeakVoice:
    """The caller as one clip renders it (deterministic per clip id)."""
    rng = random.Random(f"{cfg.seed}|{clip_id}")
    speed = caller.speed + rng.randint(-cfg.jitter_speed, cfg.jitter_speed)
    pitch = min(99, max(0, caller.pitch + rng.randint(-cfg.jitter_pitch, cfg.jitter_pitch)))
    if not cfg.jitter_formant or not formant:
        return replace(caller, speed=speed, pitch=pitch)
    scale = round(caller.formant * (1.0 + rng.uniform(-cfg.jitter_formant, cfg.jitter_formant)), 3)
    return replace(caller, speed=speed, pitch=pitch, formant=scale)


def reply_path(text: str, voice: str) -> str:
    """The corpus file of the reply `text` in a product voice."""
    return f"audio/reply/{voice}/{_text_key(text, PRODUCT_VOICES[voice])}.wav"


def plan(cfg: SynthConfig) -> tuple[list[dict], dict[str, tuple[str, EspeakVoice, Aug | None]]]:
    """Manifest rows (without validation) and the renders they need (relpath -> text, voice, aug).

    - train: one clip per (training caller, training utterance), each at its own jittered
      voice and degradation; one row each (a one-turn "dialogue" with no voice: training
      composes dialogues and picks voices per batch).
    - test / val: dialogues composed with a seed (corpus.compose_dialogues) on the held-out
      callers, plus one-turn dialogues: every question in a seen phrasing and in its held-out
      phrasing, and every out-of-domain test sentence. Each turn is a new jittered, degraded
      clip of the dialogue's caller; voices rotate over the four.
    """
    callers = {c.id: c for c in cfg.callers}
    train_callers = [c for c in cfg.callers if c.id not in cfg.held_out]
    held = [callers[c] for c in cfg.held_out]
    renders: dict[str, tuple[str, EspeakVoice, Aug | None]] = {}
    rows: list[dict] = []

    def clip(split: str, clip_id: str, u: corpus.Utterance, caller: EspeakVoice) -> tuple[str, EspeakVoice, Aug | None]:
        voice = jittered(caller, clip_id, cfg, formant=split == "train")
        aug = draw_aug(random.Random(f"{cfg.seed}|aug|{clip_id}")) if cfg.augment else None
        path = f"audio/user/{caller.id}/{_text_key(u.text, voice, aug)}.wav"
        renders[path] = (u.text, voice, aug)
        return path, voice, aug

    def row(
        split: str,
        dialogue_id: str,
        index: int,
        u: corpus.Utterance,
        reply: str,
        depends_on: int,
        caller: EspeakVoice,
        voice: str,
    ) -> None:
        path, rendered, aug = clip(split, f"{dialogue_id}|{index}", u, caller)
        rows.append(
            {
                "split": split,
                "dialogue_id": dialogue_id,
                "turn_index": index,
                "kind": u.kind,
                "intent": u.intent,
                "phrasing": u.phrasing,
                "held_out_phrasing": u.held_out_phrasing,
                "topic": u.topic,
                "depends_on": depends_on,
                "caller": caller.id,
                "caller_speed": rendered.speed,
                "caller_pitch": rendered.pitch,
                **({"caller_formant": rendered.formant} if rendered.formant != 1.0 else {}),
                "aug": aug.describe() if aug else None,
                "voice": voice,
                "user_text": u.text,
                "user_audio": path,
                "reply_text": reply,
                "reply_audio": reply_path(reply, voice) if voice and reply else "",
            }
        )

    train_utts = corpus.utterances("train")
    if cfg.limit:  # some of every kind
        kinds = sorted({u.kind for u in train_utts})
        train_utts = [
            u for k in kinds for u in _spread([v for v in train_utts if v.kind == k], max(1, cfg.limit // len(kinds)))
        ]
    wide = {c.id for c in WIDE_CALLER_VOICES}
    more = corpus.more_utterances() if cfg.more_sentences else []
    for caller in train_callers:
        variants = cfg.wide_variants if caller.id in wide and cfg.wide_variants else cfg.train_variants
        for i, u in enumerate(train_utts):
            for v in range(variants):  # variant 0 keeps the id it had before variants
                suffix = f"-v{v}" if v else ""
                row("train", f"train-{caller.id}-{i:03d}{suffix}", 0, u, u.reply, -1, caller, "")
        for i, u in enumerate(more):
            for v in range(cfg.more_sentences):
                row("train", f"train-{caller.id}-m{i:03d}-v{v}", 0, u, u.reply, -1, caller, "")
    held_utts = corpus.utterances("test")
    for split, n_dialogues in (("test", cfg.test_dialogues), ("val", max(1, cfg.test_dialogues // 2))):
        rng = random.Random(f"{cfg.seed}|{split}")
        singles: list[list[corpus.DialogueTurn]] = []
        for u in held_utts:
            seen_single = u.kind == "qa" and u.phrasing == int(u.intent[2:]) % 2
            if seen_single or (u.held_out_phrasing and u.kind == "qa") or u.kind == "ood":
                singles.append([corpus.DialogueTurn(u, u.reply)])
        if split == "val":  # a quick check needs fewer: every other one
            singles = singles[::2]
        composed = corpus.compose_dialogues(rng, held_utts, n_dialogues)
        dialogues = singles + composed
        if cfg.limit:
            dialogues = _spread(singles, cfg.limit) + composed[: max(1, cfg.limit // 2)]
        for d_idx, turns in enumerate(dialogues):
            caller = held[d_idx % len(held)]
            voice = VOICE_IDS[(d_idx // len(held)) % len(VOICE_IDS)]
            did = f"{split}-{d_idx:03d}-{caller.id}-{voice}"
            for t_idx, t in enumerate(turns):
                row(split, did, t_idx, t.utterance, t.reply, t.depends_on, caller, voice)
    # Every (reply, voice) is rendered so that eval can compare against all answers.
    for text in corpus.all_reply_texts():
        for voice, pv in PRODUCT_VOICES.items():
            renders[reply_path(text, voice)] = (text, pv, None)
    return rows, renders


def _spread(items: list, n: int) -> list:
    """`n` of `items`, spread over the list (every kind of a sorted list gets some)."""
    if n >= len(items):
        return items
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def validate(data_dir: Path, rows: list[dict]) -> None:
    """Every listed file exists and is readable mono PCM16 at 24 kHz; raise with the full list."""
    problems: list[str] = []
    seen: set[str] = set()
    for row in rows:
        for key in ("user_audio", "reply_audio"):
            rel = row[key]
            if not rel or rel in seen:
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
        futures = [
            pool.submit(render, renders[rel][0], renders[rel][1], data_dir / rel, cfg, renders[rel][2]) for rel in todo
        ]
        for fut in tqdm(futures, desc="render", unit="utt", disable=not progress):
            fut.result()
    all_rows = rows + [{"reply_audio": rel, "user_audio": rel} for rel in todo if rel.startswith("audio/reply/")]
    validate(data_dir, all_rows)  # raises before any split is written
    splits_dir = data_dir / "splits"
    splits_dir.mkdir(exist_ok=True)
    for name in SPLITS:
        _write_jsonl(splits_dir / f"{name}.jsonl", [r for r in rows if r["split"] == name])
    _write_jsonl(data_dir / "manifest.jsonl", rows)
    references = [
        {"text": text, "voice": voice, "audio": reply_path(text, voice)}
        for text in corpus.all_reply_texts()
        for voice in PRODUCT_VOICES
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
