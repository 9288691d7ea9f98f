"""Public streaming gateway: the `Conversation` gRPC service (VAD, turns, barge-in, sessions)."""
