"""`telugu-s2s talk` reads the files callers and tools write, and sends telephony audio as
telephony audio, through the real stack."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from telugu_s2s.client.wav import read_wav

pytestmark = pytest.mark.e2e

# (file format, subtype, file rate, talk flags)
FILES = {
    "32-bit EXTENSIBLE WAV (sox's default)": ("WAVEX", "PCM_32", 16000, []),
    "mu-law WAV sent as mu-law": ("WAV", "ULAW", 8000, ["--encoding", "mulaw"]),
    "A-law WAV sent as A-law": ("WAV", "ALAW", 8000, ["--encoding", "alaw"]),
    "FLAC at 44.1 kHz": ("FLAC", "PCM_16", 44100, []),
}


@pytest.mark.parametrize("name", list(FILES))
def test_talk_answers_a_question_from_any_common_file(stack, example_wavs, tmp_path, capsys, name):
    from telugu_s2s.cli.main import main as cli_main
    from telugu_s2s.common.audio import resample

    fmt, subtype, rate, flags = FILES[name]
    x, src = read_wav(example_wavs["namaskaram"])
    path = tmp_path / ("q.flac" if fmt == "FLAC" else "q.wav")
    sf.write(str(path), resample(x, src, rate), rate, format=fmt, subtype=subtype)
    reply = tmp_path / "reply.wav"
    rc = cli_main(["talk", "--target", stack.cfg.gateway_target, "--input", str(path), "--output", str(reply),
                   "--voice", "priya", "--fast", *flags])
    out = capsys.readouterr()
    assert rc == 0, out.err
    summary = json.loads(out.out)
    assert summary["errors"] == [] and summary["reply_ms"] > 300
    audio, out_rate = read_wav(reply)
    assert out_rate == 16000 and len(audio) > 0.3 * out_rate and np.abs(audio).max() > 0.01


def test_talk_refuses_a_rate_the_encoding_cannot_have(stack, example_wavs, tmp_path, capsys):
    from telugu_s2s.cli.main import main as cli_main

    rc = cli_main(["talk", "--target", stack.cfg.gateway_target, "--input", str(example_wavs["namaskaram"]),
                   "--output", str(tmp_path / "r.wav"), "--encoding", "mulaw", "--rate", "16000"])
    assert rc == 2
    assert "MULAW audio must be 8000 Hz" in capsys.readouterr().err
