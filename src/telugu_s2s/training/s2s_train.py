"""`train s2s`: teacher-forced training of the S2S transformer on pre-encoded codes.

Example = (voice, context from the earlier turns of the dialogue, user codes) -> reply codes,
built with `telugu_s2s.s2s.model.make_batch` (delay pattern, bounded context). Batches are
length-bucketed (examples of similar length together, so little padding); the name turns
(recalls need the context, introductions echo a name) are oversampled, and the reply steps
where one answer parts from another weigh more in the loss (`decision_steps`).
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from telugu_s2s.common.voices import get_voice
from telugu_s2s.s2s.model import (
    S2SConfig, S2STransformer, TrainExample, delayed_reply, loss, make_batch, save_checkpoint,
)
from telugu_s2s.training import synth
from telugu_s2s.training.encode import load_codes, pad_silence, silence_codes

log = logging.getLogger(__name__)


# Context turns are kept at about this many tokens per second (every n-th frame).
CONTEXT_TOKENS_PER_S = 12.5


def demo_model_config(frame_rate: float = 25.0, n_codebooks: int = 4, codebook_size: int = 1024) -> S2SConfig:
    """The demo size: trains on a 2-core CPU. The context budget holds about three earlier
    turns at CONTEXT_TOKENS_PER_S, enough to reach a name given three turns back."""
    return S2SConfig(
        n_codebooks=n_codebooks, codebook_size=codebook_size, n_layers=4, d_model=128, n_heads=4,
        ffn_mult=4, max_seq_len=1024, context_budget=192,
        context_stride=max(1, round(frame_rate / CONTEXT_TOKENS_PER_S)),
        max_reply_frames=round(8 * frame_rate), n_voices=4, dropout=0.0, frame_rate=frame_rate,
    )


@dataclass(frozen=True)
class S2STrainConfig:
    data_dir: Path = Path(".data")
    codes_path: Path | None = None  # default <data_dir>/codes.npz
    codec_dir: Path = Path("models/codec")
    run_dir: Path = Path("runs/s2s")
    out_dir: Path = Path("models/s2s")
    steps: int = 6000
    batch_size: int = 16
    lr: float = 3e-3
    weight_decay: float = 0.01
    warmup: int = 100
    recall_oversample: int = 4  # name-recall turns (the answer is in the context) per epoch
    intro_oversample: int = 4  # name introductions (the answer echoes a name the caller said)
    ckpt_every: int = 100
    log_every: int = 25
    val_every: int = 1000  # steps between quick held-out checks (greedy decode, reply accuracy); 0 = off
    val_turns: int = 8  # val-split turns decoded per check
    seed: int = 0
    device: str = "cpu"
    threads: int = 0
    name: str = "telugu-s2s-demo"
    progress: bool = True
    model: dict = field(default_factory=dict)  # S2SConfig overrides
    # User-side augmentation (held-out callers sound unlike every training caller): each time a
    # turn is drawn, its user codes are time-warped by a random factor in 1 +- warp (frames
    # dropped or repeated) and a share `token_noise` of its code tokens replaced at random.
    warp: float = 0.15
    token_noise: float = 0.1
    # The gateway hands the model a user turn with the VAD's prefix padding (300 ms by default)
    # and a 100 ms tail of near-silence, where the corpus renders are trimmed to 40 ms: pad each
    # drawn turn with 0..lead_silence_s before and 0..tail_silence_s after, in silence codes.
    lead_silence_s: float = 0.4
    tail_silence_s: float = 0.2
    # Which answer a reply is gets decided at a handful of steps: the first reply frame for most
    # answers, the name for "నమస్కారం <name> గారు". Those steps (where this reply parts from
    # another reply in the same voice) weigh this much in the loss instead of 1; unweighted they
    # are ~1 % of it and the model learns to recite answers better than to pick them.
    decision_weight: float = 25.0
    # The corpus dialogues follow fixed scripts, so a dialogue's earlier questions tell which
    # question comes next. Each epoch this share of the examples gets its context redrawn:
    # 0..context_turns question turns of the same caller and voice at random (a name recall
    # keeps its introduction among them), so the reply has to come from the user turn itself,
    # as with a caller who asks in an order of their own. 0 = the scripted context only.
    context_shuffle: float = 0.0
    context_turns: int = 3


def build_examples(rows: list[dict], codes: dict[str, np.ndarray]) -> list[tuple[dict, TrainExample]]:
    """Rows of one split -> examples with the dialogue's earlier turns as context."""
    by_dialogue: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_dialogue[r["dialogue_id"]].append(r)
    out = []
    for did in sorted(by_dialogue):
        turns = sorted(by_dialogue[did], key=lambda r: r["turn_index"])
        for i, r in enumerate(turns):
            ctx = [(codes[t["user_audio"]], codes[t["reply_audio"]]) for t in turns[:i]]
            ex = TrainExample(get_voice(r["voice"]).speaker_index, codes[r["user_audio"]], codes[r["reply_audio"]], ctx)
            out.append((r, ex))
    return out


def redraw_contexts(examples: list[tuple[dict, TrainExample]], rng: random.Random, share: float,
                    max_turns: int) -> list[tuple[dict, TrainExample]]:
    """The examples with a `share` of them given a random context (see S2STrainConfig.context_shuffle):
    0..max_turns question turns of the same caller and voice, never the turn itself; a name
    recall keeps the introduction it depends on, at a random place among them."""
    if share <= 0:
        return examples
    pools: dict[tuple[str, str], list[tuple[str, tuple[np.ndarray, np.ndarray]]]] = defaultdict(list)
    for r, ex in examples:
        if r["kind"] == "qa":
            pools[(r["caller"], r["voice"])].append((r["reply_audio"], (ex.user_codes, ex.reply_codes)))
    out = []
    for r, ex in examples:
        if rng.random() >= share:
            out.append((r, ex))
            continue
        pool = [turn for reply, turn in pools[(r["caller"], r["voice"])] if reply != r["reply_audio"]]
        if r["kind"] == "name_recall":
            others = rng.sample(pool, min(len(pool), rng.randint(0, max(0, max_turns - 1))))
            others.insert(rng.randint(0, len(others)), ex.context_turns[r["depends_on"]])
            ctx = others
        else:
            ctx = rng.sample(pool, min(len(pool), rng.randint(0, max_turns)))
        out.append((r, replace(ex, context_turns=ctx)))
    return out


def decision_steps(mcfg: S2SConfig, replies: dict[str, np.ndarray]) -> dict[str, tuple[int, ...]]:
    """For each reply (codes [K, R], all in one voice): the delay-pattern steps at which it
    first differs from each other reply; teacher-forced, those are the only steps where the
    model chooses between answers."""
    grids = {key: delayed_reply(mcfg, np.asarray(c)[: mcfg.n_codebooks])[0] for key, c in replies.items()}
    out = {}
    for key, g in grids.items():
        steps = set()
        for other, h in grids.items():
            if other == key:
                continue
            n = min(g.shape[1], h.shape[1])
            differ = np.flatnonzero(np.any(g[:, :n] != h[:, :n], axis=0))
            steps.add(int(differ[0]) if differ.size else n)
        out[key] = tuple(sorted(s for s in steps if s < g.shape[1]))
    return out


def with_decisions(examples: list[tuple[dict, TrainExample]], mcfg: S2SConfig,
                   weight: float) -> list[tuple[dict, TrainExample]]:
    """The examples with their replies' decision steps weighted (see `decision_steps`)."""
    if weight == 1.0:
        return examples
    by_voice: dict[str, dict[str, np.ndarray]] = defaultdict(dict)
    for r, ex in examples:
        by_voice[r["voice"]][r["reply_audio"]] = ex.reply_codes
    steps = {v: decision_steps(mcfg, replies) for v, replies in by_voice.items()}
    return [(r, replace(ex, decision_steps=steps[r["voice"]][r["reply_audio"]], decision_weight=weight))
            for r, ex in examples]


def augment_user(codes: np.ndarray, rng: random.Random, warp: float, token_noise: float,
                 codebook_size: int) -> np.ndarray:
    """A perturbed copy of user codes [K, T]: time warp (nearest frame) + random token swaps."""
    k, t = codes.shape
    if t < 2 or (warp <= 0 and token_noise <= 0):
        return codes
    factor = 1.0 + rng.uniform(-warp, warp)
    n = max(1, round(t * factor))
    idx = np.minimum((np.arange(n) / factor).astype(np.int64), t - 1)
    out = codes[:, idx].copy()
    if token_noise > 0:
        g = np.random.default_rng(rng.getrandbits(32))
        mask = g.random(out.shape) < token_noise
        out[mask] = g.integers(0, codebook_size, int(mask.sum()))
    return out


def _augmented(batch: list[TrainExample], rng: random.Random, cfg: "S2STrainConfig", codebook_size: int,
               silence: np.ndarray | None, frame_rate: float) -> list[TrainExample]:
    out = []
    for ex in batch:
        user = augment_user(ex.user_codes, rng, cfg.warp, cfg.token_noise, codebook_size)
        if silence is not None:
            user = pad_silence(user, silence, round(rng.uniform(0, cfg.lead_silence_s) * frame_rate),
                               round(rng.uniform(0, cfg.tail_silence_s) * frame_rate))
        out.append(replace(ex, user_codes=user))
    return out


def _buckets(examples: list[tuple[dict, TrainExample]], batch_size: int, rng: random.Random,
             oversample: dict[str, int]) -> list[list[TrainExample]]:
    """One epoch of length-bucketed batches (sorted by length with jitter, then shuffled);
    `oversample`: copies per epoch of each turn kind (default 1)."""
    pool = []
    for r, ex in examples:
        pool += [ex] * oversample.get(r["kind"], 1)
    keyed = sorted(pool, key=lambda ex: ex.user_codes.shape[1] + ex.reply_codes.shape[1] + rng.uniform(0, 30))
    batches = [keyed[i : i + batch_size] for i in range(0, len(keyed), batch_size)]
    rng.shuffle(batches)
    return batches


def _quick_val(model: S2STransformer, mcfg: S2SConfig, cfg: S2STrainConfig, step: int) -> dict:
    """Greedy-decode a few val-split turns and score them as `eval` does (reply/voice accuracy,
    frames per reply: a model that has not learned EOS runs every reply to the frame cap)."""
    from telugu_s2s.training.evaluate import EvalConfig, eval_s2s

    ckpt = Path(cfg.run_dir) / "val_ckpt"
    model.eval()
    save_checkpoint(model, mcfg, ckpt, {"name": f"val@{step}"})
    rows = synth.read_jsonl(Path(cfg.data_dir) / "splits" / "val.jsonl")
    stride = max(1, len(rows) // max(1, cfg.val_turns))
    t0 = time.perf_counter()
    res = eval_s2s(EvalConfig(data_dir=cfg.data_dir, codec_dir=cfg.codec_dir, s2s_dir=ckpt, split="val",
                              max_turns=cfg.val_turns, turn_stride=stride, progress=False))
    frames = [d["frames"] for d in res["details"]]
    row = {"step": step, "val_reply_accuracy": res["reply_accuracy"], "val_voice_accuracy": res["voice_accuracy"],
           "val_n": res["n"], "val_mean_frames": round(float(np.mean(frames)), 1) if frames else 0.0,
           "val_seconds": round(time.perf_counter() - t0, 1)}
    log.info("s2s quick val: %s", row)
    return row


def train_s2s(cfg: S2STrainConfig) -> dict:
    from tqdm import tqdm

    from telugu_s2s.codec.checkpoint import CodecArch, load as load_codec

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    codec_cfg = json.loads((Path(cfg.codec_dir) / "config.json").read_text())
    arch = CodecArch.from_dict(codec_cfg["arch"])
    k = arch.codebooks_for(arch.default_bandwidth)
    mcfg = demo_model_config(arch.frame_rate, k, arch.bins)
    if cfg.model:
        mcfg = S2SConfig.from_dict({**mcfg.to_dict(), **cfg.model})
    codes = load_codes(Path(cfg.codes_path or Path(cfg.data_dir) / "codes.npz"))
    rows = synth.read_jsonl(Path(cfg.data_dir) / "splits" / "train.jsonl")
    examples = with_decisions(build_examples(rows, codes), mcfg, cfg.decision_weight)
    silence = silence_codes(load_codec(Path(cfg.codec_dir)), k) if cfg.lead_silence_s > 0 or cfg.tail_silence_s > 0 else None
    model = S2STransformer(mcfg).to(cfg.device).train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "emb" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "emb" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.98))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / cfg.warmup) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps)))
    )
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    state_path = run_dir / "state.pt"
    step, history = 0, []
    if state_path.exists():
        st = torch.load(state_path, map_location=cfg.device, weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        sched.load_state_dict(st["sched"])
        step, history = st["step"], st["history"]
        rng.setstate(st["rng"])
        torch.set_rng_state(st["torch_rng"])
        log.info("s2s: resumed from %s at step %d", state_path, step)
    log.info("s2s: %d params, %d train examples", model.num_parameters(), len(examples))
    t0 = time.perf_counter()
    start = step
    bar = tqdm(total=cfg.steps, initial=step, desc="s2s", unit="step", disable=not cfg.progress)
    batches: list = []
    acc_loss, acc_n = 0.0, 0
    while step < cfg.steps:
        if not batches:
            batches = _buckets(redraw_contexts(examples, rng, cfg.context_shuffle, cfg.context_turns),
                               cfg.batch_size, rng,
                               {"name_recall": cfg.recall_oversample, "name_intro": cfg.intro_oversample})
        batch = make_batch(mcfg, _augmented(batches.pop(), rng, cfg, mcfg.codebook_size, silence,
                                            arch.frame_rate)).to(cfg.device)
        value = loss(model, batch)
        opt.zero_grad(set_to_none=True)
        value.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        step += 1
        acc_loss += value.detach().item()
        acc_n += 1
        bar.update(1)
        if step % cfg.log_every == 0 or step == cfg.steps:
            row = {"step": step, "loss": round(acc_loss / acc_n, 4), "lr": sched.get_last_lr()[0],
                   "steps_per_s": round((step - start) / (time.perf_counter() - t0), 3)}
            history.append(row)
            bar.set_postfix(loss=row["loss"])
            log.info("s2s: %s", row)
            acc_loss, acc_n = 0.0, 0
        if cfg.val_every and step % cfg.val_every == 0:
            history.append(_quick_val(model, mcfg, cfg, step))
            model.train()
        if step % cfg.ckpt_every == 0 or step == cfg.steps:
            tmp = run_dir / "state.tmp"
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                        "step": step, "history": history, "rng": rng.getstate(),
                        "torch_rng": torch.get_rng_state()}, tmp)
            tmp.replace(state_path)
    bar.close()
    elapsed = time.perf_counter() - t0
    model.eval().cpu()
    info = synth.load_info(cfg.data_dir)
    meta = {
        "name": cfg.name,
        "data_version": info["data_version"],
        "codec": codec_cfg.get("meta", {}).get("name"),
        "steps": cfg.steps,
        "train_config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
        "final": history[-1] if history else {},
    }
    save_checkpoint(model, mcfg, Path(cfg.out_dir), meta)
    (run_dir / "history.json").write_text(json.dumps(history, indent=1) + "\n")
    result = {"steps": step, "seconds_this_run": round(elapsed, 1),
              "steps_per_s": round((step - start) / max(elapsed, 1e-9), 3), "final": history[-1] if history else {}}
    log.info("s2s: trained %s", result)
    return result
