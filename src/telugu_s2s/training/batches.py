"""Teacher-forcing batches of the S2S model and its training loss (training only)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from telugu_s2s.s2s.config import S2SConfig
from telugu_s2s.s2s.layout import _as_codes, build_prefix, delayed_reply
from telugu_s2s.s2s.network import S2STransformer
from telugu_s2s.s2s.protocol import context_from_turns


@dataclass
class TrainExample:
    voice_index: int
    user_codes: np.ndarray  # [K', T] (K' >= n_codebooks; the first n_codebooks are used)
    reply_codes: np.ndarray  # [K', R]
    context_turns: Sequence[tuple[np.ndarray, np.ndarray]] = ()  # (user, reply), oldest first
    # Reply steps (delay-pattern columns) whose targets weigh `decision_weight` in the loss
    # instead of 1: where this reply parts from another reply the model could give instead.
    decision_steps: Sequence[int] = ()
    decision_weight: float = 1.0
    aux_class: int = -1  # the auxiliary head's target (cfg.aux_classes > 0); -1 = none
    intent_class: int = -1  # the listener head's target: what the user turn says (cfg.listener_classes > 0)
    user_labels: np.ndarray | None = None  # the CTC head's target: the user turn spelled (transcripts.labels)


@dataclass
class TrainBatch:
    tokens: torch.Tensor  # long [B, K, L] inputs (right-padded with PAD)
    voice: torch.Tensor  # long [B]
    targets: torch.Tensor  # long [B, K, L] output class per position (0 where masked)
    loss_mask: torch.Tensor  # bool [B, K, L]
    loss_weight: torch.Tensor | None = None  # float [B, K, L]: 0 where masked; None = the mask
    aux_position: torch.Tensor | None = None  # long [B]: the position that predicts reply step 0
    aux_target: torch.Tensor | None = None  # long [B]: class, -1 = none
    prefix_len: torch.Tensor | None = None  # long [B]: where each row's reply starts
    intent_target: torch.Tensor | None = None  # long [B]: the listener head's class, -1 = none

    def to(self, device: torch.device | str) -> TrainBatch:
        tensors = (
            self.tokens,
            self.voice,
            self.targets,
            self.loss_mask,
            self.loss_weight,
            self.aux_position,
            self.aux_target,
            self.prefix_len,
            self.intent_target,
        )
        moved = [None if t is None else t.to(device) for t in tensors]
        return TrainBatch(*moved)  # type: ignore[arg-type]  # the first four are never None


def make_example_arrays(cfg: S2SConfig, ex: TrainExample) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One example -> (inputs [K, L], targets [K, L], mask [K, L]); raises if it does not fit."""
    if not 0 <= ex.voice_index < cfg.n_voices:
        raise ValueError(f"voice index {ex.voice_index} out of range [0, {cfg.n_voices})")
    ctx_codes, ctx_segments = context_from_turns(
        [(np.asarray(u)[: cfg.n_codebooks], np.asarray(r)[: cfg.n_codebooks]) for u, r in ex.context_turns],
        cfg.n_codebooks,
    )
    prefix = build_prefix(cfg, ex.user_codes, ctx_codes, ctx_segments)
    reply = _as_codes(ex.reply_codes, cfg, "reply codes")
    grid, gmask = delayed_reply(cfg, reply)
    p, steps = prefix.shape[1], grid.shape[1]
    inputs = np.concatenate([prefix, grid[:, :-1]], axis=1)
    if inputs.shape[1] > cfg.max_seq_len:
        raise ValueError(f"example needs {inputs.shape[1]} positions > max_seq_len {cfg.max_seq_len}")
    targets = np.zeros_like(inputs)
    mask = np.zeros(inputs.shape, bool)
    tgt = np.where(gmask, grid, 0)
    tgt = np.where(grid == cfg.eos, cfg.codebook_size, tgt)
    targets[:, p - 1 : p - 1 + steps] = tgt
    mask[:, p - 1 : p - 1 + steps] = gmask
    return inputs, targets, mask


def make_batch(cfg: S2SConfig, examples: Sequence[TrainExample]) -> TrainBatch:
    """Teacher-forcing batch: inputs, targets and loss mask, right-padded to the longest."""
    arrays = [make_example_arrays(cfg, ex) for ex in examples]
    length = max(a[0].shape[1] for a in arrays)
    b, k = len(arrays), cfg.n_codebooks
    tokens = np.full((b, k, length), cfg.pad, np.int64)
    targets = np.zeros((b, k, length), np.int64)
    mask = np.zeros((b, k, length), bool)
    for i, (inp, tgt, msk) in enumerate(arrays):
        n = inp.shape[1]
        tokens[i, :, :n], targets[i, :, :n], mask[i, :, :n] = inp, tgt, msk
    voice = torch.tensor([ex.voice_index for ex in examples], dtype=torch.long)
    weights: torch.Tensor | None = None
    if any(ex.decision_steps and ex.decision_weight != 1.0 for ex in examples):
        weight = mask.astype(np.float32)
        for i, ex in enumerate(examples):
            start = int(np.argmax(mask[i, 0]))  # the position that predicts reply step 0
            for step in ex.decision_steps:
                if 0 <= start + step < length:
                    weight[i, :, start + step] *= ex.decision_weight
        weights = torch.from_numpy(weight)
    first = torch.from_numpy(mask[:, 0].argmax(axis=1).astype(np.int64))  # predicts reply step 0
    aux_pos = aux_tgt = None
    if cfg.aux_classes and any(ex.aux_class >= 0 for ex in examples):
        aux_pos = first
        aux_tgt = torch.tensor([ex.aux_class for ex in examples], dtype=torch.long)
    intent = None
    if cfg.listener_classes and any(ex.intent_class >= 0 for ex in examples):
        intent = torch.tensor([ex.intent_class for ex in examples], dtype=torch.long)
    return TrainBatch(
        torch.from_numpy(tokens),
        voice,
        torch.from_numpy(targets),
        torch.from_numpy(mask),
        weights,
        aux_pos,
        aux_tgt,
        first + 1,
        intent,
    )


def user_batch(cfg: S2SConfig, examples: Sequence[TrainExample]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """User turns alone for the listener: (tokens [B, K, T] right-padded, lengths [B], intent
    classes [B])."""
    users = [_as_codes(ex.user_codes, cfg, "user codes") for ex in examples]
    lens = [u.shape[1] for u in users]
    tokens = np.full((len(users), cfg.n_codebooks, max(lens)), cfg.pad, np.int64)
    for i, u in enumerate(users):
        tokens[i, :, : u.shape[1]] = u
    return (
        torch.from_numpy(tokens),
        torch.tensor(lens, dtype=torch.long),
        torch.tensor([ex.intent_class for ex in examples], dtype=torch.long),
    )


def ctc_targets(examples: Sequence[TrainExample]) -> tuple[torch.Tensor, torch.Tensor]:
    """The user turns' spellings for the listener's CTC head: (labels [B, S] right-padded with 0,
    lengths [B]); a turn without a spelling has length 0 and is left out of the loss."""
    spelled = [ex.user_labels if ex.user_labels is not None else np.zeros(0, np.int64) for ex in examples]
    lens = [len(x) for x in spelled]
    out = np.zeros((len(spelled), max(1, max(lens))), np.int64)
    for i, x in enumerate(spelled):
        out[i, : len(x)] = x
    return torch.from_numpy(out), torch.tensor(lens, dtype=torch.long)


def listener_loss(model: S2STransformer, heard: Sequence[torch.Tensor], ctc_weight: float = 0.0) -> torch.Tensor:
    """Cross-entropy of the listener's head on user turns heard alone, `heard` = a `user_batch`
    (tokens, lengths, intents), optionally followed by `ctc_targets` (labels, label lengths):
    then plus `ctc_weight` x the CTC loss of its spelling head (per turn, divided by its label
    length, averaged over the turns that have a spelling)."""
    tokens, lens, intent = heard[:3]
    _, pooled = model.listen(tokens, torch.zeros_like(lens), lens)
    value = F.cross_entropy(model.heard_logits(pooled), intent, ignore_index=-1, label_smoothing=0.1)
    if ctc_weight and len(heard) == 5:
        labels, label_lens = heard[3:]
        keep = label_lens > 0
        if bool(keep.any()):
            log_probs, out_lens = model.heard_ctc(tokens[keep], lens[keep])
            ctc = F.ctc_loss(
                log_probs, labels[keep], out_lens, label_lens[keep], blank=0, reduction="mean", zero_infinity=True
            )
            value = value + ctc_weight * ctc
    return value


def loss(
    model: S2STransformer, batch: TrainBatch, aux_weight: float = 0.0, listener_weight: float = 0.0
) -> torch.Tensor:
    """Cross-entropy over the masked target positions of all codebooks, weighted by
    `loss_weight` when the batch has one (a weighted mean), else a plain mean; plus
    `aux_weight` x the auxiliary head's cross-entropy when the batch has its targets, and
    `listener_weight` x the listener head's cross-entropy likewise."""
    logits, hidden, heard = model.forward_with_hidden(batch.tokens, batch.voice, batch.prefix_len)  # [B, K, L, V+1]
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.targets.reshape(-1), reduction="none")
    w = batch.loss_mask if batch.loss_weight is None else batch.loss_weight
    m = w.reshape(-1).to(ce.dtype)
    value = (ce * m).sum() / m.sum().clamp_min(1.0)
    if aux_weight and model.aux_head is not None and batch.aux_target is not None:
        h = hidden[torch.arange(hidden.shape[0], device=hidden.device), batch.aux_position]
        value = value + aux_weight * F.cross_entropy(model.aux_head(h), batch.aux_target, ignore_index=-1)
    if listener_weight and heard is not None and batch.intent_target is not None:
        logits = model.heard_logits(heard)
        value = value + listener_weight * F.cross_entropy(
            logits, batch.intent_target, ignore_index=-1, label_smoothing=0.1
        )
    return value
