"""A real tritonserver (LocalTriton) serving the s2s_transformer repository."""

import asyncio
import re
import socket
import urllib.request

import numpy as np
import pytest
import torch

from telugu_s2s.s2s.client import S2SBadRequest, S2SUnavailable, TritonS2SClient
from telugu_s2s.s2s.model import S2SConfig, S2STransformer, save_checkpoint
from telugu_s2s.s2s.protocol import GenerationParams, GenerationRequest, context_from_turns
from telugu_s2s.s2s.triton_local import LocalTriton

pytestmark = pytest.mark.e2e

CFG = S2SConfig(
    n_codebooks=2, codebook_size=16, n_layers=2, d_model=32, n_heads=2,
    max_seq_len=512, context_budget=24, context_stride=2, max_reply_frames=400,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def triton(tmp_path_factory):
    pytest.importorskip("pytriton")
    ckpt = tmp_path_factory.mktemp("s2s-ckpt")
    torch.manual_seed(0)
    model = S2STransformer(CFG)
    with torch.no_grad():  # no EOS: only max_frames or a cancel ends a reply
        model.heads.bias[CFG.codebook_size] = -50.0
    save_checkpoint(model, CFG, ckpt, {"name": "tiny-test"})
    work = tmp_path_factory.mktemp("triton")
    server = LocalTriton(
        grpc_port=free_port(), http_port=free_port(), metrics_port=free_port(),
        env={"TS2S_S2S_CHECKPOINT_DIR": str(ckpt)}, log_path=work / "triton.log", work_dir=work,
    )
    server.start()
    try:
        server.wait_ready(180)
        yield server
    finally:
        server.stop()


def metric(server: LocalTriton, name: str, labels: str = "") -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=5).read().decode()
    pattern = re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else r"(?:\{\})?") + r" ([0-9.e+-]+)"
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


def request(rid: str, max_frames: int, fpr: int = 2, **kw) -> GenerationRequest:
    rng = np.random.default_rng(abs(hash(rid)) % 1000)
    turns = [(rng.integers(0, 16, (2, 12)), rng.integers(0, 16, (2, 9)))]
    ctx, seg = context_from_turns(turns, 2)
    return GenerationRequest(
        rid, rng.integers(0, 16, (2, 20)).astype(np.int32), 2, ctx, seg,
        GenerationParams(max_frames=max_frames, frames_per_response=fpr, **kw),
    )


async def collect(client: TritonS2SClient, req: GenerationRequest) -> np.ndarray:
    blocks = [b async for b in client.generate(req)]
    return np.concatenate(blocks, axis=1)


async def test_stream_generation(triton):
    client = TritonS2SClient(triton.grpc_target)
    try:
        assert await client.ready()
        sizes = []
        async for block in client.generate(request("a", max_frames=11, fpr=4)):
            assert block.dtype == np.int32 and block.shape[0] == 2
            sizes.append(block.shape[1])
        assert sizes == [4, 4, 3]
        # growing responses: the first frames at once, then fewer, larger responses
        sizes = [b.shape[1] async for b in client.generate(request("g", max_frames=40, max_frames_per_response=16))]
        assert sizes == [2, 4, 8, 16, 10]
        # sampling with a seed is reproducible through the server
        a = await collect(client, request("s", 16, temperature=1.0, top_k=8, seed=5))
        b = await collect(client, request("s", 16, temperature=1.0, top_k=8, seed=5))
        assert np.array_equal(a, b) and a.shape == (2, 16)
    finally:
        await client.close()


async def test_cancel_midway_stops_generation_and_server_stays_healthy(triton):
    client = TritonS2SClient(triton.grpc_target)
    try:
        cancelled_before = metric(triton, "telugu_s2s_s2s_generations_total", 'outcome="cancelled"')
        frames_before = metric(triton, "telugu_s2s_s2s_frames_total")
        got = 0
        async for block in client.generate(request("c", max_frames=400, fpr=1)):
            got += block.shape[1]
            if got >= 5:
                break  # closes the generator -> cancels the Triton request
        # the server notices the cancel and ends the request early
        for _ in range(100):
            if metric(triton, "telugu_s2s_s2s_generations_total", 'outcome="cancelled"') > cancelled_before:
                break
            await asyncio.sleep(0.05)
        assert metric(triton, "telugu_s2s_s2s_generations_total", 'outcome="cancelled"') == cancelled_before + 1
        assert metric(triton, "telugu_s2s_s2s_frames_total") - frames_before < 400
        # still healthy and serving
        assert await client.ready()
        out = await collect(client, request("after", max_frames=6))
        assert out.shape == (2, 6)

        # task cancellation cancels too (right after the first block: a fixed sleep could
        # outlast all 400 frames of this tiny model on a quiet machine)
        streaming = asyncio.Event()

        async def consume():
            async for _ in client.generate(request("t", max_frames=400, fpr=1)):
                streaming.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(streaming.wait(), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):
            if metric(triton, "telugu_s2s_s2s_generations_total", 'outcome="cancelled"') > cancelled_before + 1:
                break
            await asyncio.sleep(0.05)
        assert metric(triton, "telugu_s2s_s2s_generations_total", 'outcome="cancelled"') == cancelled_before + 2
    finally:
        await client.close()


async def test_four_concurrent_generations(triton):
    client = TritonS2SClient(triton.grpc_target)
    try:
        reqs = [request(f"p{i}", max_frames=30 + 5 * i) for i in range(4)]
        outs = await asyncio.gather(*(collect(client, r) for r in reqs))
        assert [o.shape[1] for o in outs] == [30, 35, 40, 45]
        # batched together = the same greedy codes as alone
        alone = await collect(client, reqs[2])
        assert np.array_equal(alone, outs[2])
    finally:
        await client.close()


async def test_bad_request_is_a_clear_error(triton):
    client = TritonS2SClient(triton.grpc_target)
    try:
        bad = GenerationRequest("bad", np.full((2, 5), 99, np.int32), 0, np.zeros((2, 0)), np.zeros(0))
        with pytest.raises(S2SBadRequest, match=r"values must be in \[0, 16\)"):
            await collect(client, bad)
        bad_voice = GenerationRequest("bv", np.zeros((2, 5), np.int32), 9, np.zeros((2, 0)), np.zeros(0))
        with pytest.raises(S2SBadRequest, match="voice index"):
            await collect(client, bad_voice)
        with pytest.raises(S2SBadRequest, match="max_frames_per_response must be 0 or >= frames_per_response"):
            await collect(client, request("bm", 8, fpr=4, max_frames_per_response=2))
        assert await client.ready()
    finally:
        await client.close()


async def test_server_down_is_unavailable():
    client = TritonS2SClient(f"localhost:{free_port()}")
    try:
        assert not await client.ready()
        with pytest.raises(S2SUnavailable):
            await collect(client, request("x", 4))
    finally:
        await client.close()
