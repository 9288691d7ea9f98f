"""The committed stubs under src/telugu_s2s/v1 must match what protos/ generates."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "scripts" / "gen_protos.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


def test_committed_stubs_match_protos(tmp_path: Path) -> None:
    gen = _load_generator()
    gen.generate(tmp_path)
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert fresh, "protoc generated nothing"
    stale = []
    for rel in fresh:
        committed = ROOT / "src" / rel
        if not committed.exists() or committed.read_bytes() != (tmp_path / rel).read_bytes():
            stale.append(str(rel))
    assert not stale, f"stubs are stale, run `make protos`: {stale}"


def test_every_proto_has_stubs() -> None:
    protos = sorted((ROOT / "protos").rglob("*.proto"))
    assert protos
    for proto in protos:
        stem = proto.relative_to(ROOT / "protos").with_suffix("")
        assert (ROOT / "src" / f"{stem}_pb2.py").exists(), stem
