"""Codec service: streaming EnCodec encode/decode over gRPC (torch lives here)."""
