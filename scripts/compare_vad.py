"""Which voice activity detector should the gateway use? webrtcvad vs Silero VAD on held-out Telugu.

    python scripts/compare_vad.py [--clips 40] [--json runs/vad-compare.json]

Each clip is two held-out sentences (the test phrasings of the corpus) by a caller the models
never trained on, with 600 ms of silence before, a 400 ms pause between and 900 ms after, then
degraded one of three ways: clean (peak -30..-3 dBFS), noisy (white, pink or brown noise at
10-20 dB SNR over the whole clip, silences included) or telephone (8 kHz mu-law round trip, plus
noise at 20-30 dB SNR). The truth is the clean render's 20 ms frames within 35 dB of its
loudest frame and above -60 dBFS.

Detectors, each deciding every 20 ms frame at 16 kHz:
- webrtcvad (aggressiveness 2) alone;
- the gateway's gate: webrtcvad AND the energy and noise-floor gates (gateway.vad.Segmenter,
  with its turn state, at the silence timer's 500 ms);
- Silero VAD 6 (the model inside its PyPI package, torch JIT, one thread), P(speech) >= 0.5 on
  its 32 ms windows, each 20 ms frame taking the newest window's decision.

Reported per condition: speech frames found (recall), silent frames called speech (false
alarms), the overhang after each sentence's end (how long the detector keeps calling speech
after the truth stops; what delays every end of turn), and CPU time per second of audio.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import soxr
import webrtcvad

from telugu_s2s.gateway.vad import FRAME_SAMPLES, VAD_RATE, Segmenter, VadSettings
from telugu_s2s.training import corpus, synth
from telugu_s2s.training.synth import Aug, apply_aug

LEAD_MS, PAUSE_MS, TAIL_MS = 600, 400, 900
CONDITIONS = ("clean", "noisy", "telephone")
SILERO_WINDOW = 512  # samples at 16 kHz


def truth_frames(clean16: np.ndarray) -> np.ndarray:
    n = len(clean16) // FRAME_SAMPLES
    frames = clean16[: n * FRAME_SAMPLES].reshape(n, FRAME_SAMPLES).astype(np.float64)
    db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-20)
    return (db >= db.max() - 35.0) & (db >= -60.0)


def degrade(x: np.ndarray, condition: str, rng: random.Random) -> np.ndarray:
    level = rng.uniform(-30.0, -3.0)
    noise = rng.choice(("white", "pink", "brown"))
    snr = {"clean": None, "noisy": rng.uniform(10, 20), "telephone": rng.uniform(20, 30)}[condition]
    aug = Aug(level, snr, noise, condition == "telephone", 0, 0, rng.getrandbits(31))
    return apply_aug(x, aug)


def to16(x24: np.ndarray) -> np.ndarray:
    y = soxr.resample(x24, synth.SAMPLE_RATE, VAD_RATE, quality="HQ")
    return np.clip(y * 32767, -32768, 32767).astype(np.int16)


def webrtc_frames(x: np.ndarray) -> np.ndarray:
    vad = webrtcvad.Vad(2)
    n = len(x) // FRAME_SAMPLES
    return np.array([vad.is_speech(x[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES].tobytes(), VAD_RATE) for i in range(n)])


def gateway_frames(x: np.ndarray) -> np.ndarray:
    seg = Segmenter(VadSettings())
    out = []
    for i in range(len(x) // FRAME_SAMPLES):
        seg.feed(x[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES])
        out.append(seg.last_frame_voiced)
    return np.array(out)


class Silero:
    def __init__(self) -> None:
        import torch
        from silero_vad import load_silero_vad

        torch.set_num_threads(1)
        self.torch = torch
        self.model = load_silero_vad()

    def frames(self, x: np.ndarray) -> np.ndarray:
        self.model.reset_states()
        f = x.astype(np.float32) / 32768.0
        n = len(x) // FRAME_SAMPLES
        out = np.zeros(n, bool)
        decided, last = 0, False
        with self.torch.no_grad():
            for i in range(n):
                end = (i + 1) * FRAME_SAMPLES
                while decided + SILERO_WINDOW <= end:  # every full window that has arrived
                    chunk = self.torch.from_numpy(f[decided : decided + SILERO_WINDOW])
                    last = float(self.model(chunk, VAD_RATE)) >= 0.5
                    decided += SILERO_WINDOW
                out[i] = last
        return out


def overhang_ms(truth: np.ndarray, said: np.ndarray, ends: list[int]) -> list[int]:
    """For each true end frame: frames the detector still calls speech right after it."""
    out = []
    for e in ends:
        k = e
        while k < len(said) and said[k] and not truth[k]:
            k += 1
        out.append((k - e) * 20)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=40, help="clips per condition")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    rng = random.Random(a.seed)
    everyone = synth.callers_with_more(synth.CALLER_VOICES, synth.HELD_OUT_CALLERS)
    held = [c for c in everyone if c.id in synth.held_out_with_more(synth.HELD_OUT_CALLERS)]
    texts = [u.text for u in corpus.utterances("test") if u.held_out_phrasing or u.kind == "ood"]
    silero = Silero()
    detectors = {"webrtcvad": webrtc_frames, "gateway gate": gateway_frames, "silero": silero.frames}
    rows: dict[str, dict[str, dict]] = {c: {d: {"tp": 0, "fn": 0, "fp": 0, "tn": 0, "over": [], "cpu_s": 0.0} for d in detectors} for c in CONDITIONS}
    audio_s = {c: 0.0 for c in CONDITIONS}
    for condition in CONDITIONS:
        for i in range(a.clips):
            caller = held[i % len(held)]
            one, two = (synth.speak(t, caller) for t in rng.sample(texts, 2))
            sil = lambda ms: np.zeros(synth.SAMPLE_RATE * ms // 1000, np.float32)  # noqa: E731
            clean = np.concatenate([sil(LEAD_MS), one, sil(PAUSE_MS), two, sil(TAIL_MS)])
            truth = truth_frames(to16(clean))
            edges = np.flatnonzero(np.diff(truth.astype(int)) == -1) + 1
            ends = [int(e) for e in edges]
            x = to16(degrade(clean, condition, rng))
            audio_s[condition] += len(x) / VAD_RATE
            for name, fn in detectors.items():
                t0 = time.process_time()
                said = fn(x)[: len(truth)]
                r = rows[condition][name]
                r["cpu_s"] += time.process_time() - t0
                t = truth[: len(said)]
                r["tp"] += int(np.sum(said & t))
                r["fn"] += int(np.sum(~said & t))
                r["fp"] += int(np.sum(said & ~t))
                r["tn"] += int(np.sum(~said & ~t))
                r["over"] += overhang_ms(t, said, [e for e in ends if e < len(said)])
    report: dict = {"clips_per_condition": a.clips, "seed": a.seed, "results": {}}
    print(f"{'condition':10} {'detector':13} {'recall':>7} {'false alarm':>12} {'overhang p50/p95 ms':>20} {'CPU ms/s audio':>15}")
    for condition in CONDITIONS:
        for name in detectors:
            r = rows[condition][name]
            res = {
                "recall": round(r["tp"] / max(1, r["tp"] + r["fn"]), 3),
                "false_alarm": round(r["fp"] / max(1, r["fp"] + r["tn"]), 3),
                "overhang_p50_ms": float(np.percentile(r["over"], 50)) if r["over"] else None,
                "overhang_p95_ms": float(np.percentile(r["over"], 95)) if r["over"] else None,
                "cpu_ms_per_audio_s": round(1000 * r["cpu_s"] / audio_s[condition], 2),
                "ends": len(r["over"]),
            }
            report["results"].setdefault(condition, {})[name] = res
            print(
                f"{condition:10} {name:13} {res['recall']:7.3f} {res['false_alarm']:12.3f} "
                f"{res['overhang_p50_ms']:>9.0f} / {res['overhang_p95_ms']:<8.0f} {res['cpu_ms_per_audio_s']:15.2f}"
            )
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
