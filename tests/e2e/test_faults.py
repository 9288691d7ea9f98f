"""Faults against the real processes: kill, stop and restart services during calls.

Each test starts a stack of its own (free ports) because it breaks it. Every fault must
end in a defined way (an in-band Error or a status, never a hang), the stack must recover
without a gateway restart, and turns acknowledged with ResponseDone must stay in Redis.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from telugu_s2s.client.caller import CallFailed, CallOptions, converse
from telugu_s2s.client.wav import read_wav_as
from tests.e2e.live import (
    LiveCaller,
    context_turn_ids,
    fault_stack,
    gateway_metrics_url,
    metric,
    rss_bytes,
    triton_metrics_url,
)
from tests.support import faults
from tests.support.health import SERVING, wait_health
from tests.unit.gateway.fuzz_strategies import CLIENT_WRITE_RACE

pytestmark = pytest.mark.e2e

# In-band error code of a turn whose downstream died, by service.
INBAND = {"codec": "CODEC_UNAVAILABLE", "triton": "S2S_UNAVAILABLE"}
# The requirement: a fault is reported within this long (not a hang).
REPORT_WITHIN_S = 1.0


@pytest.fixture
def make_stack(tmp_path):
    started = []

    def make(codec_replicas: int = 1, triton_replicas: int = 1, **gateway_env: str):
        stack = fault_stack(tmp_path / f"stack{len(started)}", codec_replicas, triton_replicas, **gateway_env)
        started.append(stack)
        return stack

    yield make
    for stack in started:
        stack.stop()


@pytest.fixture(scope="module")
def speech(example_wavs):
    return {name: read_wav_as(path, 16000) for name, path in example_wavs.items()}


def observed(fault: str, **values) -> None:
    """What the fault produced, for docs/reliability.md (shown with `pytest -s`)."""
    print(f"\nOBSERVED {fault}: " + ", ".join(f"{k}={v}" for k, v in values.items()))


def gateway_call_end(stack, session_id: str) -> tuple[grpc.StatusCode | None, str]:
    """The status the gateway logged for the call whose end reason names `session_id` (or
    holds that text) ("call ended")."""
    for line in (stack.cfg.run_dir / "logs" / "gateway.log").read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("msg") == "call ended" and session_id in rec.get("reason", ""):
            return grpc.StatusCode[rec["code"]], rec["reason"]
    return None, ""


def wait_serving(stack, timeout: float = 60.0) -> None:
    wait_health(stack.cfg.gateway_target, SERVING, timeout=timeout)


async def one_turn(stack, utterance, session_id: str = ""):
    """A whole call of one turn (the benchmark's caller); returns its CallResult."""
    return await converse(
        stack.cfg.gateway_target, [utterance], CallOptions(session_id=session_id, realtime=False, turn_timeout_s=60)
    )


async def refused(stack) -> grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(stack.cfg.gateway_target) as ch:
        from telugu_s2s.v1 import conversation_pb2 as pb
        from telugu_s2s.v1 import conversation_pb2_grpc as pb_grpc

        call = pb_grpc.ConversationStub(ch).Converse(
            iter([pb.ClientMessage(config=pb.SessionConfig(input_format=pb.AudioFormat(encoding=pb.PCM16)))]),
            timeout=10,
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for _ in call:
                pass
        return err.value


# ---------------------------------------------------------------- codec / Triton killed mid-turn


@pytest.mark.parametrize("service", ["codec", "triton"])
async def test_downstream_killed_mid_reply(make_stack, speech, service):
    # Triton without preemptive replies: a held reply's generation starts before the turn ends
    # and may be complete (its responses waiting in the client) before its audio plays, so
    # killing Triton "mid-reply" would find nothing to break. The codec case keeps them on: a
    # held reply decodes only its first 400 ms ahead, so its Decode stream is still running.
    env = {"TS2S_GATEWAY_PREEMPT_AT": "0"} if service == "triton" else {}
    stack = await asyncio.to_thread(make_stack, **env)
    async with LiveCaller(stack.cfg.gateway_target) as caller:
        # One acknowledged turn first.
        caller.say(speech["namaskaram"])
        done = await caller.wait("response_done")
        session_id = caller.of("session_started")[0].session_id
        acked = done[0].turn_id
        # The next reply is playing: kill the service under it.
        caller.say(speech["naa_peru_ramu"])
        turn2 = (await caller.wait("response_started", 2))[1].turn_id
        await caller.wait_until(
            lambda: any(a.turn_id == turn2 for a in caller.of("response_audio")), what="reply audio of turn 2"
        )
        assert len(caller.of("response_done")) == 1, "turn 2's reply ended before the fault"
        killed_at = time.monotonic()
        await asyncio.to_thread(faults.kill, stack, service)
        await caller.wait_until(
            lambda: caller.first("error", killed_at) is not None or caller.ended_at is not None,
            timeout=10, what=f"the {service} failure to be reported",
        )
        err = caller.first("error", killed_at)
        if err is not None:  # in-band: the call goes on
            assert err.msg.error.code == INBAND[service], err.msg.error
            assert err.t - killed_at < REPORT_WITHIN_S
            await caller.wait("response_done", 2, timeout=10)
            observed(f"{service} killed", inband=err.msg.error.code, after_ms=round(1000 * (err.t - killed_at)))
        else:
            assert caller.code == grpc.StatusCode.UNAVAILABLE and caller.ended_at - killed_at < REPORT_WITHIN_S
            observed(f"{service} killed", status=caller.code.name, after_ms=round(1000 * (caller.ended_at - killed_at)))

        # While it is down, new calls are refused, naming it (the health monitor noticed).
        wait_health(stack.cfg.gateway_target, health_pb2.HealthCheckResponse.NOT_SERVING, timeout=10)
        err = await refused(stack)
        assert err.code() == grpc.StatusCode.UNAVAILABLE
        assert ("codec" if service == "codec" else "triton") in err.details().lower(), err.details()

        # Back up: the same gateway serves again; even the open call takes a new turn.
        gateway_pid = stack.pid("gateway")
        t_start = time.monotonic()
        await asyncio.to_thread(faults.start, stack, service)
        t_up = time.monotonic()
        await asyncio.to_thread(wait_serving, stack)
        observed(f"{service} restarted", refused=err.code().name, start_s=round(t_up - t_start, 1),
                 gateway_serving_after_s=round(time.monotonic() - t_up, 2))
        if caller.ended_at is None:
            n_done, t0 = len(caller.of("response_done")), time.monotonic()
            caller.say(speech["naa_peru_emiti"])
            await caller.wait("response_done", n_done + 1)
            assert caller.first("error", t0) is None, caller.first("error", t0)
    again = await one_turn(stack, speech["vatavaranam"], session_id)
    assert again.resumed and len(again.turns) == 1 and not again.turns[0].errors, again.turns[0].errors
    assert stack.pid("gateway") == gateway_pid, "the gateway was restarted"
    assert acked in context_turn_ids(stack, session_id)


# ---------------------------------------------------------------- a codec replica dies


async def test_a_codec_replica_killed_mid_call_moves_its_share_to_the_other(make_stack, speech):
    """Two codec replicas behind the gateway (round_robin): kill one while a reply plays. The
    call sees at most one turn's in-band error, its next turns and new calls go to the
    survivor, the gateway stays SERVING, and nothing hangs."""
    stack = await asyncio.to_thread(make_stack, 2)
    assert stack.cfg.codec_target.startswith("ipv4:") and stack.pid("codec-2") is not None
    async with LiveCaller(stack.cfg.gateway_target) as caller:
        caller.say(speech["namaskaram"])
        await caller.wait("response_done")
        caller.say(speech["naa_peru_ramu"])
        turn2 = (await caller.wait("response_started", 2))[1].turn_id
        await caller.wait_until(
            lambda: any(a.turn_id == turn2 for a in caller.of("response_audio")), what="reply audio of turn 2"
        )
        # Both replicas have worked for this one call: its streams were spread, not pinned.
        for _, _, port in stack.cfg.codec_ports():
            assert metric(f"http://{stack.cfg.host}:{port}/metrics", "telugu_s2s_codec_frames_total") > 0, port
        killed_at = time.monotonic()
        await asyncio.to_thread(faults.kill, stack, "codec-2")
        await caller.wait("response_done", 2, timeout=15)
        errors = [r.msg.error for r in caller.received if r.kind == "error" and r.t >= killed_at]
        assert len(errors) <= 1 and all(e.code == INBAND["codec"] for e in errors), errors
        observed("codec replica killed", inband_errors=len(errors))
        # The call goes on: every later turn is answered without an error.
        for n, name in enumerate(("naa_peru_emiti", "vatavaranam"), start=3):
            t0 = time.monotonic()
            caller.say(speech[name])
            await caller.wait("response_done", n, timeout=30)
            assert caller.first("error", t0) is None, caller.first("error", t0)
        assert caller.ended_at is None
    wait_health(stack.cfg.gateway_target, SERVING, timeout=5)
    for name in ("namaskaram", "vatavaranam"):  # new calls: served by the survivor
        result = await one_turn(stack, speech[name])
        assert len(result.turns) == 1 and not result.turns[0].errors, result.turns[0].errors


# ---------------------------------------------------------------- a Triton replica dies


async def test_a_triton_replica_killed_mid_call_moves_its_share_to_the_other(make_stack, speech):
    """Two tritonservers behind the gateway (round_robin per generation call): the turns of one
    call are spread over both; kill one while a reply plays. The call sees at most one turn's
    in-band error, its next turns and new calls are answered by the survivor, the gateway
    stays SERVING, and nothing hangs."""
    stack = await asyncio.to_thread(make_stack, triton_replicas=2)
    assert stack.cfg.triton_target.startswith("ipv4:") and stack.pid("triton-2") is not None
    urls = {name: f"http://127.0.0.1:{port}/metrics" for name, _, _, port in stack.cfg.triton_ports()}

    def served(name: str) -> float:
        return metric(urls[name], "nv_inference_request_success_total", model="s2s_transformer")

    names = ("namaskaram", "naa_peru_ramu", "naa_peru_emiti", "vatavaranam")
    async with LiveCaller(stack.cfg.gateway_target) as caller:
        turn = 0
        while turn < 6 and not (served("triton") and served("triton-2")):
            turn += 1
            caller.say(speech[names[turn % len(names)]])
            await caller.wait("response_done", turn, timeout=30)
        assert served("triton") and served("triton-2"), "one call's turns were not spread over both replicas"
        turn += 1
        caller.say(speech["phone_poyindi"])
        # Killed as the reply starts, while its generation may still be running on that replica
        # (which of the two serves this turn is round_robin's choice: either way is checked).
        await caller.wait("response_started", turn, timeout=30)
        killed_at = time.monotonic()
        await asyncio.to_thread(faults.kill, stack, "triton-2")
        await caller.wait("response_done", turn, timeout=15)
        errors = [r.msg.error for r in caller.received if r.kind == "error" and r.t >= killed_at]
        assert len(errors) <= 1 and all(e.code == INBAND["triton"] for e in errors), errors
        observed("triton replica killed", inband_errors=len(errors))
        before = served("triton")
        for name in ("naa_peru_emiti", "vatavaranam"):  # the call goes on, on the survivor
            turn += 1
            t0 = time.monotonic()
            caller.say(speech[name])
            await caller.wait("response_done", turn, timeout=30)
            assert caller.first("error", t0) is None, caller.first("error", t0)
        assert caller.ended_at is None
        assert served("triton") >= before + 2
    wait_health(stack.cfg.gateway_target, SERVING, timeout=5)
    for name in ("namaskaram", "vatavaranam"):  # new calls: answered by the survivor
        result = await one_turn(stack, speech[name])
        assert len(result.turns) == 1 and not result.turns[0].errors, result.turns[0].errors


# ---------------------------------------------------------------- Redis restarted


@pytest.mark.parametrize("hard", [True], ids=["kill-9"])
async def test_redis_restart_loses_no_acknowledged_turn(make_stack, speech, hard):
    stack = await asyncio.to_thread(make_stack)
    first = await one_turn(stack, speech["namaskaram"])
    acked = [t.turn_id for t in first.turns]
    assert acked and all(acked)
    # A crash of redis-server (SIGKILL, AOF with appendfsync always), then a restart.
    await asyncio.to_thread(faults.kill, stack, "redis")
    try:
        down = await converse(stack.cfg.gateway_target, [speech["naa_peru_ramu"]],
                              CallOptions(session_id=first.session_id, realtime=False, turn_timeout_s=20))
    except CallFailed as exc:  # the session cannot be loaded: a clear UNAVAILABLE
        assert exc.code == grpc.StatusCode.UNAVAILABLE and "redis" in exc.details, exc
        down = None
    await asyncio.to_thread(faults.start, stack, "redis")
    await asyncio.to_thread(wait_serving, stack)
    assert context_turn_ids(stack, first.session_id)[: len(acked)] == acked
    # The turn made while Redis was down was either stored or reported as not saved.
    for turn in down.turns if down is not None else []:
        if any(code == "CONTEXT_NOT_SAVED" for code, _ in turn.errors):
            assert turn.turn_id not in context_turn_ids(stack, first.session_id)
    again = await one_turn(stack, speech["naa_peru_emiti"], first.session_id)
    assert again.resumed and again.turns and not again.turns[0].errors, again.turns[0].errors
    observed("redis kill -9 + restart", call_while_down="UNAVAILABLE" if down is None else
             [e for t in down.turns for e, _ in t.errors], acked_kept=len(acked), next_turn_ok=True)
    stored = context_turn_ids(stack, first.session_id)
    assert set(acked) <= set(stored) and again.turns[0].turn_id in stored


# ---------------------------------------------------------------- gateway SIGTERM (drain)


async def test_gateway_sigterm_drains_then_the_session_resumes(make_stack, speech):
    stack = await asyncio.to_thread(make_stack, TS2S_GATEWAY_DRAIN_GRACE_S="30")
    target = stack.cfg.gateway_target
    async with grpc.aio.insecure_channel(target) as health_channel:
        watch = health_pb2_grpc.HealthStub(health_channel).Watch(health_pb2.HealthCheckRequest(service=""))
        assert (await watch.read()).status == SERVING
        async with LiveCaller(target) as caller:
            caller.say(speech["namaskaram"])
            await caller.wait("response_audio")
            session_id = caller.of("session_started")[0].session_id
            assert not caller.of("response_done"), "the reply ended before the drain"
            faults.send_signal(stack, "gateway", signal.SIGTERM)
            sent_at = time.monotonic()
            # Health turns NOT_SERVING.
            assert (await asyncio.wait_for(watch.read(), 5)).status == health_pb2.HealthCheckResponse.NOT_SERVING
            # The Watch stays open: it must not hold the drain (the server stops only after
            # the calls are done, and then gives leftover streams a short grace).
            # New calls are refused.
            assert (await refused(stack)).code() == grpc.StatusCode.UNAVAILABLE
            # The reply in flight finishes, then the call ends naming the session to resume.
            code, details = await caller.ended(timeout=35)
            assert [d.turn_id for d in caller.of("response_done")] == [caller.of("response_started")[0].turn_id]
            assert not caller.of("error"), caller.of("error")
            if (code, details) == CLIENT_WRITE_RACE:
                # This caller wrote silence just after the end; read the gateway's own record.
                code, details = gateway_call_end(stack, session_id)
            assert code == grpc.StatusCode.UNAVAILABLE and session_id in details, (code, details)
            assert caller.ended_at - sent_at < 30
            drained_s = caller.ended_at - sent_at
    exit_code = await asyncio.to_thread(faults.wait_exit, stack, "gateway", 35)
    assert exit_code == 0
    exited_s = time.monotonic() - sent_at
    assert exited_s < 30, "the gateway did not exit within the grace"
    observed("gateway SIGTERM", call_ended_after_s=round(drained_s, 2), status=code.name,
             exit_code=exit_code, exited_after_s=round(exited_s, 2))
    await asyncio.to_thread(faults.start, stack, "gateway")
    await asyncio.to_thread(wait_serving, stack)
    # The client process's channel to this address may still be in gRPC's reconnect backoff
    # from the old gateway: like any client told UNAVAILABLE, retry.
    for attempt in range(20):
        try:
            again = await one_turn(stack, speech["naa_peru_emiti"], session_id)
            break
        except CallFailed as exc:
            assert exc.code == grpc.StatusCode.UNAVAILABLE and attempt < 19, exc
            await asyncio.sleep(0.25)
    assert again.resumed and again.turns_in_context_at_start == 1
    assert again.turns[0].turns_in_context == 2 and not again.turns[0].errors


# ---------------------------------------------------------------- caller vanishes / does not read


async def test_vanished_caller_cancels_generation_and_leaks_nothing(make_stack, speech):
    # Without preemptive replies: a held reply starts generating before the turn ends, and on
    # this machine it has finished by the time its first audio arrives, so there would be no
    # generation left to cancel. (A held reply of a call that ends is cancelled with the call's
    # other tasks, Call.close.)
    stack = await asyncio.to_thread(make_stack, TS2S_GATEWAY_PREEMPT_AT="0")
    g, t = gateway_metrics_url(stack), triton_metrics_url(stack)
    triton_cancelled = metric(t, "telugu_s2s_s2s_generations_total", outcome="cancelled")
    async with LiveCaller(stack.cfg.gateway_target) as caller:
        caller.say(speech["namaskaram"])
        await caller.wait("response_audio")
        assert not caller.of("response_done"), "the reply ended before the caller vanished"
        assert metric(g, "telugu_s2s_gateway_active_generations") == 1
        caller.vanish()
    vanished_at = time.monotonic()
    deadline = time.monotonic() + 10
    while metric(g, "telugu_s2s_gateway_active_calls") != 0 or metric(g, "telugu_s2s_gateway_active_generations") != 0:
        assert time.monotonic() < deadline, "the gateway kept the call or its generation"
        await asyncio.sleep(0.1)
    assert metric(g, "telugu_s2s_gateway_generations_total", outcome="cancelled") == 1
    cleaned_s = time.monotonic() - vanished_at
    # Triton saw the request cancelled (it refreshes its metrics every second or so).
    while (metric(t, "telugu_s2s_s2s_generations_total", outcome="cancelled") < triton_cancelled + 1
           or metric(t, "telugu_s2s_s2s_active_generations") != 0):
        assert time.monotonic() < deadline + 10, "Triton never cancelled the generation"
        await asyncio.sleep(0.5)
    observed("caller vanished", gateway_clean_after_s=round(cleaned_s, 2), triton_cancelled=True)
    ok = await one_turn(stack, speech["naa_peru_ramu"])
    assert ok.turns and not ok.turns[0].errors


async def test_caller_that_does_not_read_is_cut_off_with_bounded_memory(make_stack, speech):
    stack = await asyncio.to_thread(make_stack, TS2S_GATEWAY_WRITE_STALL_S="2")
    g = gateway_metrics_url(stack)
    gateway = stack.pid("gateway")
    rss_before = rss_bytes(gateway)
    peak = rss_before
    # A caller that never reads, with gRPC's default 64 KiB receive window (no BDP growth),
    # asking for 48 kHz audio: a 3 s reply is 288 KB, so the gateway's writes stall.
    async with LiveCaller(
        stack.cfg.gateway_target, output_rate=48000, read=False, channel_options=(("grpc.http2.bdp_probe", 0),)
    ) as caller:
        caller.say(speech["namaskaram"])
        caller.say(speech["naa_peru_ramu"])
        await asyncio.sleep(1)
        t_said = time.monotonic()
        # The gateway ends the call on its side (it cannot know when the caller will read).
        deadline = time.monotonic() + 60
        while metric(g, "telugu_s2s_gateway_active_calls") != 0:
            assert time.monotonic() < deadline, "the gateway kept the call of a caller that does not read"
            peak = max(peak, rss_bytes(gateway))
            await asyncio.sleep(0.2)
        ended_s = time.monotonic() - t_said
        # Reading now, the caller gets what was buffered, then the status.
        code, details = await caller.ended(timeout=30)
        if (code, details) == CLIENT_WRITE_RACE:
            # The caller kept writing silence after the gateway ended the call; the failed write
            # replaced the status on the client side, so read the gateway's own record.
            code, details = gateway_call_end(stack, "took no message")
    assert code in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.CANCELLED), (code, details)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        assert "took no message" in details
    assert metric(g, "telugu_s2s_gateway_active_generations") == 0
    # Buffers are bounded: the gateway grew by far less than the replies it was asked for.
    assert peak - rss_before < 64 * 2**20, (rss_before, peak)
    observed("caller does not read", status=code.name, gateway_ended_call_after_s=round(ended_s, 1),
             gateway_rss_growth_mib=round((peak - rss_before) / 2**20, 1))
    ok = await one_turn(stack, speech["naa_peru_ramu"])
    assert ok.turns and not ok.turns[0].errors
