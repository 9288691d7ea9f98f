"""`turn data`: Telugu utterances with pauses inside them, for the end-of-turn model.

A clip is one caller turn, spoken as parts with silences between them, then a long silence:

    [lead] opener, [pause] question?              (an opener, a hesitation, a list, a clause
    [lead] clause + conjunction, [pause] question  ending in a conjunction, or a whole
    [lead] sentence, [pause] question              sentence: said with the continuation
    [lead] question?                               tune of a comma)
    ... followed by 1.6 s of silence (noise, telephone band and level as a caller's line)

Whole sentences appear both before a pause and at the end, so the words alone cannot tell
a finished turn from a pause.

Every part is rendered by espeak-ng in the clip's caller voice (jittered), and the clip is
degraded like the S2S corpus's callers (synth.apply_aug). espeak-ng's own Telugu tunes for
"," and "." hardly differ (final / median F0 0.95 against 0.92, same length), so a part's last
word gets the tune a speaker gives it (SSML prosody): a finished turn falls in pitch and
slows on its last word (most clips), a part before a pause stays level or rises (most
parts); the rest keep espeak-ng's plain tune, so intonation is a cue, not a giveaway. The clip then runs through the
gateway's own segmenter (webrtcvad + energy gate, 20 ms frames), which asks its end-of-turn
detector at every silent frame; each ask is one training example:

    label 1 (finished)  the caller says nothing more after this point
    label 0 (pausing)   speech follows (a pause between parts, or a gap inside a word)

Splits: training callers and parts; validation on two callers training never hears (it
picks the eagerness presets); test on the four held-out callers of the S2S corpus, with
openers, clauses, list items, hesitations and questions (the held-out phrasings) that
training never hears, and every pause 250-800 ms.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from telugu_s2s.training import corpus, synth
from telugu_s2s.turn import features

RATE = features.RATE
TAIL_MS = 1600  # silence after the last part: the detector is asked up to MAX_SILENCE_MS
MAX_SILENCE_MS = 1500
MIN_SILENCE_MS = 60  # earlier asks are not examples (no preset asks that early)
FORMAT = "telugu-s2s-turn-data/1"

VAL_CALLERS = ("c_klatt", "c_zac")
# `turn --wide-callers`: four of the S2S corpus's wide callers, low to high, join validation
# (the other twenty train). Tried and not shipped (docs/turn-taking.md).
WIDE_VAL_CALLERS = ("c_denis", "c_quincy", "c_andrea", "c_hugo")
TEST_CALLERS = synth.held_out_with_more(synth.HELD_OUT_CALLERS)


@dataclass(frozen=True)
class Parts:
    """What may be said before a pause. `train` is what training hears; `held` only the test."""

    train: tuple[str, ...]
    held: tuple[str, ...]

    def pick(self, rng: random.Random, held: bool) -> str:
        return rng.choice(self.held if held else self.train)


OPENERS = Parts(
    (
        "నమస్కారం",
        "హలో",
        "అండీ",
        "చూడండి",
        "ఒక్క నిమిషం",
        "నాకు ఒక సందేహం ఉంది",
        "అదేమిటంటే",
        "మరి",
        "సరే",
        "ఇంకొక విషయం",
        "నిజానికి",
        "వినండి",
        "క్షమించండి",
        "ఏమిటంటే",
    ),
    ("హలో అండీ", "ఒక ప్రశ్న", "ఒక్క సెకను", "నేను అడిగేది ఏమిటంటే", "అవునండీ"),
)
CLAUSES = Parts(
    (
        "నేను నిన్న బ్యాంకుకు వెళ్ళాను",
        "మా అమ్మ ఇంట్లో ఉంది",
        "బస్సు ఆలస్యంగా వచ్చింది",
        "నాకు టికెట్ కావాలి",
        "వర్షం పడుతోంది",
        "నేను ఆఫీసు నుండి వస్తున్నాను",
        "మా అబ్బాయి స్కూలుకు వెళ్ళాడు",
        "ఫోన్ ఛార్జింగ్ లేదు",
        "నేను హైదరాబాద్ లో ఉంటాను",
        "ఈ రోజు పని ఎక్కువ",
    ),
    ("నా స్నేహితుడు ఊరికి వెళ్ళాడు", "మేము మార్కెట్ కి వెళ్ళాము", "నాకు ఆకలిగా ఉంది", "రైలు రద్దు అయింది"),
)
CONJUNCTIONS = Parts(
    ("మరియు", "కానీ", "ఎందుకంటే", "అందుకే", "అప్పుడు", "ఆ తర్వాత"),
    ("మరియు", "కానీ", "ఎందుకంటే", "అందుకే", "అప్పుడు", "ఆ తర్వాత", "అయితే", "కాబట్టి"),
)
LIST_LEADS = Parts(("నాకు కావాల్సినవి", "మార్కెట్ నుండి తేవాలి"), ("ఇంట్లో లేనివి",))
LIST_ITEMS = Parts(
    ("పాలు", "గుడ్లు", "బియ్యం", "పప్పు", "కూరగాయలు", "పండ్లు", "నూనె", "చక్కెర"),
    ("ఉప్పు", "కారం", "పెరుగు", "రొట్టె"),
)
HESITATIONS = Parts(("ఉమ్", "అంటే", "ఆ", "ఏం లేదు"), ("అదీ", "ఇంకా"))
# Out-of-domain "sentences" of the S2S corpus that are half sentences: not a finished turn.
HALF_SENTENCES = frozenset({"నేను రేపు ఉదయం", "ఆ తర్వాత మేము", "అదేంటంటే", "ఎందుకంటే నేను", "నేను కొంచెం"})


def questions(held: bool) -> list[str]:
    """Finished sentences: the S2S corpus's questions, intros, recalls and whole out-of-domain
    sentences; the held-out side gets only the held-out phrasings and the test OOD sentences."""
    rows = corpus.utterances("test" if held else "train")
    if held:
        rows = [u for u in rows if u.held_out_phrasing or u.kind == "ood"]
    return sorted({u.text for u in rows if u.text not in HALF_SENTENCES})


def _final(text: str) -> str:
    return text if text.endswith(("?", ".", "!")) else text + "."


def _cont(text: str) -> str:
    return text.rstrip("?.!,") + ","


def compose(rng: random.Random, held: bool, qs: list[str]) -> list[str]:
    """The parts of one clip, punctuated for espeak-ng (continuation tune before a pause)."""
    q = _final(rng.choice(qs))
    kinds = ("single", "opener", "clause", "list", "hesitation", "sentence", "two")
    kind = rng.choices(kinds, (25, 15, 15, 10, 10, 20, 5))[0]
    if kind == "single":
        return [q]
    if kind == "sentence":  # a whole sentence, then more: only its tune says it goes on
        return [_cont(rng.choice(qs)), q]
    if kind == "opener":
        return [_cont(OPENERS.pick(rng, held)), q]
    if kind == "clause":
        return [_cont(f"{CLAUSES.pick(rng, held)} {CONJUNCTIONS.pick(rng, held)}"), q]
    if kind == "hesitation":
        return [_cont(HESITATIONS.pick(rng, held)), q]
    if kind == "two":
        return [_cont(OPENERS.pick(rng, held)), _cont(f"{CLAUSES.pick(rng, held)} {CONJUNCTIONS.pick(rng, held)}"), q]
    pool = list(LIST_ITEMS.held if held else LIST_ITEMS.train)
    items = rng.sample(pool, k=min(len(pool), rng.randint(2, 3)))
    last = rng.choice([i for i in pool if i not in items] or pool)
    return [_cont(LIST_LEADS.pick(rng, held)), *(_cont(i) for i in items), _final(f"మరియు {last} కూడా")]


@dataclass(frozen=True)
class Tune:
    """The last word's prosody, relative to the voice: pitch and rate in percent."""

    pitch_pct: int
    rate_pct: int


FINAL_TUNED = 0.8  # share of finished turns whose last word falls and slows
CONTINUING_TUNED = 0.7  # share of parts before a pause whose last word stays up


def draw_tune(rng: random.Random, final: bool) -> Tune | None:
    if final:
        return Tune(-rng.randrange(12, 36), rng.randrange(65, 90)) if rng.random() < FINAL_TUNED else None
    return Tune(rng.randrange(0, 26), rng.randrange(95, 116)) if rng.random() < CONTINUING_TUNED else None


def ssml(text: str, tune: Tune | None) -> str:
    """`text` as SSML, its last word in `tune` (plain text when None)."""
    if tune is None:
        return text
    *head, last = text.split(" ")
    prosody = f'<prosody pitch="{tune.pitch_pct:+d}%" rate="{tune.rate_pct}%">{last}</prosody>'
    return "<speak>" + " ".join([*head, prosody]) + "</speak>"


@dataclass(frozen=True)
class Clip:
    id: str
    split: str
    caller: synth.EspeakVoice  # as rendered (jittered)
    parts: tuple[str, ...]
    pauses_ms: tuple[int, ...]  # after each part but the last
    aug: synth.Aug
    tunes: tuple[Tune | None, ...] = ()  # per part


def plan(split: str, callers: list[synth.EspeakVoice], per_caller: int, seed: int) -> list[Clip]:
    held = split == "test"
    qs = questions(held=split == "test")
    cfg = synth.SynthConfig(seed=seed, jitter_formant=0.1)
    clips = []
    for caller in callers:
        for k in range(per_caller):
            cid = f"{split}-{caller.id}-{k:03d}"
            rng = random.Random(f"turn|{seed}|{cid}")
            parts = compose(rng, held, qs)
            lo = 250 if held else 150
            pauses = tuple(rng.randrange(lo, 801 if held else 901, 10) for _ in parts[1:])
            aug = synth.draw_aug(rng)
            aug = synth.Aug(**{**asdict(aug), "lead_ms": rng.randrange(100, 601, 10), "tail_ms": TAIL_MS})
            tunes = tuple(draw_tune(rng, final=i == len(parts) - 1) for i in range(len(parts)))
            clips.append(Clip(cid, split, synth.jittered(caller, cid, cfg), tuple(parts), pauses, aug, tunes))
    return clips


def render(clip: Clip) -> tuple[np.ndarray, int]:
    """The clip as 16 kHz int16 (whole 10 ms hops), and the sample where its speech ends."""
    import soxr

    pieces: list[np.ndarray] = []
    for i, text in enumerate(clip.parts):
        if i:
            pieces.append(np.zeros(synth.SAMPLE_RATE * clip.pauses_ms[i - 1] // 1000, np.float32))
        tune = clip.tunes[i] if clip.tunes else None
        pieces.append(synth.speak(ssml(text, tune), clip.caller, pad_ms=0, ssml=tune is not None))
    speech = np.concatenate(pieces)
    speech_end = len(speech) + synth.SAMPLE_RATE * clip.aug.lead_ms // 1000
    x = synth.apply_aug(speech, clip.aug)
    x = soxr.resample(x, synth.SAMPLE_RATE, RATE, quality="HQ")
    x = x[: len(x) // features.HOP * features.HOP]
    pcm = np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)
    return pcm, speech_end * RATE // synth.SAMPLE_RATE


class _Recorder:
    """A detector that never decides, and notes every ask: (frame end sample, silence ms)."""

    def __init__(self) -> None:
        self.now_ms: Callable[[], int] = lambda: 0  # the segmenter's clock, set once it exists
        self.asks: list[tuple[int, int]] = []

    def decide(self, audio, silence_ms: int):
        from telugu_s2s.turn.detector import EndReason

        if silence_ms > MAX_SILENCE_MS:
            return EndReason.MAX_WAIT
        self.asks.append((self.now_ms() * RATE // 1000, silence_ms))
        return None


def asks(pcm: np.ndarray) -> list[tuple[int, int]]:
    """Where the gateway's segmenter asks its detector, over this clip (16 kHz int16)."""
    from telugu_s2s.gateway.vad import Segmenter, VadSettings

    rec = _Recorder()
    seg = Segmenter(VadSettings(), detector=rec)  # type: ignore[arg-type]
    rec.now_ms = lambda: seg.now_ms
    seg.feed(pcm)
    return rec.asks


def callers_by_split(wide: bool = False) -> dict[str, list[synth.EspeakVoice]]:
    """The S2S corpus's callers with its extra ones (and its wide ones if `wide`), split three ways."""
    everyone = synth.callers_with_more(synth.CALLER_VOICES, synth.HELD_OUT_CALLERS)
    val: tuple[str, ...] = VAL_CALLERS
    if wide:
        everyone = synth.callers_with_wide(everyone, TEST_CALLERS)
        val = val + WIDE_VAL_CALLERS
    return {
        "train": [c for c in everyone if c.id not in TEST_CALLERS and c.id not in val],
        "val": [c for c in everyone if c.id in val],
        "test": [c for c in everyone if c.id in TEST_CALLERS],
    }


def build(data_dir: Path, per_caller: dict[str, int], seed: int = 0, workers: int = 2, wide: bool = False) -> dict:
    """Render every split and write <data_dir>/<split>.npz (audio, per-clip log-mel, examples)
    and <data_dir>/<split>.jsonl (what each clip says)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split, callers in callers_by_split(wide).items():
        clips = plan(split, callers, per_caller[split], seed)
        with ThreadPoolExecutor(workers) as pool:
            rendered = list(pool.map(render, clips))
        audio, offsets, mels, mel_offsets, examples, rows = [], [0], [], [0], [], []
        for ci, (clip, (pcm, speech_end)) in enumerate(zip(clips, rendered)):
            mel = features.analyze(pcm)
            first_end = len(pcm) - (len(mel) - 1) * features.HOP  # the sample frame 0 ends at
            for t, silence in asks(pcm):
                if silence >= MIN_SILENCE_MS:
                    examples.append((ci, (t - first_end) // features.HOP, silence, int(t >= speech_end)))
            audio.append(pcm)
            offsets.append(offsets[-1] + len(pcm))
            mels.append(mel)
            mel_offsets.append(mel_offsets[-1] + len(mel))
            rows.append({**asdict(clip), "speech_end": speech_end, "samples": len(pcm)})
        np.savez(
            data_dir / f"{split}.npz",
            audio=np.concatenate(audio),
            offsets=np.array(offsets, np.int64),
            mel=np.concatenate(mels),
            mel_offsets=np.array(mel_offsets, np.int64),
            examples=np.array(examples, np.int64).reshape(-1, 4),
        )
        with open(data_dir / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        ex = np.array(examples).reshape(-1, 4)
        counts[split] = {
            "clips": len(clips),
            "callers": [c.id for c in callers],
            "examples": len(ex),
            "finished_examples": int(ex[:, 3].sum()) if len(ex) else 0,
            "clips_with_pauses": sum(len(c.parts) > 1 for c in clips),
        }
    info = {"format": FORMAT, "seed": seed, "espeak_ng": synth.espeak_version(), "counts": counts}
    (data_dir / "info.json").write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    return info


@dataclass
class Split:
    """One split as training and evaluation read it."""

    audio: np.ndarray
    offsets: np.ndarray
    mel: np.ndarray
    mel_offsets: np.ndarray
    examples: np.ndarray  # (clip, frame index, silence ms, label)
    rows: list[dict]

    @classmethod
    def load(cls, data_dir: Path, split: str) -> Split:
        with np.load(data_dir / f"{split}.npz") as z:
            arrays = {k: z[k] for k in z.files}
        rows = [json.loads(line) for line in (data_dir / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]
        return cls(rows=rows, **arrays)

    def clip_audio(self, i: int) -> np.ndarray:
        return self.audio[self.offsets[i] : self.offsets[i + 1]]

    def window(self, clip: int, frame: int, remove_shape: bool = False) -> np.ndarray:
        """The normalized model input of the ask at `frame` (an index into the clip's log-mel)."""
        mel = self.mel[self.mel_offsets[clip] : self.mel_offsets[clip + 1]]
        return features.normalize(
            mel[max(0, frame - features.WINDOW_FRAMES + 1) : frame + 1], remove_shape=remove_shape
        )
