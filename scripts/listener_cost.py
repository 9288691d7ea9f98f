"""What the listener adds to a request's prefill: the shipped S2S checkpoint, a 2 s user turn
after a full context, prefill time with the listener and with the same weights without it.

    python scripts/listener_cost.py [--checkpoint models/s2s] [--rounds 50]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from telugu_s2s.s2s.model import KVCache, S2STransformer, build_prefix, load_checkpoint
from telugu_s2s.s2s.protocol import context_from_turns


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=Path("models/s2s"))
    ap.add_argument("--rounds", type=int, default=50)
    args = ap.parse_args()
    torch.set_num_threads(1)
    with_listener = load_checkpoint(args.checkpoint).model
    cfg = with_listener.cfg
    plain_cfg = dataclasses.replace(cfg, listener_layers=0)
    plain = S2STransformer(plain_cfg).eval()
    plain.load_state_dict(with_listener.state_dict(), strict=False)
    rng = np.random.default_rng(0)
    k, rate = cfg.n_codebooks, cfg.frame_rate
    turns = [(rng.integers(0, 1024, (k, int(2 * rate))), rng.integers(0, 1024, (k, int(2 * rate)))) for _ in range(3)]
    prefix = torch.from_numpy(
        build_prefix(cfg, rng.integers(0, 1024, (k, int(2 * rate))), *context_from_turns(turns, k))
    )
    for name, model, mcfg in (("with listener", with_listener, cfg), ("without", plain, plain_cfg)):
        cache = KVCache(mcfg, slots=1)
        times = []
        for _ in range(args.rounds + 5):
            t0 = time.perf_counter()
            model.prefill(prefix, 0, cache, 0)
            times.append(time.perf_counter() - t0)
        times = sorted(times[5:])
        print(
            f"{name}: prefill of {prefix.shape[1]} positions, median {1000 * statistics.median(times):.2f} ms, "
            f"p95 {1000 * times[int(0.95 * len(times)) - 1]:.2f} ms (1 thread, {args.rounds} rounds)"
        )


if __name__ == "__main__":
    main()
