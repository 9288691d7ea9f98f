"""`telugu-s2s demo` (`make demo`): the whole product on one machine, in one command."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from telugu_s2s.local.procs import StackError
from telugu_s2s.local.stack import REPO_ROOT, LocalStack, StackConfig

EXAMPLES = REPO_ROOT / "examples"
# (example file, voice): the second turn resumes the first one's session, in another voice.
DEMO_TURNS = (("phone_poyindi.wav", "priya"), ("vatavaranam.wav", "arjun"))


def demo(a, cfg: StackConfig, banner_random) -> int:
    missing = cfg.weights_missing()
    if missing:
        # No trained checkpoints: run on untrained weights, explicitly and loudly.
        from dataclasses import replace

        cfg = replace(cfg, allow_random_weights=True)
        banner_random(missing)
    from telugu_s2s.cli.talk import run_talk

    out_dir: Path = a.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    print("starting the stack (logs in %s) ..." % (cfg.run_dir / "logs"), flush=True)
    try:
        with LocalStack(cfg, say=lambda m: print("  " + m, flush=True)) as stack:
            session = ""
            results = []
            for i, (example, voice) in enumerate(DEMO_TURNS, 1):
                wav_out = out_dir / f"reply_{i}_{voice}.wav"
                print(f"\nturn {i}: {example} -> voice {voice}", flush=True)
                res = run_talk(
                    stack.cfg.gateway_target,
                    EXAMPLES / example,
                    wav_out,
                    voice,
                    session,
                    realtime=True,
                    output_rate=16000,
                )
                session = res["session_id"]
                results.append(res)
                print(json.dumps(res, ensure_ascii=False, indent=2), flush=True)
                print(f"reply written to {wav_out}", flush=True)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        "\nlatency (ms):  "
        + "   ".join(
            f"turn {i}: response {r['response_latency_ms']:.0f}, voice-to-voice {r['voice_to_voice_ms']:.0f}"
            for i, r in enumerate(results, 1)
        )
    )
    if missing:
        banner_random(missing)
    return 0
