"""Container health probe: `python -m telugu_s2s.common.healthcheck HOST:PORT [--service NAME]`.

Asks the standard `grpc.health.v1.Health/Check` of a service and exits 0 when it answers
SERVING, 1 otherwise (NOT_SERVING, unreachable, timeout). Used by the Docker HEALTHCHECK of
every gRPC image; Kubernetes uses its native gRPC probes instead.
"""

from __future__ import annotations

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def check(target: str, service: str = "", timeout_s: float = 3.0) -> tuple[bool, str]:
    """Return (serving, detail) for `target` ("host:port")."""
    try:
        with grpc.insecure_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
    except grpc.RpcError as exc:
        code = exc.code() if hasattr(exc, "code") else None
        name = code.name if code is not None else "UNKNOWN"
        return False, f"{target}: health check failed: {name}: {exc.details() if hasattr(exc, 'details') else exc}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return reply.status == health_pb2.HealthCheckResponse.SERVING, f"{target}: {status}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m telugu_s2s.common.healthcheck",
        description="Exit 0 when a gRPC service reports SERVING on grpc.health.v1.",
    )
    parser.add_argument("target", help="host:port of the gRPC service, e.g. localhost:50051")
    parser.add_argument("--service", default="", help="service name to check ('' = whole server)")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds to wait (default 3)")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be > 0")
    ok, detail = check(args.target, args.service, args.timeout)
    print(detail, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
