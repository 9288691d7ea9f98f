"""End-of-turn detection: has the caller finished, or only paused?

A small convolutional network reads the log-mel spectrogram of the last 1.5 s of the caller's
audio (16 kHz) and the silence so far, and gives the probability that the turn is finished.
It runs in numpy (the gateway image has no torch); it is trained by
`python -m telugu_s2s.training turn` (docs/turn-taking.md) and ships in `weights/`.
"""
