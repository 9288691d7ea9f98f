"""Per-call limits, drain on SIGTERM, a caller that does not read, downstream restarts.

All against the in-process gateway with the fakes (real gRPC servers on port 0).
"""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest

from telugu_s2s.gateway import metrics
from telugu_s2s.gateway.config import Config, ConfigError
from telugu_s2s.v1 import conversation_pb2 as pb
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.health import NOT_SERVING, SERVING

from .conftest import LiveCall, audio_messages, config_message, silence
from .fakes import FakeCodec, wait_for

EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


def one_turn(phrase) -> list[pb.ClientMessage]:
    return audio_messages(np.concatenate([silence(300), phrase, silence(700)]))


def sample(metric, **labels) -> float:
    for family in metric.collect():
        for s in family.samples:
            if s.name.endswith(("_total", "_generations", "_calls")) and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


# ---------------------------------------------------------------- config


@pytest.mark.parametrize(
    "kw, needle",
    [
        ({"max_turns_per_minute": 0}, "max_turns_per_minute"),
        ({"max_message_bytes": 10}, "max_message_bytes"),
        ({"write_stall_s": 0}, "write_stall_s"),
        ({"reply_block_max_frames": 1}, "reply_block_max_frames must be >= 2"),
    ],
)
def test_limits_are_validated(kw, needle):
    with pytest.raises(ConfigError, match=needle):
        Config(**kw)


def test_limits_come_from_the_environment():
    cfg = Config.from_env(
        [],
        {
            "TS2S_GATEWAY_MAX_TURNS_PER_MINUTE": "5",
            "TS2S_GATEWAY_MAX_MESSAGE_BYTES": "4096",
            "TS2S_GATEWAY_WRITE_STALL_S": "1.5",
            "TS2S_GATEWAY_MAX_CALL_S": "60",
        },
    )
    assert (cfg.max_turns_per_minute, cfg.max_message_bytes, cfg.write_stall_s, cfg.max_call_s) == (5, 4096, 1.5, 60.0)


# ---------------------------------------------------------------- size limits


async def test_a_message_over_the_size_limit_is_resource_exhausted_and_counted_so(make_stack):
    from .fuzz_strategies import server_codes

    before = server_codes().get("RESOURCE_EXHAUSTED", 0)
    stack = await make_stack(cfg_kw={"max_message_bytes": 4096})
    res = await stack.call([config_message(), pb.ClientMessage(audio=pb.AudioChunk(audio=b"\0" * 8000))])
    assert res.code == EXHAUSTED, (res.code, res.details)
    assert "a message of 8006 bytes is over this gateway's limit of 4096 bytes" in res.details
    assert "10-200 ms" in res.details
    assert server_codes().get("RESOURCE_EXHAUSTED", 0) == before + 1  # the code the caller saw
    await wait_for(lambda: stack.gateway.servicer.active_calls == 0, what="call cleanup")
    ok = await stack.call([config_message(), *audio_messages(silence(100))])
    assert ok.code.name == "OK", ok.details


async def test_turns_per_minute_are_limited(make_stack, telugu_speech):
    stack = await make_stack(cfg_kw={"max_turns_per_minute": 2})
    msgs = [config_message(barge_in=False)]
    for phrase in telugu_speech:  # three turns
        msgs += one_turn(phrase)
    res = await stack.call(msgs)
    assert res.code == EXHAUSTED, (res.code, res.details)
    assert "more than 2 turns in one minute" in res.details
    assert len(res.of("response_started")) <= 2


# ---------------------------------------------------------------- drain


async def test_drain_finishes_the_reply_then_ends_with_unavailable(make_stack, telugu_speech):
    stack = await make_stack()  # drain grace 1 s
    stack.generator.hold = asyncio.Event()
    live = LiveCall(stack.stub)
    await live.send(config_message(), *one_turn(telugu_speech[0]))
    await live.wait("response_audio")
    session_id = live.of("session_started")[0].session_id
    # A health watcher opened before the drain sees NOT_SERVING.
    watch = health_pb2_grpc.HealthStub(stack.channel).Watch(health_pb2.HealthCheckRequest(service=""))
    assert (await watch.read()).status == SERVING
    stopping = asyncio.create_task(stack.gateway.stop())
    assert (await asyncio.wait_for(watch.read(), 5)).status == NOT_SERVING
    # A call started now is refused.
    refused = await stack.call([config_message()])
    assert refused.code == grpc.StatusCode.UNAVAILABLE, refused.details
    # The reply in flight finishes and is stored; then the call ends, naming the session.
    stack.generator.hold.set()
    res = await live.ended(timeout=5)
    assert res.code == grpc.StatusCode.UNAVAILABLE and session_id in res.details, res.details
    done = res.of("response_done")
    assert len(done) == 1 and done[0].turns_in_context == 1
    assert len(stack.context.turns_of(session_id)) == 1
    await stopping
    assert stack.gateway.servicer.active_calls == 0


# ---------------------------------------------------------------- slow caller


async def test_a_caller_that_does_not_read_is_cut_off(make_stack, telugu_speech):
    stack = await make_stack(
        cfg_kw={"write_stall_s": 0.5, "max_reply_s": 120.0},
        gen_kw={"reply_frames": 50 * 120, "frames_per_block": 50},
    )
    call = stack.stub.Converse()
    out48k = pb.AudioFormat(encoding=pb.PCM16, sample_rate_hz=48000)
    for m in [config_message(output_format=out48k), *one_turn(telugu_speech[0])]:
        await call.write(m)
    # Never read: the gateway's writer stalls once gRPC's flow-control window is full.
    await wait_for(lambda: stack.gateway.servicer.active_calls == 0, timeout=30, what="the stalled call to end")
    assert stack.generator.active == 0, "generation was not stopped"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in call:
            pass
    assert err.value.code() in (EXHAUSTED, grpc.StatusCode.CANCELLED), err.value.details()
    if err.value.code() == EXHAUSTED:
        assert "took no message" in err.value.details()
    ok = await stack.call([config_message(), *one_turn(telugu_speech[1])])
    assert ok.code.name == "OK" and ok.of("response_done"), ok.details


# ---------------------------------------------------------------- caller vanishes


async def test_a_vanished_caller_cancels_generation_and_leaks_nothing(stack, telugu_speech):
    stack.generator.hold = asyncio.Event()
    cancelled_before = sample(metrics.GENERATIONS, outcome="cancelled")
    live = LiveCall(stack.stub)
    await live.send(config_message(), *one_turn(telugu_speech[0]))
    await live.wait("response_audio")
    assert stack.generator.active == 1
    live.cancel()
    await wait_for(lambda: stack.gateway.servicer.active_calls == 0, what="call cleanup")
    await wait_for(lambda: stack.generator.active == 0, what="generation cancelled")
    assert stack.generator.cancelled == 1
    assert sample(metrics.GENERATIONS, outcome="cancelled") == cancelled_before + 1
    assert sample(metrics.ACTIVE_GENERATIONS) == 0
    gateway_tasks = [t for t in asyncio.all_tasks() if t.get_name().startswith(("turn-", "call-", "codec-"))]
    assert not gateway_tasks, gateway_tasks


# ---------------------------------------------------------------- downstream restart


async def test_a_restarted_codec_is_used_again_without_a_gateway_restart(make_stack, telugu_speech):
    stack = await make_stack()
    port = stack.codec.port
    await stack.codec.stop()
    assert not await stack.gateway.monitor.check_once()
    down = await stack.call([config_message()])
    assert down.code == grpc.StatusCode.UNAVAILABLE and "codec" in down.details
    await asyncio.sleep(1.5)  # long enough for gRPC's default backoff to have grown
    codec = FakeCodec()
    codec.server, codec.port, codec._health = await _serve_on(port, codec)
    stack.codec = codec  # stopped with the stack
    ready = False
    for _ in range(40):  # the capped reconnect backoff makes this about a second
        if await stack.gateway.monitor.check_once():
            ready = True
            break
        await asyncio.sleep(0.1)
    assert ready, stack.gateway.monitor.status()
    res = await stack.call([config_message(), *one_turn(telugu_speech[0])])
    assert res.code.name == "OK" and res.of("response_done"), res.details


async def _serve_on(port: int, codec: FakeCodec):
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    from telugu_s2s.v1 import codec_pb2_grpc

    server = grpc.aio.server()
    codec_pb2_grpc.add_CodecServicer_to_server(codec, server)
    hs = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(hs, server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    assert bound == port
    await server.start()
    await hs.set("", health_pb2.HealthCheckResponse.SERVING)
    return server, bound, hs
