"""Streaming against offline codec throughput, measured in one benchmark run.

Streaming: the codec service's own counters, read from its Prometheus endpoint(s) before and
after a benchmark level, per op, per second of audio coded
(`telugu_s2s_codec_audio_seconds_total`):
- wall: model compute seconds as the clock on the wall runs
  (`telugu_s2s_codec_batch_compute_seconds_sum`); on a machine the codec shares with Triton,
  the gateway and the callers, this includes the time its thread waited for a core or the GIL;
- cpu: the CPU time the worker threads spent in that compute
  (`telugu_s2s_codec_compute_cpu_seconds_total`): the work itself.
Offline: the same checkpoint in this process, one torch thread, `OFFLINE_STREAMS` clips of
`OFFLINE_SECONDS` encoded and decoded whole, in one batch, on a machine the levels no longer
load (wall and CPU time agree there). The ratio is offline compute per audio second over
streaming compute per audio second: the share of the offline throughput the service reaches.
"""

from __future__ import annotations

import re
import time
import urllib.request
from pathlib import Path

OFFLINE_STREAMS = 16
OFFLINE_SECONDS = 2.0
# counter -> its key in `Counters`
_NAMES = {
    "telugu_s2s_codec_batch_compute_seconds_sum": "wall",
    "telugu_s2s_codec_compute_cpu_seconds_total": "cpu",
    "telugu_s2s_codec_audio_seconds_total": "audio",
}
CLOCKS = ("wall", "cpu")
_LINE = re.compile(r'^(\w+)\{[^}]*op="(\w+)"[^}]*\}\s+([0-9.eE+-]+)$')

Counters = dict[str, dict[str, float]]  # op -> {"wall": s, "cpu": s, "audio": s}


def parse_counters(text: str) -> Counters:
    """The codec's compute (wall and CPU) and audio seconds per op, from Prometheus text."""
    out: Counters = {}
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if not m or m.group(1) not in _NAMES:
            continue
        per_op = out.setdefault(m.group(2), {"wall": 0.0, "cpu": 0.0, "audio": 0.0})
        per_op[_NAMES[m.group(1)]] += float(m.group(3))
    return dict(sorted(out.items()))


def scrape(urls: list[str], timeout_s: float = 2.0) -> Counters | None:
    """Summed over the replicas' endpoints; None when any cannot be read."""
    total: Counters = {}
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as resp:
                counters = parse_counters(resp.read().decode())
        except (OSError, ValueError):  # unreachable, or not a URL at all
            return None
        for op, values in counters.items():
            per_op = total.setdefault(op, {"wall": 0.0, "cpu": 0.0, "audio": 0.0})
            for k, v in values.items():
                per_op[k] += v
    return total


def streaming_rtf(before: Counters, after: Counters, clock: str = "wall") -> dict[str, float]:
    """Compute seconds (by `clock`: "wall" or "cpu") per audio second between two scrapes, per
    op that coded audio."""
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {CLOCKS}")
    out = {}
    for op, now in after.items():
        was = before.get(op, {})
        audio = now["audio"] - was.get("audio", 0.0)
        if audio > 0:
            out[op] = round((now[clock] - was.get(clock, 0.0)) / audio, 4)
    return out


def offline_rtf(
    checkpoint_dir: Path, streams: int = OFFLINE_STREAMS, seconds: float = OFFLINE_SECONDS, clock: str = "wall"
) -> dict:
    """The checkpoint run whole on `streams` clips at once, one torch thread: compute seconds
    (by `clock`) per audio second for encode and decode (the best of three)."""
    import numpy as np
    import torch

    from telugu_s2s.codec.checkpoint import load
    from telugu_s2s.codec.streaming import StreamingCodec

    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {CLOCKS}")
    now = time.perf_counter if clock == "wall" else time.thread_time  # one torch thread: this one
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        codec = StreamingCodec(load(Path(checkpoint_dir)))
        n = int(seconds * codec.sample_rate) // codec.hop * codec.hop
        rng = np.random.default_rng(0)
        audio = torch.from_numpy((0.1 * rng.standard_normal((streams, n))).astype(np.float32))
        best = {"encode": float("inf"), "decode": float("inf")}
        for _ in range(3):
            t0 = now()
            codes = codec.reference_encode(audio)
            t1 = now()
            codec.reference_decode(codes)
            t2 = now()
            best = {"encode": min(best["encode"], t1 - t0), "decode": min(best["decode"], t2 - t1)}
        coded = streams * n / codec.sample_rate
        return {op: round(s / coded, 4) for op, s in best.items()}
    finally:
        torch.set_num_threads(threads)


def ratio(offline: dict[str, float], streaming: dict[str, float]) -> dict[str, float]:
    """Per op: the share of the offline throughput the streaming service reached."""
    return {op: round(offline[op] / streaming[op], 3) for op in streaming if op in offline and streaming[op] > 0}
