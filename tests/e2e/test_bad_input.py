"""Every bad input gets its status from the real gateway, and the gateway stays healthy."""

from __future__ import annotations

import grpc
import pytest

from telugu_s2s.local.procs import grpc_health
from telugu_s2s.v1 import conversation_pb2 as pb
from telugu_s2s.v1 import conversation_pb2_grpc as pb_grpc

pytestmark = pytest.mark.e2e


def pcm_cfg(**kw) -> pb.ClientMessage:
    return pb.ClientMessage(config=pb.SessionConfig(
        input_format=pb.AudioFormat(encoding=pb.PCM16, sample_rate_hz=16000), **kw))


def audio(n_bytes: int) -> pb.ClientMessage:
    return pb.ClientMessage(audio=pb.AudioChunk(audio=b"\x00" * n_bytes))


CASES = {
    "audio before config": ([audio(640)], grpc.StatusCode.INVALID_ARGUMENT, "SessionConfig"),
    "unknown voice": ([pcm_cfg(voice="sita")], grpc.StatusCode.INVALID_ARGUMENT, "priya"),
    "unsupported rate": (
        [pb.ClientMessage(config=pb.SessionConfig(
            input_format=pb.AudioFormat(encoding=pb.PCM16, sample_rate_hz=44100)))],
        grpc.StatusCode.INVALID_ARGUMENT, "44100"),
    "mu-law at 16 kHz": (
        [pb.ClientMessage(config=pb.SessionConfig(
            input_format=pb.AudioFormat(encoding=pb.MULAW, sample_rate_hz=16000)))],
        grpc.StatusCode.INVALID_ARGUMENT, "8000"),
    "odd PCM16 byte count": ([pcm_cfg(), audio(641)], grpc.StatusCode.INVALID_ARGUMENT, "byte"),
    "chunk over 200 ms": ([pcm_cfg(), audio(16000 * 2 * 250 // 1000)], grpc.StatusCode.INVALID_ARGUMENT, "200"),
    "malformed session id": ([pcm_cfg(session_id="not-a-session")], grpc.StatusCode.INVALID_ARGUMENT, "session"),
    "unknown session": ([pcm_cfg(session_id="0" * 32)], grpc.StatusCode.NOT_FOUND, "session"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_gets_a_clear_status(stack, name):
    messages, code, needle = CASES[name]
    with grpc.insecure_channel(stack.cfg.gateway_target) as ch:
        stub = pb_grpc.ConversationStub(ch)
        with pytest.raises(grpc.RpcError) as err:
            for _ in stub.Converse(iter(messages), timeout=15):
                pass
    assert err.value.code() == code, err.value.details()
    assert needle.lower() in (err.value.details() or "").lower()
    assert grpc_health(stack.cfg.gateway_target) == "SERVING"


def test_unary_bad_input(stack):
    with grpc.insecure_channel(stack.cfg.gateway_target) as ch:
        stub = pb_grpc.ConversationStub(ch)
        with pytest.raises(grpc.RpcError) as err:
            stub.GetSession(pb.GetSessionRequest(session_id="xyz"), timeout=5)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as err:
            stub.GetSession(pb.GetSessionRequest(session_id="f" * 32), timeout=5)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        voices = stub.ListVoices(pb.ListVoicesRequest(), timeout=5)
        assert [v.id for v in voices.voices] == ["arjun", "ravi", "priya", "lakshmi"]


def test_talk_with_no_speech_says_so_instead_of_waiting(stack, tmp_path, capsys):
    import time

    import numpy as np

    from telugu_s2s.cli.main import main as cli_main
    from telugu_s2s.client.wav import write_wav

    wav = tmp_path / "silence.wav"
    write_wav(wav, np.zeros(16000 * 2, np.int16), 16000)
    t0 = time.monotonic()
    rc = cli_main(["talk", "--target", stack.cfg.gateway_target, "--input", str(wav),
                   "--output", str(tmp_path / "reply.wav"), "--fast"])
    assert rc == 1
    assert f"no speech detected in {wav}" in capsys.readouterr().err
    assert time.monotonic() - t0 < 30  # the caller's turn timeout is 60 s: it did not wait for it
    assert not (tmp_path / "reply.wav").exists()
