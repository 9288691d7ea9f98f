"""Real-time Telugu speech-to-speech voice service."""

__version__ = "0.1.0"
