"""TLS for the gRPC servers and channels, from PEM files (a mounted Kubernetes Secret works).

Server side (`ServerTls`), per service prefix `TS2S_<SVC>_`:
    TLS_CERT_FILE, TLS_KEY_FILE   serve TLS with this certificate chain and key
    TLS_CLIENT_CA_FILE            also require client certificates signed by this CA (mTLS)

Client side (`ClientTls`), per downstream prefix, e.g. `TS2S_GATEWAY_CODEC_`:
    TLS_CA_FILE                   verify the server against this CA (TLS on when set)
    TLS_CERT_FILE, TLS_KEY_FILE   present this client certificate (mTLS)
    TLS_SERVER_NAME               expected name in the server certificate, when it differs
                                  from the target's host

Nothing set = plaintext, the default for loopback and for meshes that encrypt themselves.
The files are read once at start; rotate by restarting the pods (a rolling update).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from telugu_s2s.common.service import GrpcService, PortInUseError
from telugu_s2s.common.settings import SettingError

log = logging.getLogger(__name__)


class TlsConfigError(SettingError):
    """A TLS setting is incomplete or a file cannot be read; the message names the variable."""


def _read(path: str, var: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TlsConfigError(f"{var}={path}: cannot read it ({exc.strerror})") from exc


@dataclass(frozen=True)
class ServerTls:
    cert_file: str = ""
    key_file: str = ""
    client_ca_file: str = ""
    prefix: str = ""  # env prefix, for messages

    def __post_init__(self) -> None:
        if bool(self.cert_file) != bool(self.key_file):
            raise TlsConfigError(f"{self.prefix}TLS_CERT_FILE and {self.prefix}TLS_KEY_FILE must be set together")
        if self.client_ca_file and not self.cert_file:
            raise TlsConfigError(
                f"{self.prefix}TLS_CLIENT_CA_FILE (mTLS) needs {self.prefix}TLS_CERT_FILE and {self.prefix}TLS_KEY_FILE"
            )

    @property
    def enabled(self) -> bool:
        return bool(self.cert_file)

    @property
    def mutual(self) -> bool:
        return bool(self.client_ca_file)

    @classmethod
    def from_env(cls, prefix: str, env: Mapping[str, str]) -> ServerTls:
        return cls(
            cert_file=env.get(f"{prefix}TLS_CERT_FILE", ""),
            key_file=env.get(f"{prefix}TLS_KEY_FILE", ""),
            client_ca_file=env.get(f"{prefix}TLS_CLIENT_CA_FILE", ""),
            prefix=prefix,
        )

    def credentials(self) -> grpc.ServerCredentials:
        cert = _read(self.cert_file, f"{self.prefix}TLS_CERT_FILE")
        key = _read(self.key_file, f"{self.prefix}TLS_KEY_FILE")
        ca = _read(self.client_ca_file, f"{self.prefix}TLS_CLIENT_CA_FILE") if self.client_ca_file else None
        return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=ca is not None)

    def describe(self) -> str:
        return "mTLS" if self.mutual else "TLS" if self.enabled else "plaintext"


@dataclass(frozen=True)
class ClientTls:
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    server_name: str = ""
    prefix: str = ""

    def __post_init__(self) -> None:
        if bool(self.cert_file) != bool(self.key_file):
            raise TlsConfigError(f"{self.prefix}TLS_CERT_FILE and {self.prefix}TLS_KEY_FILE must be set together")
        if (self.cert_file or self.server_name) and not self.ca_file:
            raise TlsConfigError(f"{self.prefix}TLS_CA_FILE is needed to use TLS towards this service")

    @property
    def enabled(self) -> bool:
        return bool(self.ca_file)

    @classmethod
    def from_env(cls, prefix: str, env: Mapping[str, str]) -> ClientTls:
        return cls(
            ca_file=env.get(f"{prefix}TLS_CA_FILE", ""),
            cert_file=env.get(f"{prefix}TLS_CERT_FILE", ""),
            key_file=env.get(f"{prefix}TLS_KEY_FILE", ""),
            server_name=env.get(f"{prefix}TLS_SERVER_NAME", ""),
            prefix=prefix,
        )

    def credentials(self) -> grpc.ChannelCredentials:
        ca = _read(self.ca_file, f"{self.prefix}TLS_CA_FILE")
        key = _read(self.key_file, f"{self.prefix}TLS_KEY_FILE") if self.key_file else None
        cert = _read(self.cert_file, f"{self.prefix}TLS_CERT_FILE") if self.cert_file else None
        return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)

    def options(self) -> list[tuple[str, object]]:
        return [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []

    def aio_channel(self, target: str, options: Sequence[tuple[str, object]] = ()) -> grpc.aio.Channel:
        if not self.enabled:
            return grpc.aio.insecure_channel(target, options=list(options))
        return grpc.aio.secure_channel(target, self.credentials(), options=[*options, *self.options()])

    def channel(self, target: str, options: Sequence[tuple[str, object]] = ()) -> grpc.Channel:
        if not self.enabled:
            return grpc.insecure_channel(target, options=list(options))
        return grpc.secure_channel(target, self.credentials(), options=[*options, *self.options()])


class TlsGrpcService(GrpcService):
    """`GrpcService` whose port serves TLS (or mTLS) when `tls` is enabled, else plaintext."""

    def __init__(self, *args, tls: ServerTls | None = None, **kw) -> None:
        super().__init__(*args, **kw)
        self.tls = tls or ServerTls()
        self._credentials = self.tls.credentials() if self.tls.enabled else None  # fail at build time

    async def start(self) -> int:
        if self._credentials is None:
            return await super().start()
        from grpc_health.v1 import health
        from grpc_reflection.v1alpha import reflection

        reflection.enable_server_reflection(
            [*self.service_names, reflection.SERVICE_NAME, health.SERVICE_NAME], self.server
        )
        address = f"{self.host}:{self.port}"
        try:
            bound = self.server.add_secure_port(address, self._credentials)
        except RuntimeError as exc:
            raise PortInUseError(f"{self.name}: cannot listen on {address}: {exc}") from exc
        if bound == 0:
            raise PortInUseError(f"{self.name}: cannot listen on {address} (port in use?)")
        self.bound_port = bound
        await self.server.start()
        log.info("%s listening", self.name, extra={"address": f"{self.host}:{bound}", "tls": self.tls.describe()})
        return bound
