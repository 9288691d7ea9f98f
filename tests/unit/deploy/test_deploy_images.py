"""Dockerfiles and ignore files, checked on their content (no Docker engine here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SERVICES = ("gateway", "codec", "context", "s2s")


def dockerfile(svc: str) -> str:
    return (ROOT / "services" / svc / "Dockerfile").read_text()


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


@pytest.mark.parametrize("svc", SERVICES)
def test_each_image_has_healthcheck_ignore_file_and_non_root_user(svc: str) -> None:
    ins = instructions(dockerfile(svc))
    words = [w for w, _ in ins]
    assert "HEALTHCHECK" in words
    users = [a for w, a in ins if w == "USER"]
    assert users and not users[-1].startswith(("0", "root")), "runs as non-root"
    assert (ROOT / "services" / svc / "Dockerfile.dockerignore").is_file()
    ignore = (ROOT / "services" / svc / "Dockerfile.dockerignore").read_text().splitlines()
    assert [l for l in ignore if l and not l.startswith("#")][0] == "**", "allow-list: exclude all first"
    assert "!src/" in ignore and "!pyproject.toml" in ignore


@pytest.mark.parametrize(("svc", "module", "port"), [
    ("gateway", "telugu_s2s.gateway", 50051), ("codec", "telugu_s2s.codec", 50052),
    ("context", "telugu_s2s.context", 50053)])
def test_grpc_images_entry_point_and_health(svc: str, module: str, port: int) -> None:
    ins = instructions(dockerfile(svc))
    entry = [a for w, a in ins if w == "ENTRYPOINT"][-1]
    assert entry == f'["python", "-m", "{module}"]'
    health = [a for w, a in ins if w == "HEALTHCHECK"][-1]
    assert f'"telugu_s2s.common.healthcheck", "127.0.0.1:{port}"' in health
    assert f"EXPOSE {port}" in dockerfile(svc)


@pytest.mark.parametrize(("svc", "extra"), [("gateway", "gateway"), ("context", "context")])
def test_slim_images_have_no_torch(svc: str, extra: str) -> None:
    text = dockerfile(svc)
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.M)
    assert f'pip install -c requirements.lock ".[{extra}]"' in text  # the pinned dependency tree
    runs = " ".join(a for w, a in instructions(text) if w in ("RUN", "FROM", "ARG", "ENV"))
    assert "torch" not in runs.replace("! pip show torch", ""), "no torch install"
    assert "! pip show torch" in runs, "the build fails if a dependency pulls torch in"
    # The extra itself must not depend on torch.
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert not [d for d in extras[extra] if d.lower().startswith("torch")]


def test_codec_torch_variant_build_arg() -> None:
    text = dockerfile("codec")
    assert "ARG TORCH_VARIANT=cpu" in text
    assert "download.pytorch.org/whl/${TORCH_VARIANT}" in text
    assert 'pip install ".[codec]"' in text


def test_triton_image() -> None:
    text = dockerfile("s2s")
    base = re.search(r"^ARG TRITON_IMAGE=(\S+)$", text, re.M).group(1)
    assert re.fullmatch(r"nvcr\.io/nvidia/tritonserver:\d\d\.\d\d-py3", base), "pinned NGC py3 tag"
    assert "ARG CHECKPOINT=mounted" in text
    assert "FROM base AS checkpoint-mounted" in text and "FROM base AS checkpoint-baked" in text
    assert "FROM checkpoint-${CHECKPOINT}" in text
    assert '".[s2s]"' in text
    assert "COPY services/s2s/model_repository" in text
    assert "/v2/models/s2s_transformer/ready" in text
    ignore = (ROOT / "services/s2s/Dockerfile.dockerignore").read_text().splitlines()
    assert "!services/s2s/model_repository/" in ignore and "!models/s2s/model.pt" in ignore


def test_root_dockerignore_keeps_context_small() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert lines[[i for i, l in enumerate(lines) if l and not l.startswith("#")][0]] == "**"
    assert not any(l.startswith("!models") or l.startswith("!.git") or l.startswith("!.venv") for l in lines)
