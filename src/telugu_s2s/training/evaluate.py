"""`eval`: codec quality and S2S reply/voice/context accuracy on held-out caller voices.

S2S scores (test split = caller voices never seen in training):
- reply_accuracy: the decoded reply is nearer (DTW on log-mel) to the right answer than to
  every other answer in the same voice. References go through the same codec first.
- voice_accuracy: among the four voices' renderings of the right answer, the nearest is the
  requested voice.
- context_accuracy / context_accuracy_without_context: the name-recall turns ("నా పేరు
  ఏమిటి?") scored with the real earlier turns as context, and with the context removed.
Codec scores: log-mel L1 (80 mels, natural log, floor 1e-5, at 24 kHz) and SI-SNR of the
codec vs random weights vs an 8 kHz telephone-band copy (vs the official weights when given);
codebook usage (share of codes used on the test audio).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

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
    rels = sorted({r["user_audio"] for r in rows} | {r["reply_audio"] for r in rows})
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
    used = [set() for _ in range(trained.arch.codebooks_for(trained.arch.default_bandwidth))]
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
    result = {
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


def eval_s2s(cfg: EvalConfig) -> dict:
    from tqdm import tqdm

    data_dir = Path(cfg.data_dir)
    codec = load(Path(cfg.codec_dir))
    codec.model.set_target_bandwidth(codec.arch.default_bandwidth)
    sr = codec.arch.sample_rate
    s2s = load_checkpoint(Path(cfg.s2s_dir))
    model, k = s2s.model, s2s.cfg.n_codebooks
    codes_path = data_dir / "codes.npz"
    codes = load_codes(codes_path)
    # references through the same codec
    refs = synth.read_jsonl(data_dir / "references.jsonl")
    ref_feat = {(r["text"], r["voice"]): _feat(codec_decode(codec.model, codes[r["audio"]][:k]), sr) for r in refs}
    texts_by_voice: dict[str, list[str]] = {}
    for text, voice in ref_feat:
        texts_by_voice.setdefault(voice, []).append(text)
    voices = sorted({v for _, v in ref_feat})

    rows = synth.read_jsonl(data_dir / "splits" / f"{cfg.split}.jsonl")
    by_dialogue: dict[str, list[dict]] = {}
    for r in rows:
        by_dialogue.setdefault(r["dialogue_id"], []).append(r)
    jobs = []
    for did in sorted(by_dialogue):
        turns = sorted(by_dialogue[did], key=lambda r: r["turn_index"])
        for i, r in enumerate(turns):
            ctx = [(codes[t["user_audio"]][:k], codes[t["reply_audio"]][:k]) for t in turns[:i]]
            jobs.append((r, ctx, True))
            if r["kind"] == "name_recall":
                jobs.append((r, [], False))
    jobs = jobs[:: max(1, cfg.turn_stride)]
    silence = silence_codes(codec, k)
    lead, tail = (round(ms / 1000 * codec.arch.frame_rate) for ms in (cfg.user_lead_ms, cfg.user_tail_ms))
    if cfg.max_turns:
        jobs = jobs[: cfg.max_turns]

    def nearest_text(feat: np.ndarray, voice: str) -> str:
        texts = texts_by_voice[voice]
        d = dtw_distances(feat, [ref_feat[(t, voice)] for t in texts])
        return texts[int(np.argmin(d))]

    reply_ok, voice_ok, ctx_ok, noctx_ok, details = [], [], [], [], []
    t0 = time.perf_counter()
    frames_total = 0
    for r, ctx, with_ctx in tqdm(jobs, desc="eval s2s", unit="turn", disable=not cfg.progress):
        voice_index = get_voice(r["voice"]).speaker_index
        user = pad_silence(codes[r["user_audio"]][:k], silence, lead, tail)
        gen = _generate(model, user, voice_index, ctx, k, cfg.max_frames)
        frames_total += gen.shape[1]
        if gen.shape[1] < 2:
            ok_reply, ok_voice, got = False, False, ""
        else:
            feat = _feat(codec_decode(codec.model, gen), sr)
            got = nearest_text(feat, r["voice"])
            ok_reply = got == r["reply_text"]
            vd = dtw_distances(feat, [ref_feat[(r["reply_text"], v)] for v in voices])
            ok_voice = voices[int(np.argmin(vd))] == r["voice"]
        if with_ctx:
            reply_ok.append(ok_reply)
            voice_ok.append(ok_voice)
            if r["kind"] == "name_recall":
                ctx_ok.append(ok_reply)
        else:
            noctx_ok.append(ok_reply)
        details.append({"dialogue_id": r["dialogue_id"], "turn": r["turn_index"], "with_context": with_ctx,
                        "expected": r["reply_text"], "nearest": got, "voice": r["voice"],
                        "voice_ok": ok_voice, "user_frames": int(user.shape[1]), "frames": int(gen.shape[1])})
    elapsed = time.perf_counter() - t0
    mean = lambda xs: round(float(np.mean(xs)), 4) if xs else None  # noqa: E731
    n_names = len({r["reply_text"] for r in rows if r["kind"] == "name_recall"})
    return {
        "split": cfg.split,
        "held_out_callers": sorted({r["caller"] for r in rows}),
        "user_padding_ms": [cfg.user_lead_ms, cfg.user_tail_ms],
        "reply_accuracy": mean(reply_ok),
        "voice_accuracy": mean(voice_ok),
        "context_accuracy": mean(ctx_ok),
        "context_accuracy_without_context": mean(noctx_ok),
        "n": len(reply_ok),
        "n_context": len(ctx_ok),
        "n_without_context": len(noctx_ok),
        "chance_context": round(1.0 / max(1, n_names), 4),
        "chance_reply": round(1.0 / max(1, len(texts_by_voice[voices[0]])), 4),
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
        out["codec_eval"] = eval_codec(cfg)
    return out
