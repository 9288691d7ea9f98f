"""What a call is built from: the gateway's shared downstream clients (`CallDeps`) and what
the handshake settled (`Session`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from telugu_s2s.common.codec_info import CodecInfo
from telugu_s2s.gateway.auth import KeyEntry
from telugu_s2s.gateway.codec_client import CodecClient
from telugu_s2s.gateway.context_client import ContextClient
from telugu_s2s.gateway.downstream import DownstreamMonitor
from telugu_s2s.gateway.events import CallSettings
from telugu_s2s.gateway.generation import S2SGenerator
from telugu_s2s.gateway.input import TurnDefaults


@dataclass
class CallDeps:
    codec: CodecClient
    context: ContextClient
    generator: S2SGenerator
    monitor: DownstreamMonitor
    # Exceptions of the generator that mean "the model server is unavailable".
    unavailable_errors: tuple[type[BaseException], ...] = ()
    # Set when the gateway drains (SIGTERM): calls finish their replies and end.
    draining: asyncio.Event = field(default_factory=asyncio.Event)
    # Whether the API key a call was admitted with is still valid (None: no keys, dev mode);
    # checked at each turn, so a revoked key ends the calls it opened at their next turn.
    key_current: Callable[[KeyEntry], bool] | None = None
    # The end-of-turn model and the mode a call gets when it does not ask for one.
    turn: TurnDefaults = field(default_factory=TurnDefaults)


@dataclass(frozen=True)
class Session:
    """What the handshake settled."""

    id: str
    tenant: str
    settings: CallSettings
    info: CodecInfo
