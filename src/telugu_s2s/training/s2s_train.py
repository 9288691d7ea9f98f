"""`train s2s`: teacher-forced training of the S2S transformer on pre-encoded codes.

Example = (voice, context of earlier turns, user codes) -> reply codes, built with
`telugu_s2s.training.batches.make_batch` (delay pattern, bounded context). There are no fixed
dialogues: every example is composed when it is drawn (`Composer`): a training caller, a
voice, a target turn (a question, an out-of-domain sentence, a name introduction or a name
recall) and 0..context_turns earlier turns of the same caller at random, a recall's
introduction among them. A context therefore never tells which question comes next; the
reply has to come from the user turn. Batches are length-bucketed; the reply steps where one
answer parts from another weigh more in the loss (`decision_steps`), and a training-only head
on the turn's last position learns which reply is asked for (`aux_weight`).

The model's listener (S2SConfig.listener_*) hears each user turn alone; its training-only
head names what was said (`listener_weight`), on the dialogue's turn and on `listener_batch`
more user turns heard alone each step (the listener only: cheap). A fresh run first trains
the listener alone for `listener_pretrain` steps, so the decoder starts from a listener
that already tells the questions apart.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from telugu_s2s.common.voices import get_voice
from telugu_s2s.s2s.model import S2SConfig, S2STransformer, build_prefix, delayed_reply, save_checkpoint
from telugu_s2s.training import corpus, synth, transcripts
from telugu_s2s.training.batches import (
    TrainBatch,
    TrainExample,
    ctc_targets,
    listener_loss,
    loss,
    make_batch,
    user_batch,
)
from telugu_s2s.training.encode import load_codes, pad_silence, silence_codes
from telugu_s2s.training.run_state import RunState, config_record

log = logging.getLogger(__name__)


# Context turns are kept at about this many tokens per second (every n-th frame).
CONTEXT_TOKENS_PER_S = 12.5


def demo_model_config(
    frame_rate: float = 25.0, n_codebooks: int = 4, codebook_size: int = 1024, latent_dim: int = 64
) -> S2SConfig:
    """The demo size: trains on a 2-core CPU. The context budget holds about three earlier
    turns at CONTEXT_TOKENS_PER_S, enough to reach a name given three turns back. A 3-layer
    listener hears the user turn from the codec's latent (`latent_dim`, the codec's) and
    steers every reply step (`listener_every_step`, runs H to K in docs/training.md). The
    options of run C (the codec's latent at every position, the user turn heard both ways by
    the decoder, the voice at the reply, dropout) stay off: that run answered worse
    (docs/training.md, "Runs"); they are set through `S2STrainConfig.model` (`train s2s
    --model '{...}'`)."""
    return S2SConfig(
        n_codebooks=n_codebooks,
        codebook_size=codebook_size,
        n_layers=4,
        d_model=128,
        n_heads=4,
        ffn_mult=4,
        max_seq_len=1024,
        context_budget=192,
        context_stride=max(1, round(frame_rate / CONTEXT_TOKENS_PER_S)),
        max_reply_frames=round(8 * frame_rate),
        n_voices=4,
        dropout=0.0,
        frame_rate=frame_rate,
        listener_layers=3,
        listener_dim=128,
        listener_latent_dim=latent_dim,
        listener_classes=len(corpus.intent_classes()),
        listener_every_step=True,
    )


def codec_code_vectors(codec) -> np.ndarray:
    """A loaded codec's codebooks [n_q, bins, dim] (the residual VQ's vectors, in order)."""
    layers = codec.model.quantizer.vq.layers
    return np.stack([layer._codebook.embed.detach().cpu().numpy() for layer in layers])


@dataclass(frozen=True)
class S2STrainConfig:
    data_dir: Path = Path(".data")
    codes_path: Path | None = None  # default <data_dir>/codes.npz
    codec_dir: Path = Path("models/codec")
    run_dir: Path = Path("runs/s2s")
    out_dir: Path = Path("models/s2s")
    steps: int = 11000
    batch_size: int = 16
    lr: float = 3e-3
    weight_decay: float = 0.01
    warmup: int = 100
    # What a drawn example's target turn is (weights; see Composer): questions, out-of-domain
    # sentences (reply: the fallback), name introductions (echo a name) and name recalls (the
    # name is in the context).
    kind_weights: tuple[tuple[str, float], ...] = (
        ("qa", 0.56),
        ("ood", 0.12),
        ("name_intro", 0.14),
        ("name_recall", 0.18),
    )
    no_context_share: float = 0.3  # examples with no earlier turns (a recall always has its intro)
    aux_weight: float = 0.5  # the auxiliary reply-class head's share of the loss (0 = no head)
    ckpt_every: int = 100
    log_every: int = 25
    val_every: int = 2000  # steps between quick held-out checks (greedy decode, reply accuracy); 0 = off
    val_turns: int = 24  # val-split turns decoded per check
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
    context_turns: int = 3  # at most this many earlier turns in a composed context
    # Per step, this many more user turns heard alone (no context, no reply): only the reply-class
    # head learns from them. They are short, so they add what was said to every step at a
    # fraction of a dialogue's cost. Run C (32) heard better but answered worse; 0 = off.
    recognition_batch: int = 0
    # The listener (a model with listener_layers > 0): its head's share of the loss on each
    # dialogue's turn, user turns heard alone by the listener only per step, and steps of
    # listener-only training before a fresh run's first step (see the module docstring).
    listener_weight: float = 0.5
    listener_batch: int = 48
    listener_pretrain: int = 3000
    listener_lr: float = 1e-3
    # The listener's CTC head (S2SConfig.listener_ctc_symbols): its share of the loss on the user
    # turns heard alone, which then carry their spelling (`transcripts`); 0 = off.
    ctc_weight: float = 0.0
    # Start a fresh run from another checkpoint's weights where names and shapes match (new
    # parts, such as a listener, start as built); None = from scratch.
    init_from: Path | None = None
    # Worker processes that compose, augment and lay out each step's batches ahead of the
    # model (on a GPU, composing 128 dialogues in the loop would add about a third to each
    # step: docs/training.md). 0 = in the training loop,
    # which keeps a resumed run's batches exactly reproducible; with workers, each worker
    # draws from its own generator, seeded from `seed` and the step the run starts at.
    loader_workers: int = 0


@dataclass(frozen=True)
class Clip:
    """One training caller clip: what was said and its codes."""

    caller: str
    kind: str
    intent: str
    reply_text: str  # "" for a recall (the reply names the introduced name)
    codes: np.ndarray
    user_text: str = ""  # what was said (training only: the listener's CTC head)

    @property
    def intent_class(self) -> int:
        return corpus.intent_classes().get(self.intent, -1)


class Composer:
    """Draws training examples composed at random (see the module docstring).

    clips: the training clips; replies: (reply text, voice) -> codes; decisions: (reply text,
    voice) -> decision steps; classes: reply text -> auxiliary class.
    """

    def __init__(
        self,
        clips: list[Clip],
        replies: dict[tuple[str, str], np.ndarray],
        decisions: dict[tuple[str, str], tuple[int, ...]],
        classes: dict[str, int],
        cfg: S2STrainConfig,
    ) -> None:
        self.pools: dict[str, dict[str, list[Clip]]] = defaultdict(lambda: defaultdict(list))
        for c in clips:
            self.pools[c.caller][c.kind].append(c)
        self.callers = sorted(c for c in self.pools if self.pools[c]["name_intro"] and self.pools[c]["qa"])
        if not self.callers:
            raise ValueError("no training caller has both questions and name introductions")
        self.replies, self.decisions, self.classes, self.cfg = replies, decisions, classes, cfg
        self.kinds = [k for k, _ in cfg.kind_weights]
        self.weights = [w for _, w in cfg.kind_weights]

    def _reply(self, clip: Clip, name: str) -> str:
        return clip.reply_text or corpus.name_answer(name)

    def draw(self, rng: random.Random) -> tuple[str, TrainExample]:
        from telugu_s2s.common.voices import VOICE_IDS

        pool = self.pools[rng.choice(self.callers)]
        voice = rng.choice(VOICE_IDS)
        kind = rng.choices(self.kinds, self.weights)[0]
        if not pool[kind]:
            kind = "qa"
        target = rng.choice(pool[kind])
        n_ctx = 0 if rng.random() < self.cfg.no_context_share else rng.randint(1, self.cfg.context_turns)
        fillers = pool["qa"] + pool["ood"]
        ctx_clips = [rng.choice(fillers) for _ in range(n_ctx)]
        name = ""
        if kind == "name_recall":
            intro = rng.choice(pool["name_intro"])
            name = intro.intent.split(":", 1)[1]
            ctx_clips = ctx_clips[: max(0, self.cfg.context_turns - 1)]
            ctx_clips.insert(rng.randint(0, len(ctx_clips)), intro)
        elif ctx_clips and rng.random() < 0.2:  # an unrelated name introduction in the context
            ctx_clips[rng.randrange(len(ctx_clips))] = rng.choice(pool["name_intro"])
        context = [(c.codes, self.replies[(self._reply(c, name), voice)]) for c in ctx_clips]
        reply = self._reply(target, name)
        ex = TrainExample(
            get_voice(voice).speaker_index,
            target.codes,
            self.replies[(reply, voice)],
            context,
            decision_steps=self.decisions.get((reply, voice), ()),
            decision_weight=self.cfg.decision_weight,
            aux_class=self.classes.get(reply, -1),
            intent_class=target.intent_class,
        )
        return kind, ex

    def draw_turn(self, rng: random.Random) -> TrainExample:
        """A user turn whose reply needs no context (question, out-of-domain, introduction),
        with its reply class and a random voice; the reply codes are left empty."""
        from telugu_s2s.common.voices import VOICE_IDS

        pool = self.pools[rng.choice(self.callers)]
        kind = rng.choices(self.kinds, self.weights)[0]
        clips = pool[kind] if kind != "name_recall" else pool["name_intro"]
        target = rng.choice(clips or pool["qa"])
        return TrainExample(
            get_voice(rng.choice(VOICE_IDS)).speaker_index,
            target.codes,
            np.zeros((target.codes.shape[0], 0), np.int64),
            aux_class=self.classes.get(self._reply(target, ""), -1),
            intent_class=target.intent_class,
        )

    def draw_heard(self, rng: random.Random) -> TrainExample:
        """Any training user turn (recalls included: the listener names the question, not the
        answer) with its intent class, for the listener alone."""
        pool = self.pools[rng.choice(self.callers)]
        kind = rng.choices(self.kinds, self.weights)[0]
        target = rng.choice(pool[kind] or pool["qa"])
        empty = np.zeros((target.codes.shape[0], 0), np.int64)
        spelled = transcripts.labels(target.user_text) if self.cfg.ctc_weight and target.user_text else None
        return TrainExample(0, target.codes, empty, intent_class=target.intent_class, user_labels=spelled)

    def batches(self, rng: random.Random, batch_size: int, n: int = 4) -> list[list[TrainExample]]:
        """`n` length-bucketed batches: n x batch_size draws sorted by length, then cut."""
        drawn = [self.draw(rng)[1] for _ in range(batch_size * n)]
        drawn.sort(
            key=lambda ex: (
                ex.user_codes.shape[1]
                + ex.reply_codes.shape[1]
                + sum(u.shape[1] + r.shape[1] for u, r in ex.context_turns) / 5
            )
        )
        out = [drawn[i : i + batch_size] for i in range(0, len(drawn), batch_size)]
        rng.shuffle(out)
        return out


def load_composer(data_dir: Path, codes: dict[str, np.ndarray], mcfg: S2SConfig, cfg: S2STrainConfig) -> Composer:
    rows = synth.read_jsonl(Path(data_dir) / "splits" / "train.jsonl")
    clips = [
        Clip(r["caller"], r["kind"], r["intent"], r["reply_text"], codes[r["user_audio"]], r.get("user_text", ""))
        for r in rows
    ]
    refs = synth.read_jsonl(Path(data_dir) / "references.jsonl")
    replies = {(r["text"], r["voice"]): codes[r["audio"]] for r in refs}
    decisions: dict[tuple[str, str], tuple[int, ...]] = {}
    if cfg.decision_weight != 1.0:
        for voice in {v for _, v in replies}:
            steps = decision_steps(mcfg, {t: c for (t, v), c in replies.items() if v == voice})
            decisions.update({(t, voice): st for t, st in steps.items()})
    return Composer(clips, replies, decisions, corpus.reply_classes(), cfg)


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


def augment_user(
    codes: np.ndarray, rng: random.Random, warp: float, token_noise: float, codebook_size: int
) -> np.ndarray:
    """A perturbed copy of user codes [K, T]: time warp (nearest frame) + random token swaps."""
    t = codes.shape[1]
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


def _augmented(
    batch: list[TrainExample],
    rng: random.Random,
    cfg: S2STrainConfig,
    codebook_size: int,
    silence: np.ndarray | None,
    frame_rate: float,
) -> list[TrainExample]:
    out = []
    for ex in batch:
        user = augment_user(ex.user_codes, rng, cfg.warp, cfg.token_noise, codebook_size)
        if silence is not None:
            user = pad_silence(
                user,
                silence,
                round(rng.uniform(0, cfg.lead_silence_s) * frame_rate),
                round(rng.uniform(0, cfg.tail_silence_s) * frame_rate),
            )
        out.append(replace(ex, user_codes=user))
    return out


def prefix_batch(mcfg: S2SConfig, examples: list[TrainExample]) -> TrainBatch:
    """User turns alone ([VOICE][SEP][user][SEP], right-padded) with their reply classes: the
    head reads the last prefix position, the one that predicts a reply's first step."""
    prefixes = [build_prefix(mcfg, ex.user_codes) for ex in examples]
    length = max(p.shape[1] for p in prefixes)
    tokens = np.full((len(prefixes), mcfg.n_codebooks, length), mcfg.pad, np.int64)
    for i, p in enumerate(prefixes):
        tokens[i, :, : p.shape[1]] = p
    plen = torch.tensor([p.shape[1] for p in prefixes], dtype=torch.long)
    empty = torch.zeros(tokens.shape, dtype=torch.long)
    return TrainBatch(
        torch.from_numpy(tokens),
        torch.tensor([ex.voice_index for ex in examples]),
        empty,
        empty.bool(),
        None,
        plen - 1,
        torch.tensor([ex.aux_class for ex in examples]),
        plen,
    )


def recognition_loss(model: S2STransformer, batch: TrainBatch) -> torch.Tensor:
    """Cross-entropy of the reply-class head on a `prefix_batch`."""
    _, hidden, _ = model.forward_with_hidden(batch.tokens, batch.voice, batch.prefix_len)
    if model.aux_head is None or batch.aux_target is None or batch.aux_position is None:
        raise ValueError("recognition needs a model with the reply-class head and a batch with its targets")
    h = hidden[torch.arange(hidden.shape[0], device=hidden.device), batch.aux_position]
    return torch.nn.functional.cross_entropy(model.aux_head(h), batch.aux_target, ignore_index=-1)


def _probe_rows(
    data_dir: Path, split: str, codes: dict[str, np.ndarray], limit: int, keep: Callable[[dict], bool]
) -> list[dict]:
    """A probe's rows of a split: those `keep` takes and whose audio is encoded, at most `limit`
    spread evenly over the split (0 = all)."""
    rows = [
        r
        for r in synth.read_jsonl(Path(data_dir) / "splits" / f"{split}.jsonl")
        if keep(r) and r["user_audio"] in codes
    ]
    return rows[:: max(1, len(rows) // limit)][:limit] if limit else rows


def aux_accuracy(
    model: S2STransformer,
    mcfg: S2SConfig,
    data_dir: Path,
    codes: dict[str, np.ndarray],
    split: str = "val",
    limit: int = 0,
) -> dict:
    """How often the training-only reply-class head names the reply a `split` turn asks for,
    heard alone (no context; recalls left out): a fast probe of whether the turn's last
    position knows what was said, without decoding. n = 0 when the model has no head."""
    if model.aux_head is None:
        return {"aux_accuracy": None, "aux_n": 0}
    classes = corpus.reply_classes()
    rows = _probe_rows(
        data_dir, split, codes, limit, lambda r: r["kind"] != "name_recall" and r["reply_text"] in classes
    )
    right = 0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for i in range(0, len(rows), 16):
            chunk = rows[i : i + 16]
            batch = prefix_batch(
                mcfg,
                [
                    TrainExample(
                        get_voice(r["voice"] or "arjun").speaker_index,
                        codes[r["user_audio"]],
                        np.zeros((mcfg.n_codebooks, 0), np.int64),
                        aux_class=classes[r["reply_text"]],
                    )
                    for r in chunk
                ],
            )
            _, hidden, _ = model.forward_with_hidden(batch.tokens, batch.voice, batch.prefix_len)
            h = hidden[torch.arange(len(chunk)), batch.aux_position]
            right += int((model.aux_head(h).argmax(-1) == batch.aux_target).sum())
    model.train(was_training)
    return {"aux_accuracy": round(right / max(1, len(rows)), 4), "aux_n": len(rows)}


def listener_accuracy(
    model: S2STransformer,
    mcfg: S2SConfig,
    data_dir: Path,
    codes: dict[str, np.ndarray],
    split: str = "val",
    limit: int = 0,
) -> dict:
    """How often the listener's training-only head names what a `split` user turn says (its
    intent), heard alone: whether the listener heard the question, without decoding."""
    if model.listener is None or model.listener.head is None:
        return {"listener_accuracy": None, "listener_n": 0}
    intents = corpus.intent_classes()
    rows = _probe_rows(data_dir, split, codes, limit, lambda r: r["intent"] in intents)
    right = 0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for i in range(0, len(rows), 32):
            chunk = rows[i : i + 32]
            empty = np.zeros((mcfg.n_codebooks, 0), np.int64)
            tokens, lens, target = user_batch(
                mcfg, [TrainExample(0, codes[r["user_audio"]], empty, intent_class=intents[r["intent"]]) for r in chunk]
            )
            _, pooled = model.listen(tokens, torch.zeros_like(lens), lens)
            right += int((model.heard_logits(pooled).argmax(-1) == target).sum())
    model.train(was_training)
    return {"listener_accuracy": round(right / max(1, len(rows)), 4), "listener_n": len(rows)}


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
    res = eval_s2s(
        EvalConfig(
            data_dir=cfg.data_dir,
            codec_dir=cfg.codec_dir,
            s2s_dir=ckpt,
            split="val",
            max_turns=cfg.val_turns,
            turn_stride=stride,
            context_replies="reference",  # a cheap progress signal, as every earlier run logged it
            progress=False,
        )
    )
    frames = [d["frames"] for d in res["details"]]
    row = {
        "step": step,
        "val_reply_accuracy": res["reply_accuracy"],
        "val_voice_accuracy": res["voice_accuracy"],
        "val_n": res["n"],
        "val_mean_frames": round(float(np.mean(frames)), 1) if frames else 0.0,
        "val_seconds": round(time.perf_counter() - t0, 1),
    }
    log.info("s2s quick val: %s", row)
    return row


def _init_from(model: S2STransformer, directory: Path) -> None:
    """Copy a checkpoint's weights where name and shape match; log what was left as built."""
    state = torch.load(directory / "model.pt", map_location="cpu", weights_only=True)
    own = model.state_dict()
    taken = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(taken, strict=False)
    fresh = sorted({k.split(".")[0] for k in own if k not in taken})
    log.info("s2s: %d tensors from %s; as built: %s", len(taken), directory, ", ".join(fresh) or "none")


def _heard_batch(
    composer: Composer,
    cfg: S2STrainConfig,
    rng: random.Random,
    silence: np.ndarray | None,
    frame_rate: float,
    mcfg: S2SConfig,
) -> tuple[torch.Tensor, ...]:
    """User turns for the listener alone: a `user_batch`, and their spellings (`ctc_targets`)
    when the CTC head learns."""
    turns = _augmented(
        [composer.draw_heard(rng) for _ in range(cfg.listener_batch)], rng, cfg, mcfg.codebook_size, silence, frame_rate
    )
    heard = user_batch(mcfg, turns)
    return (*heard, *ctc_targets(turns)) if cfg.ctc_weight and mcfg.listener_ctc_symbols else heard


def _pretrain_listener(
    model: S2STransformer,
    composer: Composer,
    cfg: S2STrainConfig,
    rng: random.Random,
    silence: np.ndarray | None,
    frame_rate: float,
) -> list[dict]:
    """Train the listener alone (its head on user turns heard alone) before the first step."""
    assert model.listener is not None
    params = list(model.listener.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.listener_lr, weight_decay=cfg.weight_decay)
    steps = cfg.listener_pretrain
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 150) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * s / steps)))
    )
    history, acc, n, t0 = [], 0.0, 0, time.perf_counter()
    for step in range(1, steps + 1):
        heard = _heard_batch(composer, cfg, rng, silence, frame_rate, model.cfg)
        value = listener_loss(model, [t.to(cfg.device) for t in heard], ctc_weight=cfg.ctc_weight)
        opt.zero_grad(set_to_none=True)
        value.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        acc, n = acc + value.detach().item(), n + 1
        if step % (cfg.log_every * 4) == 0 or step == steps:
            row = {
                "listener_step": step,
                "listener_loss": round(acc / n, 4),
                "steps_per_s": round(step / (time.perf_counter() - t0), 2),
            }
            log.info("s2s listener: %s", row)
            history.append(row)
            acc, n = 0.0, 0
    return history


@dataclass
class StepInputs:
    """What one training step consumes, laid out on the CPU: the dialogue batch, the user
    turns the listener hears alone, and the lone turns of the reply-class head (None = off)."""

    batch: TrainBatch
    heard: tuple[torch.Tensor, ...] | None
    recognition: TrainBatch | None


@dataclass
class _StepSource:
    """Composes each step's inputs; the same code in the loop and in loader workers."""

    composer: Composer
    cfg: S2STrainConfig
    mcfg: S2SConfig
    silence: np.ndarray | None
    frame_rate: float
    has_listener: bool
    has_aux_head: bool

    def steps(self, rng: random.Random):
        cfg, mcfg = self.cfg, self.mcfg
        batches: list[list[TrainExample]] = []
        while True:
            if not batches:
                batches = self.composer.batches(rng, cfg.batch_size)
            batch = make_batch(
                mcfg, _augmented(batches.pop(), rng, cfg, mcfg.codebook_size, self.silence, self.frame_rate)
            )
            heard = None
            if cfg.listener_batch and cfg.listener_weight and self.has_listener:
                heard = _heard_batch(self.composer, cfg, rng, self.silence, self.frame_rate, mcfg)
            recognition = None
            if cfg.recognition_batch and cfg.aux_weight and self.has_aux_head:
                turns = [self.composer.draw_turn(rng) for _ in range(cfg.recognition_batch)]
                recognition = prefix_batch(
                    mcfg, _augmented(turns, rng, cfg, mcfg.codebook_size, self.silence, self.frame_rate)
                )
            yield StepInputs(batch, heard, recognition)


class _WorkerSteps(torch.utils.data.IterableDataset):
    """A loader worker's endless stream of step inputs, from its own generator."""

    def __init__(self, source: _StepSource, seed: int) -> None:
        self.source, self.seed = source, seed

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else 0
        return self.source.steps(random.Random(f"{self.seed}:{worker}"))


def _as_is(x):
    return x


def _step_inputs_stream(source: _StepSource, rng: random.Random, start_step: int):
    """Step inputs, from the loop's own generator or from `loader_workers` processes."""
    workers = source.cfg.loader_workers
    if workers <= 0:
        return source.steps(rng)
    loader = torch.utils.data.DataLoader(
        _WorkerSteps(source, source.cfg.seed * 1_000_003 + start_step),
        batch_size=None,
        num_workers=workers,
        collate_fn=_as_is,
        prefetch_factor=8,
    )
    return iter(loader)


def train_s2s(cfg: S2STrainConfig) -> dict:
    from tqdm import tqdm

    from telugu_s2s.codec.checkpoint import CodecArch
    from telugu_s2s.codec.checkpoint import load as load_codec

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    codec_cfg = json.loads((Path(cfg.codec_dir) / "config.json").read_text())
    arch = CodecArch.from_dict(codec_cfg["arch"])
    k = arch.codebooks_for(arch.default_bandwidth)
    mcfg = demo_model_config(arch.frame_rate, k, arch.bins, arch.dimension)
    if cfg.aux_weight:
        mcfg = replace(mcfg, aux_classes=len(corpus.reply_classes()))
    if cfg.model:
        mcfg = S2SConfig.from_dict({**mcfg.to_dict(), **cfg.model})
    if cfg.ctc_weight and not mcfg.listener_ctc_symbols:
        mcfg = replace(mcfg, listener_ctc_symbols=transcripts.SYMBOLS)
    codes = load_codes(Path(cfg.codes_path or Path(cfg.data_dir) / "codes.npz"))
    composer = load_composer(Path(cfg.data_dir), codes, mcfg, cfg)
    codec = load_codec(Path(cfg.codec_dir))
    silence = silence_codes(codec, k) if cfg.lead_silence_s > 0 or cfg.tail_silence_s > 0 else None
    model = S2STransformer(mcfg)
    if cfg.init_from:
        _init_from(model, Path(cfg.init_from))
    if mcfg.latent_dim:
        model.set_code_vectors(codec_code_vectors(codec))
    model = model.to(cfg.device).train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "emb" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "emb" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.98),
    )
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (
            min(1.0, (s + 1) / cfg.warmup)
            * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps)))
        ),
    )
    run_dir = Path(cfg.run_dir)
    state = RunState(run_dir, model, opt, sched, rng)
    step, history = state.resume(cfg.device, "s2s")
    log.info("s2s: %d params, %d training callers", model.num_parameters(), len(composer.callers))
    if step == 0 and model.listener is not None and cfg.listener_pretrain:
        history += _pretrain_listener(model, composer, cfg, rng, silence, arch.frame_rate)
    t0 = time.perf_counter()
    start = step
    bar = tqdm(total=cfg.steps, initial=step, desc="s2s", unit="step", disable=not cfg.progress)
    steps_in = _step_inputs_stream(
        _StepSource(
            composer, cfg, mcfg, silence, arch.frame_rate, model.listener is not None, model.aux_head is not None
        ),
        rng,
        step,
    )
    acc_loss, acc_n = 0.0, 0
    while step < cfg.steps:
        inputs = next(steps_in)
        value = loss(model, inputs.batch.to(cfg.device), cfg.aux_weight, cfg.listener_weight)
        if inputs.heard is not None:
            value = value + cfg.listener_weight * listener_loss(
                model, [t.to(cfg.device) for t in inputs.heard], ctc_weight=cfg.ctc_weight
            )
        if inputs.recognition is not None:
            value = value + cfg.aux_weight * recognition_loss(model, inputs.recognition.to(cfg.device))
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
            row = {
                "step": step,
                "loss": round(acc_loss / acc_n, 4),
                "lr": sched.get_last_lr()[0],
                "steps_per_s": round((step - start) / (time.perf_counter() - t0), 3),
            }
            history.append(row)
            bar.set_postfix(loss=row["loss"])
            log.info("s2s: %s", row)
            acc_loss, acc_n = 0.0, 0
        if cfg.val_every and step % cfg.val_every == 0:
            row = _quick_val(model, mcfg, cfg, step)
            row.update({f"val_{k}": v for k, v in aux_accuracy(model, mcfg, cfg.data_dir, codes, "val").items()})
            row.update(
                {f"train_{k}": v for k, v in aux_accuracy(model, mcfg, cfg.data_dir, codes, "train", 150).items()}
            )
            row.update({f"val_{k}": v for k, v in listener_accuracy(model, mcfg, cfg.data_dir, codes).items()})
            log.info("s2s probes: %s", {k: v for k, v in row.items() if "aux" in k or "listener" in k})
            history.append(row)
            model.train()
        if step % cfg.ckpt_every == 0 or step == cfg.steps:
            state.save(step, history)
    bar.close()
    elapsed = time.perf_counter() - t0
    model.eval().cpu()
    info = synth.load_info(cfg.data_dir)
    meta = {
        "name": cfg.name,
        "data_version": info["data_version"],
        "codec": codec_cfg.get("meta", {}).get("name"),
        "steps": cfg.steps,
        "train_config": config_record(cfg),
        "final": history[-1] if history else {},
    }
    save_checkpoint(model, mcfg, Path(cfg.out_dir), meta)
    return state.finish("s2s", step, start, elapsed, history)
