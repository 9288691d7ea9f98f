"""Benchmark the s2s_transformer Triton model: time to first frame and frames/s per stream.

    python -m telugu_s2s.s2s.bench                       # self-started local Triton, demo-size
                                                         # model with RANDOM weights
    python -m telugu_s2s.s2s.bench --target localhost:8001   # a running server

For each concurrency level N, runs `--rounds` rounds of N simultaneous generations of
`--frames` frames each (greedy). Per stream: time to first frame (request sent -> first block
received), frames/s (reply frames / time from request to last block) and frames/s after the
first frame (what playback needs once it started). Faster than real time = frames/s after the
first frame >= the codec frame rate (75 frames/s for 24 kHz EnCodec) for the slowest 5% too.
With self-started random weights the EOS logit is disabled so every reply runs to --frames.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_demo_checkpoint(directory: Path, layers: int, d_model: int, heads: int, codebooks: int) -> dict:
    import torch

    from telugu_s2s.s2s.model import S2SConfig, S2STransformer, save_checkpoint

    cfg = S2SConfig(
        n_codebooks=codebooks,
        codebook_size=1024,
        n_layers=layers,
        d_model=d_model,
        n_heads=heads,
        max_seq_len=2048,
        context_budget=256,
        context_stride=4,
        max_reply_frames=1200,
    )
    torch.manual_seed(0)
    model = S2STransformer(cfg)
    with torch.no_grad():
        model.heads.bias[cfg.codebook_size] = -1e4  # random weights: no EOS, fixed-length replies
    save_checkpoint(model, cfg, directory, {"name": "bench-random-untrained"})
    return {"config": cfg.to_dict(), "parameters": model.num_parameters()}


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


async def _one(client, req) -> tuple[float, float, int, int]:
    t0 = time.perf_counter()
    first = None
    frames = first_frames = 0
    async for block in client.generate(req):
        if first is None:
            first = time.perf_counter() - t0
            first_frames = block.shape[1]
        frames += block.shape[1]
    total = time.perf_counter() - t0
    return first or total, total, frames, first_frames


async def run_levels(
    target: str,
    levels: list[int],
    rounds: int,
    frames: int,
    user_frames: int,
    context_turns: int,
    codebooks: int,
    fpr: int,
) -> list[dict]:
    from telugu_s2s.s2s.client import TritonS2SClient
    from telugu_s2s.s2s.protocol import GenerationParams, GenerationRequest, context_from_turns

    rng = np.random.default_rng(0)
    turns = [
        (rng.integers(0, 1024, (codebooks, 150)), rng.integers(0, 1024, (codebooks, 150))) for _ in range(context_turns)
    ]
    ctx, seg = context_from_turns(turns, codebooks)
    client = TritonS2SClient(target)
    results = []
    try:
        if not await client.ready():
            raise SystemExit(f"s2s model not ready at {target}")

        def req(i: int) -> GenerationRequest:
            user = rng.integers(0, 1024, (codebooks, user_frames)).astype(np.int32)
            return GenerationRequest(
                f"bench-{i}", user, i % 4, ctx, seg, GenerationParams(max_frames=frames, frames_per_response=fpr)
            )

        await _one(client, req(0))  # warm-up
        for n in levels:
            ttff, fps, steady = [], [], []
            wall = 0.0
            for r in range(rounds):
                t0 = time.perf_counter()
                outs = await asyncio.gather(*(_one(client, req(r * n + i)) for i in range(n)))
                wall += time.perf_counter() - t0
                for first, total, got, got_first in outs:
                    ttff.append(first)
                    fps.append(got / total)
                    steady.append((got - got_first) / max(total - first, 1e-9))
            results.append(
                {
                    "concurrency": n,
                    "streams": len(fps),
                    "ttff_ms_median": 1000 * _pct(ttff, 50),
                    "ttff_ms_p95": 1000 * _pct(ttff, 95),
                    "fps_median": _pct(fps, 50),
                    "fps_p5": _pct(fps, 5),
                    "steady_fps_median": _pct(steady, 50),
                    "steady_fps_p5": _pct(steady, 5),
                    "aggregate_fps": n * rounds * frames / wall,
                }
            )
    finally:
        await client.close()
    return results


def run_in_process(
    levels: list[int],
    frames: int,
    user_frames: int,
    context_turns: int,
    layers: int,
    d_model: int,
    heads: int,
    codebooks: int,
    threads: int,
) -> list[dict]:
    """The decode engine alone (no Triton, no client): prefill ms and batched step ms."""
    import torch

    from telugu_s2s.s2s.decoding import DecodeEngine, ReplyStream
    from telugu_s2s.s2s.model import S2SConfig, S2STransformer, build_prefix
    from telugu_s2s.s2s.protocol import GenerationParams, context_from_turns

    torch.set_num_threads(threads)
    cfg = S2SConfig(n_codebooks=codebooks, n_layers=layers, d_model=d_model, n_heads=heads, max_reply_frames=1200)
    torch.manual_seed(0)
    model = S2STransformer(cfg).eval()
    with torch.no_grad():
        model.heads.bias[cfg.codebook_size] = -1e4
    rng = np.random.default_rng(0)
    turns = [
        (rng.integers(0, 1024, (codebooks, 150)), rng.integers(0, 1024, (codebooks, 150))) for _ in range(context_turns)
    ]
    ctx, seg = context_from_turns(turns, codebooks)
    prefix = build_prefix(cfg, rng.integers(0, 1024, (codebooks, user_frames)), ctx, seg)
    out = []
    for n in levels:
        engine = DecodeEngine(model, initial_slots=n)
        prefill = []
        for _ in range(n):
            t0 = time.perf_counter()
            engine.add(ReplyStream(cfg, prefix, 0, GenerationParams(max_frames=frames)))
            prefill.append(time.perf_counter() - t0)
        steps = []
        while len(engine) == n:
            t0 = time.perf_counter()
            engine.step()
            steps.append(time.perf_counter() - t0)
        med = _pct(steps, 50)
        out.append(
            {
                "concurrency": n,
                "prefix_positions": prefix.shape[1],
                "prefill_ms_median": 1000 * _pct(prefill, 50),
                "step_ms_median": 1000 * med,
                "step_ms_p95": 1000 * _pct(steps, 95),
                "fps_per_stream": 1.0 / med,
                "aggregate_fps": n / med,
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default=None, help="host:port of a running Triton (default: start one)")
    ap.add_argument("--levels", default="1,4,8")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--frames", type=int, default=150, help="reply frames per generation (150 = 2 s at 75 Hz)")
    ap.add_argument("--user-frames", type=int, default=225, help="user turn length (225 = 3 s)")
    ap.add_argument("--context-turns", type=int, default=4)
    ap.add_argument("--frames-per-response", type=int, default=2)
    ap.add_argument("--frame-rate", type=float, default=75.0, help="codec frames/s that real time means")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--codebooks", type=int, default=2, help="2 = EnCodec 24 kHz at 1.5 kbps")
    ap.add_argument("--torch-threads", type=int, default=1)
    ap.add_argument("--no-batching", action="store_true", help="server steps requests one by one")
    ap.add_argument("--json", default=None, help="also write results here")
    ap.add_argument("--server-log", default=None, help="self-started server: keep its log here")
    ap.add_argument(
        "--in-process", action="store_true", help="time the decode engine alone (no Triton, no client), random weights"
    )
    args = ap.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",")]
    if args.in_process:
        rows = run_in_process(
            levels,
            args.frames,
            args.user_frames,
            args.context_turns,
            args.layers,
            args.d_model,
            args.heads,
            args.codebooks,
            args.torch_threads,
        )
        print(
            "| N | prefix positions | prefill ms (median) | batched step ms median | p95 "
            "| frames/s per stream | aggregate frames/s |"
        )
        print("|---|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['concurrency']} | {r['prefix_positions']} | {r['prefill_ms_median']:.1f} "
                f"| {r['step_ms_median']:.2f} | {r['step_ms_p95']:.2f} | {r['fps_per_stream']:.0f} "
                f"| {r['aggregate_fps']:.0f} |"
            )
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
        return 0

    info: dict = {"target": args.target}
    server = None
    tmp = None
    if args.target is None:
        from telugu_s2s.s2s.triton_local import LocalTriton

        tmp = tempfile.TemporaryDirectory(prefix="ts2s-bench-")
        info.update(
            write_demo_checkpoint(Path(tmp.name) / "ckpt", args.layers, args.d_model, args.heads, args.codebooks)
        )
        info["weights"] = "RANDOM (untrained), EOS disabled"
        server = LocalTriton(
            grpc_port=_free_port(),
            http_port=_free_port(),
            metrics_port=_free_port(),
            env={
                "TS2S_S2S_CHECKPOINT_DIR": str(Path(tmp.name) / "ckpt"),
                "TS2S_S2S_TORCH_THREADS": str(args.torch_threads),
                "TS2S_S2S_CONTINUOUS_BATCHING": "0" if args.no_batching else "1",
            },
            work_dir=tmp.name,
            log_path=args.server_log,
        )
        server.start()
        server.wait_ready(300)
        args.target = server.grpc_target
        info["continuous_batching"] = not args.no_batching
        info["torch_threads"] = args.torch_threads
    try:
        results = asyncio.run(
            run_levels(
                args.target,
                levels,
                args.rounds,
                args.frames,
                args.user_frames,
                args.context_turns,
                args.codebooks,
                args.frames_per_response,
            )
        )
    finally:
        if server is not None:
            server.stop()
        if tmp is not None:
            tmp.cleanup()
    print(json.dumps(info))
    print(
        "| N | streams | TTFF median ms | TTFF p95 ms | frames/s per stream median | p5 (slowest) "
        f"| after 1st frame median | p5 | aggregate frames/s | faster than real time ({args.frame_rate:g}/s)? |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        rt = (
            "yes"
            if r["steady_fps_p5"] >= args.frame_rate
            else "median only"
            if r["steady_fps_median"] >= args.frame_rate
            else "no"
        )
        print(
            f"| {r['concurrency']} | {r['streams']} | {r['ttff_ms_median']:.0f} | {r['ttff_ms_p95']:.0f} "
            f"| {r['fps_median']:.1f} | {r['fps_p5']:.1f} | {r['steady_fps_median']:.1f} | {r['steady_fps_p5']:.1f} "
            f"| {r['aggregate_fps']:.0f} | {rt} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"info": info, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
