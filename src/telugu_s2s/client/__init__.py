"""Caller-side helpers: WAV I/O and a streaming Converse client (used by `talk` and `bench`)."""
