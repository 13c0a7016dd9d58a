"""Write the results: bench/results/<UTC stamp>.{md,json} plus latest.{md,json}.

The Markdown leads with the machine, then one table of figures (median, min, max, the
baseline measured in the same run, the ratio, the goal and whether it is met), then the
per-section detail tables. The JSON holds every sample.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
from typing import Dict, List, Optional, Sequence

from common import PYTHON, PYZ, REPO, RESULTS, Figure


def sh(argv: List[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine(shiv: str, jupyter_module: str) -> Dict[str, object]:
    lscpu = dict(line.split(":", 1) for line in sh(["lscpu"]).splitlines() if ":" in line)
    meminfo = dict(line.split(":", 1) for line in open("/proc/meminfo") if ":" in line)
    os_release = dict(line.rstrip().split("=", 1) for line in open("/etc/os-release") if "=" in line)
    pyenv = "/root/.pyenv/versions"
    return {
        "cpu_model": lscpu.get("Model name", "").strip(),
        "cores": os.cpu_count(),
        "memory_gb": round(int(meminfo["MemTotal"].split()[0]) / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": os_release.get("PRETTY_NAME", "").strip('"'),
        "python_bench_interpreter": f"{PYTHON} ({sh([PYTHON, '-VV'])})",
        "python_pyenv": sorted(os.listdir(pyenv)) if os.path.isdir(pyenv) else [],
        "python_driver": platform.python_version(),
        "slurm": sh(["sinfo", "-V"]),
        "shiv": shiv,
        "jupyter_module": jupyter_module,
        "git_commit": sh(["git", "-C", REPO, "rev-parse", "--short", "HEAD"]),
        "pyz_bytes": os.path.getsize(PYZ),
        "pyz_sha256": sh(["sha256sum", PYZ]).split(" ")[0],
        "galyleo_version": sh([PYTHON, PYZ, "--version"]),
    }


def fmt(value: Optional[float], unit: str = "s") -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if unit == "ms" or (unit == "s" and value < 1) else f"{value:.2f} s"


def ratio_text(fig: Figure) -> str:
    if fig.goal_kind == "max":
        return "-"
    if fig.ratio is None:
        return "-"
    if fig.goal_kind == "over" and fig.median is not None and fig.baseline is not None:
        return f"{fig.ratio:.2f}x (+{fig.median - fig.baseline:.2f} s)"
    return f"{fig.ratio:.2f}x"


def min_ratio(fig: Figure) -> str:
    """Best run against best run: less sensitive to other work on a shared machine than medians."""
    base = (fig.baseline_stats or {}).get("min") if fig.baseline_stats else None
    if not fig.samples or not base or fig.goal_kind != "ratio":
        return "-"
    return f"{min(fig.samples) / base:.2f}x"


def figure_table(figures: List[Figure]) -> List[str]:
    lines = ["| section | figure | median | min | max | n | baseline (median) | ratio | ratio of minima | goal | met |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for fig in figures:
        base = f"{fig.baseline_name}: {fmt(fig.baseline)}" if fig.baseline is not None else "-"
        met = {True: "yes", False: "**no**", None: "-"}[fig.met]
        name = fig.name + (f" ({fig.note})" if fig.note else "")
        lines.append(f"| {fig.section} | {name} | {fmt(fig.median)} | {fmt(min(fig.samples) if fig.samples else None)}"
                     f" | {fmt(max(fig.samples) if fig.samples else None)} | {len(fig.samples)} | {base} | "
                     f"{ratio_text(fig)} | {min_ratio(fig)} | {fig.goal_text or '-'} | {met} |")
    return lines


HOME = re.compile(r"/home/[^/\s'\"]+/")


def portable(value: object, roots: Sequence[str] = (REPO,)) -> object:
    """VALUE with this checkout's path made repo-relative and a user's home written `~/`:
    committed results name no folder of the machine that measured them."""
    if isinstance(value, dict):
        return {key: portable(item, roots) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(item, roots) for item in value]
    if not isinstance(value, str):
        return value
    for root in roots:
        value = value.replace(root.rstrip("/") + "/", "")
    return HOME.sub("~/", value)


def write(result: Dict[str, object], figures: List[Figure], sections_md: List[str], stamp: str) -> str:
    os.makedirs(RESULTS, exist_ok=True)
    info = result["machine"]
    lines = [f"# galyleo benchmarks, {stamp}", "",
             f"Machine: {info['cpu_model']}, {info['cores']} cores, {info['memory_gb']} GB, kernel "
             f"{info['kernel']}, {info['os']}. Interpreter: {info['python_bench_interpreter']}; also installed: "
             f"pyenv {', '.join(info['python_pyenv'])}; orchestrator Python {info['python_driver']}. "
             f"{info['slurm']}, {info['shiv']}, Jupyter module {info['jupyter_module']}. galyleo "
             f"{info['galyleo_version']} at {info['git_commit']} (pyz {info['pyz_bytes']} bytes). "
             f"Mode: {result['mode']}; total {result['total_seconds']:.0f} s. 1-minute load average at section "
             f"boundaries: {', '.join(f'{label} {value:.1f}' for label, value in result.get('load', []))}.", "",
             "Every figure: median of repeated runs with min and max, against its baseline measured in the "
             "same run (interleaved where possible).", ""]
    lines += figure_table(figures) + [""] + sections_md
    text = "\n".join(lines) + "\n"
    base = os.path.join(RESULTS, stamp)
    with open(base + ".md", "w") as handle:
        handle.write(text)
    with open(base + ".json", "w") as handle:
        json.dump(portable(result), handle, indent=1, sort_keys=True, default=str)
    shutil.copyfile(base + ".md", os.path.join(RESULTS, "latest.md"))
    shutil.copyfile(base + ".json", os.path.join(RESULTS, "latest.json"))
    return base + ".md"
