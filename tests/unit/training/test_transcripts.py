"""The listener's CTC spellings: Telugu script and word boundaries, nothing else."""

from __future__ import annotations

from telugu_s2s.training import transcripts


def test_telugu_letters_and_single_word_boundaries_are_kept_and_the_rest_dropped() -> None:
    got = transcripts.labels("  నమస్కారం,  ఎలా ఉన్నారు? ")
    text = "".join(transcripts.ALPHABET[i - 1] for i in got)
    assert text == "నమస్కారం ఎలా ఉన్నారు"
    assert got.dtype.kind == "i" and got.min() >= 1 and got.max() < transcripts.SYMBOLS  # 0 is the blank
    assert transcripts.labels("Wi-Fi 24/7 ?!").size == 0
    assert transcripts.labels("వైఫై ఉందా").tolist() == transcripts.labels("వైఫై, ఉందా?").tolist()
