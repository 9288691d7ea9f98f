"""The end-of-turn network, inference in numpy.

    feature window (42 x 150 frames: log-mel, relative F0, voicing; features.normalize)
      -> 3 x [conv1d k=5 stride 2, ReLU]       (40 -> 48 -> 48 -> 64 channels, 16 frames left)
      -> flatten, + silence so far (seconds)    (1025)
      -> dense 32, ReLU -> dense 1 -> sigmoid   P(the turn is finished)

About 70 K parameters; one decision costs well under a millisecond of one core. The weights
file (`.npz`) is written by the training pipeline's `turn` command, whose torch module has
the same layers and names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from telugu_s2s.turn import features

FORMAT = "telugu-s2s-turn/1"
# The card's "normalization": how a window of raw features becomes the model's input
# (features.normalize). Weights without the key were trained on PEAK.
PEAK = "peak"
PEAK_AND_SHAPE = "peak+shape"
NORMALIZATIONS = (PEAK, PEAK_AND_SHAPE)
CONV_LAYERS: tuple[tuple[int, int], ...] = ((features.N_FEATURES, 48), (48, 48), (48, 64))
KERNEL = 5
STRIDE = 2
HIDDEN = 32
DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "turn.npz"


class TurnModelError(RuntimeError):
    """The weights file is missing, unreadable or of another format."""


def frames_after_convs(frames: int = features.WINDOW_FRAMES) -> int:
    for _ in CONV_LAYERS:
        frames = (frames - KERNEL) // STRIDE + 1
    return frames


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(C, T) -> (O, T'), valid padding, stride STRIDE."""
    win = np.lib.stride_tricks.sliding_window_view(x, KERNEL, axis=1)[:, ::STRIDE]  # (C, T', K)
    return np.tensordot(w, win, axes=([1, 2], [0, 2])) + b[:, None]


@dataclass(frozen=True)
class TurnModel:
    params: dict[str, np.ndarray]
    card: dict  # what the weights file says about itself (data, eval, thresholds)

    @classmethod
    def load(cls, path: str | Path = DEFAULT_WEIGHTS) -> TurnModel:
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                params = {k: z[k].astype(np.float32) for k in z.files if k != "card"}
                card = json.loads(str(z["card"])) if "card" in z.files else {}
        except (OSError, ValueError, KeyError) as exc:
            raise TurnModelError(f"cannot read the turn model {path}: {exc}") from exc
        if card.get("format") != FORMAT:
            raise TurnModelError(f"{path} is not a {FORMAT} weights file (format {card.get('format')!r})")
        expected = {"mean", "std", "dense.w", "dense.b", "out.w", "out.b"}
        expected |= {f"conv{i}.{p}" for i in range(len(CONV_LAYERS)) for p in ("w", "b")}
        if missing := sorted(expected - params.keys()):
            raise TurnModelError(f"{path} lacks {', '.join(missing)}")
        if card.get("normalization", PEAK) not in NORMALIZATIONS:
            raise TurnModelError(f"{path}: unknown normalization {card['normalization']!r}")
        return cls(params, card)

    @property
    def removes_shape(self) -> bool:
        return self.card.get("normalization", PEAK) == PEAK_AND_SHAPE

    def normalize(self, raw: np.ndarray) -> np.ndarray:
        """The model's input from the last raw feature frames, as its weights were trained."""
        return features.normalize(raw, remove_shape=self.removes_shape)

    def prob(self, window: np.ndarray, silence_ms: float) -> float:
        """P(finished) for a normalized (WINDOW_FRAMES, N_FEATURES) window (`normalize`)."""
        p = self.params
        x = ((window - p["mean"]) / p["std"]).T  # (N_FEATURES, frames)
        for i in range(len(CONV_LAYERS)):
            x = np.maximum(_conv(x, p[f"conv{i}.w"], p[f"conv{i}.b"]), 0.0)
        h = np.concatenate([x.reshape(-1), np.array([silence_ms / 1000.0], np.float32)])
        h = np.maximum(p["dense.w"] @ h + p["dense.b"], 0.0)
        logit = float((p["out.w"] @ h + p["out.b"])[0])
        return 1.0 / (1.0 + np.exp(-logit))
