"""Prometheus metrics of the codec service (prefix telugu_s2s_codec_)."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128)
RTF_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)


class CodecMetrics:
    """All codec metrics; label `op` is "encode" or "decode"."""

    def __init__(self, registry: CollectorRegistry | None = REGISTRY) -> None:
        kw = {"registry": registry}
        self.batch_size = Histogram(
            "telugu_s2s_codec_batch_streams",
            "Streams advanced together in one forward pass",
            ["op"],
            buckets=BATCH_BUCKETS,
            **kw,
        )
        self.batch_compute = Histogram(
            "telugu_s2s_codec_batch_compute_seconds",
            "Model compute time of one batch",
            ["op"],
            buckets=LATENCY_BUCKETS,
            **kw,
        )
        self.compute_cpu = Counter(
            "telugu_s2s_codec_compute_cpu_seconds",
            "CPU time of the worker threads in model compute (time the thread ran, not time it waited)",
            ["op"],
            **kw,
        )
        self.queue_wait = Histogram(
            "telugu_s2s_codec_queue_wait_seconds",
            "Time a request waited for a batch slot",
            ["op"],
            buckets=LATENCY_BUCKETS,
            **kw,
        )
        self.rtf = Histogram(
            "telugu_s2s_codec_real_time_factor",
            "Compute seconds per second of audio, per batch (compute / (audio x streams))",
            ["op"],
            buckets=RTF_BUCKETS,
            **kw,
        )
        self.active_streams = Gauge("telugu_s2s_codec_active_streams", "Open Encode/Decode streams", ["op"], **kw)
        self.frames = Counter("telugu_s2s_codec_frames_total", "Codec frames processed", ["op"], **kw)
        self.audio_seconds = Counter("telugu_s2s_codec_audio_seconds_total", "Seconds of audio processed", ["op"], **kw)
        self.segments = Counter("telugu_s2s_codec_segments_total", "Segments ended", ["op"], **kw)
        self.errors = Counter("telugu_s2s_codec_errors_total", "Streams ended with an error", ["op", "code"], **kw)


_DEFAULT: CodecMetrics | None = None


def default_metrics() -> CodecMetrics:
    """The process-wide metrics on the default registry (created once)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = CodecMetrics()
    return _DEFAULT
