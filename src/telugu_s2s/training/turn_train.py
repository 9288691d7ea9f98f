"""The end-of-turn model's training, presets and test (`python -m telugu_s2s.training turn`).

Training: binary cross-entropy on the asks of turn_data (class-balanced), SpecAugment-style
masks, dropout, AdamW, cosine schedule. The eagerness presets are then chosen on the validation
callers, simulated from the asks' probabilities: for each eagerness, the (min_silence_ms,
threshold, confirm) with the shortest median wait whose cut-off rate (clips with a pause that
the detector ends the turn in) stays within its budget. The test runs the gateway's own
segmenter and TurnDetector over every test clip, beside the fixed 500 ms timer, and counts
the noise bursts that would interrupt a reply.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import numpy as np

from telugu_s2s.training.turn_data import Split
from telugu_s2s.turn import features
from telugu_s2s.turn.model import CONV_LAYERS, FORMAT, HIDDEN, KERNEL, STRIDE, TurnModel, frames_after_convs

log = logging.getLogger(__name__)

# Cut-off budget per eagerness on the validation callers (the target is 5 % at the default);
# None: the fewest cut-offs, then the shortest wait.
CUTOFF_BUDGET: dict[str, float | None] = {"low": None, "medium": 0.03, "high": 0.06}
MIN_SILENCE_GRID = (100, 120, 140, 160, 200, 240)
THRESHOLD_GRID = (0.7, 0.8, 0.9, 0.95, 0.97, 0.99)
CONFIRM_GRID = (1, 2, 3)
MAX_WAIT_MS = 1500  # TurnSettings.max_wait_ms, the default the model is tested with


def _torch_model():
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.convs = nn.ModuleList(nn.Conv1d(i, o, KERNEL, stride=STRIDE) for i, o in CONV_LAYERS)
            self.dense = nn.Linear(CONV_LAYERS[-1][1] * frames_after_convs() + 1, HIDDEN)
            self.out = nn.Linear(HIDDEN, 1)

            self.drop = nn.Dropout(0.1)

        def forward(self, x: torch.Tensor, silence_s: torch.Tensor) -> torch.Tensor:
            x = x.transpose(1, 2)  # (B, N_FEATURES, frames)
            for conv in self.convs:
                x = torch.relu(conv(x))
            h = torch.cat([self.drop(x.flatten(1)), silence_s[:, None]], dim=1)
            return self.out(self.drop(torch.relu(self.dense(h))))[:, 0]

    return Net()


def _batch(split: Split, idx: np.ndarray, remove_shape: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ex = split.examples[idx]
    x = np.stack([split.window(int(c), int(f), remove_shape) for c, f, _, _ in ex])
    return x, ex[:, 2].astype(np.float32) / 1000.0, ex[:, 3].astype(np.float32)


def _mask(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """SpecAugment-style: per example, one band of up to 8 mel bins set to the floor, and one
    span of up to 20 frames set to silence (mel at the floor, unvoiced), a third of the time
    each (the model must not lean on one cue)."""
    x = x.copy()
    for i in range(len(x)):
        if rng.random() < 0.33:
            f0, w = rng.integers(0, features.N_MELS), rng.integers(1, 9)
            x[i, :, f0 : min(f0 + w, features.N_MELS)] = features.FLOOR
        if rng.random() < 0.33:
            t0, w = rng.integers(0, features.WINDOW_FRAMES), rng.integers(1, 21)
            x[i, t0 : t0 + w, : features.N_MELS] = features.FLOOR
            x[i, t0 : t0 + w, features.N_MELS :] = 0.0
    return x


def train(
    data_dir: Path, steps: int = 3000, batch: int = 256, lr: float = 2e-3, seed: int = 0, remove_shape: bool = False
) -> dict:
    """Returns the numpy parameters (TurnModel names) and the training log. `remove_shape`:
    the inputs without the speech's mean spectral shape (features.normalize)."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tr = Split.load(data_dir, "train")
    sample = _batch(tr, rng.choice(len(tr.examples), size=min(4096, len(tr.examples)), replace=False), remove_shape)[0]
    mean, std = sample.mean((0, 1)), sample.std((0, 1)) + 1e-3
    net = _torch_model()
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-2)
    labels = tr.examples[:, 3]
    pos = labels.mean()
    weights = np.where(labels == 1, 0.5 / pos, 0.5 / (1 - pos))
    weights /= weights.sum()
    t0 = time.perf_counter()
    history = []
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        idx = rng.choice(len(tr.examples), size=batch, p=weights)
        x, s, y = _batch(tr, idx, remove_shape)
        x = _mask(x, rng)
        logits = net(torch.from_numpy((x - mean) / std), torch.from_numpy(s))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.from_numpy(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 250 == 0 or step == steps - 1:
            acc = float(((logits > 0).float() == torch.from_numpy(y)).float().mean())
            history.append({"step": step, "loss": round(float(loss), 4), "acc": round(acc, 3)})
            log.info("turn step %d loss %.4f acc %.3f", step, float(loss), acc)
    params = {"mean": mean.astype(np.float32), "std": std.astype(np.float32)}
    for i, conv in enumerate(net.convs):
        params[f"conv{i}.w"] = conv.weight.detach().numpy().copy()
        params[f"conv{i}.b"] = conv.bias.detach().numpy().copy()
    params["dense.w"] = net.dense.weight.detach().numpy().copy()
    params["dense.b"] = net.dense.bias.detach().numpy().copy()
    params["out.w"] = net.out.weight.detach().numpy().copy()
    params["out.b"] = net.out.bias.detach().numpy().copy()
    return {"params": params, "history": history, "seconds": round(time.perf_counter() - t0, 1), "steps": steps}


def ask_probs(model: TurnModel, split: Split) -> np.ndarray:
    """P(finished) of every ask of a split (as the detector would compute it)."""
    shape = model.removes_shape
    return np.array([model.prob(split.window(int(c), int(f), shape), float(s)) for c, f, s, _ in split.examples])


def _in_a_row(hit: np.ndarray, silence: np.ndarray) -> np.ndarray:
    """For each ask: how many asks in a row, in the same silence, were hits (up to this one)."""
    run = np.zeros(len(hit), np.int64)
    for i in range(len(hit)):
        same = i > 0 and silence[i] == silence[i - 1] + 20
        run[i] = (run[i - 1] + 1 if same else 1) if hit[i] else 0
    return run


def simulate(
    split: Split,
    probs: np.ndarray,
    min_silence_ms: int,
    threshold: float,
    confirm: int = 1,
) -> dict:
    """The first end-of-turn decision of every clip under a preset, from the asks' probabilities
    (the segmenter's asks do not depend on the detector until it ends the turn)."""
    ex = split.examples
    cut, cut_single, lat, with_pauses = 0, 0, [], 0
    starts = np.searchsorted(ex[:, 0], np.arange(len(split.rows) + 1))
    for ci, row in enumerate(split.rows):
        e, p = ex[starts[ci] : starts[ci + 1]], probs[starts[ci] : starts[ci + 1]]
        s, finished = e[:, 2], e[:, 3] == 1
        sure = _in_a_row((p >= threshold) & (s >= min_silence_ms), s) >= confirm
        end = (s >= MAX_WAIT_MS) | sure
        first = int(np.argmax(end)) if end.any() else None
        paused = len(row["parts"]) > 1
        with_pauses += paused
        if first is not None and not finished[first]:
            cut += paused
            cut_single += not paused
        elif first is not None:
            lat.append(int(s[first]))
    return _rates(cut, cut_single, with_pauses, len(split.rows), lat)


def _rates(cut: int, cut_single: int, with_pauses: int, clips: int, lat: list[int]) -> dict:
    """`cut` of the `with_pauses` clips with pauses were ended early; `cut_single` of the others
    (a gap inside a word); `lat`: silence from the end of speech to the decision, ms."""
    return {
        "cut_off": cut,
        "clips_with_pauses": with_pauses,
        "cut_off_rate": round(cut / max(1, with_pauses), 4),
        "cut_off_without_pauses": f"{cut_single}/{clips - with_pauses}",
        "end_silence_ms_p50": float(np.percentile(lat, 50)) if lat else None,
        "end_silence_ms_p95": float(np.percentile(lat, 95)) if lat else None,
    }


def choose_presets(split: Split, probs: np.ndarray) -> tuple[dict, list[dict]]:
    """For each eagerness: the preset with the lowest median end silence within its budget."""
    grid = []
    for ms in MIN_SILENCE_GRID:
        for th in THRESHOLD_GRID:
            for k in CONFIRM_GRID:
                preset = {"min_silence_ms": ms, "threshold": th, "confirm": k}
                grid.append({**preset, **simulate(split, probs, ms, th, k)})
    chosen = {}
    fewest = min(g["cut_off_rate"] for g in grid)
    for eagerness, budget in CUTOFF_BUDGET.items():
        limit = fewest if budget is None else budget
        ok = [g for g in grid if g["cut_off_rate"] <= limit and g["end_silence_ms_p50"] is not None]
        if not ok:  # nothing fits: the most patient preset
            ok = [max(grid, key=lambda g: (g["confirm"], g["threshold"], g["min_silence_ms"]))]
        best = min(ok, key=lambda g: (g["end_silence_ms_p50"], g["end_silence_ms_p95"], -g["threshold"]))
        chosen[eagerness] = {k: best[k] for k in ("min_silence_ms", "threshold", "confirm")}
    return chosen, grid


def evaluate(model: TurnModel, split: Split) -> dict:
    """The gateway's segmenter with each detector over every clip of a split, from the first
    sample, as a call would feed it: cut-offs (a turn ended before the speech did) and the
    silence from the true end of speech to the decision, beside the fixed 500 ms timer."""
    from telugu_s2s.gateway.vad import Segmenter, SpeechEnd, VadSettings
    from telugu_s2s.turn.detector import EAGERNESS, TurnDetector

    vad = VadSettings()
    out = {}
    for name in ("timer_500ms", *EAGERNESS):
        cut, cut_single, lat, with_pauses, missed = 0, 0, [], 0, 0
        per_caller: dict[str, list[int]] = {}
        t0 = time.perf_counter()
        for ci, row in enumerate(split.rows):
            det = None if name == "timer_500ms" else TurnDetector(model, name, MAX_WAIT_MS)
            seg = Segmenter(vad, det)
            ends = [ev for ev in seg.feed(split.clip_audio(ci)) if isinstance(ev, SpeechEnd)]
            end_sample = row["speech_end"]
            paused = len(row["parts"]) > 1
            with_pauses += paused
            pc = per_caller.setdefault(row["caller"]["id"], [0, 0])
            pc[1] += paused
            if not ends:
                missed += 1
                continue
            first = ends[0].decided_at_ms * features.RATE // 1000
            if first < end_sample:
                cut += paused
                cut_single += not paused
                pc[0] += paused
            else:
                lat.append((first - end_sample) * 1000 // features.RATE)
        res = _rates(cut, cut_single, with_pauses, len(split.rows), lat)
        res["no_end"] = missed
        res["clips"] = len(split.rows)
        res["cut_off_by_caller"] = {c: f"{v[0]}/{v[1]}" for c, v in sorted(per_caller.items())}
        res["seconds"] = round(time.perf_counter() - t0, 1)
        out[name] = res
    return out


def export(params: dict, card: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    card = {"format": FORMAT, **card}
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, card=np.array(json.dumps(card, ensure_ascii=False)), **params)
    tmp.replace(path)
    return path


def evaluate_bursts(n: int = 400, seed: int = 0, lo_ms: int = 40, hi_ms: int = 240) -> dict:
    """False interruptions: a noise burst or cough-like sound of lo_ms..hi_ms over the line's
    own background (silence, or noise 40-60 dB under full scale), at -30..0 dBFS peak. A
    reply is interrupted when the segmenter starts speech, so the rate is the share of bursts
    that give a SpeechStart (default VAD settings). With lo_ms >= 300 it is the control: such
    sounds are long enough to count as speech, and most should."""
    from telugu_s2s.gateway.vad import Segmenter, SpeechStart, VadSettings
    from telugu_s2s.training import synth

    rng = np.random.default_rng(seed)
    hits = 0
    by_len: dict[str, list[int]] = {}
    for i in range(n):
        ms = int(rng.integers(lo_ms, hi_ms + 1))
        t = np.arange(features.RATE * ms // 1000)
        kind = ("white", "pink", "brown", "cough")[i % 4]
        if kind == "cough":  # a noisy, voiced-ish burst: 150-400 Hz buzz in filtered noise, fast decay
            f0 = rng.uniform(150, 400)
            burst = np.sign(np.sin(2 * np.pi * f0 * t / features.RATE)) * 0.5 + rng.standard_normal(len(t))
            burst = np.convolve(burst, np.ones(4) / 4, mode="same") * np.exp(-t / (len(t) / 3))
        else:
            burst = synth._colored_noise(len(t), kind, rng)
        burst = burst / (np.abs(burst).max() + 1e-9) * 10 ** (rng.uniform(-30, 0) / 20)
        floor = 10 ** (-rng.uniform(40, 60) / 20) if rng.random() < 0.5 else 0.0
        x = np.concatenate([np.zeros(features.RATE // 2), burst, np.zeros(features.RATE)])
        x = x + floor * rng.standard_normal(len(x))
        pcm = np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16)
        started = any(isinstance(ev, SpeechStart) for ev in Segmenter(VadSettings()).feed(pcm))
        hits += started
        b = by_len.setdefault(f"{ms // 50 * 50}-{ms // 50 * 50 + 49} ms", [0, 0])
        b[0] += started
        b[1] += 1
    return {
        "bursts": n,
        "false_interruptions": hits,
        "rate": round(hits / n, 4),
        "by_length": {k: f"{v[0]}/{v[1]}" for k, v in sorted(by_len.items())},
    }
