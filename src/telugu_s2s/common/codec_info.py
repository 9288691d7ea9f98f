"""What the codec service says about itself (`Codec.Info`), on both sides of the wire."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from telugu_s2s.v1 import codec_pb2


@dataclass(frozen=True)
class CodecInfo:
    sample_rate_hz: int
    frame_rate_hz: float
    samples_per_frame: int
    n_codebooks: int
    codebook_size: int
    bandwidth_kbps: float
    weights: str
    random_weights: bool

    @property
    def frame_ms(self) -> float:
        return 1000.0 / self.frame_rate_hz

    def to_proto(self) -> codec_pb2.CodecInfo:
        return codec_pb2.CodecInfo(**asdict(self))

    @classmethod
    def from_proto(cls, msg: codec_pb2.CodecInfo) -> CodecInfo:
        return cls(
            sample_rate_hz=int(msg.sample_rate_hz),
            frame_rate_hz=float(msg.frame_rate_hz),
            samples_per_frame=int(msg.samples_per_frame),
            n_codebooks=int(msg.n_codebooks),
            codebook_size=int(msg.codebook_size),
            bandwidth_kbps=float(msg.bandwidth_kbps),
            weights=msg.weights,
            random_weights=bool(msg.random_weights),
        )
