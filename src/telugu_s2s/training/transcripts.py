"""What a user turn says, spelled for the listener's training-only CTC head.

The alphabet is Telugu script (the Unicode block U+0C00-U+0C7F) and a word boundary; labels
start at 1, because 0 is CTC's blank. Anything else in a transcript (punctuation, digits,
Latin letters) is dropped, and runs of spaces become one boundary. Only training reads these:
at inference there is no text anywhere.
"""

from __future__ import annotations

import numpy as np

TELUGU = [chr(c) for c in range(0x0C00, 0x0C80)]
SPACE = " "
ALPHABET = [*TELUGU, SPACE]
_INDEX = {ch: i + 1 for i, ch in enumerate(ALPHABET)}
SYMBOLS = len(ALPHABET) + 1  # with the blank (0)


def labels(text: str) -> np.ndarray:
    """The CTC targets of `text`: int64 label ids (1..SYMBOLS-1), no leading, trailing or
    repeated boundaries."""
    boundary = _INDEX[SPACE]
    out: list[int] = []
    for ch in text:
        if ch.isspace():
            if out and out[-1] != boundary:
                out.append(boundary)
        elif ch in _INDEX:
            out.append(_INDEX[ch])
    if out and out[-1] == boundary:
        out.pop()
    return np.asarray(out, dtype=np.int64)
