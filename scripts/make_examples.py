"""Render the example Telugu questions under examples/ with espeak-ng (reproducible).

    python scripts/make_examples.py

Each file is 16 kHz mono PCM16 with 300 ms of silence on both sides, spoken by a caller
voice that the demo model never heard in training.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from telugu_s2s.client.wav import read_wav_as, write_wav

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "examples"
RATE = 16000
# espeak-ng caller voice: variant, words per minute, pitch. This is one of the caller voices
# that the training pipeline holds out of training (telugu_s2s.training.synth).
CALLER = ("te+m4", 155, 42)

# Questions from the training corpus (telugu_s2s.training.corpus), so the demo model knows them.
EXAMPLES = {
    "namaskaram.wav": "నమస్కారం",
    "naa_peru_ramu.wav": "నా పేరు రాము",
    "naa_peru_emiti.wav": "నా పేరు ఏమిటి?",
    "vatavaranam.wav": "ఈ రోజు వాతావరణం ఎలా ఉంది?",
    "phone_poyindi.wav": "నా ఫోన్ పోయింది",
    "dabbulu.wav": "డబ్బులు ఎక్కడ మార్చుకోవాలి?",
}


def render(text: str, out: Path) -> None:
    voice, speed, pitch = CALLER
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(raw), text],
            check=True,
        )
        samples = read_wav_as(raw, RATE)
    pad = np.zeros(RATE * 300 // 1000, np.int16)
    write_wav(out, np.concatenate([pad, samples, pad]), RATE)


def main() -> int:
    OUT.mkdir(exist_ok=True)
    for name, text in EXAMPLES.items():
        render(text, OUT / name)
        print(f"{OUT / name}: {text}")
    (OUT / "README.md").write_text(
        "# Example Telugu questions\n\n"
        "Made by `python scripts/make_examples.py` with espeak-ng (voice "
        f"`{CALLER[0]}`, {CALLER[1]} wpm, pitch {CALLER[2]}), 16 kHz mono PCM16.\n\n"
        "| file | text |\n|---|---|\n"
        + "".join(f"| {n} | {t} |\n" for n, t in EXAMPLES.items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
