"""Render finished Telugu questions as a caller says them, for `telugu-s2s bench --examples`.

    python scripts/make_turn_examples.py [--out out/turn-examples] [--n 12]

The questions are the held-out phrasings of the corpus, spoken by the callers the end-of-turn
model never trained on, with the falling, slowing last word of a finished turn (as in its test
set, telugu_s2s.training.turn_data), 16 kHz mono PCM16 with 300 ms of silence on both sides.
examples/ keeps espeak-ng's plain tune (the demo's questions); this set shows what the turn
model does with the tune it was trained to hear.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np
import soxr

from telugu_s2s.client.wav import write_wav
from telugu_s2s.training import synth
from telugu_s2s.training.turn_data import TEST_CALLERS, Tune, questions, ssml

RATE = 16000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("out/turn-examples"))
    p.add_argument("--n", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    rng = random.Random(a.seed)
    everyone = synth.callers_with_more(synth.CALLER_VOICES, synth.HELD_OUT_CALLERS)
    callers = [c for c in everyone if c.id in TEST_CALLERS]
    a.out.mkdir(parents=True, exist_ok=True)
    pad = np.zeros(RATE * 300 // 1000, np.float32)
    for i, text in enumerate(rng.sample(questions(held=True), a.n)):
        caller = callers[i % len(callers)]
        tune = Tune(-rng.randrange(12, 36), rng.randrange(65, 90))
        text = text if text.endswith(("?", ".")) else text + "."
        x = soxr.resample(synth.speak(ssml(text, tune), caller, pad_ms=0, ssml=True), synth.SAMPLE_RATE, RATE)
        x = np.concatenate([pad, x * 0.5, pad])
        write_wav(a.out / f"q{i:02d}-{caller.id}.wav", np.round(x * 32767).astype(np.int16), RATE)
    print(f"wrote {a.n} questions to {a.out}")


if __name__ == "__main__":
    main()
