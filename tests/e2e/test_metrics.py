"""Every service's /metrics exists and the latency metrics move when a turn happens."""

from __future__ import annotations

import asyncio
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from telugu_s2s.client.caller import CallOptions, converse
from telugu_s2s.client.wav import read_wav_as

pytestmark = pytest.mark.e2e


def scrape(url: str) -> dict[str, float]:
    """Sample name + sorted labels -> value."""
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = s.name + "".join(f"|{k}={v}" for k, v in sorted(s.labels.items()))
            out[key] = s.value
    return out


def total(samples: dict[str, float], name: str, **labels: str) -> float:
    want = [f"{k}={v}" for k, v in labels.items()]
    return sum(v for k, v in samples.items()
               if k.split("|")[0] == name and all(w in k.split("|")[1:] for w in want))


def test_metrics_move_with_a_turn(stack, example_wavs):
    c = stack.cfg
    urls = {
        "gateway": f"http://{c.host}:{c.gateway_metrics_port}/metrics",
        "codec": f"http://{c.host}:{c.codec_metrics_port}/metrics",
        "context": f"http://{c.host}:{c.context_metrics_port}/metrics",
        "triton": f"http://127.0.0.1:{c.triton_metrics_port}/metrics",
    }
    before = {k: scrape(u) for k, u in urls.items()}
    utterance = read_wav_as(example_wavs["namaskaram"], 16000)
    call = asyncio.run(converse(c.gateway_target, [utterance], CallOptions(voice="ravi", realtime=False)))
    assert call.turns and call.turns[0].latency
    after = {k: scrape(u) for k, u in urls.items()}

    def moved(svc: str, name: str, **labels: str) -> float:
        return total(after[svc], name, **labels) - total(before[svc], name, **labels)

    g = "telugu_s2s_gateway_"
    assert moved("gateway", g + "response_latency_seconds_count") == 1
    assert moved("gateway", g + "voice_to_voice_seconds_count") == 1
    assert moved("gateway", g + "turns_total") >= 1
    for stage in ("encode_flush", "context_fetch", "first_frame", "first_decode"):
        assert moved("gateway", g + "stage_seconds_count", stage=stage) == 1, stage
    # The observed latency landed in the histogram (its sum grew by the reported amount).
    grew = moved("gateway", g + "response_latency_seconds_sum")
    assert abs(grew * 1000 - call.turns[0].latency["response_latency_ms"]) < 1.0
    assert "telugu_s2s_gateway_active_calls" in after["gateway"]
    assert moved("codec", "telugu_s2s_codec_frames_total", op="encode") > 0
    assert moved("codec", "telugu_s2s_codec_frames_total", op="decode") > 0
    assert moved("codec", "telugu_s2s_codec_batch_streams_count") > 0
    assert moved("context", "telugu_s2s_context_redis_op_seconds_count") > 0
    # Triton refreshes its counters on its own schedule: give it a few seconds.
    deadline = time.monotonic() + 10
    while moved("triton", "nv_inference_request_success_total", model="s2s_transformer") < 1:
        assert time.monotonic() < deadline, "Triton never counted the generation request"
        time.sleep(0.5)
        after["triton"] = scrape(urls["triton"])
    # Low cardinality: no session id leaks into any label.
    for svc in ("gateway", "codec", "context"):
        assert not any(call.session_id in k for k in after[svc]), svc
