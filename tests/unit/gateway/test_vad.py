"""VAD segmentation on real Telugu speech (espeak-ng) separated by silences."""

from __future__ import annotations

import numpy as np
import pytest

from telugu_s2s.gateway.vad import LikelyEnd, Segmenter, SpeechEnd, SpeechStart, TurnSettings, VadSettings
from telugu_s2s.turn.detector import EndReason

from .conftest import silence

GAP_MS = 1000
LEAD_MS = 500


def layout(phrases):
    """Concatenate phrases with silences; return audio and each phrase's (start_ms, end_ms)."""
    parts, bounds, t = [silence(LEAD_MS)], [], LEAD_MS
    for p in phrases:
        dur = len(p) * 1000 // 16000
        bounds.append((t, t + dur))
        parts += [p, silence(GAP_MS)]
        t += dur + GAP_MS
    return np.concatenate(parts), bounds


def run(seg: Segmenter, audio: np.ndarray, chunk: int = 480):
    events = []
    for i in range(0, len(audio), chunk):
        events += seg.feed(audio[i : i + chunk])
    return events


def test_three_phrases_make_three_turns_with_their_boundaries(telugu_speech):
    audio, bounds = layout(telugu_speech)
    settings = VadSettings()
    events = run(Segmenter(settings), audio)
    starts = [e for e in events if isinstance(e, SpeechStart)]
    ends = [e for e in events if isinstance(e, SpeechEnd)]
    assert len(starts) == len(ends) == 3, events
    for (p_start, p_end), s, e in zip(bounds, starts, ends):
        # Prefix padding reaches back before the first voiced frame.
        assert p_start - settings.prefix_padding_ms - 40 <= s.audio_start_ms <= p_start - settings.prefix_padding_ms + 100
        assert p_start < s.decided_at_ms <= p_start + 2 * settings.min_speech_ms + 100
        # Ends at the last audible frame (see the overhang test below); the bound is loose.
        assert p_end - 60 <= e.audio_end_ms <= p_end + 200
        assert e.decided_at_ms - e.audio_end_ms == settings.silence_duration_ms
        assert e.audio_start_ms == s.audio_start_ms
        assert not e.forced


@pytest.mark.parametrize("chunk", [160, 320, 3200])
def test_segmentation_does_not_depend_on_chunking(telugu_speech, chunk):
    audio, _ = layout(telugu_speech[:2])
    assert run(Segmenter(VadSettings()), audio, chunk) == run(Segmenter(VadSettings()), audio, 480)


def test_longer_silence_setting_merges_phrases(telugu_speech):
    audio, _ = layout(telugu_speech)
    events = run(Segmenter(VadSettings(silence_duration_ms=GAP_MS + 500)), audio)
    # The last phrase is followed by only GAP_MS of silence: it never ends by silence.
    assert sum(isinstance(e, SpeechStart) for e in events) == 1
    assert sum(isinstance(e, SpeechEnd) for e in events) == 0


def test_clicks_are_not_turns():
    rng = np.random.default_rng(0)
    audio = [silence(500)]
    for _ in range(5):
        audio += [(rng.standard_normal(16000 * 60 // 1000) * 8000).astype(np.int16), silence(700)]
    events = run(Segmenter(VadSettings(min_speech_ms=200)), np.concatenate(audio))
    assert events == []


def test_min_speech_zero_reacts_to_a_single_voiced_frame():
    rng = np.random.default_rng(1)
    burst = (rng.standard_normal(16000 * 100 // 1000) * 8000).astype(np.int16)
    events = run(Segmenter(VadSettings(min_speech_ms=0, prefix_padding_ms=0)), np.concatenate([silence(500), burst, silence(800)]))
    assert [type(e) for e in events] == [SpeechStart, SpeechEnd]


def test_force_end_commits_the_turn_now(telugu_speech):
    seg = Segmenter(VadSettings())
    assert seg.force_end() is None
    p = telugu_speech[0]
    run(seg, np.concatenate([silence(300), p[: len(p) // 2]]))
    assert seg.speaking
    ev = seg.force_end()
    assert isinstance(ev, SpeechEnd) and ev.forced and ev.decided_at_ms == seg.now_ms
    assert not seg.speaking and seg.force_end() is None


def test_next_turn_never_starts_before_the_previous_was_decided(telugu_speech):
    # A prefix padding longer than the gap must not reach into the previous turn.
    p = telugu_speech[0]
    settings = VadSettings(prefix_padding_ms=1000, silence_duration_ms=300)
    events = run(Segmenter(settings), np.concatenate([silence(200), p, silence(500), p, silence(500)]))
    ends = [e for e in events if isinstance(e, SpeechEnd)]
    starts = [e for e in events if isinstance(e, SpeechStart)]
    assert len(starts) == 2 and starts[1].audio_start_ms >= ends[0].decided_at_ms


@pytest.mark.parametrize(
    "kw",
    [
        {"aggressiveness": 4},
        {"prefix_padding_ms": 1001},
        {"silence_duration_ms": 99},
        {"silence_duration_ms": 5001},
        {"min_speech_ms": 5001},
    ],
)
def test_settings_out_of_range(kw):
    field = next(iter(kw))
    with pytest.raises(ValueError, match=field):
        VadSettings(**kw).validate()


@pytest.mark.parametrize("aggressiveness", [0, 1, 2, 3])
def test_speech_ends_at_the_last_audible_frame_not_after_webrtcvads_overhang(telugu_speech, aggressiveness):
    """Over digital silence webrtcvad alone reported the end ~120 ms late (its overhang)."""
    audio, _ = layout(telugu_speech)
    settings = VadSettings(aggressiveness=aggressiveness)
    ends = [e for e in run(Segmenter(settings), audio) if isinstance(e, SpeechEnd)]
    assert len(ends) == 3
    t = LEAD_MS
    for phrase, e in zip(telugu_speech, ends):
        audible = np.flatnonzero(np.abs(phrase) > 30)  # about -60 dBFS
        true_end = t + (audible[-1] + 1) * 1000 / 16000
        assert true_end - 40 <= e.audio_end_ms <= true_end + 20, (e, true_end)
        assert e.decided_at_ms - e.audio_end_ms == settings.silence_duration_ms
        t += len(phrase) * 1000 // 16000 + GAP_MS


def test_background_noise_keeps_webrtcvads_decisions(telugu_speech):
    """Noise 20 dB under the speech is far above the energy gate: the same three turns."""
    audio, bounds = layout(telugu_speech)
    rng = np.random.default_rng(0)
    speech_rms = np.sqrt(np.mean(np.concatenate(telugu_speech).astype(np.float64) ** 2))
    noisy = np.clip(audio + rng.normal(0, speech_rms / 10, len(audio)), -32768, 32767).astype(np.int16)
    events = run(Segmenter(VadSettings()), noisy)
    ends = [e for e in events if isinstance(e, SpeechEnd)]
    assert len(ends) == 3, events
    for (_, p_end), e in zip(bounds, ends):
        assert p_end - 60 <= e.audio_end_ms <= p_end + 300


class AfterSilence:
    """A detector that ends the turn once the silence reaches `ms`, and notes what it was asked."""

    def __init__(self, ms: int) -> None:
        self.ms = ms
        self.asked: list[tuple[int, int]] = []

    def decide(self, audio, silence_ms):
        self.asked.append((len(audio.window), silence_ms))
        return EndReason.MODEL if silence_ms >= self.ms else None


def test_a_detector_ends_the_turn_when_it_says_so(telugu_speech):
    audio, bounds = layout(telugu_speech)
    det = AfterSilence(300)  # longer than the gaps inside these phrases
    ends = [e for e in run(Segmenter(VadSettings(), det), audio) if isinstance(e, SpeechEnd)]
    assert len(ends) == 3
    for (_, p_end), e in zip(bounds, ends):
        assert e.reason is EndReason.MODEL and not e.forced
        assert e.decided_at_ms - e.audio_end_ms == 300
        assert p_end - 60 <= e.audio_end_ms <= p_end + 200
    # Asked only at silent frames inside a turn, with the features of up to the last 1.5 s.
    assert all(20 <= s <= 300 for _, s in det.asked)
    assert max(n for n, _ in det.asked) <= 150


def test_without_a_detector_the_timer_ends_the_turn(telugu_speech):
    audio, _ = layout(telugu_speech[:1])
    ends = [e for e in run(Segmenter(VadSettings()), audio) if isinstance(e, SpeechEnd)]
    assert [e.reason for e in ends] == [EndReason.SILENCE]


@pytest.mark.parametrize(
    "kw, field",
    [({"mode": "push"}, "turn_detection.mode"), ({"eagerness": "max"}, "eagerness"), ({"max_wait_ms": 10}, "max_wait_ms")],
)
def test_turn_settings_out_of_range(kw, field):
    with pytest.raises(ValueError, match=field):
        TurnSettings(**kw).validate()


class Leaning(AfterSilence):
    """AfterSilence that also reports P(finished) = `prob` at every ask from 100 ms of silence."""

    def __init__(self, ms: int, prob: float) -> None:
        super().__init__(ms)
        self.prob = prob
        self.last_prob: float | None = None

    def decide(self, audio, silence_ms):
        self.last_prob = self.prob if silence_ms >= 100 else None
        return super().decide(audio, silence_ms)


def test_a_leaning_detector_reports_a_likely_end_once_per_silence_and_the_resumption(telugu_speech):
    gap = silence(300)  # the detector ends turns at 400 ms: this gap is a pause inside one turn
    audio = np.concatenate([silence(LEAD_MS), telugu_speech[0], gap, telugu_speech[1], silence(1000)])
    events = run(Segmenter(VadSettings(), Leaning(400, 0.7), preempt_at=0.5), audio)
    kinds = [type(e).__name__ for e in events]
    # Every silence of 100 ms or more inside the turn (the pause, the phrases' own commas) leans
    # once and is followed by its resumption; the last one is the end.
    assert kinds[0] == "SpeechStart" and kinds[-2:] == ["LikelyEnd", "SpeechEnd"], kinds
    middle = kinds[1:-2]
    assert middle and middle == ["LikelyEnd", "Resumed"] * (len(middle) // 2), kinds
    pause_end = LEAD_MS + len(telugu_speech[0]) * 1000 // 16000
    leans = [e for e in events if isinstance(e, LikelyEnd)]
    assert any(abs(e.audio_end_ms - pause_end) <= 200 for e in leans[:-1])  # the 300 ms pause
    for e in leans:
        assert e.decided_at_ms - e.audio_end_ms == 100 and e.prob == 0.7
    likely, end = events[-2:]
    assert (likely.audio_start_ms, likely.audio_end_ms) == (end.audio_start_ms, end.audio_end_ms)
    assert all(r.at_ms >= lean.decided_at_ms for lean, r in zip(events[1:-2:2], events[2:-2:2]))
    # The same audio without preemption (or a detector below the threshold): starts and ends only.
    for seg in (Segmenter(VadSettings(), Leaning(400, 0.7)), Segmenter(VadSettings(), Leaning(400, 0.3), preempt_at=0.5)):
        assert [type(e).__name__ for e in run(seg, audio)] == ["SpeechStart", "SpeechEnd"]
    assert [type(e).__name__ for e in run(Segmenter(VadSettings(), None, preempt_at=0.5), audio)] == [
        "SpeechStart", "SpeechEnd"]


def test_the_rolling_noise_percentile_is_numpys():
    from collections import deque

    from telugu_s2s.gateway.vad import RollingPercentile

    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(-60, 10, 600), np.full(300, -120.0), rng.normal(-30, 5, 300)])
    values[::7] = np.round(values[::7])  # ties
    rolling, window = RollingPercentile(250, 10.0), deque(maxlen=250)
    for v in values:
        rolling.append(float(v))
        window.append(float(v))
        assert len(rolling) == len(window)
        assert rolling.value() == pytest.approx(float(np.percentile(window, 10.0)), abs=1e-9)
