"""`eval`: codec quality and S2S replies on held-out callers, in dialogues training never saw.

The test split (synth.plan) holds the held-out callers only, every clip degraded at random
(level, noise, telephone band), in dialogues composed with a seed: every question as a first
turn in a seen phrasing and in its held-out phrasing, every out-of-domain test sentence, and
multi-turn dialogues with unrelated turns and name introductions and recalls at random places.
Each turn is generated greedily with the dialogue's earlier turns as context (their user
audio and the model's own replies to them, as a served call holds them; `context_replies=
"reference"` puts the right answers there instead), decoded with the codec and scored by
`ReplyScorer` (log-mel DTW against every answer in every voice, through
the same codec):
- reply accuracy: the nearest answer in the requested voice is the right one; reported over
  all turns and per category (`categories`): first turns, turns after unrelated context,
  held-out phrasings, name introductions, name recalls with and without their context (the
  control: the recall asked again with the context removed), the out-of-domain fallback rate;
- voice accuracy: among the four voices' renderings of the answer the reply said, the nearest
  is the requested voice (and, reported beside it, the same judged on the right answer's
  renderings, which for a wrong answer compares another text);
- the share of replies within +-30 % of the right answer's duration (and of the answer said);
- per-turn rows (`details`) and the most frequent confusions.
`served_eval` speaks the same dialogues into a running stack and reports the same way.
Codec scores: log-mel L1 (80 mels, natural log, floor 1e-5, at 24 kHz) and SI-SNR of the
codec vs random weights vs an 8 kHz telephone-band copy (vs the official weights when given);
codebook usage (share of codes used on the test audio).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from telugu_s2s.codec.checkpoint import load, load_official, random_weights
from telugu_s2s.common.voices import get_voice
from telugu_s2s.s2s.model import load_checkpoint
from telugu_s2s.s2s.protocol import GenerationParams, context_from_turns
from telugu_s2s.training import synth
from telugu_s2s.training.audio_feats import log_mel, si_snr
from telugu_s2s.training.encode import codec_codes, codec_decode, load_codes, pad_silence, silence_codes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalConfig:
    data_dir: Path = Path(".data")
    codec_dir: Path = Path("models/codec")
    s2s_dir: Path = Path("models/s2s")
    split: str = "test"
    official_weights: Path | None = None
    codec_files: int = 60  # test files scored for codec quality (0 = all)
    max_turns: int = 0  # 0 = every turn of the split
    turn_stride: int = 1  # score every n-th turn (quick held-out checks during training)
    max_frames: int = 200
    # Silence codes before and after each user turn, as the gateway hands a turn over (its VAD
    # prefix padding, 300 ms by default, and a ~100 ms tail); 0/0 = the trimmed corpus renders.
    user_lead_ms: int = 0
    user_tail_ms: int = 0
    # The replies of a turn's earlier turns in its context: "generated", the model's own (what a
    # served call holds), or "reference", the right answers (teacher-forced: a name recall can
    # then read the name from the reference's "nice to meet you, <name>").
    context_replies: str = "generated"
    threads: int = 0
    progress: bool = True
    skip_codec: bool = False
    skip_s2s: bool = False


# ----------------------------------------------------------------------------- DTW


def dtw_distances(query: np.ndarray, refs: list[np.ndarray]) -> np.ndarray:
    """Length-normalized DTW cost (mean |diff| per cell) of query [N, F] to each ref [M_r, F].

    Anti-diagonal wavefront, vectorized over the refs and the diagonal.
    """
    n = query.shape[0]
    lens = np.array([r.shape[0] for r in refs])
    m = int(lens.max())
    R = np.stack([np.pad(r, ((0, m - r.shape[0]), (0, 0))) for r in refs])  # [R, M, F]
    cost = np.abs(query[None, :, None, :] - R[:, None, :, :]).mean(-1)  # [R, N, M]
    D = np.full((len(refs), n + 1, m + 1), np.inf)
    D[:, 0, 0] = 0.0
    for d in range(n + m - 1):
        i = np.arange(max(0, d - m + 1), min(n - 1, d) + 1)
        j = d - i
        best = np.minimum(np.minimum(D[:, i, j + 1], D[:, i + 1, j]), D[:, i, j])
        D[:, i + 1, j + 1] = cost[:, i, j] + best
    return D[np.arange(len(refs)), n, lens] / (n + lens)


def _feat(x: np.ndarray, sr: int) -> np.ndarray:
    return log_mel(torch.from_numpy(x), sr, n_fft=1024, hop=256, n_mels=80).T.numpy()


# ----------------------------------------------------------------------------- codec


def _resample(x: np.ndarray, a: int, b: int) -> np.ndarray:
    import soxr

    return x if a == b else soxr.resample(x, a, b, quality="HQ").astype(np.float32)


def _roundtrip(model, sr: int, x24: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    codes = codec_codes(model, x24, sr)
    y = _resample(codec_decode(model, codes), sr, synth.SAMPLE_RATE)[: len(x24)]
    return np.pad(y, (0, len(x24) - len(y))), codes


def eval_codec(cfg: EvalConfig) -> dict:
    from tqdm import tqdm

    rows = synth.read_jsonl(Path(cfg.data_dir) / "splits" / f"{cfg.split}.jsonl")
    rels = sorted({r["user_audio"] for r in rows} | {r["reply_audio"] for r in rows if r["reply_audio"]})
    if cfg.codec_files:
        rels = rels[:: max(1, len(rels) // cfg.codec_files)][: cfg.codec_files]
    trained = load(Path(cfg.codec_dir))
    systems = {"trained": trained}
    systems["random_weights"] = random_weights(trained.arch, seed=0)
    if cfg.official_weights:
        systems["official"] = load_official(Path(cfg.official_weights))
    for s in systems.values():
        s.model.set_target_bandwidth(s.arch.default_bandwidth)
    scores: dict[str, dict[str, list[float]]] = {k: {"l1": [], "sisnr": []} for k in [*systems, "telephone_8k"]}
    used: list[set[int]] = [set() for _ in range(trained.arch.codebooks_for(trained.arch.default_bandwidth))]
    sr24 = synth.SAMPLE_RATE
    for rel in tqdm(rels, desc="eval codec", unit="utt", disable=not cfg.progress):
        x = synth.read_audio(Path(cfg.data_dir) / rel)
        ref = _feat(x, sr24)
        outs = {}
        for name, s in systems.items():
            y, codes = _roundtrip(s.model, s.arch.sample_rate, x)
            outs[name] = y
            if name == "trained":
                for q in range(codes.shape[0]):
                    used[q].update(np.unique(codes[q]).tolist())
        outs["telephone_8k"] = _resample(_resample(x, sr24, 8000), 8000, sr24)[: len(x)]
        for name, y in outs.items():
            y = np.pad(y, (0, len(x) - len(y)))
            scores[name]["l1"].append(float(np.abs(_feat(y, sr24) - ref).mean()))
            scores[name]["sisnr"].append(si_snr(torch.from_numpy(y), torch.from_numpy(x)))
    bins = trained.arch.bins
    result: dict[str, Any] = {
        "n_files": len(rels),
        "codec": trained.weights_id,
        "sample_rate": trained.arch.sample_rate,
        "frame_rate": trained.arch.frame_rate,
        "n_codebooks": len(used),
        "log_mel_l1": {k: round(float(np.mean(v["l1"])), 4) for k, v in scores.items()},
        "si_snr_db": {k: round(float(np.mean(v["sisnr"])), 3) for k, v in scores.items()},
        "codebook_usage": [round(len(u) / bins, 4) for u in used],
    }
    result["beats_telephone_band"] = result["log_mel_l1"]["trained"] < result["log_mel_l1"]["telephone_8k"]
    result["all_codebooks_over_half_used"] = all(u >= 0.5 for u in result["codebook_usage"])
    return result


# ----------------------------------------------------------------------------- s2s


def _generate(model, user: np.ndarray, voice: int, ctx: list, k: int, max_frames: int) -> np.ndarray:
    from telugu_s2s.s2s.model import generate

    ctx_codes, ctx_seg = context_from_turns(ctx, k)
    params = GenerationParams(max_frames=max_frames, temperature=0.0, frames_per_response=64)
    with torch.no_grad():
        blocks = list(generate(model, user[:k], voice, ctx_codes, ctx_seg, params))
    return np.concatenate(blocks, axis=1) if blocks else np.zeros((k, 0), np.int64)


class ReplyScorer:
    """Scores reply audio against the references (every answer in every voice, through the
    same codec): which answer it is nearest to (log-mel DTW); its voice, the nearest of the
    four voices' renders of the answer it said (and, as reported before, of the right answer);
    and its duration against the right answer's and against the answer it said."""

    def __init__(self, data_dir: Path, codec, codes: dict[str, np.ndarray], k: int) -> None:
        self.sr = codec.arch.sample_rate
        refs = synth.read_jsonl(Path(data_dir) / "references.jsonl")
        self.feat: dict[tuple[str, str], np.ndarray] = {}
        self.seconds: dict[tuple[str, str], float] = {}
        for r in refs:
            y = codec_decode(codec.model, codes[r["audio"]][:k])
            self.feat[(r["text"], r["voice"])] = _feat(y, self.sr)
            self.seconds[(r["text"], r["voice"])] = len(y) / self.sr
        self._index()

    def _index(self) -> None:
        self.texts: dict[str, list[str]] = {}
        for text, voice in self.feat:
            self.texts.setdefault(voice, []).append(text)
        self.voices = sorted(self.texts)

    def _nearest_voice(self, feat: np.ndarray, text: str) -> str:
        return self.voices[int(np.argmin(dtw_distances(feat, [self.feat[(text, v)] for v in self.voices])))]

    def score(self, audio: np.ndarray, expected: str, voice: str) -> dict:
        """audio: float32 at the codec's rate (empty = no reply).

        `voice_ok`: the reply's voice is the requested one, judged on the answer it said, so a
        wrong answer in the right voice counts as the right voice. `voice_ok_expected_answer`
        judges it on the right answer's renders instead (the earlier definition: a wrong answer
        is then compared with another text, and the voice it gets is close to a guess).
        `duration_ratio` is against the right answer, `duration_ratio_said` against the answer
        it said."""
        if audio.size < self.sr // 20:
            return {
                "nearest": "",
                "reply_ok": False,
                "voice_ok": False,
                "voice_ok_expected_answer": False,
                "seconds": round(audio.size / self.sr, 3),
                "duration_ratio": 0.0,
                "duration_ratio_said": 0.0,
            }
        feat = _feat(audio, self.sr)
        texts = self.texts[voice]
        got = texts[int(np.argmin(dtw_distances(feat, [self.feat[(t, voice)] for t in texts])))]
        voice_expected = self._nearest_voice(feat, expected)
        voice_said = voice_expected if got == expected else self._nearest_voice(feat, got)
        seconds = audio.size / self.sr
        return {
            "nearest": got,
            "reply_ok": got == expected,
            "voice_ok": voice_said == voice,
            "voice_ok_expected_answer": voice_expected == voice,
            "seconds": round(seconds, 3),
            "duration_ratio": round(seconds / self.seconds[(expected, voice)], 3),
            "duration_ratio_said": round(seconds / self.seconds[(got, voice)], 3),
        }


def dialogue_turns(rows: list[dict]) -> list[list[dict]]:
    """The turns of each dialogue in order, dialogues sorted by id."""
    by_dialogue: dict[str, list[dict]] = {}
    for r in rows:
        by_dialogue.setdefault(r["dialogue_id"], []).append(r)
    return [sorted(by_dialogue[did], key=lambda r: r["turn_index"]) for did in sorted(by_dialogue)]


def eval_jobs(rows: list[dict]) -> list[tuple[dict, list[dict], bool]]:
    """(turn, earlier turns of its dialogue, with_context) for every turn of a composed split,
    plus each name recall again with its context removed (the control)."""
    jobs = []
    for turns in dialogue_turns(rows):
        for i, r in enumerate(turns):
            jobs.append((r, turns[:i], True))
            if r["kind"] == "name_recall":
                jobs.append((r, [], False))
    return jobs


def categories(row: dict, with_context: bool) -> list[str]:
    """The report lines a scored turn counts in. Name introductions and recalls also count in a
    line of their phrasing (`..._seen_phrasing` / `..._held_out_phrasing`): whether a name is
    missed because it was not kept or because the question was not heard."""
    kind = row["kind"]
    phrasing = "_held_out_phrasing" if row.get("held_out_phrasing") else "_seen_phrasing"
    if kind == "name_recall":
        line = "name_recall_with_context" if with_context else "name_recall_without_context"
        return [line, line + phrasing]
    if kind == "ood":
        return ["ood_fallback"]
    if kind == "name_intro":
        return ["name_intro", "name_intro" + phrasing]
    if row.get("held_out_phrasing"):
        return ["held_out_phrasing"]
    return ["first_turn" if row["turn_index"] == 0 else "unrelated_context"]


def summarize(details: list[dict], names: int, replies: int) -> dict:
    """The report over scored turns (`details`: one dict per job with categories, expected,
    nearest, reply_ok, voice_ok, duration_ratio, with_context)."""
    from collections import Counter

    from telugu_s2s.training.corpus import FALLBACK, near_a_trained_phrasing

    cats: dict[str, list[bool]] = {}
    for d in details:
        for c in d["categories"]:
            cats.setdefault(c, []).append(d["reply_ok"])
    scored = [d for d in details if d["with_context"]]
    in_domain = [d for d in scored if d["kind"] != "ood"]
    answered = [d for d in scored if d["nearest"]]
    held_out = [any(c.endswith("held_out_phrasing") for c in d["categories"]) for d in in_domain]
    unheard = [d for d, h in zip(in_domain, held_out) if h]
    heard = [d for d, h in zip(in_domain, held_out) if not h]
    misses = Counter((d["expected"], d["nearest"] or "(no reply)") for d in scored if not d["reply_ok"])
    held_qa = [d for d in unheard if "held_out_phrasing" in d["categories"]]  # questions, not names
    near = [near_a_trained_phrasing(d.get("intent") or "", d.get("user_text") or "") for d in held_qa]
    return {
        "reply_accuracy": _mean([d["reply_ok"] for d in scored]),
        "voice_accuracy": _mean([d["voice_ok"] for d in scored]),
        "voice_accuracy_expected_answer": _mean([d.get("voice_ok_expected_answer", d["voice_ok"]) for d in scored]),
        "context_accuracy": _mean(cats.get("name_recall_with_context", [])),
        "context_accuracy_without_context": _mean(cats.get("name_recall_without_context", [])),
        "n": len(scored),
        "n_context": len(cats.get("name_recall_with_context", [])),
        "n_without_context": len(cats.get("name_recall_without_context", [])),
        "chance_context": round(1.0 / max(1, names), 4),
        "chance_reply": round(1.0 / max(1, replies), 4),
        "by_category": {c: _line(v) for c, v in sorted(cats.items())},
        "ood_fallback_rate": _mean(cats.get("ood_fallback", [])),
        "in_domain_accuracy": _mean([d["reply_ok"] for d in in_domain]),
        "n_in_domain": len(in_domain),
        "in_domain_fallback_rate": _mean([d["nearest"] == FALLBACK for d in in_domain]),
        # the same, on trained phrasings (a needless request to repeat) and on held-out ones
        "in_domain_fallback_rate_seen_phrasing": _mean([d["nearest"] == FALLBACK for d in heard]),
        "in_domain_fallback_rate_held_out_phrasing": _mean([d["nearest"] == FALLBACK for d in unheard]),
        # a fluent wrong answer: a reply that is neither the right one nor the fallback
        "wrong_answer_rate": _mean(
            [bool(d["nearest"]) and not d["reply_ok"] and d["nearest"] != FALLBACK for d in scored]
        ),
        # held-out phrasings one word from a trained phrasing of the same question, and the rest
        "held_out_phrasing_one_word_from_trained": _line([d["reply_ok"] for d, n in zip(held_qa, near) if n]),
        "held_out_phrasing_further_from_trained": _line([d["reply_ok"] for d, n in zip(held_qa, near) if not n]),
        "duration_within_30pct": _mean([abs(d["duration_ratio"] - 1.0) <= 0.3 for d in answered]),
        "duration_within_30pct_of_said_answer": _mean(
            [abs(d.get("duration_ratio_said", d["duration_ratio"]) - 1.0) <= 0.3 for d in answered]
        ),
        "no_reply": sum(not d["nearest"] for d in scored),
        "by_caller": _split_by(scored, lambda d: d.get("caller")),
        "by_condition": _split_by(scored, _condition),
        "confusions": [{"expected": e, "answered": g, "count": n} for (e, g), n in misses.most_common(15)],
    }


def _mean(xs: list) -> float | None:
    return round(float(np.mean(xs)), 4) if xs else None


def _line(oks: list[bool]) -> dict:
    return {"accuracy": _mean(oks), "n": len(oks)}


def _condition(d: dict) -> str:
    """The line a turn came over: telephone band or wide band, noisy or clean, peak level."""
    aug = d.get("aug") or {}
    if not aug:
        return "clean"
    band = "telephone" if aug.get("telephone") else "wideband"
    noise = "noisy" if aug.get("snr_db") is not None else "quiet"
    level = "level<-20dB" if aug.get("level_db", 0) < -20 else "level>=-20dB"
    return f"{band}/{noise}/{level}"


def _split_by(details: list[dict], key) -> dict:
    groups: dict[str, list[bool]] = {}
    for d in details:
        groups.setdefault(str(key(d)), []).append(d["reply_ok"])
    return {k: _line(v) for k, v in sorted(groups.items())}


def detail_row(r: dict, with_context: bool, score: dict, **extra) -> dict:
    return {
        "dialogue_id": r["dialogue_id"],
        "turn": r["turn_index"],
        "kind": r["kind"],
        "intent": r.get("intent"),
        "with_context": with_context,
        "categories": categories(r, with_context),
        "user_text": r["user_text"],
        "caller": r["caller"],
        "aug": r.get("aug"),
        "expected": r["reply_text"],
        "voice": r["voice"],
        **score,
        **extra,
    }


def names_and_replies() -> tuple[int, int]:
    """How many names (chance of a recall) and replies (chance of any turn) there are."""
    from telugu_s2s.training.corpus import NAMES, all_reply_texts

    return len(NAMES), len(all_reply_texts())


def eval_s2s(cfg: EvalConfig) -> dict:
    from tqdm import tqdm

    data_dir = Path(cfg.data_dir)
    codec = load(Path(cfg.codec_dir))
    codec.model.set_target_bandwidth(codec.arch.default_bandwidth)
    s2s = load_checkpoint(Path(cfg.s2s_dir))
    model, k = s2s.model, s2s.cfg.n_codebooks
    codes = load_codes(data_dir / "codes.npz")
    scorer = ReplyScorer(data_dir, codec, codes, k)
    rows = synth.read_jsonl(data_dir / "splits" / f"{cfg.split}.jsonl")
    jobs = eval_jobs(rows)[:: max(1, cfg.turn_stride)]
    if cfg.max_turns:
        jobs = jobs[: cfg.max_turns]
    silence = silence_codes(codec, k)
    lead, tail = (round(ms / 1000 * codec.arch.frame_rate) for ms in (cfg.user_lead_ms, cfg.user_tail_ms))
    if cfg.context_replies not in ("generated", "reference"):
        raise ValueError(f"context_replies must be 'generated' or 'reference', got {cfg.context_replies!r}")
    details = []
    t0 = time.perf_counter()
    frames_total = 0
    own: dict[tuple[str, int], np.ndarray] = {}  # the model's reply to each turn with its context

    def user_of(t: dict) -> np.ndarray:
        return pad_silence(codes[t["user_audio"]][:k], silence, lead, tail)

    def context_of(earlier: list[dict]) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(codes[t["user_audio"]][:k], reply_of(t, earlier[:i])) for i, t in enumerate(earlier)]

    def reply_of(t: dict, before: list[dict]) -> np.ndarray:
        if cfg.context_replies == "reference":
            return codes[t["reply_audio"]][:k]
        key = (t["dialogue_id"], t["turn_index"])
        if key not in own:  # a turn this run does not score (--turn-stride): generated all the same
            voice = get_voice(t["voice"]).speaker_index
            own[key] = _generate(model, user_of(t), voice, context_of(before), k, cfg.max_frames)
        return own[key]

    for r, earlier, with_ctx in tqdm(jobs, desc="eval s2s", unit="turn", disable=not cfg.progress):
        user = user_of(r)
        gen = _generate(model, user, get_voice(r["voice"]).speaker_index, context_of(earlier), k, cfg.max_frames)
        if with_ctx:
            own[(r["dialogue_id"], r["turn_index"])] = gen
        frames_total += gen.shape[1]
        audio = codec_decode(codec.model, gen) if gen.shape[1] >= 2 else np.zeros(0, np.float32)
        details.append(
            detail_row(
                r,
                with_ctx,
                scorer.score(audio, r["reply_text"], r["voice"]),
                user_frames=int(user.shape[1]),
                frames=int(gen.shape[1]),
            )
        )
    elapsed = time.perf_counter() - t0
    return {
        "split": cfg.split,
        "path": "offline",
        "held_out_callers": sorted({r["caller"] for r in rows}),
        "user_padding_ms": [cfg.user_lead_ms, cfg.user_tail_ms],
        "context_replies": cfg.context_replies,
        **summarize(details, *names_and_replies()),
        "s2s": s2s.weights_id,
        "codec": codec.weights_id,
        "generated_frames": frames_total,
        "seconds": round(elapsed, 1),
        "details": details,
    }


def evaluate(cfg: EvalConfig) -> dict:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out: dict = {}
    if not cfg.skip_s2s:
        out.update(eval_s2s(cfg))
    if not cfg.skip_codec:
        from telugu_s2s.training.codec_report import ReportConfig, codec_report

        out["codec_eval"] = eval_codec(cfg)
        report = codec_report(ReportConfig(Path(cfg.data_dir), Path(cfg.codec_dir), progress=cfg.progress))
        out["codec_report"] = {k: v for k, v in report.items() if k != "details"}
    return out
