"""API keys, tenant isolation and TLS against the real processes.

A second gateway process, with keys required and TLS on its public port, runs beside the
session stack's (dev-mode) gateway and uses the same codec, Triton and context service
(context on a real redis-server), so sessions it creates are the real ones.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time

import grpc
import numpy as np
import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from telugu_s2s.client.caller import CallFailed, CallOptions, converse
from telugu_s2s.client.wav import read_wav_as
from telugu_s2s.gateway.auth import UNAUTHENTICATED_MSG, create_key
from telugu_s2s.security.tls import ClientTls
from telugu_s2s.v1 import conversation_pb2 as pb
from telugu_s2s.v1 import conversation_pb2_grpc as pb_grpc
from tests.support.certs import CertAuthority
from tests.support.services import start_service

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_serving(tls: ClientTls, target: str, proc, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"secured gateway exited:\n{proc.log_text()[-4000:]}")
        try:
            with tls.channel(target) as ch:
                reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=2)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"secured gateway not SERVING in {timeout} s:\n{proc.log_text()[-4000:]}")


@pytest.fixture(scope="module")
def secured(stack, tmp_path_factory):
    d = tmp_path_factory.mktemp("secured-gateway")
    ca = CertAuthority(d / "pki")
    server = ca.issue("gateway", dns=("localhost",), ips=("127.0.0.1",))
    keys_file = d / "keys.json"
    keys = {
        "acme": create_key(keys_file, "acme")[0],
        "globex": create_key(keys_file, "globex")[0],
        "one": create_key(keys_file, "acme", max_concurrent_calls=1)[0],
        "revokee": create_key(keys_file, "acme")[0],
    }
    cfg = stack.cfg
    port = _free_port()
    proc = start_service(
        "telugu_s2s.gateway",
        port=port,
        wait=False,
        log_path=d / "gateway.log",
        env={
            "TS2S_GATEWAY_HOST": "127.0.0.1",
            "TS2S_GATEWAY_PORT": str(port),
            "TS2S_GATEWAY_METRICS_PORT": "0",
            "TS2S_GATEWAY_CODEC_TARGET": f"{cfg.host}:{cfg.codec_port}",
            "TS2S_GATEWAY_TRITON_TARGET": f"127.0.0.1:{cfg.triton_grpc_port}",
            "TS2S_GATEWAY_CONTEXT_TARGET": f"{cfg.host}:{cfg.context_port}",
            "TS2S_GATEWAY_AUTH": "required",
            "TS2S_GATEWAY_API_KEYS_FILE": str(keys_file),
            "TS2S_GATEWAY_TLS_CERT_FILE": str(server.cert),
            "TS2S_GATEWAY_TLS_KEY_FILE": str(server.key),
        },
    )
    tls = ClientTls(str(ca.ca_file))
    target = f"localhost:{port}"
    try:
        _wait_serving(tls, target, proc)
        yield {"proc": proc, "target": target, "tls": tls, "keys": keys, "ca": str(ca.ca_file), "keys_file": keys_file}
    finally:
        assert proc.stop() == 0


def md(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


def _talk(secured, wav, key: str, **kw):
    opts = CallOptions(realtime=False, metadata=md(key), tls_ca_file=secured["ca"], **kw)
    return asyncio.run(converse(secured["target"], [read_wav_as(wav, 16000)], opts))


def _unary(secured, method: str, request, key: str | None):
    with secured["tls"].channel(secured["target"]) as ch:
        stub = pb_grpc.ConversationStub(ch)
        try:
            return getattr(stub, method)(request, timeout=10, metadata=md(key) if key else None), grpc.StatusCode.OK
        except grpc.RpcError as exc:
            return exc.details(), exc.code()


def test_keys_are_required_and_checked(secured):
    keys = secured["keys"]
    bad = keys["acme"][:-3] + ("xyz" if not keys["acme"].endswith("xyz") else "abc")
    for key in (None, "not-a-key", bad):
        details, code = _unary(secured, "ListVoices", pb.ListVoicesRequest(), key)
        assert (code, details) == (grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MSG)
    reply, code = _unary(secured, "ListVoices", pb.ListVoicesRequest(), keys["acme"])
    assert code == grpc.StatusCode.OK and len(reply.voices) == 4


def test_plaintext_clients_cannot_reach_the_tls_port(secured):
    with grpc.insecure_channel(secured["target"]) as ch:
        with pytest.raises(grpc.RpcError) as err:
            pb_grpc.ConversationStub(ch).ListVoices(pb.ListVoicesRequest(), timeout=5, metadata=md(secured["keys"]["acme"]))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_tenant_isolation_against_the_real_context_service(secured, stack, example_wavs):
    keys = secured["keys"]
    call = _talk(secured, example_wavs["namaskaram"], keys["acme"], voice="priya")
    assert call.session_id and call.turns, call.errors
    sid = call.session_id
    # Stored in Redis under the key's tenant.
    r = redis.Redis(host="127.0.0.1", port=stack.cfg.redis_port)
    try:
        owners = {r.hget(k, "tenant") for k in r.scan_iter(match=f"*{sid}*") if r.type(k) == b"hash"}
    finally:
        r.close()
    assert owners - {None} == {b"acme"}

    # globex: Get, Delete and resume are NOT_FOUND, exactly like an unknown id.
    for method, req in (("GetSession", pb.GetSessionRequest(session_id=sid)),
                        ("DeleteSession", pb.DeleteSessionRequest(session_id=sid))):
        foreign = _unary(secured, method, req, keys["globex"])
        unknown = _unary(secured, method, type(req)(session_id="0" * 32), keys["globex"])
        assert foreign[1] == unknown[1] == grpc.StatusCode.NOT_FOUND, method
    with pytest.raises(CallFailed) as err:
        _talk(secured, example_wavs["naa_peru_emiti"], keys["globex"], session_id=sid)
    assert err.value.code == grpc.StatusCode.NOT_FOUND

    # acme still has it, with its one turn: nothing of globex's attempt reached it.
    info, code = _unary(secured, "GetSession", pb.GetSessionRequest(session_id=sid), keys["acme"])
    assert code == grpc.StatusCode.OK and info.turn_count >= 1 and info.voice == "priya"
    # The dev-mode gateway (tenant "") cannot see acme's session either.
    with grpc.insecure_channel(stack.cfg.gateway_target) as ch:
        with pytest.raises(grpc.RpcError) as err:
            pb_grpc.ConversationStub(ch).GetSession(pb.GetSessionRequest(session_id=sid), timeout=5)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    reply, code = _unary(secured, "DeleteSession", pb.DeleteSessionRequest(session_id=sid), keys["acme"])
    assert code == grpc.StatusCode.OK and reply.deleted


def test_per_key_concurrent_call_limit(secured):
    key = secured["keys"]["one"]

    async def run():
        async with secured["tls"].aio_channel(secured["target"]) as ch:
            stub = pb_grpc.ConversationStub(ch)
            first = stub.Converse(metadata=md(key))
            await first.write(pb.ClientMessage(config=pb.SessionConfig()))
            assert (await first.read()).HasField("session_started")
            second = stub.Converse(metadata=md(key))
            await second.write(pb.ClientMessage(config=pb.SessionConfig()))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await second.read()
            await first.done_writing()
            while await first.read() is not grpc.aio.EOF:
                pass
            return err.value.code(), await first.code()

    second_code, first_code = asyncio.run(run())
    assert second_code == grpc.StatusCode.RESOURCE_EXHAUSTED and first_code == grpc.StatusCode.OK


def test_gateway_log_is_structured_with_request_ids_and_no_keys(secured, example_wavs):
    keys = secured["keys"]
    call = _talk(secured, example_wavs["vatavaranam"], keys["acme"])
    assert call.turns, call.errors
    _unary(secured, "ListVoices", pb.ListVoicesRequest(), keys["acme"][:-2] + "zz")
    text = secured["proc"].log_text()
    for key in keys.values():
        assert key not in text and key.split(".")[1] not in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    started = [x for x in lines if x.get("msg") == "call started" and x.get("session_id") == call.session_id]
    assert len(started) == 1 and started[0].get("tenant") == "acme"
    rid = started[0]["request_id"]
    turn_lines = [x for x in lines if x.get("msg") == "turn finished" and x.get("request_id") == rid]
    assert [x["turn_id"] for x in turn_lines] == [t.turn_id for t in call.turns]
    assert any(x.get("msg") == "rpc rejected" and x.get("code") == "UNAUTHENTICATED" for x in lines)


def test_a_revoked_key_is_refused_within_seconds_and_ends_its_open_call(secured, example_wavs):
    """`keys revoke` on a running gateway's keys file: no restart, no signal."""
    from telugu_s2s.cli.main import main as cli_main

    key = secured["keys"]["revokee"]
    speech = read_wav_as(example_wavs["namaskaram"], 16000)
    speech = np.concatenate([speech, np.zeros(16000 + (-len(speech) % 320), np.int16)])  # whole 20 ms chunks

    async def run():
        async with secured["tls"].aio_channel(secured["target"]) as ch:
            stub = pb_grpc.ConversationStub(ch)
            call = stub.Converse(metadata=md(key))
            await call.write(pb.ClientMessage(config=pb.SessionConfig()))
            assert (await call.read()).HasField("session_started")
            assert cli_main(["keys", "revoke", "--file", str(secured["keys_file"]), "--id", key[5:17]]) == 0
            t0 = time.monotonic()
            while time.monotonic() - t0 < 10.0:
                try:
                    await stub.ListVoices(pb.ListVoicesRequest(), metadata=md(key), timeout=5)
                except grpc.aio.AioRpcError as exc:
                    assert exc.code() == grpc.StatusCode.UNAUTHENTICATED
                    break
                await asyncio.sleep(0.1)
            refused_after = time.monotonic() - t0
            # The call opened before the revocation ends at its next turn.
            try:
                for i in range(0, len(speech), 320):
                    await call.write(pb.ClientMessage(audio=pb.AudioChunk(audio=speech[i:i + 320].tobytes())))
                await call.done_writing()
            except grpc.aio.AioRpcError:
                pass
            kinds = []
            try:
                while (msg := await call.read()) is not grpc.aio.EOF:
                    kinds.append(msg.WhichOneof("message"))
            except grpc.aio.AioRpcError:
                pass
            return refused_after, await call.code(), await call.details(), kinds

    refused_after, code, details, kinds = asyncio.run(run())
    assert refused_after < 5.0
    if (code, details) == (grpc.StatusCode.INTERNAL, "Internal error from Core"):
        # The gateway ended the call while this client's next write was in flight, and gRPC
        # reports that failed write instead of the status: read the gateway's own account.
        ended = [json.loads(line) for line in secured["proc"].log_text().splitlines()
                 if line.startswith("{") and '"call ended"' in line]
        assert any(e.get("code") == "UNAUTHENTICATED" and "revoked" in e.get("reason", "") for e in ended), ended
    else:
        assert code == grpc.StatusCode.UNAUTHENTICATED and "revoked" in details
    assert "response_started" not in kinds
    # The other keys still work.
    _, ok = _unary(secured, "ListVoices", pb.ListVoicesRequest(), secured["keys"]["acme"])
    assert ok == grpc.StatusCode.OK


def _raw_h2_unary(secured, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> dict[bytes, bytes]:
    """One gRPC request written byte by byte over HTTP/2 (TLS, ALPN h2), as no gRPC library
    would send it; returns the response's headers and trailers."""
    import ssl

    import h2.config
    import h2.connection
    import h2.events

    ctx = ssl.create_default_context(cafile=secured["ca"])
    ctx.set_alpn_protocols(["h2"])
    host, port = secured["target"].rsplit(":", 1)
    out: dict[bytes, bytes] = {}
    with socket.create_connection((host, int(port)), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=host) as sock:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding=None, validate_outbound_headers=False,
            normalize_outbound_headers=False))
        conn.initiate_connection()
        conn.send_headers(1, [(b":method", b"POST"), (b":scheme", b"https"), (b":path", path.encode()),
                              (b":authority", host.encode()), (b"content-type", b"application/grpc"),
                              (b"te", b"trailers"), *headers])
        conn.send_data(1, b"\x00" + len(body).to_bytes(4, "big") + body, end_stream=True)
        sock.sendall(conn.data_to_send())
        ended = False
        while not ended:
            data = sock.recv(65535)
            if not data:
                break
            for ev in conn.receive_data(data):
                if isinstance(ev, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                    out.update(dict(ev.headers))
                ended = ended or isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset))
            sock.sendall(conn.data_to_send())
    return out


def test_a_key_with_raw_non_utf8_bytes_is_refused_and_never_logged(secured):
    """gRPC libraries refuse to send such metadata; a raw HTTP/2 client can. The gateway's
    gRPC core passes the bytes up, the key check refuses them, and neither the Python logs
    nor the C core's own output (both in the process log) hold the key or its tail."""
    key = secured["keys"]["acme"]
    tail = key.split(".")[1]
    mangled = f"Bearer {key[:20]}".encode() + b"\xff\xfe" + key[20:].encode()
    for value in (mangled, b"Bearer \xc3\x28" + key.encode()):
        resp = _raw_h2_unary(secured, "/telugu_s2s.v1.Conversation/ListVoices", [(b"authorization", value)],
                             pb.ListVoicesRequest().SerializeToString())
        assert resp.get(b"grpc-status") == str(grpc.StatusCode.UNAUTHENTICATED.value[0]).encode(), resp
    reply, code = _unary(secured, "ListVoices", pb.ListVoicesRequest(), key)
    assert code == grpc.StatusCode.OK  # the gateway is fine, and the real key still works
    text = secured["proc"].log_text()
    assert key not in text and tail not in text and tail[-16:] not in text
    assert "rpc rejected" in text
