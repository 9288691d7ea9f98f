"""The gRPC interceptor: request id, then key, method and limits on every Conversation RPC;
the caller's `Principal` for the servicer."""

from __future__ import annotations

import contextvars
import inspect
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import grpc

from telugu_s2s.common.refusal import refuse
from telugu_s2s.gateway.auth.keys import (
    AUTH_DISABLED,
    AUTH_REQUIRED,
    CONVERSATION_SERVICE,
    AuthError,
    KeyEntry,
    KeysFileError,
)
from telugu_s2s.gateway.auth.limits import Authenticator, Limits
from telugu_s2s.security import logctx

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    key_id: str  # "" in dev mode
    tenant: str  # "" = the single tenant of dev mode
    entry: KeyEntry | None = field(default=None, repr=False, compare=False)  # the key as admitted


DEV_PRINCIPAL = Principal("", "")
_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("ts2s_principal", default=None)


class NoPrincipal(RuntimeError):
    """An RPC asked who its caller is, but the interceptor never admitted it."""


def current_principal() -> Principal:
    """The caller of the RPC being served, as the interceptor admitted it (dev mode: the single
    tenant ""). Fails closed: an RPC the interceptor did not admit has no principal, and asking
    for one is an error, never the dev principal."""
    principal = _principal.get()
    if principal is None:
        raise NoPrincipal("no caller identity for this RPC: the API-key interceptor did not admit it")
    return principal


def bearer_key(metadata: Iterable[tuple[str, object]] | None) -> str | None:
    """The bearer token of the `authorization` metadata, or None."""
    for k, v in metadata or ():
        if k.lower() == "authorization":
            value = v.decode(errors="replace") if isinstance(v, bytes) else str(v)
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


def _method_name(full: str) -> tuple[str, str]:
    """'/pkg.Service/Method' -> ('pkg.Service', 'Method')."""
    _, service, method = full.split("/", 2) if full.count("/") >= 2 else ("", "", full)
    return service, method


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Wraps the Conversation RPCs: request id, then (unless disabled) key, method and limits.

    `authenticator=None` is the explicit local dev mode: every caller is the single tenant "".
    """

    def __init__(self, authenticator: Authenticator | None, on_reject: Callable[[str], None] | None = None) -> None:
        self.authenticator = authenticator
        self.on_reject = on_reject or (lambda code: None)

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        service, method = _method_name(handler_call_details.method)
        if handler is None or service != CONVERSATION_SERVICE:
            return handler  # health, reflection: open for probes
        if handler.request_streaming and handler.response_streaming:
            return handler._replace(stream_stream=self._wrap(handler.stream_stream, method, stream=True, reads=True))
        if handler.request_streaming:
            return handler._replace(stream_unary=self._wrap(handler.stream_unary, method, stream=True, reads=True))
        if handler.response_streaming:
            return handler._replace(unary_stream=self._wrap(handler.unary_stream, method, stream=True))
        return handler._replace(unary_unary=self._wrap(handler.unary_unary, method, stream=False))

    async def _enter(self, context, method: str, stream: bool, reads: bool) -> KeyEntry | None:
        metadata = context.invocation_metadata()
        request_id = logctx.start_request(metadata)
        try:
            await context.send_initial_metadata((("x-request-id", request_id),))
        except Exception:  # noqa: BLE001 - the call may already be gone
            pass
        if self.authenticator is None:
            _principal.set(DEV_PRINCIPAL)  # the explicit dev mode, and only there
            return None
        try:
            entry = await self.authenticator.authenticate(bearer_key(metadata))
            self.authenticator.authorize(entry, method)
            self.authenticator.admit(entry, stream=stream)
        except AuthError as exc:
            self.on_reject(exc.code.name)
            log.info("rpc rejected", extra={"method": method, "code": exc.code.name})
            if reads:
                await refuse(context, exc.code, exc.message)
            await context.abort(exc.code, exc.message)
            raise AssertionError("unreachable") from exc  # pragma: no cover - abort raises
        _principal.set(Principal(entry.id, entry.tenant, entry))
        logctx.set_fields(tenant=entry.tenant, key_id=entry.id)
        return entry

    def _exit(self, entry: KeyEntry | None, stream: bool) -> None:
        if entry is not None and stream and self.authenticator is not None:
            self.authenticator.release(entry)

    def _wrap(self, behavior, method: str, *, stream: bool, reads: bool = False):
        """`stream`: the RPC holds a concurrency slot; `reads`: the caller streams requests."""
        if inspect.isasyncgenfunction(behavior):

            async def gen_wrapper(request, context):
                entry = await self._enter(context, method, stream, reads)
                try:
                    async for item in behavior(request, context):
                        yield item
                finally:
                    self._exit(entry, stream)

            return gen_wrapper

        async def wrapper(request, context):
            entry = await self._enter(context, method, stream, reads)
            try:
                return await behavior(request, context)
            finally:
                self._exit(entry, stream)

        return wrapper


def build_authenticator(mode: str, keys_file: str, defaults: Limits = Limits()) -> Authenticator | None:
    """From the gateway config: None = explicit dev mode (loud WARNING); else the loaded keys."""
    if mode == AUTH_DISABLED:
        log.warning(
            "API key authentication is DISABLED (TS2S_GATEWAY_AUTH=disabled): every caller is "
            "trusted and shares one tenant. Local development only; never expose this port."
        )
        return None
    if mode != AUTH_REQUIRED:
        raise KeysFileError(f"TS2S_GATEWAY_AUTH={mode!r}: use 'required' (default) or 'disabled' (local dev only)")
    if not keys_file:
        raise KeysFileError(
            "API keys are required but TS2S_GATEWAY_API_KEYS_FILE is not set: point it at a keys file "
            "(create one with `telugu-s2s keys create --tenant NAME --file keys.json`), or set "
            "TS2S_GATEWAY_AUTH=disabled for local development"
        )
    auth = Authenticator.from_file(keys_file, defaults=defaults)
    tenants = sorted({e.tenant for e in auth.entries.values()})
    log.info("API keys loaded", extra={"keys": len(auth.entries), "tenants": len(tenants)})
    if not auth.entries:
        log.warning("the API keys file holds no keys: every call will be refused")
    return auth
