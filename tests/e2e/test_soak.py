"""Soak: N concurrent real-time callers for several minutes against a stack of its own.

    make soak                                   # 4 callers, 180 s
    TS2S_SOAK_CALLERS=8 TS2S_SOAK_S=600 make soak

Each caller is the benchmark's caller (`telugu_s2s.client.caller.converse`, real time,
real Telugu speech, natural pauses, a barge-in on some calls), making call after call of
TURNS turns on a new session until the time is up. Meanwhile the resident memory (RSS) of
every service process (children included: Triton's Python-backend stub) is sampled.

Asserted:
- no call failed and no turn carried an in-band error;
- every acknowledged turn (ResponseDone or ResponseInterrupted) is in Redis, read back
  through the context service;
- memory is flat: after warm-up (the first WARMUP_SHARE of the run), the peak RSS of each
  service in the second half of the samples exceeds the peak in the first half by at most
  max(RSS_GROWTH_MIB, RSS_GROWTH_SHARE x the first peak) (see flat()).

The JSON report goes to $TS2S_SOAK_REPORT (default: the test's run directory) and is
printed (`pytest -s`). docs/reliability.md records a run.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import threading
import time
from pathlib import Path

import pytest

from telugu_s2s.client.bench import machine
from telugu_s2s.client.caller import CallFailed, CallOptions, converse
from telugu_s2s.client.wav import read_wav_as
from tests.e2e.live import context_turn_ids, fault_stack, rss_bytes

pytestmark = [pytest.mark.e2e, pytest.mark.soak]

CALLERS = int(os.environ.get("TS2S_SOAK_CALLERS", "4"))
DURATION_S = float(os.environ.get("TS2S_SOAK_S", "180"))
TURNS = 3
SAMPLE_EVERY_S = 5.0
WARMUP_SHARE = 0.25
RSS_GROWTH_MIB = 32.0
RSS_GROWTH_SHARE = 0.10
VOICES = ("arjun", "ravi", "priya", "lakshmi")


class RssSampler(threading.Thread):
    def __init__(self, stack) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.stack = stack
        self.samples: list[tuple[float, dict[str, int]]] = []
        self.stopping = threading.Event()

    def sample(self) -> None:
        rss = {name: sum(rss_bytes(p) for p in pids) for name, pids in self.stack.pids().items()}
        self.samples.append((time.monotonic(), rss))

    def run(self) -> None:
        while not self.stopping.is_set():
            self.sample()
            self.stopping.wait(SAMPLE_EVERY_S)


async def caller(idx: int, target: str, audio: list, deadline: float, out: dict) -> None:
    n = 0
    while time.monotonic() < deadline:
        utterances = [audio[(idx + n + t) % len(audio)] for t in range(TURNS)]
        opts = CallOptions(
            voice=VOICES[idx % 4],
            realtime=True,
            pause_ms=(400, 600, 800)[(idx + n) % 3],
            barge_in_on=(2,) if (idx + n) % 3 == 0 else (),
            barge_in_after_ms=400,
            turn_timeout_s=60,
        )
        try:
            call = await converse(target, utterances, opts)
        except CallFailed as exc:
            out["errors"].append(f"caller {idx} call {n}: {exc}")
            n += 1
            continue
        out["calls"] += 1
        for code, msg in call.errors:
            out["errors"].append(f"caller {idx} call {n}: {code}: {msg}")
        acked = []
        for turn in call.turns:
            for code, msg in turn.errors:
                out["errors"].append(f"caller {idx} call {n} turn {turn.turn_id}: {code}: {msg}")
            if turn.latency or turn.interrupted:
                acked.append(turn.turn_id)
            if turn.latency:
                out["latency_ms"].append(turn.latency["response_latency_ms"])
            out["interrupted"] += int(turn.interrupted)
        out["acked"].append((call.session_id, acked))
        n += 1


def flat(samples: list[tuple[float, dict[str, int]]], t0: float, duration: float) -> dict[str, dict]:
    """Per service: does the high-water mark of RSS keep rising after warm-up?

    The samples after warm-up are split in two halves; growth = peak of the second half -
    peak of the first. Peaks, not means: the codec's RSS is a sawtooth (large transient
    buffers, returned to the OS in bursts), so a point-to-point comparison measures where
    in the sawtooth the run stopped; a leak shows as a rising envelope."""
    after = [s for t, s in samples if t >= t0 + WARMUP_SHARE * duration]
    first, second = after[: len(after) // 2], after[len(after) // 2 :]
    out = {}
    for name in samples[-1][1]:
        peak1 = max(s.get(name, 0) for s in first)
        peak2 = max(s.get(name, 0) for s in second)
        bound = max(RSS_GROWTH_MIB * 2**20, RSS_GROWTH_SHARE * peak1)
        out[name] = {
            "peak_first_half_mib": round(peak1 / 2**20, 1),
            "peak_second_half_mib": round(peak2 / 2**20, 1),
            "growth_mib": round((peak2 - peak1) / 2**20, 1),
            "bound_mib": round(bound / 2**20, 1),
            "min_after_warmup_mib": round(min(s.get(name, 0) for s in after) / 2**20, 1),
            "flat": peak2 - peak1 <= bound,
        }
    return out


def test_soak(tmp_path, example_wavs, request):
    markexpr = request.config.getoption("markexpr") or ""
    if "soak" not in markexpr or "not soak" in markexpr:
        pytest.skip("minutes long: run it with `make soak` (pytest -m soak)")
    audio = [read_wav_as(p, 16000) for p in example_wavs.values()]
    stack = fault_stack(tmp_path / "stack", TS2S_GATEWAY_MAX_REPLY_S="6")
    sampler = RssSampler(stack)
    try:
        sampler.sample()
        sampler.start()
        t0 = time.monotonic()
        out = {"calls": 0, "interrupted": 0, "errors": [], "acked": [], "latency_ms": []}

        async def run() -> None:
            await asyncio.gather(
                *(caller(i, stack.cfg.gateway_target, audio, t0 + DURATION_S, out) for i in range(CALLERS))
            )

        asyncio.run(run())
        wall = time.monotonic() - t0
        sampler.stopping.set()
        sampler.join()
        sampler.sample()
        missing = []
        for session_id, turn_ids in out["acked"]:
            stored = set(context_turn_ids(stack, session_id))
            missing += [(session_id, t) for t in turn_ids if t not in stored]
        memory = flat(sampler.samples, t0, wall)
        lat = sorted(out["latency_ms"])
        report = {
            "callers": CALLERS,
            "duration_s": round(wall, 1),
            "calls": out["calls"],
            "acknowledged_turns": sum(len(t) for _, t in out["acked"]),
            "interrupted_turns": out["interrupted"],
            "missing_in_redis": len(missing),
            "errors": len(out["errors"]),
            "error_samples": out["errors"][:10],
            "response_latency_ms": {
                "p50": round(statistics.median(lat), 1) if lat else None,
                "p95": round(lat[int(0.95 * (len(lat) - 1))], 1) if lat else None,
            },
            "rss_samples": len(sampler.samples),
            "memory": memory,
            "rss_series_mib": {  # seconds since start -> MiB, per service
                name: [[round(t - t0), round(rss.get(name, 0) / 2**20)] for t, rss in sampler.samples]
                for name in sampler.samples[-1][1]
            },
            "machine": machine(),
        }
        path = Path(os.environ.get("TS2S_SOAK_REPORT", str(tmp_path / "soak.json")))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
        print(json.dumps(report, indent=2))
    finally:
        sampler.stopping.set()
        stack.stop()
    assert not out["errors"], out["errors"][:10]
    assert out["calls"] >= CALLERS and report["acknowledged_turns"] > 0
    assert not missing, missing[:10]
    assert all(m["flat"] for m in memory.values()), memory
