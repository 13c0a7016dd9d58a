"""Sections 1, 2 and 7: start-up of galyleo.pyz against reference zipapps, cold start, imports.

Every run uses the same interpreter (common.PYTHON) and a shiv root under bench/work
(warm unless the figure says cold). Runs are interleaved round-robin so drift in the
machine's load hits the figure and its baseline alike.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from typing import Dict, List, Sequence, Tuple

from common import PYTHON, PYZ, SITE_TOML, WORK, Figure, base_env, interleaved, log, stats, timed


def generate_args(module: str) -> List[str]:
    """Typical options, as in README's first example (module from the test cluster)."""
    return ["generate", "-A", "abc123", "-p", "debug", "-c", "2", "-m", "4", "-t", "00:30:00", "-e", module]


def env_for(root: str) -> Dict[str, str]:
    home = os.path.join(WORK, "home")
    os.makedirs(home, exist_ok=True)
    return base_env(SHIV_ROOT=root, HOME=home, GALYLEO_CONFIG=SITE_TOML)


def unpacked_site(root: str, pyz: str) -> str:
    """The site-packages shiv unpacked `pyz` into under `root` (run it once first)."""
    found = glob.glob(os.path.join(root, os.path.basename(pyz) + "_*", "site-packages"))
    if len(found) != 1:
        raise RuntimeError(f"expected one unpacked build of {pyz} in {root}, found {found}")
    return found[0]


def on_path(site: str, code: str) -> str:
    """Code that puts `site` first on sys.path, then runs `code`.

    Not PYTHONPATH: this machine's interpreter runs a .pth at start-up that imports
    certifi, which would then load the bundled certifi (and importlib.resources) first.
    """
    return f"import sys; sys.path.insert(0, {site!r}); {code}"


GENERATE_CODE = "from galyleo.cli import main; sys.exit(main(sys.argv[1:]))"


def direct_generate(site: str, module: str) -> List[str]:
    """galyleo's generate from the unpacked site-packages, without shiv's bootstrap."""
    return [PYTHON, "-c", on_path(site, GENERATE_CODE), *generate_args(module)]


def startup(refs: Dict[str, str], module: str, reps: int) -> Tuple[List[Figure], Dict[str, object]]:
    """Section 1: warm start-up of generate, --version and help against the references."""
    root = os.path.join(WORK, "shiv-warm")
    shutil.rmtree(root, ignore_errors=True)
    env = env_for(root)
    commands = {
        "print-ref": [PYTHON, refs["print"]],
        "jinja-ref": [PYTHON, refs["jinja"]],
        "print-ref-fast": [PYTHON, refs["print-fast"]],
        "jinja-ref-fast": [PYTHON, refs["jinja-fast"]],
        "generate": [PYTHON, PYZ, *generate_args(module)],
        "version": [PYTHON, PYZ, "--version"],
        "help": [PYTHON, PYZ, "help"],
        "python -c pass": [PYTHON, "-c", "pass"],
    }
    for argv in commands.values():  # unpack each zipapp once (warm shiv cache)
        timed(argv, env)
    commands["generate, no shiv"] = direct_generate(unpacked_site(root, PYZ), module)
    jinja_site = unpacked_site(root, refs["jinja"])
    commands["jinja-ref, no shiv"] = [PYTHON, "-c", on_path(jinja_site, "from bench_jinja import main; main()")]
    log(f"start-up: {len(commands)} commands x {reps} runs, interleaved")
    samples = interleaved(commands, reps, env)
    jinja, printing = samples["jinja-ref"], samples["print-ref"]
    jinja_fast, printing_fast = samples["jinja-ref-fast"], samples["print-ref-fast"]

    def against(figure: str, values: List[float], base: str, base_values: List[float], goal: bool = True,
                note: str = "") -> Figure:
        return Figure("1 start-up", figure, values, base, median(base_values), stats(base_values),
                      1.10 if goal else None, goal_text="<= 1.10x" if goal else "", note=note)

    figures = [
        against("generate (warm)", samples["generate"], "jinja2 reference pyz (shiv's bootstrap)", jinja,
                note="what a user waits, against a stock shiv app"),
        against("generate (warm)", samples["generate"], "jinja2 reference pyz with galyleo's fast start", jinja_fast,
                note="like for like: galyleo's own work"),
        against("--version (warm)", samples["version"], "printing reference pyz (shiv's bootstrap)", printing),
        against("--version (warm)", samples["version"], "printing reference pyz with galyleo's fast start",
                printing_fast, note="like for like"),
        against("help (warm)", samples["help"], "printing reference pyz (shiv's bootstrap)", printing),
        against("help (warm)", samples["help"], "printing reference pyz with galyleo's fast start", printing_fast,
                note="like for like"),
        against("generate, unpacked, no shiv bootstrap", samples["generate, no shiv"],
                "jinja2 reference, no shiv bootstrap", samples["jinja-ref, no shiv"], goal=False,
                note="what galyleo itself adds to a bare jinja2 render"),
        against("printing reference pyz (shiv's bootstrap)", printing, "python -c pass", samples["python -c pass"],
                goal=False, note="what shiv's bootstrap adds to the interpreter"),
        against("printing reference pyz with galyleo's fast start", printing_fast, "python -c pass",
                samples["python -c pass"], goal=False, note="what is left of it with the fast start"),
        against("printing reference pyz with galyleo's fast start", printing_fast,
                "printing reference pyz (shiv's bootstrap)", printing, goal=False,
                note="the fast start's saving on every warm run"),
    ]
    raw = {name: stats(values) for name, values in samples.items()}
    return figures, {"warm_root": root, "commands": {k: list(v) for k, v in commands.items()}, "stats": raw}


def median(values: Sequence[float]) -> float:
    return float(stats(values)["median"])


def cold(refs: Dict[str, str], module: str, reps: int) -> Tuple[List[Figure], Dict[str, object]]:
    """Section 2: first run of the fresh pyz (empty shiv root) vs a warm run, interleaved."""
    warm_root = os.path.join(WORK, "shiv-warm")
    marker_root = os.path.join(WORK, "shiv-marker")
    shutil.rmtree(marker_root, ignore_errors=True)
    gen = [PYTHON, PYZ, *generate_args(module)]
    timed(gen, env_for(marker_root))
    marker_glob = os.path.join(marker_root, os.path.basename(PYZ) + "_*", ".galyleo-bytecode-*")
    out: Dict[str, List[float]] = {"cold": [], "warm": [], "unpacked, first start": [],
                                   "jinja-ref cold": [], "print-ref cold": []}
    log(f"cold start: {reps} runs of each")
    for rep in range(reps):
        for kind in ("cold", "warm", "unpacked, first start", "jinja-ref cold", "print-ref cold"):
            if kind == "warm":
                out[kind].append(timed(gen, env_for(warm_root)))
            elif kind == "unpacked, first start":
                for marker in glob.glob(marker_glob):  # galyleo's once-per-interpreter housekeeping
                    os.unlink(marker)
                out[kind].append(timed(gen, env_for(marker_root)))
            else:
                root = os.path.join(WORK, f"shiv-cold-{rep}")
                shutil.rmtree(root, ignore_errors=True)
                argv = {"cold": gen, "jinja-ref cold": [PYTHON, refs["jinja"]],
                        "print-ref cold": [PYTHON, refs["print"]]}[kind]
                out[kind].append(timed(argv, env_for(root)))
                shutil.rmtree(root, ignore_errors=True)
    figures = [
        Figure("2 cold start", "generate, cold (empty shiv root)", out["cold"], "generate, warm",
               median(out["warm"]), stats(out["warm"]), 3.0, goal_text="<= 3x"),
        Figure("2 cold start", "generate, unpacked but first start (galyleo's bytecode + tidy pass)",
               out["unpacked, first start"], "generate, warm", median(out["warm"]), stats(out["warm"]),
               note="shivcache.first_start alone"),
        Figure("2 cold start", "jinja2 reference pyz, cold", out["jinja-ref cold"], "generate, warm",
               median(out["warm"]), stats(out["warm"]), note="shiv's own unpack+compile of a smaller bundle"),
        Figure("2 cold start", "printing reference pyz, cold", out["print-ref cold"], "generate, warm",
               median(out["warm"]), stats(out["warm"])),
    ]
    return figures, {name: stats(values) for name, values in out.items()}


def phases(module: str, reps: int) -> Dict[str, Dict[str, float]]:
    """Median time of each phase of generate, in fresh interpreters (bench/profile_generate.py)."""
    import json

    root = os.path.join(WORK, "shiv-warm")
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "profile_generate.py")
    runs: Dict[str, List[float]] = {}
    for _ in range(reps):
        done = subprocess.run([PYTHON, script, unpacked_site(root, PYZ), *generate_args(module)], env=env_for(root),
                              capture_output=True, text=True, check=True)
        for name, value in json.loads(done.stdout).items():
            runs.setdefault(name, []).append(value)
    return {name: stats(values) for name, values in runs.items()}


def parse_importtime(text: str) -> List[Dict[str, object]]:
    """-X importtime lines -> [{module, self_us, cumulative_us, depth}] in import order."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        self_us, cumul, name = line[len("import time:"):].split("|")
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        rows.append({"module": name.strip(), "self_us": int(self_us), "cumulative_us": int(cumul), "depth": depth})
    return rows


def dedupe(rows: List[Dict[str, object]]) -> List[Dict[str, object]]:
    """One row per module name (failed optional imports such as `nt` appear repeatedly)."""
    seen: Dict[str, Dict[str, object]] = {}
    for row in rows:
        if row["module"] in seen:
            seen[str(row["module"])]["self_us"] = int(seen[str(row["module"])]["self_us"]) + int(row["self_us"])
        else:
            seen[str(row["module"])] = dict(row)
    return list(seen.values())


def importtime(argv: List[str], env: Dict[str, str]) -> List[Dict[str, object]]:
    done = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"importtime run failed: {done.stderr[-500:]}")
    return parse_importtime(done.stderr)


# Modules `generate` needs beyond the interpreter's own start-up: galyleo's generate path,
# jinja2 (+ markupsafe) and the stdlib modules they import at module level.
# Checked in the run without shiv (shiv's own imports are listed apart).
NOT_NEEDED_BY_GENERATE = ("requests", "urllib3", "charset_normalizer", "idna", "certifi", "ssl", "socket",
                          "http", "email", "secrets", "galyleo.launch", "galyleo.satellite", "galyleo.slurm",
                          "galyleo.records", "subprocess", "signal")


def imports(refs: Dict[str, str], module: str) -> Dict[str, object]:
    """Section 7: what `generate` from the pyz imports that generate does not need."""
    root = os.path.join(WORK, "shiv-warm")
    env = env_for(root)
    site = unpacked_site(root, PYZ)
    pyz_rows = importtime([PYTHON, PYZ, *generate_args(module)], env)
    direct_rows = importtime(direct_generate(site, module), env)
    bare_rows = importtime([PYTHON, "-c", "pass"], env)
    jinja_rows = importtime([PYTHON, "-c", on_path(site, "import jinja2; jinja2.Template('x{{ y }}').render(y=1)")],
                            env)
    print_rows = {r["module"] for r in importtime([PYTHON, refs["print"]], env)}
    beyond_print = {}
    for label, args in (("--version", ["--version"]), ("help", ["help"])):
        rows = importtime([PYTHON, PYZ, *args], env)
        extra = dedupe([r for r in rows if r["module"] not in print_rows])
        beyond_print[label] = {"modules": extra, "self_us": sum(int(r["self_us"]) for r in extra)}
    direct = {r["module"] for r in direct_rows}
    bare = {r["module"] for r in bare_rows}
    jinja = {r["module"] for r in jinja_rows}
    shiv_only = dedupe([r for r in pyz_rows if r["module"] not in direct])
    galyleo_extra = dedupe([r for r in direct_rows if r["module"] not in jinja and r["module"] not in bare])
    flagged = [r for r in direct_rows if str(r["module"]).startswith(NOT_NEEDED_BY_GENERATE)
               and r["module"] not in bare]
    total_us = sum(int(r["self_us"]) for r in pyz_rows)
    return {
        "pyz_modules": len(pyz_rows), "pyz_import_us": total_us,
        "direct_modules": len(direct_rows), "direct_import_us": sum(int(r["self_us"]) for r in direct_rows),
        "jinja_render_modules": len(jinja_rows), "jinja_import_us": sum(int(r["self_us"]) for r in jinja_rows),
        "shiv_bootstrap_only": shiv_only,
        "shiv_bootstrap_only_us": sum(int(r["self_us"]) for r in shiv_only),
        "galyleo_beyond_jinja": galyleo_extra,
        "galyleo_beyond_jinja_us": sum(int(r["self_us"]) for r in galyleo_extra),
        "flagged_network_or_launch": flagged,
        "beyond_printing_reference": beyond_print,
        "top_cumulative": sorted(pyz_rows, key=lambda r: -int(r["cumulative_us"]))[:25],
    }
