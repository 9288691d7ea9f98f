"""Health, unary RPCs, formats, codec rates, config, and a three-turn conversation."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from telugu_s2s.common.audio import AudioFormat, Encoding, encode_samples
from telugu_s2s.gateway.config import Config, ConfigError
from telugu_s2s.gateway.servicer import SERVICE_NAME
from telugu_s2s.v1 import conversation_pb2 as pb

from .conftest import audio_messages, config_message, silence, to_rate

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def health_status(stack, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(stack.channel)
    return (await stub.Check(health_pb2.HealthCheckRequest(service=service))).status


@pytest.mark.parametrize("which", ["codec_health", "codec_info", "s2s", "context"])
async def test_health_serving_only_when_every_downstream_is_ready(stack, which):
    assert await health_status(stack) == SERVING
    assert await health_status(stack, SERVICE_NAME) == SERVING
    if which == "codec_health":
        await stack.codec.set_healthy(False)
    elif which == "codec_info":
        stack.codec.fail_info = True
    elif which == "s2s":
        stack.generator.is_ready = False
    else:
        await stack.context.set_healthy(False)
    assert not await stack.gateway.monitor.check_once()
    assert await health_status(stack) == NOT_SERVING
    assert await health_status(stack, SERVICE_NAME) == NOT_SERVING
    # Recovers on the next check.
    await stack.codec.set_healthy(True)
    await stack.context.set_healthy(True)
    stack.codec.fail_info = False
    stack.generator.is_ready = True
    assert await stack.gateway.monitor.check_once()
    assert await health_status(stack) == SERVING


async def test_codec_down_entirely_is_not_serving(stack):
    await stack.codec.stop()
    assert not await stack.gateway.monitor.check_once()
    assert await health_status(stack) == NOT_SERVING
    res = await stack.call([config_message()])
    assert res.code == grpc.StatusCode.UNAVAILABLE and "codec service at 127.0.0.1" in res.details


async def test_list_voices(stack):
    resp = await stack.stub.ListVoices(pb.ListVoicesRequest())
    assert [(v.id, v.gender, v.description) for v in resp.voices] == [
        ("arjun", "male", "male, young"),
        ("ravi", "male", "male, mature"),
        ("priya", "female", "female, young"),
        ("lakshmi", "female", "female, professional"),
    ]


async def test_get_and_delete_session(stack, telugu_speech):
    res = await stack.call([config_message(voice="lakshmi"), *audio_messages(np.concatenate([silence(300), telugu_speech[0], silence(700)]))])
    session_id = res.of("session_started")[0].session_id
    info = await stack.stub.GetSession(pb.GetSessionRequest(session_id=session_id))
    assert info.session_id == session_id and info.voice == "lakshmi" and info.turn_count == 1
    assert info.created_at.seconds > 0 and info.updated_at.seconds >= info.created_at.seconds
    assert (await stack.stub.DeleteSession(pb.DeleteSessionRequest(session_id=session_id))).deleted
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.DeleteSession(pb.DeleteSessionRequest(session_id=session_id))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.GetSession(pb.GetSessionRequest(session_id=session_id))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_unary_bad_id_and_context_down(stack):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.GetSession(pb.GetSessionRequest(session_id="xyz"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "malformed session_id" in err.value.details()
    stack.context.unavailable = True
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.DeleteSession(pb.DeleteSessionRequest(session_id="0" * 32))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE and "context service" in err.value.details()


async def test_tenant_reaches_every_context_call(stack, telugu_speech):
    await stack.call([config_message(), *audio_messages(np.concatenate([silence(300), telugu_speech[0], silence(700)]))])
    methods = {m for m, _ in stack.context.calls}
    assert {"CreateSession", "GetContext", "AppendTurn"} <= methods
    assert {t for _, t in stack.context.calls} == {""}


@pytest.mark.parametrize(
    "codec_rate, frame_rate",
    [(24000, 75.0), (16000, 50.0)],
)
async def test_telephony_mulaw_in_pcm24k_out_with_any_codec_rate(make_stack, telugu_speech, codec_rate, frame_rate):
    stack = await make_stack(codec_kw={"sample_rate": codec_rate, "frame_rate": frame_rate})
    mulaw = AudioFormat(Encoding.MULAW, 8000)
    audio = to_rate(np.concatenate([silence(300), telugu_speech[0], silence(700)]), 8000)
    res = await stack.call(
        [
            config_message(
                input_format=pb.AudioFormat(encoding=pb.MULAW),
                output_format=pb.AudioFormat(encoding=pb.PCM16, sample_rate_hz=24000),
            ),
            *audio_messages(audio, rate=8000, encode=lambda x: encode_samples(x, mulaw)),
        ]
    )
    assert res.code.name == "OK", res.details
    started = res.of("session_started")[0]
    assert started.input_format.encoding == pb.MULAW and started.input_format.sample_rate_hz == 8000
    assert started.output_format.sample_rate_hz == 24000
    done = res.of("response_done")[0]
    expected_ms = 20 * 1000 / frame_rate  # 20 generated frames
    assert abs(done.audio_ms - expected_ms) <= 2
    out = b"".join(a.audio for a in res.of("response_audio"))
    assert abs(len(out) // 2 - expected_ms * 24) <= 48
    # The codec got audio at its own rate (its fake rejects any other).
    req = stack.generator.requests[0]
    speech_frames = len(telugu_speech[0]) / 16000 * frame_rate
    assert speech_frames < req.user_codes.shape[1] < speech_frames + 0.6 * frame_rate


async def test_alaw_out(stack, telugu_speech):
    res = await stack.call(
        [
            config_message(output_format=pb.AudioFormat(encoding=pb.ALAW)),
            *audio_messages(np.concatenate([silence(300), telugu_speech[0], silence(700)])),
        ]
    )
    out = b"".join(a.audio for a in res.of("response_audio"))
    assert abs(len(out) - 0.4 * 8000) <= 8  # one byte per 8 kHz sample


async def test_three_phrases_three_turns_through_the_gateway(stack, telugu_speech):
    parts = [silence(500)]
    for p in telugu_speech:
        parts += [p, silence(1000)]
    res = await stack.call([config_message(barge_in=False), *audio_messages(np.concatenate(parts), chunk_ms=40)])
    assert res.code.name == "OK", res.details
    assert len(res.of("speech_started")) == len(res.of("speech_stopped")) == 3
    dones = res.of("response_done")
    assert [d.turns_in_context for d in dones] == [1, 2, 3]
    assert [r.context_segments.size for r in stack.generator.requests] == [0, 2, 4]


def test_config_from_env_and_flags():
    cfg = Config.from_env(
        ["--port", "6000", "--max-calls", "3"],
        env={"TS2S_GATEWAY_PORT": "5000", "TS2S_GATEWAY_CODEC_TARGET": "codec:1", "TS2S_GATEWAY_IDLE_TIMEOUT_S": "2.5"},
    )
    assert cfg.port == 6000 and cfg.max_calls == 3 and cfg.codec_target == "codec:1" and cfg.idle_timeout_s == 2.5
    assert Config.from_env([], env={}) == Config()
    with pytest.raises(ConfigError, match="TS2S_GATEWAY_MAX_CALLS"):
        Config.from_env([], env={"TS2S_GATEWAY_MAX_CALLS": "many"})
    with pytest.raises(ConfigError, match="max_calls"):
        Config.from_env([], env={"TS2S_GATEWAY_MAX_CALLS": "0"})


def test_a_config_hands_itself_to_a_process_through_its_environment():
    """The local stack builds the gateway's environment from a Config, not from typed names."""
    from telugu_s2s.gateway.config import Config

    cfg = Config(host="127.0.0.1", port=6001, codec_target="codec:9", auth="disabled", idle_timeout_s=2.5,
                 key_default_call_share=0.25)
    env = cfg.to_env()
    assert env["TS2S_GATEWAY_PORT"] == "6001" and "TS2S_GATEWAY_MAX_CALLS" not in env  # defaults left out
    assert Config.from_env([], env=env) == cfg


async def test_the_default_voice_setting_voices_a_session_that_names_none(make_stack, telugu_speech):
    stack = await make_stack(cfg_kw={"default_voice": "arjun"})
    res = await stack.call([config_message(), *audio_messages(np.concatenate([telugu_speech[0], silence(800)]))])
    assert res.code.name == "OK", res.details
    session_id = res.of("session_started")[0].session_id
    assert res.of("response_started")[0].voice == "arjun"
    assert stack.context.sessions[("", session_id)].record.voice == "arjun"
    with pytest.raises(ConfigError, match="default_voice must be one of"):
        Config(default_voice="bob")
