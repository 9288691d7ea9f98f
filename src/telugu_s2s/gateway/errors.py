"""Errors shared by the gateway's modules (no gRPC message types here)."""

from __future__ import annotations

import grpc


class CallError(Exception):
    """Ends a call with a gRPC status and a message that says what to fix."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class DownstreamUnavailable(Exception):
    """A downstream service (codec, context, s2s) cannot be reached or is not ready."""

    def __init__(self, service: str, target: str, detail: str) -> None:
        super().__init__(f"{service} service at {target} is unavailable: {detail}")
        self.service = service
        self.target = target
        self.detail = detail


class DownstreamError(Exception):
    """A downstream service answered with an unexpected error."""

    def __init__(self, service: str, code: grpc.StatusCode | None, detail: str) -> None:
        name = code.name if code is not None else "ERROR"
        super().__init__(f"{service} service failed ({name}): {detail}")
        self.service = service
        self.code = code
        self.detail = detail


class SessionNotFound(LookupError):
    pass


_UNAVAILABLE_CODES = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
}


def translate_rpc_error(exc: grpc.RpcError, service: str, target: str) -> Exception:
    """Map a downstream RpcError to DownstreamUnavailable / SessionNotFound / DownstreamError."""
    code = exc.code() if hasattr(exc, "code") else None
    detail = exc.details() if hasattr(exc, "details") else str(exc)
    if code in _UNAVAILABLE_CODES:
        return DownstreamUnavailable(service, target, detail or (code.name if code else "unreachable"))
    if code == grpc.StatusCode.NOT_FOUND:
        return SessionNotFound(detail or "session not found")
    return DownstreamError(service, code, detail or "")
