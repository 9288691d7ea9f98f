"""Streaming against offline codec throughput, measured in one benchmark run.

Streaming: the codec service's own counters, read from its Prometheus endpoint(s) before and
after a benchmark level: model compute seconds (`telugu_s2s_codec_batch_compute_seconds_sum`)
per second of audio coded (`telugu_s2s_codec_audio_seconds_total`), per op. Offline: the same
checkpoint in this process, one torch thread, `OFFLINE_STREAMS` clips of `OFFLINE_SECONDS`
encoded and decoded whole, in one batch. The ratio is offline compute per audio second over
streaming compute per audio second: the share of the offline throughput the service reaches.
"""

from __future__ import annotations

import re
import time
import urllib.request
from pathlib import Path

OFFLINE_STREAMS = 16
OFFLINE_SECONDS = 2.0
_COMPUTE = "telugu_s2s_codec_batch_compute_seconds_sum"
_AUDIO = "telugu_s2s_codec_audio_seconds_total"
_LINE = re.compile(r'^(\w+)\{[^}]*op="(\w+)"[^}]*\}\s+([0-9.eE+-]+)$')

Counters = dict[str, tuple[float, float]]  # op -> (compute seconds, audio seconds)


def parse_counters(text: str) -> Counters:
    """The codec's compute and audio seconds per op, from Prometheus text."""
    compute: dict[str, float] = {}
    audio: dict[str, float] = {}
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if not m:
            continue
        name, op, value = m.group(1), m.group(2), float(m.group(3))
        if name == _COMPUTE:
            compute[op] = compute.get(op, 0.0) + value
        elif name == _AUDIO:
            audio[op] = audio.get(op, 0.0) + value
    return {op: (compute.get(op, 0.0), audio.get(op, 0.0)) for op in sorted(set(compute) | set(audio))}


def scrape(urls: list[str], timeout_s: float = 2.0) -> Counters | None:
    """Summed over the replicas' endpoints; None when any cannot be read."""
    total: dict[str, tuple[float, float]] = {}
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as resp:
                counters = parse_counters(resp.read().decode())
        except (OSError, ValueError):  # unreachable, or not a URL at all
            return None
        for op, (c, a) in counters.items():
            pc, pa = total.get(op, (0.0, 0.0))
            total[op] = (pc + c, pa + a)
    return total


def streaming_rtf(before: Counters, after: Counters) -> dict[str, float]:
    """Compute seconds per audio second between two scrapes, per op that coded audio."""
    out = {}
    for op, (c1, a1) in after.items():
        c0, a0 = before.get(op, (0.0, 0.0))
        if a1 - a0 > 0:
            out[op] = round((c1 - c0) / (a1 - a0), 4)
    return out


def offline_rtf(checkpoint_dir: Path, streams: int = OFFLINE_STREAMS, seconds: float = OFFLINE_SECONDS) -> dict:
    """The checkpoint run whole on `streams` clips at once, one torch thread: compute seconds
    per audio second for encode and decode (the best of three)."""
    import numpy as np
    import torch

    from telugu_s2s.codec.checkpoint import load
    from telugu_s2s.codec.streaming import StreamingCodec

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        codec = StreamingCodec(load(Path(checkpoint_dir)))
        n = int(seconds * codec.sample_rate) // codec.hop * codec.hop
        rng = np.random.default_rng(0)
        audio = torch.from_numpy((0.1 * rng.standard_normal((streams, n))).astype(np.float32))
        best = {"encode": float("inf"), "decode": float("inf")}
        for _ in range(3):
            t0 = time.perf_counter()
            codes = codec.reference_encode(audio)
            t1 = time.perf_counter()
            codec.reference_decode(codes)
            t2 = time.perf_counter()
            best = {"encode": min(best["encode"], t1 - t0), "decode": min(best["decode"], t2 - t1)}
        coded = streams * n / codec.sample_rate
        return {op: round(s / coded, 4) for op, s in best.items()}
    finally:
        torch.set_num_threads(threads)


def ratio(offline: dict[str, float], streaming: dict[str, float]) -> dict[str, float]:
    """Per op: the share of the offline throughput the streaming service reached."""
    return {op: round(offline[op] / streaming[op], 3) for op in streaming if op in offline and streaming[op] > 0}
