"""The store contract: both backends (memory://, real redis-server) behave the same."""

from __future__ import annotations

import asyncio

import pytest

from telugu_s2s.context.store import (
    InvalidSessionId,
    InvalidTenant,
    SessionKey,
    SessionNotFound,
    SessionTooLarge,
    Store,
    TurnTooLarge,
    is_valid_session_id,
)

from .conftest import Backend

UNKNOWN = "0123456789abcdef0123456789abcdef"
MALFORMED = ["", "abc", UNKNOWN.upper(), UNKNOWN + "0", UNKNOWN[:-1] + "g", "../" + UNKNOWN[3:]]


async def _all_ops(store: Store, key: SessionKey) -> list[tuple[str, object]]:
    """Run every per-session operation; return (op, raised exception type or result)."""
    out: list[tuple[str, object]] = []
    for name, call in [
        ("get", lambda: store.get_session(key)),
        ("set_voice", lambda: store.set_voice(key, "ravi")),
        ("append", lambda: store.append_turn(key, b"t")),
        ("context", lambda: store.get_context(key)),
        ("delete", lambda: store.delete_session(key)),
    ]:
        try:
            out.append((name, await call()))
        except Exception as exc:  # noqa: BLE001
            out.append((name, type(exc)))
    return out


async def test_create_and_get(store: Store) -> None:
    a = await store.create_session("", "priya")
    b = await store.create_session("", "arjun")
    assert is_valid_session_id(a.session_id) and is_valid_session_id(b.session_id)
    assert a.session_id != b.session_id
    assert (a.voice, a.turn_count, a.total_turns, a.tenant) == ("priya", 0, 0, "")
    assert a.created_ms == a.updated_ms > 1_600_000_000_000
    got = await store.get_session(SessionKey(a.session_id))
    assert got == a


@pytest.mark.parametrize("bad", MALFORMED)
async def test_malformed_id_is_invalid_for_every_op(store: Store, bad: str) -> None:
    results = await _all_ops(store, SessionKey(bad))
    assert results == [(op, InvalidSessionId) for op, _ in results]


async def test_unknown_id_is_not_found(store: Store) -> None:
    results = dict(await _all_ops(store, SessionKey(UNKNOWN)))
    assert results.pop("delete") is False
    assert set(results.values()) == {SessionNotFound}


async def test_tenant_isolation(store: Store) -> None:
    mine = await store.create_session("acme", "priya")
    await store.append_turn(SessionKey(mine.session_id, "acme"), b"secret")
    for other in ["", "other", "ACME", "acme "]:
        results = dict(await _all_ops(store, SessionKey(mine.session_id, other)))
        assert results.pop("delete") is False, other
        assert set(results.values()) == {SessionNotFound}, other
    # Untouched for its owner.
    ctx = await store.get_context(SessionKey(mine.session_id, "acme"))
    assert ctx.session.voice == "priya"
    assert [t.payload for t in ctx.turns] == [b"secret"]


async def test_bad_tenant(store: Store) -> None:
    with pytest.raises(InvalidTenant):
        await store.create_session("x" * 129, "priya")
    with pytest.raises(InvalidTenant):
        await store.get_session(SessionKey(UNKNOWN, "a\nb"))


async def test_trims_to_max_turns_keeping_the_newest(backend: Backend) -> None:
    store = backend.make(max_turns=10)
    s = await store.create_session("", "priya")
    key = SessionKey(s.session_id)
    counts = []
    for i in range(1, 14):
        r = await store.append_turn(key, f"turn-{i}".encode())
        assert r.turn_index == i
        counts.append(r.turn_count)
    assert counts == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10, 10, 10]
    ctx = await store.get_context(key)
    assert [t.index for t in ctx.turns] == list(range(4, 14))
    assert [t.payload for t in ctx.turns] == [f"turn-{i}".encode() for i in range(4, 14)]
    assert (ctx.session.turn_count, ctx.session.total_turns) == (10, 13)
    created = [t.created_ms for t in ctx.turns]
    assert created == sorted(created)
    assert ctx.session.updated_ms >= created[-1]


async def test_get_context_max_turns(backend: Backend) -> None:
    store = backend.make(max_turns=5)
    key = SessionKey((await store.create_session("", "priya")).session_id)
    for i in range(1, 8):
        await store.append_turn(key, bytes([i]))
    assert [t.index for t in (await store.get_context(key, 2)).turns] == [6, 7]
    assert [t.index for t in (await store.get_context(key, 0)).turns] == [3, 4, 5, 6, 7]
    assert [t.index for t in (await store.get_context(key, 99)).turns] == [3, 4, 5, 6, 7]
    empty = await store.create_session("", "priya")
    assert (await store.get_context(SessionKey(empty.session_id))).turns == ()


async def test_set_voice(store: Store) -> None:
    s = await store.create_session("t", "priya")
    key = SessionKey(s.session_id, "t")
    updated = await store.set_voice(key, "lakshmi")
    assert updated.voice == "lakshmi"
    assert updated.updated_ms >= s.updated_ms
    assert (await store.get_session(key)).voice == "lakshmi"


async def test_delete(store: Store) -> None:
    s = await store.create_session("", "priya")
    key = SessionKey(s.session_id)
    await store.append_turn(key, b"x")
    assert await store.delete_session(key) is True
    assert await store.delete_session(key) is False
    with pytest.raises(SessionNotFound):
        await store.get_context(key)


async def test_turn_size_cap(backend: Backend) -> None:
    store = backend.make(max_turn_bytes=100, max_session_bytes=1000)
    key = SessionKey((await store.create_session("", "priya")).session_id)
    await store.append_turn(key, b"a" * 100)
    with pytest.raises(TurnTooLarge, match="101 bytes.*limit of 100"):
        await store.append_turn(key, b"a" * 101)
    assert (await store.get_session(key)).total_turns == 1


async def test_session_size_cap_counts_only_remembered_turns(backend: Backend) -> None:
    store = backend.make(max_turns=3, max_turn_bytes=100, max_session_bytes=250)
    key = SessionKey((await store.create_session("", "priya")).session_id)
    await store.append_turn(key, b"a" * 100)
    await store.append_turn(key, b"b" * 100)
    with pytest.raises(SessionTooLarge, match="300 bytes.*limit of 250"):
        await store.append_turn(key, b"c" * 100)
    # Nothing was written by the refused append.
    ctx = await store.get_context(key)
    assert [t.payload[:1] for t in ctx.turns] == [b"a", b"b"]
    assert ctx.session.total_turns == 2
    await store.append_turn(key, b"c" * 50)  # 250: fits exactly
    # The next append trims "a" (3 turns max), so 100 + 50 + 100 = 250 fits again.
    r = await store.append_turn(key, b"d" * 100)
    assert (r.turn_count, r.turn_index) == (3, 4)
    assert [t.payload[:1] for t in (await store.get_context(key)).turns] == [b"b", b"c", b"d"]


async def test_every_operation_refreshes_the_ttl(backend: Backend) -> None:
    store = backend.make(ttl_s=100)
    s = await store.create_session("t", "priya")
    key = SessionKey(s.session_id, "t")
    assert 90 < await backend.ttl_left(store, s.session_id) <= 100
    await store.append_turn(key, b"x")  # the turns key gets a TTL too
    for op in [
        lambda: store.get_session(key),
        lambda: store.set_voice(key, "ravi"),
        lambda: store.append_turn(key, b"y"),
        lambda: store.get_context(key),
    ]:
        await backend.shorten_ttl(store, s.session_id, 5)
        assert await backend.ttl_left(store, s.session_id) <= 5
        await op()
        assert 90 < await backend.ttl_left(store, s.session_id) <= 100


async def test_session_expires_after_ttl(backend: Backend) -> None:
    store = backend.make(ttl_s=100)
    s = await store.create_session("", "priya")
    key = SessionKey(s.session_id)
    await store.append_turn(key, b"x")
    await backend.shorten_ttl(store, s.session_id, 0.001)
    await asyncio.sleep(0.02)
    with pytest.raises(SessionNotFound):
        await store.get_context(key)


async def test_concurrent_appends_lose_nothing_and_keep_arrival_order(backend: Backend) -> None:
    """Many writers (two store instances = two service replicas for Redis) append to one
    session at once: every append gets a distinct index, 1..N without gaps, and the
    stored order is the index order with each writer's own turns in its send order."""
    writers, per_writer = 8, 25
    n = writers * per_writer
    limits = dict(max_turns=n, max_session_bytes=1 << 20)
    stores = [backend.make(**limits), backend.make(**limits)] if backend.name == "redis" else [backend.make(**limits)]
    key = SessionKey((await stores[0].create_session("t", "priya")).session_id, "t")

    async def writer(w: int) -> list[tuple[int, bytes]]:
        store = stores[w % len(stores)]
        acked = []
        for i in range(per_writer):
            payload = f"w{w}-{i}".encode()
            r = await store.append_turn(key, payload)
            acked.append((r.turn_index, payload))
        return acked

    results = await asyncio.gather(*(writer(w) for w in range(writers)))
    by_index = {idx: p for acked in results for idx, p in acked}
    assert sorted(by_index) == list(range(1, n + 1))
    for acked in results:  # each writer's turns are in its own send order
        assert [idx for idx, _ in acked] == sorted(idx for idx, _ in acked)
    ctx = await stores[-1].get_context(key)
    assert [t.index for t in ctx.turns] == list(range(1, n + 1))
    assert [t.payload for t in ctx.turns] == [by_index[i] for i in range(1, n + 1)]
    assert ctx.session.total_turns == n


async def test_ping(store: Store) -> None:
    await store.ping()
