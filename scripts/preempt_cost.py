"""What preemptive replies cost and save, on the end-of-turn model's held-out test clips.

    python scripts/preempt_cost.py [--data-dir .data/turn] [--preempt-at 0.3,0.5,0.7] [--json F]

Each test clip (4 held-out callers; 191 of 240 with 1-4 pauses of 250-800 ms) runs through the
gateway's own segmenter with the shipped model at MEDIUM eagerness, from its first sample, as a
call feeds it. For each `preempt_at`: how many replies are started and then dropped because the
caller went on (a generation thrown away), how many are used, per clip; and how long before the
decision a used one started (what it can save).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from telugu_s2s.gateway.vad import LikelyEnd, Resumed, Segmenter, SpeechEnd, VadSettings
from telugu_s2s.training.turn_data import Split
from telugu_s2s.turn.detector import TurnDetector
from telugu_s2s.turn.model import DEFAULT_WEIGHTS, TurnModel

MAX_WAIT_MS = 1500


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, default=Path(".data/turn"))
    p.add_argument("--preempt-at", default="0.3,0.5,0.7")
    p.add_argument("--eagerness", default="medium")
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    model = TurnModel.load(DEFAULT_WEIGHTS)
    split = Split.load(a.data_dir, "test")
    report = {"clips": len(split.rows), "eagerness": a.eagerness, "results": {}}
    for at in (float(x) for x in a.preempt_at.split(",")):
        dropped, used, ended, lead = 0, 0, 0, []
        dropped_paused, clips_paused = 0, 0
        for ci, row in enumerate(split.rows):
            seg = Segmenter(VadSettings(), TurnDetector(model, a.eagerness, MAX_WAIT_MS), preempt_at=at)
            leaning: LikelyEnd | None = None
            paused = len(row["parts"]) > 1
            clips_paused += paused
            for ev in seg.feed(split.clip_audio(ci)):
                if isinstance(ev, LikelyEnd):
                    leaning = ev
                elif isinstance(ev, Resumed) and leaning is not None:
                    dropped += 1
                    dropped_paused += paused
                    leaning = None
                elif isinstance(ev, SpeechEnd):
                    ended += 1
                    if leaning is not None and leaning.audio_end_ms == ev.audio_end_ms:
                        used += 1
                        lead.append(ev.decided_at_ms - leaning.decided_at_ms)
                    leaning = None
                    break  # the first turn of the clip, as the cut-off test counts it
        report["results"][str(at)] = {
            "dropped_per_clip": round(dropped / len(split.rows), 3),
            "dropped_per_paused_clip": round(dropped_paused / max(1, clips_paused), 3),
            "used": used,
            "turns_ended": ended,
            "lead_ms_p50": round(float(np.percentile(lead, 50))) if lead else None,
            "lead_ms_p95": round(float(np.percentile(lead, 95))) if lead else None,
        }
        r = report["results"][str(at)]
        print(
            f"preempt_at {at}: dropped {r['dropped_per_clip']} per clip ({r['dropped_per_paused_clip']} per clip with "
            f"pauses), used {used} of {ended} turn ends, started p50 {r['lead_ms_p50']} / p95 {r['lead_ms_p95']} ms "
            "before the decision"
        )
    if a.json:
        a.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
