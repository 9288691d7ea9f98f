"""Test helpers shared by every area's tests (import as `tests.support.<module>`).

- `tests.support.ports.free_port()`: a free TCP port on 127.0.0.1.
- `tests.support.redis`: `redis_server` (one shared redis-server per test session) and
  `redis_server_factory` (own redis-server processes, stopped after the test) fixtures.
- `tests.support.services`: start `python -m telugu_s2s.<svc>` as a subprocess, wait for
  gRPC health SERVING, capture its log, stop it with SIGTERM and get its exit code.
- `tests.support.health`: wait for a gRPC health status (async and sync).

The fixtures are registered for the whole suite by tests/conftest.py.
"""
