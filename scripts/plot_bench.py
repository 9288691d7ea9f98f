"""Plot response latency / voice-to-voice / barge-in stop percentiles against callers.

    python scripts/plot_bench.py out/bench-1.json out/bench-4.json out/bench-16.json -o docs/latency-vs-callers.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("results", nargs="+", type=Path, help="telugu-s2s bench --json outputs")
    p.add_argument("-o", "--output", type=Path, required=True)
    a = p.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = sorted((json.loads(r.read_text()) for r in a.results), key=lambda r: r["sessions"])
    callers = [r["sessions"] for r in runs]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, key, title, target in (
        (axes[0], "response_latency_ms", "response latency", 150),
        (axes[1], "voice_to_voice_ms", "voice-to-voice", None),
        (axes[2], "barge_in_stop_ms", "barge-in stop", 50),
    ):
        for q, style in (("p50", "o-"), ("p95", "s--"), ("p99", "^:")):
            ys = [r[key][q] for r in runs]
            xs = [c for c, y in zip(callers, ys) if y is not None]
            ys = [y for y in ys if y is not None]
            if ys:
                ax.plot(xs, ys, style, label=q)
        if target:
            ax.axhline(target, color="red", linewidth=0.8, label=f"p95 target {target} ms")
        ax.set_title(title)
        ax.set_xlabel("concurrent callers")
        ax.set_ylabel("ms")
        ax.set_xscale("log", base=2)
        if key != "barge_in_stop_ms":
            ax.set_yscale("log")
        ax.set_xticks(callers, [str(c) for c in callers])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    cpu = runs[0]["machine"].get("cpu", "")
    fig.suptitle(f"telugu-s2s on {runs[0]['machine'].get('cores')} cores ({cpu}), CPU only")
    fig.tight_layout()
    a.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.output, dpi=110)
    print(f"wrote {a.output}")


if __name__ == "__main__":
    main()
