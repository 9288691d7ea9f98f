"""Streaming against offline codec throughput: the counters, the ratio, the offline timing."""

from __future__ import annotations

from pathlib import Path

from telugu_s2s.client import codec_throughput as ct

METRICS = """# HELP telugu_s2s_codec_batch_compute_seconds Model compute time of one batch
telugu_s2s_codec_batch_compute_seconds_bucket{le="0.001",op="encode"} 3.0
telugu_s2s_codec_batch_compute_seconds_sum{op="encode"} 1.5
telugu_s2s_codec_batch_compute_seconds_sum{op="decode"} 0.5
telugu_s2s_codec_audio_seconds_total{op="encode"} 30.0
telugu_s2s_codec_audio_seconds_total{op="decode"} 10.0
telugu_s2s_codec_frames_total{op="encode"} 1875.0
telugu_s2s_codec_compute_cpu_seconds_total{op="encode"} 1.0
telugu_s2s_codec_compute_cpu_seconds_total{op="decode"} 0.25
"""


def test_counters_are_read_per_op_and_the_rate_is_taken_between_two_scrapes() -> None:
    before = ct.parse_counters(METRICS)
    assert before == {
        "decode": {"wall": 0.5, "cpu": 0.25, "audio": 10.0},
        "encode": {"wall": 1.5, "cpu": 1.0, "audio": 30.0},
    }
    after = {"encode": {"wall": 3.5, "cpu": 2.2, "audio": 70.0}, "decode": {"wall": 0.5, "cpu": 0.25, "audio": 10.0}}
    # encode: 2 s of compute for 40 s of audio, 1.2 s of it on a core; decode coded nothing in
    # between: left out
    assert ct.streaming_rtf(before, after) == {"encode": 0.05}
    assert ct.streaming_rtf(before, after, clock="cpu") == {"encode": 0.03}
    # two replicas' endpoints are summed; a codec that has no CPU counter reads 0 there
    assert ct.parse_counters(METRICS.replace("compute_cpu", "other"))["encode"]["cpu"] == 0.0
    # offline 0.02 s per audio second against streaming 0.05: streaming reaches 40 % of it
    assert ct.ratio({"encode": 0.02, "decode": 0.02}, {"encode": 0.05}) == {"encode": 0.4}


def test_an_unreachable_codec_or_a_bad_url_gives_no_figures() -> None:
    assert ct.scrape(["http://127.0.0.1:9/metrics"], timeout_s=0.5) is None
    assert ct.scrape(["not a url"]) is None


def test_the_shipped_codec_is_timed_offline_per_op() -> None:
    for clock in ct.CLOCKS:
        rtf = ct.offline_rtf(Path(__file__).resolve().parents[3] / "models" / "codec", streams=2, seconds=0.5, clock=clock)
        assert set(rtf) == {"encode", "decode"}
        assert all(0 < v < 1 for v in rtf.values())  # faster than real time on any machine that runs the stack
