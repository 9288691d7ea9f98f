import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from telugu_s2s.s2s import protocol as P
from telugu_s2s.s2s.decoding import ReplyStream
from telugu_s2s.s2s.model import build_prefix, generate
from telugu_s2s.s2s.protocol import GenerationParams
from telugu_s2s.s2s.serving import BatchingLoop, Job, Overloaded, ServingConfig, parse_request


class Recorder:
    def __init__(self, cancel_after_frames: int | None = None) -> None:
        self.blocks: list[np.ndarray] = []
        self.offsets: list[int] = []
        self.outcome = None
        self.done = threading.Event()
        self.cancel_after = cancel_after_frames
        self.cancel_checks_after_cancel = 0

    def emit(self, block, offset):
        self.blocks.append(block)
        self.offsets.append(offset)

    def finish(self, outcome, message):
        self.outcome = (outcome, message)
        self.done.set()

    def frames(self) -> int:
        return sum(b.shape[1] for b in self.blocks)

    def is_cancelled(self) -> bool:
        return self.cancel_after is not None and self.frames() >= self.cancel_after


def job(cfg, user, voice, params, rec: Recorder) -> Job:
    stream = ReplyStream(cfg, build_prefix(cfg, user), voice, params)
    return Job(stream, rec.emit, rec.finish, rec.is_cancelled)


@pytest.fixture
def no_eos(model, cfg):
    with torch.no_grad():
        model.heads.bias[cfg.codebook_size] = -100.0
    return model


def test_loop_streams_concurrent_requests_like_generate(cfg, no_eos, rng):
    loop = BatchingLoop(no_eos, initial_slots=1)
    loop.start()
    try:
        reqs = [(rng.integers(0, 16, (2, n)), v, GenerationParams(max_frames=m, frames_per_response=3))
                for n, v, m in ((4, 0, 10), (9, 1, 17), (6, 3, 5))]
        recs = [Recorder() for _ in reqs]
        for (u, v, p), r in zip(reqs, recs):
            loop.submit(job(cfg, u, v, p, r))
        for r in recs:
            assert r.done.wait(30)
        for (u, v, p), r in zip(reqs, recs):
            assert r.outcome == ("done", None)
            expect = np.concatenate(list(generate(no_eos, u, v, params=p)), axis=1)
            assert np.array_equal(np.concatenate(r.blocks, axis=1), expect)
            assert r.offsets == list(range(0, expect.shape[1], 3))
        assert loop.active == 0
    finally:
        loop.stop()


def test_loop_cancel_stops_within_one_step(cfg, no_eos, rng):
    loop = BatchingLoop(no_eos)
    loop.start()
    try:
        rec = Recorder(cancel_after_frames=4)
        other = Recorder()
        loop.submit(job(cfg, rng.integers(0, 16, (2, 5)), 0, GenerationParams(max_frames=40, frames_per_response=1), rec))
        loop.submit(job(cfg, rng.integers(0, 16, (2, 5)), 1, GenerationParams(max_frames=12), other))
        assert rec.done.wait(30) and other.done.wait(30)
        assert rec.outcome == ("cancelled", None)
        assert rec.frames() == 4  # nothing is sent after the cancel is seen
        assert other.outcome == ("done", None) and other.frames() == 12
    finally:
        loop.stop()


def test_loop_refuses_beyond_max_active(cfg, no_eos, rng):
    gate = threading.Event()
    loop = BatchingLoop(no_eos, max_active=1)
    loop.start()
    try:
        rec = Recorder()
        held = Job(
            ReplyStream(cfg, build_prefix(cfg, rng.integers(0, 16, (2, 5))), 0, GenerationParams(max_frames=3)),
            rec.emit, rec.finish, lambda: not gate.wait(30),
        )
        loop.submit(held)
        with pytest.raises(Overloaded, match="limit of 1"):
            loop.submit(job(cfg, rng.integers(0, 16, (2, 5)), 0, GenerationParams(), Recorder()))
        gate.set()
        assert rec.done.wait(30) and rec.outcome == ("done", None)
    finally:
        loop.stop()


def test_loop_stop_ends_in_flight_requests(cfg, no_eos, rng):
    loop = BatchingLoop(no_eos)
    rec = Recorder()
    loop.submit(job(cfg, rng.integers(0, 16, (2, 5)), 0, GenerationParams(max_frames=40), rec))
    loop.start()  # the job is queued before the stop sentinel: it is admitted, then ended
    loop.stop()
    assert rec.done.is_set()
    assert rec.outcome == ("error", "s2s model is shutting down")


def test_parse_request_defaults_and_errors():
    arrays = {P.USER_CODES: np.zeros((2, 5), np.int32), P.VOICE_ID: np.array([2], np.int32)}
    parsed = parse_request(arrays, max_reply_frames=77)
    assert parsed.voice_index == 2 and parsed.params.max_frames == 77
    assert parsed.params.frames_per_response == GenerationParams().frames_per_response
    assert parsed.params.max_frames_per_response == 0  # fixed blocks unless asked
    grow = parse_request({**arrays, P.MAX_FRAMES_PER_RESPONSE: np.array([16], np.int32)}, 77)
    assert grow.params.max_frames_per_response == 16
    assert parsed.context_codes is None
    arrays[P.TEMPERATURE] = np.array([0.5], np.float32)
    arrays[P.SEED] = np.array([9], np.int64)
    parsed = parse_request(arrays, 77)
    assert parsed.params.temperature == 0.5 and parsed.params.seed == 9
    with pytest.raises(ValueError, match="missing required input USER_CODES"):
        parse_request({P.VOICE_ID: np.array([0])}, 10)
    with pytest.raises(ValueError, match="VOICE_ID"):
        parse_request({P.USER_CODES: np.zeros((2, 5))}, 10)
    with pytest.raises(ValueError, match="both"):
        parse_request({**arrays, P.CONTEXT_CODES: np.zeros((2, 3))}, 10)
    with pytest.raises(ValueError, match="exactly one"):
        parse_request({**arrays, P.TOP_K: np.array([1, 2])}, 10)


def test_serving_config_env_overrides_parameters(tmp_path):
    params = {"checkpoint_dir": "/from/param", "allow_random_weights": "0", "torch_threads": "2"}
    cfg = ServingConfig.from_sources(params, {}, tmp_path)
    assert cfg.checkpoint_dir == Path("/from/param") and not cfg.allow_random_weights and cfg.torch_threads == 2
    env = {"TS2S_S2S_CHECKPOINT_DIR": "/from/env", "TS2S_S2S_ALLOW_RANDOM_WEIGHTS": "1"}
    cfg = ServingConfig.from_sources(params, env, tmp_path)
    assert cfg.checkpoint_dir == Path("/from/env") and cfg.allow_random_weights
    assert ServingConfig.from_sources({}, {}, tmp_path).checkpoint_dir == tmp_path
    with pytest.raises(ValueError, match="TS2S_S2S_DEVICE"):
        ServingConfig.from_sources({}, {"TS2S_S2S_DEVICE": "tpu"}, tmp_path)


def test_client_and_protocol_import_no_torch():
    src = Path(__file__).resolve().parents[3] / "src"
    code = (
        "import sys; import telugu_s2s.s2s.client, telugu_s2s.s2s.protocol; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    env = {"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


def test_triton_local_environment():
    pytest.importorskip("pytriton")
    import sysconfig

    from telugu_s2s.s2s.triton_local import SRC_DIR, server_env

    env = server_env({"PATH": "/usr/bin", "LD_LIBRARY_PATH": "/x"})
    assert env["LD_LIBRARY_PATH"].split(":")[0] == sysconfig.get_config_var("LIBDIR")
    assert env["LD_LIBRARY_PATH"].endswith(":/x")
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)
    assert env["PYTHONPATH"].split(":")[0] == str(SRC_DIR)
    assert (SRC_DIR / "telugu_s2s" / "s2s" / "triton_local.py").is_file()


def test_backend_dir_layout(tmp_path):
    pytest.importorskip("pytriton")
    from telugu_s2s.s2s.triton_local import prepare_backend_dir

    backends = prepare_backend_dir(tmp_path)
    names = {p.name for p in (backends / "python").iterdir()}
    assert names == {"libtriton_python.so", "triton_python_backend_utils.py", "triton_python_backend_stub"}


def test_loop_survives_a_failing_callback(cfg, no_eos, rng):
    loop = BatchingLoop(no_eos)
    loop.start()
    try:
        broken = Recorder()

        def boom() -> bool:
            raise RuntimeError("cancel check broke")

        loop.submit(Job(
            ReplyStream(cfg, build_prefix(cfg, rng.integers(0, 16, (2, 5))), 0, GenerationParams(max_frames=30)),
            broken.emit, broken.finish, boom,
        ))
        assert broken.done.wait(30)
        assert broken.outcome[0] == "error" and "cancel check broke" in broken.outcome[1]
        after = Recorder()
        loop.submit(job(cfg, rng.integers(0, 16, (2, 5)), 1, GenerationParams(max_frames=7), after))
        assert after.done.wait(30) and after.outcome == ("done", None) and after.frames() == 7
        assert loop.active == 0
    finally:
        loop.stop()
