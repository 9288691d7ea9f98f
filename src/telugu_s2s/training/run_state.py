"""A training run's resumable state (`<run_dir>/state.pt`): model, optimizer, schedule, step,
history and random generators, written atomically so that a killed run resumes where its
last checkpoint left it."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path

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
            },
            tmp,
        )
        tmp.replace(self.path)
