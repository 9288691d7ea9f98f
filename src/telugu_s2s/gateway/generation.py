"""The gateway's view of the S2S model: a small Protocol the Triton client satisfies.

`telugu_s2s.s2s.client.TritonS2SClient` implements it; tests use an in-process fake.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

import numpy as np

from telugu_s2s.s2s.protocol import GenerationRequest


@runtime_checkable
class S2SGenerator(Protocol):
    async def ready(self) -> bool:
        """True when the model is loaded and can take requests."""
        ...

    def generate(self, req: GenerationRequest) -> AsyncIterator[np.ndarray]:
        """Yield int32 [K, n] blocks of reply codes. Closing the iterator cancels generation."""
        ...

    async def close(self) -> None: ...


async def close_iterator(it: AsyncIterator[np.ndarray]) -> None:
    """Close an async iterator if it can be closed (this cancels the generation)."""
    aclose = getattr(it, "aclose", None)
    if aclose is not None:
        await aclose()
