"""Context service: each session's voice and its last turns, in Redis (or in memory).

Public pieces other code uses:

- `telugu_s2s.context.config.Config`: the service configuration (`Config.from_env(argv)`).
- `telugu_s2s.context.store`: the `Store` interface, its dataclasses and errors, `open_store(cfg)`.
- `telugu_s2s.context.redis_local.LocalRedis`: starts a local `redis-server` process.
- `python -m telugu_s2s.context`: runs the gRPC service.
"""
