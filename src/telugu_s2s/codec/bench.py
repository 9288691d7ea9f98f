"""Codec benchmark: real-time factor at 1 stream and real-time stream capacity.

    python -m telugu_s2s.codec.bench [--arch official small] [--json out.json]

- RTF: one stream, audio fed in `--chunk-ms` chunks through `StreamingCodec` on the calling
  thread (one torch thread): compute seconds / audio seconds, encode and decode separately.
- Capacity: N simulated real-time streams (each sends `--chunk-ms` of audio, or the code
  frames due, every `--chunk-ms`, with random phase) through `CodecEngine` (the service's
  micro-batching engine and worker pool, without the gRPC transport). Frame latency =
  time the frame's output is ready - time its last input was due. The largest N with
  p95 <= `--p95-ms` is found by doubling then bisection, once with batching disabled
  (max_batch=1) and once enabled.

The weights are random (untrained): compute cost does not depend on weight values, and the
output is not listened to. Results are printed (and written as JSON with --json).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import random
import statistics
import sys
import time
from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from telugu_s2s.codec.checkpoint import DEMO_ARCH, CodecArch, random_weights
from telugu_s2s.codec.engine import CodecEngine
from telugu_s2s.codec.streaming import StreamingCodec

ARCHS = {
    # The official 24 kHz EnCodec architecture (same size as encodec_24khz-d7cc33bc.th).
    "official": CodecArch(),
    # The project's small codec (n_filters=16), 16 kHz, 50 Hz frames.
    "small": CodecArch(sample_rate=16000, n_filters=16, pad_mode="constant", target_bandwidths=(1.0, 2.0, 4.0)),
    # The shipped demo codec (16 kHz, 62.5 Hz frames), with its SEANet or its harmonic decoder.
    "demo": DEMO_ARCH,
    "demo-harmonic": dataclasses.replace(DEMO_ARCH, decoder="harmonic"),
}
BANDWIDTH = {"official": 1.5, "small": 1.0, "demo": 1.5, "demo-harmonic": 1.5}


def _audio(codec: StreamingCodec, seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * codec.sample_rate)
    t = np.arange(n) / codec.sample_rate
    x = 0.3 * np.sin(2 * np.pi * 180 * t) * np.sin(2 * np.pi * 2 * t) + 0.03 * rng.standard_normal(n)
    return x.astype(np.float32)


def measure_rtf(codec: StreamingCodec, seconds: float, chunk_ms: float) -> dict:
    """Streaming RTF at one stream, chunked like a live call."""
    x = _audio(codec, seconds)
    chunk = int(codec.sample_rate * chunk_ms / 1000)
    hop = codec.hop
    state = codec.new_encoder_state()
    codes_out = []
    buf = np.zeros(0, dtype=np.float32)
    enc_times = []
    for i in range(0, x.size, chunk):
        buf = np.concatenate([buf, x[i : i + chunk]])
        n = buf.size // hop
        if n:
            t0 = time.perf_counter()
            codes_out.append(codec.encode_batch(torch.from_numpy(buf[: n * hop]).view(1, -1), [state]))
            enc_times.append(time.perf_counter() - t0)
            buf = buf[n * hop :]
    codes = torch.cat(codes_out, dim=-1)
    frames_per_chunk = max(1, round(chunk_ms / 1000 * codec.frame_rate))
    state = codec.new_decoder_state()
    dec_times = []
    for i in range(0, codes.shape[-1], frames_per_chunk):
        t0 = time.perf_counter()
        codec.decode_batch(codes[..., i : i + frames_per_chunk], [state])
        dec_times.append(time.perf_counter() - t0)
    audio_s = codes.shape[-1] * hop / codec.sample_rate
    return {
        "audio_seconds": round(audio_s, 3),
        "chunk_ms": chunk_ms,
        "encode_rtf": round(sum(enc_times) / audio_s, 4),
        "decode_rtf": round(sum(dec_times) / audio_s, 4),
        "encode_call_ms_median": round(1000 * statistics.median(enc_times), 3),
        "decode_call_ms_median": round(1000 * statistics.median(dec_times), 3),
    }


def measure_batch_scaling(codec: StreamingCodec, sizes=(1, 4, 16), steps: int = 10) -> list[dict]:
    """Compute time of one one-frame step for B streams at once (the batching gain)."""
    out = []
    for b in sizes:
        enc = [codec.new_encoder_state() for _ in range(b)]
        dec = [codec.new_decoder_state() for _ in range(b)]
        x = torch.from_numpy(np.stack([_audio(codec, codec.hop / codec.sample_rate, seed=k) for k in range(b)]))
        c = torch.randint(0, codec.codebook_size, (b, codec.n_codebooks, 1))
        for _ in range(2):
            codec.encode_batch(x, enc)
            codec.decode_batch(c, dec)
        row = {"streams": b}
        for op, fn in (
            ("encode", lambda x=x, enc=enc: codec.encode_batch(x, enc)),
            ("decode", lambda c=c, dec=dec: codec.decode_batch(c, dec)),
        ):
            times = []
            for _ in range(steps):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            step = statistics.median(times)
            row[f"{op}_step_ms_median"] = round(1000 * step, 3)
            row[f"{op}_ms_per_stream_frame"] = round(1000 * step / b, 3)
        out.append(row)
    return out


async def _trial(
    codec: StreamingCodec,
    op: str,
    n_streams: int,
    seconds: float,
    chunk_ms: float,
    workers: int,
    max_batch: int,
    batch_wait_ms: float,
) -> dict:
    engine = CodecEngine(codec, workers=workers, max_batch=max_batch, batch_wait_s=batch_wait_ms / 1000)
    await engine.start()
    await engine.warm_up()
    dt = chunk_ms / 1000
    n_ticks = int(seconds / dt)
    skip = max(1, n_ticks // 10)  # the first ticks include start-up transients
    audio = _audio(codec, seconds + 1)
    chunk = int(codec.sample_rate * dt)
    codes = np.random.default_rng(0).integers(
        0, codec.codebook_size, size=(codec.n_codebooks, int((seconds + 1) * codec.frame_rate) + 2)
    )
    latencies: list[float] = []
    loop = asyncio.get_running_loop()
    t_start = loop.time() + 0.05

    async def stream(k: int) -> None:
        offset = random.Random(k).random() * dt
        session = engine.open_encoder() if op == "encode" else engine.open_decoder()
        sent_frames = 0
        try:
            for tick in range(n_ticks):
                due = t_start + offset + tick * dt
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if op == "encode":
                    _, out = await session.push((audio[tick * chunk : (tick + 1) * chunk] * 32767).astype(np.int16))
                    produced = out.shape[1]
                else:
                    due_frames = int((tick + 1) * dt * codec.frame_rate)
                    block = codes[:, sent_frames:due_frames]
                    sent_frames = due_frames
                    await session.push(block)
                    produced = block.shape[1]
                if tick >= skip:
                    lat = loop.time() - due
                    latencies.extend([lat] * produced)
        finally:
            session.close()

    t0 = time.perf_counter()
    cpu0 = time.process_time()
    await asyncio.gather(*(stream(k) for k in range(n_streams)))
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    await engine.close()
    lat = np.array(latencies) * 1000
    return {
        "streams": n_streams,
        "frames": int(lat.size),
        "p50_ms": round(float(np.percentile(lat, 50)), 2) if lat.size else None,
        "p95_ms": round(float(np.percentile(lat, 95)), 2) if lat.size else None,
        "max_ms": round(float(lat.max()), 2) if lat.size else None,
        "cpu_util": round(cpu / wall, 2),
    }


def find_capacity(codec: StreamingCodec, op: str, args, max_batch: int) -> dict:
    """Largest stream count with p95 frame latency <= target (doubling, then bisection)."""
    trials = []

    def ok(n: int) -> bool:
        r = asyncio.run(_trial(codec, op, n, args.seconds, args.chunk_ms, args.workers, max_batch, args.batch_wait_ms))
        r["pass"] = r["p95_ms"] is not None and r["p95_ms"] <= args.p95_ms
        trials.append(r)
        print(
            f"  {op:6s} max_batch={max_batch:3d} streams={n:4d} p50={r['p50_ms']} ms "
            f"p95={r['p95_ms']} ms {'ok' if r['pass'] else 'over'}",
            file=sys.stderr,
            flush=True,
        )
        return r["pass"]

    lo, hi = 0, None
    n = 1
    while n <= args.max_streams:
        if ok(n):
            lo = n
            n *= 2
        else:
            hi = n
            break
    if hi is None:
        hi = args.max_streams + 1
    while hi - lo > max(1, int(lo * 0.1)):
        mid = (lo + hi) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return {"max_streams": lo, "max_batch": max_batch, "trials": trials}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m telugu_s2s.codec.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--arch", nargs="+", choices=sorted(ARCHS), default=["official", "small"])
    p.add_argument("--ops", nargs="+", choices=["encode", "decode"], default=["encode", "decode"])
    p.add_argument("--rtf-seconds", type=float, default=5.0, help="audio length for the RTF runs")
    p.add_argument("--seconds", type=float, default=2.0, help="length of each capacity trial")
    p.add_argument("--chunk-ms", type=float, default=20.0, help="input chunk per stream and tick")
    p.add_argument("--p95-ms", type=float, default=20.0, help="frame latency target")
    p.add_argument("--workers", type=int, default=2, help="torch worker threads (1 intra-op thread each)")
    p.add_argument("--batch-wait-ms", type=float, default=2.0)
    p.add_argument("--max-batch", type=int, default=64, help="max streams per forward when batching")
    p.add_argument("--max-streams", type=int, default=256)
    p.add_argument("--skip-capacity", action="store_true")
    p.add_argument("--json", help="write the results to this file")
    args = p.parse_args(argv)

    torch.set_num_threads(1)
    result: dict[str, Any] = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.machine(),
            "torch": torch.__version__,
            "loadavg_before": [round(x, 2) for x in os.getloadavg()],
        },
        "weights": "random (untrained; compute cost does not depend on weight values)",
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "archs": {},
    }
    for name in args.arch:
        arch = ARCHS[name]
        codec = StreamingCodec(random_weights(arch, seed=0), BANDWIDTH[name])
        params = sum(p.numel() for p in codec.model.parameters())
        entry: dict[str, Any] = {
            "arch": asdict(arch),
            "params_millions": round(params / 1e6, 2),
            "sample_rate": codec.sample_rate,
            "frame_rate": codec.frame_rate,
            "n_codebooks": codec.n_codebooks,
        }
        print(
            f"[{name}] {params / 1e6:.1f} M params, {codec.sample_rate} Hz, {codec.frame_rate:g} Hz frames",
            file=sys.stderr,
            flush=True,
        )
        entry["rtf_1_stream"] = measure_rtf(codec, args.rtf_seconds, args.chunk_ms)
        print(f"  rtf {entry['rtf_1_stream']}", file=sys.stderr, flush=True)
        entry["batch_scaling"] = measure_batch_scaling(codec)
        print(f"  batch scaling {entry['batch_scaling']}", file=sys.stderr, flush=True)
        if not args.skip_capacity:
            entry["capacity"] = {}
            for op in args.ops:
                no_batch = find_capacity(codec, op, args, max_batch=1)
                batched = find_capacity(codec, op, args, max_batch=args.max_batch)
                entry["capacity"][op] = {"without_batching": no_batch, "with_batching": batched}
        result["archs"][name] = entry
    result["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(result, indent=2)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    summary = {
        name: {
            "encode_rtf": e["rtf_1_stream"]["encode_rtf"],
            "decode_rtf": e["rtf_1_stream"]["decode_rtf"],
            "encode_ms_per_stream_frame_by_batch": {
                r["streams"]: r["encode_ms_per_stream_frame"] for r in e["batch_scaling"]
            },
            "decode_ms_per_stream_frame_by_batch": {
                r["streams"]: r["decode_ms_per_stream_frame"] for r in e["batch_scaling"]
            },
            **{
                f"{op}_max_streams_{mode}": e["capacity"][op][mode]["max_streams"]
                for op in e.get("capacity", {})
                for mode in ("without_batching", "with_batching")
            },
        }
        for name, e in result["archs"].items()
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
