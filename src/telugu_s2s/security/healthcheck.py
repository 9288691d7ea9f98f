"""Health probe for a gRPC port that serves TLS:
`python -m telugu_s2s.security.healthcheck HOST:PORT --ca-file CA.pem [--server-name NAME]
[--cert-file C --key-file K]`. Exit 0 when grpc.health.v1 answers SERVING, 1 otherwise.

Kubernetes' native gRPC probe speaks plaintext only, so the chart runs this as an exec
probe when the gateway's public port serves TLS. Plaintext ports use
`telugu_s2s.common.healthcheck`.
"""

from __future__ import annotations

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from telugu_s2s.security.tls import ClientTls, TlsConfigError


def check(target: str, tls: ClientTls, service: str = "", timeout_s: float = 3.0) -> tuple[bool, str]:
    try:
        with tls.channel(target) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
            )
    except grpc.RpcError as exc:
        return False, f"{target}: health check failed: {exc.code().name}: {exc.details()}"
    except TlsConfigError as exc:
        return False, f"{target}: {exc}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return reply.status == health_pb2.HealthCheckResponse.SERVING, f"{target}: {status}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m telugu_s2s.security.healthcheck", description=__doc__)
    p.add_argument("target")
    p.add_argument("--ca-file", required=True, help="CA (PEM) that signed the server certificate")
    p.add_argument("--server-name", default="", help="name in the server certificate, if not the target host")
    p.add_argument("--cert-file", default="", help="client certificate (mTLS)")
    p.add_argument("--key-file", default="", help="client key (mTLS)")
    p.add_argument("--service", default="")
    p.add_argument("--timeout", type=float, default=3.0)
    a = p.parse_args(argv)
    try:
        tls = ClientTls(a.ca_file, a.cert_file, a.key_file, a.server_name)
    except TlsConfigError as exc:
        p.error(str(exc))
    ok, detail = check(a.target, tls, a.service, a.timeout)
    print(detail, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
