"""A call's side of the context service: the earlier turns a reply reads, and each finished
turn stored. A context service that fails costs the turn its memory, never the reply: the
caller gets an in-band error (CONTEXT_UNAVAILABLE, CONTEXT_NOT_SAVED) and the call goes on."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from telugu_s2s.gateway import metrics
from telugu_s2s.gateway.context_client import ContextClient, TurnRecord
from telugu_s2s.gateway.errors import DownstreamError, DownstreamUnavailable, SessionNotFound
from telugu_s2s.s2s.protocol import context_from_turns


class TurnMemory:
    def __init__(
        self,
        context: ContextClient,
        session_id: str,
        tenant: str,
        n_codebooks: int,
        max_turns: int,
        report: Callable[[str, str, str], None],
    ) -> None:
        """`report(code, message, turn_id)` sends an in-band error to the caller."""
        self._context, self._session_id, self._tenant = context, session_id, tenant
        self._k, self._max_turns, self._report = n_codebooks, max_turns, report

    async def fetch(self, turn_id: str) -> tuple[tuple[np.ndarray, np.ndarray], float]:
        """((context codes, segments), ms taken) for the model; empty when there is none or the
        context service failed."""
        t0 = time.perf_counter()
        try:
            if self._max_turns == 0:
                return context_from_turns([], self._k), 0.0
            _, turns = await self._context.get_context(self._session_id, self._tenant, self._max_turns)
            pairs = [
                (t.user_codes, t.reply_codes)
                for t in turns
                if t.user_codes.shape[0] == self._k and t.reply_codes.shape[0] == self._k
            ]
            return context_from_turns(pairs, self._k), (time.perf_counter() - t0) * 1000.0
        except (DownstreamUnavailable, DownstreamError, SessionNotFound) as exc:
            self._report("CONTEXT_UNAVAILABLE", f"replying without the earlier turns: {exc}", turn_id)
            return context_from_turns([], self._k), (time.perf_counter() - t0) * 1000.0
        finally:
            metrics.STAGE.labels("context_fetch").observe(time.perf_counter() - t0)

    async def store(self, record: TurnRecord) -> int | None:
        """Append the turn; the session's turn count, or None if it was not saved (reported)."""
        try:
            return await self._context.append_turn(self._session_id, self._tenant, record)
        except (DownstreamUnavailable, DownstreamError, SessionNotFound) as exc:
            self._report("CONTEXT_NOT_SAVED", f"this turn was not saved to the session: {exc}", record.turn_id)
            return None
