"""TLS on the gateway's public port and mTLS between the gateway and the context service,
with certificates made in the test. Real gRPC servers in-process."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from telugu_s2s.context.config import Config as ContextConfig
from telugu_s2s.context.config import ConfigError as ContextConfigError
from telugu_s2s.context.server import start as start_context
from telugu_s2s.gateway.config import Config as GatewayConfig
from telugu_s2s.gateway.config import ConfigError
from telugu_s2s.gateway.server import Gateway
from telugu_s2s.security.tls import ClientTls, ServerTls, TlsConfigError
from telugu_s2s.v1 import context_pb2, context_pb2_grpc
from telugu_s2s.v1 import conversation_pb2 as pb
from telugu_s2s.v1 import conversation_pb2_grpc
from tests.support.certs import CertAuthority
from tests.unit.gateway.fakes import FakeCodec, FakeGenerator, FakeS2SUnavailable


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = CertAuthority(d / "ca")
    other = CertAuthority(d / "other", name="other-ca")
    return {
        "ca": ca,
        "server": ca.issue("server"),
        "client": ca.issue("gateway-client", dns=(), ips=(), client=True),
        "rogue_client": other.issue("rogue", dns=(), ips=(), client=True),
        "other_ca": other,
    }


async def _health(channel: grpc.aio.Channel) -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
    return reply.status


@pytest.fixture
async def mtls_context(pki):
    tls = ServerTls(str(pki["server"].cert), str(pki["server"].key), str(pki["ca"].ca_file))
    running = await start_context(ContextConfig(host="127.0.0.1", port=0, metrics_port=0, server_tls=tls), metrics=False)
    yield running
    await running.stop()


async def test_context_mtls_accepts_only_clients_with_a_certificate_from_its_ca(mtls_context, pki):
    target = f"127.0.0.1:{mtls_context.port}"
    good = ClientTls(str(pki["ca"].ca_file), str(pki["client"].cert), str(pki["client"].key))
    async with good.aio_channel(target) as ch:
        assert await _health(ch) == health_pb2.HealthCheckResponse.SERVING
        stub = context_pb2_grpc.ContextStoreStub(ch)
        rec = await stub.CreateSession(context_pb2.CreateSessionRequest(voice="priya", tenant="acme"), timeout=3)
        assert rec.tenant == "acme"
    refused = {
        "plaintext": ClientTls(),
        "no client certificate": ClientTls(str(pki["ca"].ca_file)),
        "certificate from another CA": ClientTls(
            str(pki["ca"].ca_file), str(pki["rogue_client"].cert), str(pki["rogue_client"].key)
        ),
        "server not trusted": ClientTls(str(pki["other_ca"].ca_file), str(pki["client"].cert), str(pki["client"].key)),
    }
    for why, tls in refused.items():
        async with tls.aio_channel(target) as ch:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await _health(ch)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE, why


async def test_gateway_public_tls_and_mtls_to_context(mtls_context, pki, tmp_path):
    codec = await FakeCodec.start()
    generator = FakeGenerator(n_codebooks=codec.n_codebooks)
    ctx_target = f"localhost:{mtls_context.port}"
    cfg = GatewayConfig(
        host="127.0.0.1", port=0, metrics_port=0, codec_target=codec.target, context_target=ctx_target,
        triton_target="fake-triton:0", drain_grace_s=1.0, auth="disabled",
        tls_cert_file=str(pki["server"].cert), tls_key_file=str(pki["server"].key),
        context_tls_ca_file=str(pki["ca"].ca_file),
        context_tls_cert_file=str(pki["client"].cert), context_tls_key_file=str(pki["client"].key),
    )
    gateway = Gateway(cfg, generator, (FakeS2SUnavailable,))
    port = await gateway.start(monitor=False)
    try:
        # The context service (mTLS) answered the readiness check.
        assert gateway.monitor.ready, gateway.monitor.status()
        tls = ClientTls(str(pki["ca"].ca_file), server_name="localhost")
        async with tls.aio_channel(f"127.0.0.1:{port}") as ch:
            stub = conversation_pb2_grpc.ConversationStub(ch)
            voices = await stub.ListVoices(pb.ListVoicesRequest(), timeout=3)
            assert len(voices.voices) == 4
            call = stub.Converse()
            await call.write(pb.ClientMessage(config=pb.SessionConfig(voice="arjun")))
            first = await call.read()
            assert first.session_started.session_id  # created in the context service over mTLS
            await call.done_writing()
            while await call.read() is not grpc.aio.EOF:
                pass
            assert await call.code() == grpc.StatusCode.OK
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as plain:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await conversation_pb2_grpc.ConversationStub(plain).ListVoices(pb.ListVoicesRequest(), timeout=3)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await gateway.stop()
        await codec.stop()


async def test_gateway_without_a_client_certificate_sees_context_unavailable(mtls_context, pki):
    codec = await FakeCodec.start()
    cfg = GatewayConfig(
        host="127.0.0.1", port=0, metrics_port=0, codec_target=codec.target,
        context_target=f"localhost:{mtls_context.port}", triton_target="fake-triton:0",
        drain_grace_s=1.0, auth="disabled", context_tls_ca_file=str(pki["ca"].ca_file),
    )
    gateway = Gateway(cfg, FakeGenerator(n_codebooks=codec.n_codebooks), (FakeS2SUnavailable,))
    await gateway.start(monitor=False)
    try:
        assert not gateway.monitor.ready
        assert "context" in str(gateway.monitor.status())
    finally:
        await gateway.stop()
        await codec.stop()


def test_incomplete_tls_settings_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="TS2S_GATEWAY_TLS_CERT_FILE and TS2S_GATEWAY_TLS_KEY_FILE"):
        GatewayConfig.from_env([], env={"TS2S_GATEWAY_TLS_CERT_FILE": "/x.crt"})
    with pytest.raises(ConfigError, match="TS2S_GATEWAY_CODEC_TLS_CA_FILE"):
        GatewayConfig.from_env([], env={"TS2S_GATEWAY_CODEC_TLS_CERT_FILE": "a", "TS2S_GATEWAY_CODEC_TLS_KEY_FILE": "b"})
    with pytest.raises(ConfigError, match="auth must be"):
        GatewayConfig.from_env([], env={"TS2S_GATEWAY_AUTH": "off"})
    with pytest.raises(ContextConfigError, match="TS2S_CONTEXT_TLS_CLIENT_CA_FILE"):
        ContextConfig.from_env([], env={"TS2S_CONTEXT_TLS_CLIENT_CA_FILE": "/ca.crt"})
    with pytest.raises(TlsConfigError, match="TS2S_X_TLS_CERT_FILE=.*cannot read"):
        ServerTls(str(tmp_path / "no.crt"), str(tmp_path / "no.key"), prefix="TS2S_X_").credentials()


def test_env_names():
    cfg = GatewayConfig.from_env(
        [],
        env={
            "TS2S_GATEWAY_AUTH": "disabled",
            "TS2S_GATEWAY_API_KEYS_FILE": "/secrets/keys.json",
            "TS2S_GATEWAY_TLS_CERT_FILE": "/tls/tls.crt",
            "TS2S_GATEWAY_TLS_KEY_FILE": "/tls/tls.key",
            "TS2S_GATEWAY_CONTEXT_TLS_CA_FILE": "/mtls/ca.crt",
            "TS2S_GATEWAY_CONTEXT_TLS_SERVER_NAME": "context.internal",
        },
    )
    assert cfg.auth == "disabled" and cfg.api_keys_file == "/secrets/keys.json"
    assert cfg.server_tls().enabled and not cfg.server_tls().mutual
    assert cfg.client_tls("context").server_name == "context.internal" and not cfg.client_tls("codec").enabled
    assert GatewayConfig.from_env([], env={}).auth == "required"
