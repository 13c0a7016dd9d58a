"""Shared pieces of `make bench`: paths, the interpreter, timed runs, statistics, figures.

A Figure is one measured quantity: its samples (seconds), median/min/max, and
optionally the baseline it is compared with and a goal on the ratio. Nothing here
asserts a timing: figures are measured and reported, never checked in tests.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
WORK = os.path.join(BENCH, "work")  # gitignored scratch: shiv roots, reference zipapps
RESULTS = os.path.join(BENCH, "results")
PYZ = os.path.join(REPO, "dist", "galyleo.pyz")
HARNESS_ROOT = os.environ.get("GALYLEO_HARNESS_ROOT", "/srv/galyleo-test")
SITE_TOML = os.path.join(HARNESS_ROOT, "site.toml")
# One real interpreter for every start-up figure (never the pyenv shim on PATH):
# Debian's, which the unprivileged test user can also run.
PYTHON = os.environ.get("BENCH_PYTHON", "/usr/bin/python3")


def stats(samples: Sequence[float]) -> Dict[str, float]:
    if not samples:
        return {"n": 0}
    return {"n": len(samples), "median": statistics.median(samples), "min": min(samples), "max": max(samples)}


@dataclass
class Figure:
    """One reported row: a measured quantity, maybe against a baseline and a goal."""

    section: str
    name: str
    samples: List[float]
    baseline_name: str = ""
    baseline: Optional[float] = None  # median of the baseline, seconds
    baseline_stats: Optional[Dict[str, float]] = None
    goal: Optional[float] = None  # see goal_kind
    goal_kind: str = "ratio"  # ratio: median/baseline <= goal; over: median-baseline <= goal; max: median <= goal
    goal_text: str = ""
    note: str = ""
    extra: Dict[str, object] = field(default_factory=dict)

    @property
    def median(self) -> Optional[float]:
        return statistics.median(self.samples) if self.samples else None

    @property
    def ratio(self) -> Optional[float]:
        if self.median is None or not self.baseline:
            return None
        return self.median / self.baseline

    @property
    def met(self) -> Optional[bool]:
        if self.goal is None or self.median is None:
            return None
        if self.goal_kind == "max":
            return self.median <= self.goal
        if self.baseline is None:
            return None
        if self.goal_kind == "over":
            return self.median - self.baseline <= self.goal
        return self.median / self.baseline <= self.goal

    def as_dict(self) -> Dict[str, object]:
        return {
            "section": self.section, "name": self.name, "stats": stats(self.samples),
            "samples": [round(s, 6) for s in self.samples], "baseline_name": self.baseline_name,
            "baseline": self.baseline, "baseline_stats": self.baseline_stats, "ratio": self.ratio,
            "goal": self.goal, "goal_kind": self.goal_kind, "goal_text": self.goal_text, "met": self.met,
            "note": self.note, "extra": self.extra,
        }


def timed(argv: Sequence[str], env: Optional[Dict[str, str]] = None, cwd: Optional[str] = None,
          check: bool = True) -> float:
    """Wall time of one run (output discarded); a failing run is an error, not a sample."""
    start = time.perf_counter()
    done = subprocess.run(list(argv), env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.decode()[-500:]}")
    return elapsed


def interleaved(commands: Dict[str, Sequence[str]], reps: int, env: Dict[str, str],
                warmup: int = 2) -> Dict[str, List[float]]:
    """Time each command `reps` times, round-robin with a rotating start, after warm-up runs."""
    names = list(commands)
    for _ in range(warmup):
        for name in names:
            timed(commands[name], env)
    samples: Dict[str, List[float]] = {name: [] for name in names}
    for rep in range(reps):
        order = names[rep % len(names):] + names[:rep % len(names)]
        for name in order:
            samples[name].append(timed(commands[name], env))
    return samples


def base_env(**extra: str) -> Dict[str, str]:
    """A small, fixed environment: no user site, no PYTHONPATH, bytecode writes off as here."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
    }
    env.update(extra)
    return env


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)
