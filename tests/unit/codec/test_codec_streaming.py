"""Chunked streaming encode/decode equals whole-signal encode/decode."""

from __future__ import annotations

import pytest
import torch

from telugu_s2s.codec.streaming import StreamingCodec, StreamingError

CHUNKS_MS = (10, 20, 37, 1000)


def _signal(codec: StreamingCodec, n_frames: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n_frames * codec.hop) / codec.sample_rate
    tone = 0.3 * torch.sin(2 * torch.pi * 220 * t) * torch.sin(2 * torch.pi * 3 * t)
    return (tone + 0.05 * torch.randn(t.shape, generator=g)).view(1, -1)


def _encode_chunked(codec: StreamingCodec, x: torch.Tensor, chunk: int) -> torch.Tensor:
    state = codec.new_encoder_state()
    buf = torch.zeros(1, 0)
    out = []
    for i in range(0, x.shape[1], chunk):
        buf = torch.cat([buf, x[:, i : i + chunk]], dim=1)
        n = buf.shape[1] // codec.hop
        if n:  # a frame is emitted as soon as its samples are complete
            out.append(codec.encode_batch(buf[:, : n * codec.hop], [state]))
            buf = buf[:, n * codec.hop :]
    assert buf.shape[1] == 0
    return torch.cat(out, dim=-1)


def _decode_chunked(codec: StreamingCodec, codes: torch.Tensor, frames: int) -> torch.Tensor:
    state = codec.new_decoder_state()
    return torch.cat(
        [codec.decode_batch(codes[..., i : i + frames], [state]) for i in range(0, codes.shape[-1], frames)],
        dim=-1,
    )


def _check_equality(codec: StreamingCodec, n_frames: int, chunks_ms=CHUNKS_MS) -> None:
    x = _signal(codec, n_frames)
    ref_codes = codec.reference_encode(x)
    assert ref_codes.shape == (1, codec.n_codebooks, n_frames)
    ref_audio = codec.reference_decode(ref_codes)
    for ms in chunks_ms:
        chunk = codec.sample_rate * ms // 1000
        codes = _encode_chunked(codec, x, chunk)
        assert torch.equal(codes, ref_codes), f"{ms} ms chunks: codes differ from whole-signal encode"
        frames = max(1, round(ms / 1000 * codec.frame_rate))
        audio = _decode_chunked(codec, ref_codes, frames)
        assert audio.shape == ref_audio.shape
        # Exact up to float summation order (overlap-add of transposed convs, GEMM blocking).
        torch.testing.assert_close(audio, ref_audio, rtol=0, atol=1e-5)


def test_tiny_constant_pad_chunked_equals_whole(tiny_loaded):
    _check_equality(StreamingCodec(tiny_loaded, 0.6), n_frames=60)


def test_harmonic_decoder_chunked_equals_whole(tiny_harmonic_loaded):
    """The oscillator's phase and the noise table's row travel in the state: any chunking of a
    stream gives the whole-signal audio."""
    _check_equality(StreamingCodec(tiny_harmonic_loaded, 0.6), n_frames=120)


def test_harmonic_decoder_batched_streams_equal_single_streams(tiny_harmonic_loaded):
    codec = StreamingCodec(tiny_harmonic_loaded, 0.6)
    codes = [codec.reference_encode(_signal(codec, 30, seed=k)) for k in range(3)]
    states = [codec.new_decoder_state() for _ in codes]
    batched = torch.cat([codec.decode_batch(torch.cat([c[..., i : i + 4] for c in codes]), states) for i in range(0, 30, 4)], -1)
    for k, c in enumerate(codes):
        torch.testing.assert_close(batched[k : k + 1], codec.reference_decode(c), rtol=0, atol=1e-5)


def test_tiny_reflect_pad_chunked_equals_zero_left_reference(tiny_reflect_loaded):
    _check_equality(StreamingCodec(tiny_reflect_loaded, 0.6), n_frames=60)


def test_default_arch_chunked_equals_whole(default_loaded):
    codec = StreamingCodec(default_loaded, 1.5)
    assert (codec.sample_rate, codec.hop, codec.n_codebooks) == (24000, 320, 2)
    _check_equality(codec, n_frames=40, chunks_ms=(37, 1000))


def test_batched_streams_equal_single_streams(tiny_loaded):
    codec = StreamingCodec(tiny_loaded, 0.6)
    xs = [_signal(codec, 12, seed=s) for s in range(3)]
    singles = [_encode_chunked(codec, x, codec.hop * 3) for x in xs]
    states = [codec.new_encoder_state() for _ in xs]
    batched = [codec.encode_batch(torch.cat([x[:, i : i + codec.hop * 2] for x in xs]), states)
               for i in range(0, xs[0].shape[1], codec.hop * 2)]
    got = torch.cat(batched, dim=-1)
    for k in range(3):
        assert torch.equal(got[k : k + 1], singles[k])
    dstates = [codec.new_decoder_state() for _ in xs]
    audio = codec.decode_batch(torch.cat(singles), dstates)
    for k in range(3):
        torch.testing.assert_close(audio[k : k + 1], codec.reference_decode(singles[k]), rtol=0, atol=1e-5)


def test_reflect_reference_differs_only_near_segment_start(tiny_reflect_loaded):
    """The documented bound for pad_mode=reflect: zero-left streaming vs the reflect model."""
    codec = StreamingCodec(tiny_reflect_loaded, 0.6)
    x = _signal(codec, 40)
    model = codec.loaded.model
    from telugu_s2s.codec.streaming import zero_left_padding_reference

    with torch.inference_mode():
        emb_reflect = model.encoder(x.view(1, 1, -1))
        emb_zero = zero_left_padding_reference(model, codec.arch).encoder(x.view(1, 1, -1))
    diff = (emb_reflect - emb_zero).abs().amax(dim=1)[0]  # per frame
    scale = emb_reflect.abs().max()
    assert diff[:8].max() > 0  # the start does differ
    assert diff[20:].max() <= 1e-3 * scale  # and the difference dies out


def test_non_causal_model_is_refused():
    import dataclasses

    from telugu_s2s.codec.checkpoint import CodecArch, random_weights

    loaded = random_weights(dataclasses.replace(CodecArch(n_filters=2, dimension=8, lstm=0), causal=False))
    with pytest.raises(StreamingError):
        StreamingCodec(loaded, 1.5)


def test_bandwidth_too_high_is_refused(tiny_loaded):
    with pytest.raises(ValueError, match="codebooks"):
        StreamingCodec(tiny_loaded, 100.0)
