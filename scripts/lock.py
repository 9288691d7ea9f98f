"""Write requirements.lock: every package `pip install -e .[all,dev]` resolves to, pinned.

Resolves from scratch (a dry run that ignores what is installed) so the lock is what a fresh
machine gets today; the Makefile then installs with it as a constraints file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = (
    "# Every package of `pip install -e .[all,dev]`, pinned: the Makefile installs with this as a\n"
    "# constraints file, so two fresh machines get the same versions. Regenerate with\n"
    "# `make lock` after changing pyproject.toml.\n"
)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--dry-run", "--ignore-installed",
                        "--report", str(report), "-e", ".[all,dev]"], cwd=ROOT, check=True)
        items = json.loads(report.read_text())["install"]
    pins = sorted({(i["metadata"]["name"].lower(), i["metadata"]["version"]) for i in items
                   if i["metadata"]["name"].lower().replace("_", "-") != "telugu-s2s"})
    (ROOT / "requirements.lock").write_text(HEADER + "".join(f"{n}=={v}\n" for n, v in pins))
    print(f"requirements.lock: {len(pins)} packages")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
