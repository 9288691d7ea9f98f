"""A training run's resumable state (`<run_dir>/state.pt`): model, optimizer, schedule, step,
history and random generators, written atomically so that a killed run resumes where its
last checkpoint left it."""

from __future__ import annotations

import json
import logging
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)


@dataclass
class RunState:
    """The pieces of a run that a checkpoint holds (the same objects the loop uses)."""

    run_dir: Path
    model: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    rng: random.Random
    # more objects with state_dict()/load_state_dict() (a GAN's critics and their optimizer)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return Path(self.run_dir) / "state.pt"

    def resume(self, device: str, what: str) -> tuple[int, list[dict]]:
        """Load the checkpoint if there is one: (step, history); (0, []) for a new run."""
        Path(self.run_dir).mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            return 0, []
        st = torch.load(self.path, map_location=device, weights_only=False)
        self.model.load_state_dict(st["model"])
        self.opt.load_state_dict(st["opt"])
        self.sched.load_state_dict(st["sched"])
        self.rng.setstate(st["rng"])
        torch.set_rng_state(st["torch_rng"])
        saved = st.get("extras", {})
        for name, obj in self.extras.items():
            if name not in saved:  # e.g. a run started without critics, resumed with them
                raise ValueError(f"{self.path} holds no {name!r}: resume with the settings it was started with")
            obj.load_state_dict(saved[name])
        log.info("%s: resumed from %s at step %d", what, self.path, st["step"])
        return st["step"], st["history"]

    def save(self, step: int, history: list[dict]) -> None:
        tmp = self.path.with_suffix(".tmp")
        torch.save(
            {
                "model": self.model.state_dict(),
                "opt": self.opt.state_dict(),
                "sched": self.sched.state_dict(),
                "step": step,
                "history": history,
                "rng": self.rng.getstate(),
                "torch_rng": torch.get_rng_state(),
                "extras": {name: obj.state_dict() for name, obj in self.extras.items()},
            },
            tmp,
        )
        tmp.replace(self.path)

    def finish(self, what: str, step: int, first_step: int, elapsed: float, history: list[dict]) -> dict:
        """Write `history.json` beside the state; the run's summary (logged and returned)."""
        (Path(self.run_dir) / "history.json").write_text(json.dumps(history, indent=1) + "\n")
        result = {
            "steps": step,
            "seconds_this_run": round(elapsed, 1),
            "steps_per_s": round((step - first_step) / max(elapsed, 1e-9), 3),
            "final": history[-1] if history else {},
        }
        log.info("%s: trained %s", what, result)
        return result


def config_record(cfg: Any, leave_out: tuple[str, ...] = ()) -> dict:
    """A training config as JSON-ready values, for the checkpoint's metadata."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items() if k not in leave_out}
