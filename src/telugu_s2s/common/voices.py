"""The four product voices. The speaker index is the model's voice embedding row."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VoiceSpec:
    id: str
    display_name: str
    gender: str
    description: str
    speaker_index: int


VOICES: tuple[VoiceSpec, ...] = (
    VoiceSpec("arjun", "Arjun", "male", "male, young", 0),
    VoiceSpec("ravi", "Ravi", "male", "male, mature", 1),
    VoiceSpec("priya", "Priya", "female", "female, young", 2),
    VoiceSpec("lakshmi", "Lakshmi", "female", "female, professional", 3),
)
VOICE_IDS: tuple[str, ...] = tuple(v.id for v in VOICES)
DEFAULT_VOICE = "priya"
_BY_ID = {v.id: v for v in VOICES}


class UnknownVoiceError(ValueError):
    def __init__(self, voice: str) -> None:
        super().__init__(f"unknown voice {voice!r}; valid voices: {', '.join(VOICE_IDS)}")
        self.voice = voice


def get_voice(voice_id: str) -> VoiceSpec:
    """Look a voice up by id (case-insensitive); raise UnknownVoiceError otherwise."""
    spec = _BY_ID.get(voice_id.strip().lower())
    if spec is None:
        raise UnknownVoiceError(voice_id)
    return spec
