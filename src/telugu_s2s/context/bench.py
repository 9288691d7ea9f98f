"""Latency of AppendTurn and GetContext over gRPC (in-process server, one client).

    python -m telugu_s2s.context.bench --backend redis --n 300
    python -m telugu_s2s.context.bench --backend memory --n 300

`--backend redis` starts a private redis-server (AOF on, appendfsync everysec unless
--fsync-always) with LocalRedis. Turns are sized like a real one: 4 s of user speech and
a 5 s reply at 75 frames/s, 2 codebooks. Prints medians and p95 in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

import grpc

from telugu_s2s.context.config import Config
from telugu_s2s.context.server import start
from telugu_s2s.v1 import common_pb2, context_pb2, context_pb2_grpc


def _codes(frames: int, rng: random.Random) -> common_pb2.Codes:
    return common_pb2.Codes(n_codebooks=2, n_frames=frames, values=[rng.randrange(1024) for _ in range(2 * frames)])


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


async def _run(url: str, n: int) -> dict[str, list[float]]:
    cfg = Config(host="127.0.0.1", port=0, metrics_port=0, redis_url=url)
    running = await start(cfg, metrics=False)
    rng = random.Random(0)
    turn = context_pb2.Turn(user_codes=_codes(300, rng), reply_codes=_codes(375, rng), played_ms=5000)
    out: dict[str, list[float]] = {"AppendTurn": [], "GetContext(10 turns)": []}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as ch:
        stub = context_pb2_grpc.ContextStoreStub(ch)
        ref = context_pb2.SessionRef(
            session_id=(await stub.CreateSession(context_pb2.CreateSessionRequest(voice="priya"))).session_id
        )
        req_a = context_pb2.AppendTurnRequest(session=ref, turn=turn)
        req_c = context_pb2.GetContextRequest(session=ref)
        for _ in range(20):  # warm-up, and fill the 10 turns
            await stub.AppendTurn(req_a)
            await stub.GetContext(req_c)
        for _ in range(n):
            t0 = time.perf_counter()
            await stub.AppendTurn(req_a)
            t1 = time.perf_counter()
            await stub.GetContext(req_c)
            t2 = time.perf_counter()
            out["AppendTurn"].append((t1 - t0) * 1000)
            out["GetContext(10 turns)"].append((t2 - t1) * 1000)
    await running.stop()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=["memory", "redis"], default="redis")
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--fsync-always", action="store_true")
    a = p.parse_args()
    if a.backend == "memory":
        results = asyncio.run(_run("memory://", a.n))
    else:
        from telugu_s2s.context.redis_local import LocalRedis

        with (
            tempfile.TemporaryDirectory() as d,
            LocalRedis(Path(d), appendonly=True, appendfsync="always" if a.fsync_always else "everysec") as server,
        ):
            results = asyncio.run(_run(server.url, a.n))
    for name, xs in results.items():
        print(
            f"{a.backend:6s} {name:22s} n={len(xs)} median={statistics.median(xs):.2f} ms p95={_pct(xs, 0.95):.2f} ms"
        )


if __name__ == "__main__":
    main()
