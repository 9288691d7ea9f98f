"""API keys, per-key limits and tenant isolation, against a real in-process gateway and fakes."""

from __future__ import annotations

import asyncio
import json
import logging

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from telugu_s2s.cli.main import main as cli_main
from telugu_s2s.gateway.auth import (
    PERMISSION_DENIED_MSG,
    UNAUTHENTICATED_MSG,
    Authenticator,
    KeysFileError,
    RateWindow,
    bearer_key,
    build_authenticator,
    create_key,
    hash_key,
    load_keys,
    parse_entry,
)
from telugu_s2s.security.logctx import ContextFilter
from telugu_s2s.v1 import conversation_pb2 as pb

from .conftest import CallResult, LiveCall, audio_messages, config_message, silence


def md(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


# ---------------------------------------------------------------------- keys file


def test_key_is_stored_hashed_and_verifies(tmp_path):
    path = tmp_path / "keys.json"
    key, entry = create_key(path, "acme", max_concurrent_calls=2)
    text = path.read_text()
    assert key not in text and key.split(".")[1] not in text
    assert entry.id in text and "sha256$" in text
    assert (path.stat().st_mode & 0o777) == 0o600
    loaded = load_keys(path)[entry.id]
    assert loaded.verify(key) and not loaded.verify(key[:-1] + ("A" if key[-1] != "A" else "B"))
    assert loaded.tenant == "acme" and loaded.max_concurrent_calls == 2


def test_same_key_hashes_differently_per_salt():
    assert hash_key("ts2s_000000000000.secret") != hash_key("ts2s_000000000000.secret")


async def test_scrypt_entries_verify_and_cache(tmp_path):
    path = tmp_path / "keys.json"
    key, entry = create_key(path, "acme", kdf="scrypt")
    assert load_keys(path)[entry.id].hash.startswith("scrypt$")
    auth = Authenticator.from_file(path)
    assert (await auth.authenticate(key)).tenant == "acme"
    assert (await auth.authenticate(key)).tenant == "acme"  # from the verified-key cache
    with pytest.raises(Exception):
        await auth.authenticate(key + "x")


def test_yaml_keys_file(tmp_path):
    path = tmp_path / "keys.yaml"
    path.write_text(
        "keys:\n"
        f"  - id: 0123456789ab\n    tenant: acme\n    hash: {hash_key('k')}\n    max_calls_per_minute: 5\n"
    )
    assert load_keys(path)["0123456789ab"].max_calls_per_minute == 5


@pytest.mark.parametrize(
    "raw, fragment",
    [
        ({"id": "xyz", "tenant": "a", "hash": hash_key("k")}, "'id'"),
        ({"id": "0123456789ab", "tenant": "Bad Tenant", "hash": hash_key("k")}, "'tenant'"),
        ({"id": "0123456789ab", "tenant": "a", "hash": "plain-text-key"}, "'hash'"),
        ({"id": "0123456789ab", "tenant": "a", "hash": hash_key("k"), "max_concurrent_calls": -1}, "max_concurrent_calls"),
        ({"id": "0123456789ab", "tenant": "a", "hash": hash_key("k"), "methods": ["Admin"]}, "'methods'"),
        ({"id": "0123456789ab", "tenant": "a", "hash": hash_key("k"), "key": "oops"}, "unknown fields"),
    ],
)
def test_bad_entries_are_refused_with_a_clear_message(raw, fragment):
    with pytest.raises(KeysFileError, match=fragment):
        parse_entry(raw, "keys.json entry 0")


def test_missing_keys_file_and_required_mode(tmp_path):
    with pytest.raises(KeysFileError, match="TS2S_GATEWAY_API_KEYS_FILE"):
        build_authenticator("required", "")
    with pytest.raises(KeysFileError, match="cannot read"):
        build_authenticator("required", str(tmp_path / "nope.json"))
    with pytest.raises(KeysFileError, match="TS2S_GATEWAY_AUTH"):
        build_authenticator("maybe", "")


def test_disabled_mode_is_explicit_and_loud(caplog):
    with caplog.at_level(logging.WARNING):
        assert build_authenticator("disabled", "") is None
    assert any("DISABLED" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_bearer_parsing():
    assert bearer_key([("authorization", "Bearer abc")]) == "abc"
    assert bearer_key([("Authorization", "bearer  abc ")]) == "abc"
    assert bearer_key([("authorization", "Basic abc")]) is None
    assert bearer_key([("authorization", "Bearer ")]) is None
    assert bearer_key([]) is None


def test_rate_window_counts_a_rolling_minute():
    now = [0.0]
    w = RateWindow(3, 60.0, clock=lambda: now[0])
    for t in (0.0, 10.0, 20.0):
        now[0] = t
        assert w.try_acquire()
    assert not w.try_acquire()
    now[0] = 59.9
    assert not w.try_acquire()
    now[0] = 60.0
    assert w.try_acquire()
    assert not w.try_acquire()


def test_keys_cli_create_list_revoke(tmp_path, capsys):
    path = tmp_path / "keys.json"
    assert cli_main(["keys", "create", "--tenant", "acme", "--file", str(path), "--max-calls-per-minute", "30"]) == 0
    out = capsys.readouterr()
    key = out.out.strip()
    assert key.startswith("ts2s_") and key not in path.read_text()
    entry = next(iter(load_keys(path).values()))
    assert entry.tenant == "acme" and entry.max_calls_per_minute == 30 and entry.verify(key)
    assert cli_main(["keys", "list", "--file", str(path)]) == 0
    listed = capsys.readouterr().out
    assert entry.id in listed and "acme" in listed and key not in listed and "sha256$" not in listed
    assert cli_main(["keys", "create", "--tenant", "Not Valid", "--file", str(path)]) == 2
    assert cli_main(["keys", "revoke", "--file", str(path), "--id", entry.id]) == 0
    assert load_keys(path) == {}
    assert cli_main(["keys", "revoke", "--file", str(path), "--id", entry.id]) == 1


# ---------------------------------------------------------------------- gateway with keys


@pytest.fixture
def keys(tmp_path):
    path = tmp_path / "keys.json"
    made = {
        "acme": create_key(path, "acme")[0],
        "globex": create_key(path, "globex")[0],
        "readonly": create_key(path, "acme", methods=["GetSession", "ListVoices"])[0],
        "two": create_key(path, "acme", max_concurrent_calls=2)[0],
        "rate": create_key(path, "acme", max_calls_per_minute=3)[0],
    }
    # A disabled key: valid hash, but refused like an unknown one.
    disabled_key, entry = create_key(path, "acme")
    data = json.loads(path.read_text())
    for e in data["keys"]:
        if e["id"] == entry.id:
            e["disabled"] = True
    path.write_text(json.dumps(data))
    made["disabled"] = disabled_key
    made["_file"] = str(path)
    return made


@pytest.fixture
async def secured(make_stack, keys):
    return await make_stack(cfg_kw={"auth": "required", "api_keys_file": keys["_file"]})


async def _code(coro) -> tuple[grpc.StatusCode, str]:
    try:
        await coro
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details()
    return grpc.StatusCode.OK, ""


def _speech_turn(telugu_speech) -> list[pb.ClientMessage]:
    return audio_messages(np.concatenate([silence(300), telugu_speech[0], silence(700)]))


async def test_missing_and_bad_keys_are_unauthenticated_without_detail(secured, keys):
    req = pb.ListVoicesRequest()
    acme = keys["acme"]
    wrong_secret = acme[:-4] + ("AAAA" if not acme.endswith("AAAA") else "BBBB")
    unknown_id = "ts2s_ffffffffffff." + acme.split(".")[1]
    cases = [(), (("authorization", "Basic x"),), md("garbage"), md(wrong_secret), md(unknown_id), md(keys["disabled"])]
    answers = {await _code(secured.stub.ListVoices(req, metadata=m)) for m in cases}
    assert answers == {(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MSG)}
    code, _ = await _code(secured.stub.ListVoices(req, metadata=md(acme)))
    assert code == grpc.StatusCode.OK


async def test_converse_without_key_is_refused_before_any_work(secured):
    res = await secured.call([config_message()])
    assert res.code == grpc.StatusCode.UNAUTHENTICATED and res.details == UNAUTHENTICATED_MSG
    assert secured.context.calls == []


async def test_health_stays_open_without_a_key(secured):
    stub = health_pb2_grpc.HealthStub(secured.channel)
    resp = await stub.Check(health_pb2.HealthCheckRequest(service=""))
    assert resp.status in (health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING)


async def test_method_not_allowed_is_permission_denied(secured, keys):
    code, details = await _code(secured.stub.DeleteSession(pb.DeleteSessionRequest(session_id="0" * 32), metadata=md(keys["readonly"])))
    assert (code, details) == (grpc.StatusCode.PERMISSION_DENIED, PERMISSION_DENIED_MSG)
    code, _ = await _code(secured.stub.ListVoices(pb.ListVoicesRequest(), metadata=md(keys["readonly"])))
    assert code == grpc.StatusCode.OK


async def test_tenant_isolation_get_delete_resume_context(secured, keys, telugu_speech):
    acme, globex = md(keys["acme"]), md(keys["globex"])
    call = secured.stub.Converse(metadata=acme)
    for m in [config_message(voice="ravi"), *_speech_turn(telugu_speech)]:
        await call.write(m)
    await call.done_writing()
    messages = [m async for m in call]
    assert await call.code() == grpc.StatusCode.OK
    session_id = next(m.session_started.session_id for m in messages if m.HasField("session_started"))
    # Every context call of that call carried the key's tenant.
    assert {t for _, t in secured.context.calls} == {"acme"}
    assert secured.context.turns_of(session_id, "acme")

    # Another tenant: Get, Delete and resume all answer NOT_FOUND, like an unknown id.
    code, _ = await _code(secured.stub.GetSession(pb.GetSessionRequest(session_id=session_id), metadata=globex))
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = await _code(secured.stub.DeleteSession(pb.DeleteSessionRequest(session_id=session_id), metadata=globex))
    assert code == grpc.StatusCode.NOT_FOUND
    unknown = await _code(secured.stub.GetSession(pb.GetSessionRequest(session_id="0" * 32), metadata=globex))
    foreign = await _code(secured.stub.GetSession(pb.GetSessionRequest(session_id=session_id), metadata=globex))
    assert unknown == foreign
    resumed = await call_with(secured, globex, [config_message(session_id=session_id)])
    assert resumed.code == grpc.StatusCode.NOT_FOUND and not resumed.of("session_started")
    # No context (turns) of acme was fetched or written under globex.
    assert ("GetContext", "globex") not in secured.context.calls
    assert ("AppendTurn", "globex") not in secured.context.calls

    # The owner still has it, with its turn, and can delete it.
    info = await secured.stub.GetSession(pb.GetSessionRequest(session_id=session_id), metadata=acme)
    assert info.turn_count == 1 and info.voice == "ravi"
    assert (await secured.stub.DeleteSession(pb.DeleteSessionRequest(session_id=session_id), metadata=acme)).deleted


async def test_per_key_concurrent_calls(secured, keys):
    two = md(keys["two"])
    calls = []
    for _ in range(2):
        live = LiveCall(_Stub(secured.stub, two))
        await live.send(config_message())
        await live.wait("session_started")
        calls.append(live)
    third = await call_with(secured, two, [config_message()])
    assert third.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "2 concurrent calls" in third.details
    # Another key of the same tenant is not limited by it.
    other = await call_with(secured, md(keys["acme"]), [config_message()])
    assert other.code == grpc.StatusCode.OK
    # Ending a call frees its slot.
    res = await calls[0].finish()
    assert res.code == grpc.StatusCode.OK
    again = await call_with(secured, two, [config_message()])
    assert again.code == grpc.StatusCode.OK
    await calls[1].finish()


async def test_per_key_calls_per_minute(secured, keys):
    rate = md(keys["rate"])
    codes = [(await _code(secured.stub.ListVoices(pb.ListVoicesRequest(), metadata=rate)))[0] for _ in range(3)]
    assert codes == [grpc.StatusCode.OK] * 3
    code, details = await _code(secured.stub.ListVoices(pb.ListVoicesRequest(), metadata=rate))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "3 calls per minute" in details
    res = await call_with(secured, rate, [config_message()])
    assert res.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    code, _ = await _code(secured.stub.ListVoices(pb.ListVoicesRequest(), metadata=md(keys["acme"])))
    assert code == grpc.StatusCode.OK


async def test_keys_never_reach_the_logs(secured, keys, telugu_speech, caplog):
    acme = keys["acme"]
    wrong = acme[:-4] + ("AAAA" if not acme.endswith("AAAA") else "BBBB")
    with caplog.at_level(logging.DEBUG):
        await _code(secured.stub.ListVoices(pb.ListVoicesRequest(), metadata=md(wrong)))
        res = await call_with(secured, md(acme), [config_message(), *_speech_turn(telugu_speech)])
        assert res.code == grpc.StatusCode.OK
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "rpc rejected" in text
    for secret in (acme, wrong, acme.split(".")[1], wrong.split(".")[1]):
        assert secret not in text


async def test_request_id_and_tenant_on_every_log_line_of_a_call(secured, keys, telugu_speech, caplog):
    metadata = (*md(keys["acme"]), ("x-request-id", "req-123"))
    caplog.handler.addFilter(ContextFilter())  # what logctx.install() adds to the service's handler
    with caplog.at_level(logging.INFO, logger="telugu_s2s.gateway"):
        call = secured.stub.Converse(metadata=metadata)
        for m in [config_message(), *_speech_turn(telugu_speech)]:
            await call.write(m)
        await call.done_writing()
        _ = [m async for m in call]
        initial = dict(await call.initial_metadata())
    assert initial.get("x-request-id") == "req-123"
    records = [r for r in caplog.records if r.name in ("telugu_s2s.gateway.call", "telugu_s2s.gateway.lifecycle")]
    assert {"call started", "turn finished"} <= {r.getMessage() for r in records}
    turn_lines = [r for r in records if r.getMessage() == "turn finished"]
    assert turn_lines and all(getattr(r, "turn_id", "") for r in turn_lines)
    assert all(getattr(r, "request_id", "") == "req-123" and getattr(r, "tenant", "") == "acme" for r in records)


class _Stub:
    """A Conversation stub that always sends the given metadata (for LiveCall)."""

    def __init__(self, stub, metadata) -> None:
        self._stub, self._md = stub, metadata

    def Converse(self):
        return self._stub.Converse(metadata=self._md)


async def call_with(stack, metadata, messages) -> CallResult:
    """Stack.call with metadata: send everything, half-close, read the whole answer."""
    call = stack.stub.Converse(metadata=metadata)
    received: list[pb.ServerMessage] = []

    async def read():
        async for m in call:
            received.append(m)

    reader = asyncio.create_task(read())
    try:
        for m in messages:
            await call.write(m)
        await call.done_writing()
    except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
        pass
    try:
        await reader
    except grpc.aio.AioRpcError:
        pass
    return CallResult(received, await call.code(), await call.details())


# ---------------------------------------------------------------------- fair share, live reload


def test_keys_without_limits_get_the_gateways_fair_share(tmp_path):
    from telugu_s2s.gateway.auth import AuthError, Limits

    path = tmp_path / "keys.json"
    _, made = create_key(path, "acme")
    assert (made.max_concurrent_calls, made.max_calls_per_minute) == (32, 120)  # written, so visible
    raw = {"id": "a" * 12, "tenant": "globex", "hash": hash_key("x")}
    bare = parse_entry(raw, "bare")
    unlimited = parse_entry({**raw, "id": "b" * 12, "max_concurrent_calls": 0, "max_calls_per_minute": 0}, "zero")
    assert bare.max_concurrent_calls is None and "max_concurrent_calls" not in bare.to_json()
    assert unlimited.to_json()["max_concurrent_calls"] == 0
    defaults = Limits.fair_share(max_calls=5, share=0.5, calls_per_minute=7)
    assert defaults == Limits(3, 7)
    auth = Authenticator({e.id: e for e in (bare, unlimited, made)}, defaults=defaults)
    assert auth.limits(bare) == Limits(3, 7)
    assert auth.limits(unlimited) == Limits(0, 0)
    assert auth.limits(made) == Limits(32, 120)
    for _ in range(3):
        auth.admit(bare, stream=True)
    with pytest.raises(AuthError) as err:
        auth.admit(bare, stream=True)
    assert err.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "3 concurrent calls" in err.value.message
    for _ in range(10):
        auth.admit(unlimited, stream=True)


def test_watcher_reloads_in_place_writes_renames_and_secret_symlink_swaps(tmp_path):
    from telugu_s2s.gateway.auth import KeysWatcher, write_keys

    # A mounted Secret: keys.json -> ..data/keys.json, ..data -> ..<timestamp> (swapped atomically).
    mount = tmp_path / "secret"
    (mount / "..v1").mkdir(parents=True)
    _, first = create_key(mount / "..v1" / "keys.json", "acme")
    (mount / "..data").symlink_to("..v1")
    (mount / "keys.json").symlink_to("..data/keys.json")
    auth = Authenticator(load_keys(mount / "keys.json"))
    results = []
    watcher = KeysWatcher(mount / "keys.json", auth, on_result=results.append)
    assert watcher.check() == "unchanged"

    (mount / "..v2").mkdir()
    _, second = create_key(mount / "..v2" / "keys.json", "globex")
    (mount / "..data_tmp").symlink_to("..v2")
    (mount / "..data_tmp").replace(mount / "..data")
    assert watcher.check() == "reloaded"
    assert set(auth.entries) == {second.id} and not auth.is_current(first) and auth.is_current(second)

    # A file that does not parse: the last good keys stay, one error is reported.
    (mount / "..v3").mkdir()
    (mount / "..v3" / "keys.json").write_text("{not json")
    (mount / "..data_tmp").symlink_to("..v3")
    (mount / "..data_tmp").replace(mount / "..data")
    assert watcher.check() == "error"
    assert watcher.check() == "unchanged"  # reported once per bad version
    assert set(auth.entries) == {second.id}

    # A plain file rewritten in place (and a disabled key) also counts; SIGHUP forces a reload.
    plain = tmp_path / "keys.json"
    _, k = create_key(plain, "acme")
    auth2 = Authenticator(load_keys(plain))
    w2 = KeysWatcher(plain, auth2)
    write_keys(plain, [parse_entry({**k.to_json(), "disabled": True}, "x")])
    assert w2.check() == "reloaded" and not auth2.is_current(k)
    assert w2.check(force=True) == "reloaded"
    assert results == ["ok", "error"]


async def test_revoked_key_refuses_new_calls_and_ends_open_ones_at_their_next_turn(make_stack, tmp_path,
                                                                                   telugu_speech):
    from telugu_s2s.gateway.auth import write_keys

    path = tmp_path / "keys.json"
    keep, _ = create_key(path, "acme")
    gone, gone_entry = create_key(path, "acme")
    s = await make_stack(cfg_kw={"auth": "required", "api_keys_file": str(path), "keys_reload_interval_s": 0.05})
    live = LiveCall(_Stub(s.stub, md(gone)))
    await live.send(config_message())
    await live.wait("session_started")
    write_keys(path, [e for e in load_keys(path).values() if e.id != gone_entry.id])

    async def refused() -> None:
        while (await _code(s.stub.ListVoices(pb.ListVoicesRequest(), metadata=md(gone))))[0] == grpc.StatusCode.OK:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(refused(), 5.0)
    assert (await _code(s.stub.ListVoices(pb.ListVoicesRequest(), metadata=md(keep))))[0] == grpc.StatusCode.OK
    # The open call ends at its next turn, with UNAUTHENTICATED and a reason.
    from .fuzz_strategies import CLIENT_WRITE_RACE, server_codes

    before = server_codes().get("UNAUTHENTICATED", 0)
    try:
        await live.send(*_speech_turn(telugu_speech))
    except grpc.aio.AioRpcError:
        pass  # the turn ends (and the call with it) while its trailing silence is still being written
    res = await live.finish()
    assert server_codes().get("UNAUTHENTICATED", 0) == before + 1  # the gateway's own status
    if (res.code, res.details) != CLIENT_WRITE_RACE:  # else gRPC reports the failed write instead
        assert res.code == grpc.StatusCode.UNAUTHENTICATED and "revoked" in res.details
    assert not res.of("response_started")


async def _open_calls(stack, key: str, n: int) -> list[LiveCall]:
    """`n` open Converse calls with `key`, each past SessionStarted."""
    calls = []
    for _ in range(n):
        live = LiveCall(_Stub(stack.stub, md(key)))
        await live.send(config_message())
        await live.wait("session_started")
        calls.append(live)
    return calls


async def test_two_tenants_with_default_keys_each_get_their_share(make_stack, tmp_path):
    path = tmp_path / "keys.json"
    raw = [{"id": f"{i:012x}", "tenant": t} for i, t in ((1, "acme"), (2, "globex"))]
    keys = {}
    for r, tenant in zip(raw, ("acme", "globex")):
        key = f"ts2s_{r['id']}.{'k' * 43}"
        r["hash"] = hash_key(key)
        keys[tenant] = key
    path.write_text(json.dumps({"keys": raw}))  # no limits written: the gateway's defaults apply
    s = await make_stack(cfg_kw={"auth": "required", "api_keys_file": str(path), "max_calls": 4,
                                 "key_default_call_share": 0.5})
    held = await _open_calls(s, keys["acme"], 2)
    hog = await call_with(s, md(keys["acme"]), [config_message()])
    assert hog.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "2 concurrent calls" in hog.details
    other = await _open_calls(s, keys["globex"], 2)
    for live in held + other:
        assert (await live.finish()).code == grpc.StatusCode.OK


def test_methods_come_from_the_proto_and_no_principal_is_an_error_not_the_dev_tenant():
    import contextvars

    from telugu_s2s.gateway.auth import CONVERSATION_SERVICE, METHODS, NoPrincipal, current_principal
    from telugu_s2s.v1 import conversation_pb2

    service = conversation_pb2.DESCRIPTOR.services_by_name["Conversation"]
    assert CONVERSATION_SERVICE == "telugu_s2s.v1.Conversation"
    assert METHODS == tuple(m.name for m in service.methods)
    assert {"Converse", "GetSession", "DeleteSession", "ListVoices"} <= set(METHODS)
    # Outside an RPC the interceptor admitted there is no caller identity: fail closed.
    with pytest.raises(NoPrincipal, match="did not admit"):
        contextvars.Context().run(current_principal)
