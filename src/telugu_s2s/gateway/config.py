"""Gateway configuration: one frozen dataclass, built once at the entry point."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from telugu_s2s.common import settings
from telugu_s2s.common.settings import SettingError
from telugu_s2s.common.voices import DEFAULT_VOICE, VOICE_IDS
from telugu_s2s.security.tls import ClientTls, ServerTls

PREFIX = "TS2S_GATEWAY_"
# Frames in the first response of a reply from the S2S model (GenerationParams.frames_per_response).
REPLY_FIRST_BLOCK_FRAMES = 2
ConfigError = SettingError


@dataclass(frozen=True)
class Config:
    host: str = "0.0.0.0"
    port: int = 50051
    metrics_port: int = 9101
    codec_target: str = "localhost:50052"
    triton_target: str = "localhost:8001"
    context_target: str = "localhost:50053"
    # Security (docs/security.md). API keys: "required" (default) or "disabled" (local dev only).
    auth: str = "required"
    api_keys_file: str = ""
    # The keys file is re-read this often when it changed (and on SIGHUP).
    keys_reload_interval_s: float = 2.0
    # A key whose entry sets no limits gets this share of max_calls as its concurrent calls
    # (0 = no default limit) and this many new calls per minute (0 = none).
    key_default_call_share: float = 0.5
    key_default_calls_per_minute: int = 120
    # TLS on the public port (PEM files); client_ca_file also requires client certificates.
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_client_ca_file: str = ""
    # TLS/mTLS towards the codec and context services (ca_file turns it on).
    codec_tls_ca_file: str = ""
    codec_tls_cert_file: str = ""
    codec_tls_key_file: str = ""
    codec_tls_server_name: str = ""
    context_tls_ca_file: str = ""
    context_tls_cert_file: str = ""
    context_tls_key_file: str = ""
    context_tls_server_name: str = ""
    # Concurrent Converse calls per pod; one more gets RESOURCE_EXHAUSTED.
    max_calls: int = 64
    # Seconds in-flight calls get to finish after SIGTERM.
    drain_grace_s: float = 10.0
    # A call with no client message for this long (and no reply playing) ends.
    idle_timeout_s: float = 30.0
    # Hard limit on one call's length.
    max_call_s: float = 3600.0
    # Largest message a caller may send (bytes); bigger ones get RESOURCE_EXHAUSTED. Sized from
    # the largest legal chunk, 200 ms of PCM16 at 48 kHz (19200 bytes), plus room for framing.
    max_message_bytes: int = 20480
    # User turns one call may start per rolling minute; one more ends it with RESOURCE_EXHAUSTED.
    max_turns_per_minute: int = 30
    # A caller that has not taken a reply message for this long (it does not read its
    # stream) ends with RESOURCE_EXHAUSTED; buffers stay bounded meanwhile.
    write_stall_s: float = 10.0
    # Period of the downstream readiness check that drives grpc.health.v1.
    health_interval_s: float = 2.0
    # Timeout of unary downstream calls (context service, codec Info, health).
    downstream_timeout_s: float = 2.0
    # Longest reply generated for one turn.
    max_reply_s: float = 30.0
    # Reply codes arrive from the S2S model 2 frames at a time first (the first audio goes out
    # at once), then in responses that double up to this many frames: fewer, larger messages
    # for Triton, the gateway and the codec's decode steps (docs/benchmarks.md). 2 = every
    # response 2 frames.
    reply_block_max_frames: int = 16
    # While the caller speaks, their audio goes to the codec's Encode stream once at least this
    # much is pending (a speech start, a likely end and the turn's end send at once): fewer,
    # larger encode steps and messages (docs/benchmarks.md). 0 = every chunk as it arrives.
    encode_push_ms: float = 80.0
    # Earlier turns fetched from the context service for each reply.
    context_turns: int = 10
    # The voice of a new session whose SessionConfig names none.
    default_voice: str = DEFAULT_VOICE
    # Reply audio is written at most this far ahead of real-time playback, so barge-in can
    # stop what the caller has not heard yet. (ResponseInterrupted.played_ms counts what was
    # heard, which pacing keeps within this much of what was sent.) 0: no pacing.
    playback_lead_ms: float = 400.0
    # End of turn: the mode a call gets when its SessionConfig does not set one ("turn_model"
    # or "silence"), and the turn model's weights ("" = the copy shipped in the package).
    turn_detection: str = "turn_model"
    turn_model: str = ""
    # Preemptive generation (turn_model mode): once P(finished) reaches this in a silence, the
    # reply is prepared (codes, context, generation, decoding) and held until the turn ends; if
    # the caller goes on it is dropped. 0 = off. Below the presets' end thresholds (0.95-0.99).
    preempt_at: float = 0.5
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        for name in ("port", "metrics_port"):
            value = getattr(self, name)
            if not 0 <= value <= 65535:
                raise ConfigError(f"{name} must be 0..65535, got {value}")
        for name in ("max_calls", "max_turns_per_minute"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.reply_block_max_frames < REPLY_FIRST_BLOCK_FRAMES:
            raise ConfigError(
                f"reply_block_max_frames must be >= {REPLY_FIRST_BLOCK_FRAMES}, got {self.reply_block_max_frames}"
            )
        if self.max_message_bytes < 1024:
            raise ConfigError(f"max_message_bytes must be >= 1024, got {self.max_message_bytes}")
        for name in (
            "drain_grace_s",
            "idle_timeout_s",
            "max_call_s",
            "health_interval_s",
            "downstream_timeout_s",
            "max_reply_s",
            "write_stall_s",
            "keys_reload_interval_s",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.key_default_call_share <= 1:
            raise ConfigError(f"key_default_call_share must be 0..1, got {self.key_default_call_share}")
        if self.key_default_calls_per_minute < 0:
            raise ConfigError(f"key_default_calls_per_minute must be >= 0, got {self.key_default_calls_per_minute}")
        if self.playback_lead_ms < 0:
            raise ConfigError(f"playback_lead_ms must be >= 0, got {self.playback_lead_ms}")
        if not 0 <= self.encode_push_ms <= 200:
            raise ConfigError(f"encode_push_ms must be 0..200, got {self.encode_push_ms}")
        if not 0 <= self.context_turns <= 10:
            raise ConfigError(f"context_turns must be 0..10, got {self.context_turns}")
        if not 0 <= self.preempt_at < 1:
            raise ConfigError(f"preempt_at must be 0 (off) or a probability below 1, got {self.preempt_at}")
        if self.default_voice not in VOICE_IDS:
            raise ConfigError(f"default_voice must be one of {', '.join(VOICE_IDS)}, got {self.default_voice!r}")
        if self.turn_detection not in ("turn_model", "silence"):
            raise ConfigError(f"turn_detection must be 'turn_model' or 'silence', got {self.turn_detection!r}")
        if self.auth not in ("required", "disabled"):
            raise ConfigError(f"auth must be 'required' or 'disabled' (local dev only), got {self.auth!r}")
        self.server_tls(), self.client_tls("codec"), self.client_tls("context")  # TlsConfigError: a SettingError

    @classmethod
    def from_env(cls, argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
        """Defaults < TS2S_GATEWAY_* environment variables < command-line flags."""
        return settings.load(cls, PREFIX, argv, env, prog="python -m telugu_s2s.gateway", description=__doc__)

    def to_env(self) -> dict[str, str]:
        """The TS2S_GATEWAY_* variables that make `from_env` build this config (fields left at
        their default are left out): how a launcher hands a config to the gateway process."""
        return settings.to_env(self, PREFIX)

    def server_tls(self) -> ServerTls:
        return ServerTls(self.tls_cert_file, self.tls_key_file, self.tls_client_ca_file, prefix=PREFIX)

    def client_tls(self, service: str) -> ClientTls:
        """TLS settings of the channel to `service` ("codec" or "context")."""
        g = lambda name: getattr(self, f"{service}_tls_{name}")  # noqa: E731
        return ClientTls(
            g("ca_file"), g("cert_file"), g("key_file"), g("server_name"), prefix=f"{PREFIX}{service.upper()}_"
        )

    def max_reply_frames(self, frame_rate_hz: float) -> int:
        return max(1, int(self.max_reply_s * frame_rate_hz))
