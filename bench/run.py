#!/usr/bin/env python3
"""`make bench`: start-up, launch latency, time to a usable session and scale, as ratios.

Each figure is paired with a baseline measured in the same run. Timings are measured and
reported, never asserted. Writes bench/results/<UTC stamp>.{md,json} and latest.{md,json}.
Needs dist/galyleo.pyz (make pyz) and the test cluster (make harness); runs as root,
galyleo itself as the harness's unprivileged user. About 8-12 minutes; --quick: about 4.
Usage: bench/run.py [--quick] [--only 1,2,3,4,5,6,7,8] [--route-delay 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any, Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import PYZ, WORK, Figure, log, stats  # noqa: E402

REPS_FULL = {"startup": 20, "cold": 10, "launch": 12, "floor_sbatch": 16, "floor_jupyter": 8,
             "session": 5, "session_delay": 3, "apps": 3}
REPS_QUICK = {"startup": 10, "cold": 5, "launch": 5, "floor_sbatch": 5, "floor_jupyter": 5,
              "session": 3, "session_delay": 2, "apps": 1}
SCALE = (1, 10, 30)
APPS = ("lab", "vscode")  # section 8, in this order each round


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (about 3 minutes)")
    parser.add_argument("--only", default="1,2,3,4,5,6,7,8", help="comma list of sections to run")
    parser.add_argument("--route-delay", type=float, default=3.0, help="route delay D for section 5 (s)")
    parser.add_argument("--wait-quiet", type=float, default=120,
                        help="wait up to this many seconds for the load average to drop below 1.5 first")
    parser.add_argument("--scale", default=",".join(map(str, SCALE)), help="concurrent launches for section 6")
    return parser.parse_args(argv)


def load_note(out: dict, label: str) -> None:
    """1-minute load average at each section boundary: other work on the machine shows here."""
    out.setdefault("load", []).append([label, os.getloadavg()[0]])


def wait_quiet(seconds: float, threshold: float = 1.5) -> float:
    """Wait up to `seconds` for the 1-minute load average to drop below `threshold`."""
    deadline = time.time() + seconds
    while os.getloadavg()[0] >= threshold and time.time() < deadline:
        time.sleep(5)
    return os.getloadavg()[0]


def med(values: List[float]) -> float:
    return float(statistics.median(values))


def section_startup(reps: Dict[str, int], only: set, module: str, out: dict) -> List[Figure]:
    import refs
    import startup

    figures: List[Figure] = []
    if not only & {"1", "2", "7"}:
        return figures
    log("building the reference zipapps with the same shiv and flags")
    references = refs.build_references()
    out["shiv"] = refs.shiv_version()
    if "1" in only or "2" in only or "7" in only:
        figs, detail = startup.startup(references, module, reps["startup"])
        out["startup"] = detail
        figures += figs if "1" in only else []
    if "2" in only:
        figs, detail = startup.cold(references, module, reps["cold"])
        out["cold"] = detail
        figures += figs
    if "7" in only:
        log("import profile of generate")
        out["imports"] = startup.imports(references, module)
        out["generate_phases"] = startup.phases(module, reps["startup"])
    return figures


def section_launch(user, ledger, reps: int, out: dict) -> List[Figure]:
    from cluster_bench import BASH_ORIGINAL_LAUNCH, alias_of, disturbed, standin_mark, wait_standin_clean

    log(f"launch latency: {reps} interleaved reps of launch / sbatch / import / HTTPS (as {user.user})")
    before = wait_standin_clean()
    result = user.run("launch-bench", reps=reps, warmup=1)
    rows = result["rows"]
    out["launch_failures"] = result["failures"]
    out["launch_disturbed"] = disturbed(before, standin_mark())
    for job, url, script in result["submitted"]:
        ledger.add(job, alias_of(url) if url else "", script)
    for row in rows:
        ledger.add(row.get("sbatch_job", ""), row.get("https_alias", ""))
    left = ledger.settle_aliases({alias_of(r["url"]) for r in rows} | {alias_of(r["direct_url"]) for r in rows})
    rows = [r for r in rows if not r["warmup"]]
    out["launch"] = {"rows": rows, "aliases_left_after_cancel": [r["alias"] for r in left]}
    launch = [r["launch"] for r in rows]
    direct = [r["launch_direct"] for r in rows]
    nopreflight = [r["launch_nopreflight"] for r in rows]
    parts = {k: [r[k] for r in rows] for k in ("import", "sbatch", "https")}
    floor = sum(med(v) for v in parts.values())
    floor_stats = {"median": floor, "min": sum(min(v) for v in parts.values()),
                   "parts": {k: stats(v) for k, v in parts.items()}}
    return [
        Figure("3 launch", "launch until URL printed", launch, "import jinja2+requests + sbatch + 2 HTTPS",
               floor, floor_stats, 1.2, goal_text="<= 1.2x"),
        Figure("3 launch", "launch until URL printed", launch, "bash original (fixed)", BASH_ORIGINAL_LAUNCH,
               None, 1.5, goal_text="<= 1.5x"),
        Figure("3 launch", "launch until URL printed, unpacked, no shiv bootstrap", direct,
               "import jinja2+requests + sbatch + 2 HTTPS", floor, floor_stats,
               note="diagnostic: the same launch from the unpacked site-packages"),
        Figure("3 launch", "launch --no-preflight until URL printed", nopreflight,
               "import jinja2+requests + sbatch + 2 HTTPS", floor, floor_stats,
               note="diagnostic: without the module-load probe on the login node"),
        Figure("3 launch", "baseline part: python -c 'import jinja2, requests'", parts["import"]),
        Figure("3 launch", "baseline part: bare sbatch of the same script", parts["sbatch"]),
        Figure("3 launch", "baseline part: getlink + destroytoken (one TLS connection)", parts["https"]),
    ]


def section_sessions(user, ledger, reps: Dict[str, int], delay: float, out: dict) -> List[Figure]:
    """Section 5. The floor runs are interleaved with the sessions (one floor job before each
    session), so background load on this shared machine hits both alike."""
    import satellite_client as sat

    previous = sat.config().get("route_delay", 0)
    runs: Dict[str, List[dict]] = {}
    fs: List[dict] = []
    fj: List[dict] = []
    disturbed: List[dict] = []
    per_round = max(1, -(-reps["floor_sbatch"] // (reps["session"] + reps["session_delay"])))
    try:
        for label, route_delay, count in (("0", 0.0, reps["session"]), ("D", delay, reps["session_delay"])):
            log(f"time to a usable session, route delay {route_delay:g} s: {count} sessions, one at a time, "
                "each after one floor job")
            runs[label] = []
            retries = 2
            while len(runs[label]) < count:
                fs += user.run("floor-sbatch", reps=per_round)["rows"]
                fj += user.run("floor-jupyter", reps=1)["rows"]
                result = measured(user, ledger, route_delay, retries > 0, {"route_delay": route_delay}, disturbed)
                if result is None:
                    retries -= 1
                    continue
                runs[label].append(result)
    finally:
        sat.configure(route_delay=previous)
    for row in fs + fj:
        ledger.add(row["job"])
    first_line = [r["first_line"] for r in fs]
    jupyter = [r["job_start_to_answer"] for r in fj]
    floor = med(first_line) + med(jupyter)
    out["floor"] = {"sbatch_first_line": fs, "jupyter_cold": fj, "floor": floor}
    out["sessions_disturbed"] = disturbed
    out["sessions"] = runs
    figures = [
        Figure("5 usable session", "floor part: sbatch until the job's first line", first_line),
        Figure("5 usable session", "floor part: module load + jupyter lab until it answers, in a job", jupyter,
               note=f"module load {fmt_med([r['module_load'] for r in fj])}"),
    ]
    for label, route_delay in (("0", 0.0), ("D", delay)):
        rows = [r["rows"][0] for r in runs[label] if r["rows"]]
        usable = [r["usable"] for r in rows if r.get("usable")]
        anomalies = [a for r in rows for a in r["anomalies"]]
        figures.append(Figure(
            "5 usable session", f"launch until JupyterLab through the proxy, route delay {route_delay:g} s", usable,
            "floor (sbatch first line + Jupyter cold start)", floor, None, route_delay + 1.0, "over",
            f"<= floor + {route_delay + 1:g} s",
            note=f"error pages/empty replies seen: {len(anomalies)}" + (f" ({anomalies[0]})" if anomalies else "")))
    return figures


def measured(user, ledger, route_delay: float, retry: bool, what: Dict[str, object], disturbed: List[dict],
             settle_timeout: float = 150, **how: Any) -> Optional[dict]:
    """One session (cluster_bench.sessions with n=1 and HOW) with the stand-in's route delay set
    again (another user's /reset clears it); None when another user of the shared stand-in
    disturbed it and RETRY allows measuring again (WHAT and the reason appended to DISTURBED)."""
    import satellite_client as sat
    from cluster_bench import sessions

    sat.configure(route_delay=route_delay)
    result = sessions(user, ledger, 1, interval=0.1, settle_timeout=settle_timeout, **how)
    result["route_delay_seen"] = sat.config().get("route_delay")
    reason = disturbance(result, route_delay)
    if reason and retry:
        disturbed.append({**what, "reason": reason, "result": result})
        log(f"  session disturbed ({reason}); measuring again")
        return None
    return result


def disturbance(result: dict, route_delay: float) -> str:
    """Why a session's figure is not galyleo's: the shared stand-in was reset or faulted under it."""
    if result.get("disturbed"):
        return str(result["disturbed"])
    if result.get("route_delay_seen") != route_delay:
        return f"route delay changed to {result.get('route_delay_seen')} by someone else"
    for row in result["rows"]:
        if not row.get("usable") and any("Please see documentation" in a for a in row["anomalies"]):
            return "alias unknown to the stand-in (another test's POST /reset)"
    return ""


def section_apps(user, ledger, reps: int, modules: str, out: dict) -> List[Figure]:
    """Section 8: launch until the app is usable from the laptop, -i vscode against -i lab, both
    with the same -e (the harness's VSCODE_MODULES) so the app is the only difference;
    interleaved lab, vscode, lab, ... so background load hits both alike."""
    import satellite_client as sat
    from cluster_bench import UserSide

    previous = sat.config().get("route_delay", 0)
    runs: Dict[str, List[dict]] = {app: [] for app in APPS}
    disturbed: List[dict] = []
    retries = 2
    log(f"VS Code vs JupyterLab: {reps} sessions each, interleaved, -e {modules}")
    try:
        while any(len(runs[app]) < reps for app in APPS):
            for app in APPS:
                result = measured(user, ledger, 0.0, retries > 0, {"app": app}, disturbed, settle_timeout=180,
                                  app=app, launch_args=UserSide.launch_args_for(modules, "-i", app))
                if result is None:
                    retries -= 1
                    continue
                runs[app].append(result)
                row = result["rows"][0] if result["rows"] else {}
                log(f"  {app}: usable {fmt_s(row.get('usable'))} after launch started")
    finally:
        sat.configure(route_delay=previous)
    out["apps"] = {"modules": modules, "runs": runs, "disturbed": disturbed}
    rows = {app: [r["rows"][0] for r in runs[app] if r["rows"]] for app in APPS}

    def col(app: str, key: str) -> List[float]:
        return [r[key] for r in rows[app] if r.get(key) is not None]

    lab = col("lab", "usable")
    lab_stats = {"median": med(lab), "min": min(lab), "max": max(lab)} if lab else None
    failed = {app: sum(1 for r in rows[app] if r.get("usable") is None) for app in APPS}
    figures = [
        Figure("8 vscode", "launch -i lab until JupyterLab's page through the proxy", lab,
               note=f"-e {modules}; not usable: {failed['lab']}"),
        Figure("8 vscode", "launch -i vscode until the workbench page and VS Code's websocket keep-alive",
               col("vscode", "usable"), "-i lab, same -e, same run", med(lab) if lab else None, lab_stats,
               note=f"not usable: {failed['vscode']}"),
        Figure("8 vscode", "  of which: launch -i vscode until the workbench page", col("vscode", "page")),
        Figure("8 vscode", "  of which: workbench page -> VS Code's websocket open (101)",
               [r["ws_open"] - r["page"] for r in rows["vscode"] if r.get("ws_open") and r.get("page")]),
        Figure("8 vscode", "  of which: websocket open -> first keep-alive",
               [r["usable"] - r["ws_open"] for r in rows["vscode"] if r.get("usable") and r.get("ws_open")],
               note="the server's keep-alive timer, VS Code's KeepAliveSendTime of 5 s"),
        Figure("8 vscode", "launch -i vscode until VS Code's websocket open (without the keep-alive timer)",
               col("vscode", "ws_open"), "-i lab, same -e, same run", med(lab) if lab else None, lab_stats),
    ]
    for app in APPS:
        figures += [
            Figure("8 vscode", f"-i {app}: job start -> redeemed", col(app, "stamp:redeemed"),
                   note="vscode: includes code-server's start, asked for by the job's readiness check through "
                   "the proxy" if app == "vscode" else ""),
            Figure("8 vscode", f"-i {app}: redeemed -> page served", col(app, "redeem_to_page")),
        ]
    return [f for f in figures if f.samples]


def apps_md(out: dict) -> List[str]:
    apps = out.get("apps")
    if not apps:
        return []
    lines = ["## VS Code vs JupyterLab (section 8)", "",
             f"One session at a time, `-e {apps['modules']}` for both, interleaved lab, vscode, ...; times from the "
             "start of `galyleo launch` (as the test user on `login`). Usable: lab = JupyterLab's page through the "
             "proxy; vscode = the workbench page and VS Code's websocket delivering its first keep-alive.", "",
             "| app | job | launch | URL -> job start | job start -> redeemed | of which modules loaded -> ready "
             "(app start) | redeemed -> page | page | websocket open | usable | anomalies |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for app in APPS:
        for result in apps["runs"][app]:
            for r in result["rows"]:
                start = r["stamp:jupyter-ready"] - r["stamp:modules"] \
                    if r.get("stamp:jupyter-ready") is not None and r.get("stamp:modules") is not None else None
                times = [fmt_s(r.get(key)) for key in ("launch", "url_to_job_start", "stamp:redeemed")]
                times += [fmt_s(start)] + [fmt_s(r.get(key)) for key in ("redeem_to_page", "page", "ws_open", "usable")]
                seen = f"{len(r['anomalies'])}" + (f" ({r['anomalies'][0]})" if r["anomalies"] else "")
                lines.append(f"| {app} | {r['job']} | {' | '.join(times)} | {seen} |")
    if apps["disturbed"]:
        lines += ["", "Measured again (disturbed by another user of the shared stand-in): "
                  + "; ".join(f"{d['app']}: {d['reason']}" for d in apps["disturbed"])]
    return lines + [""]


def fmt_s(value: Optional[float]) -> str:
    return f"{value:.2f} s" if value is not None else "-"


def fmt_med(values: List[float]) -> str:
    return f"{med(values):.2f} s" if values else "-"


def section_stamps(out: dict) -> List[Figure]:
    rows = [r["rows"][0] for label in ("0", "D") for r in out.get("sessions", {}).get(label, []) if r["rows"]]
    rows += [row for s in out.get("scale", []) if s["n"] == 1 for row in s["rows"]]
    rows = [r for r in rows if r.get("usable")]

    def col(key: str) -> List[float]:
        return [r[key] for r in rows if r.get(key) is not None]

    def diff(a: str, b: str) -> List[float]:
        return [r[b] - r[a] for r in rows if r.get(a) is not None and r.get(b) is not None]

    figures = [
        Figure("4 in the job", "readiness detection: Jupyter answering -> redeem returned",
               col("jupyter_answering_to_redeemed"), goal=0.25, goal_kind="max", goal_text="<= 0.25 s",
               note="Jupyter's 'is running at' log time to the stand-in's end of the redeem call"),
        Figure("4 in the job", "  of which: Jupyter answering -> job's poll sees it",
               col("jupyter_answering_to_ready_stamp")),
        Figure("4 in the job", "  of which: redeem call (stamps jupyter-ready -> redeemed)",
               diff("stamp:jupyter-ready", "stamp:redeemed")),
        Figure("4 in the job", "launch -> URL printed", col("launch")),
        Figure("4 in the job", "URL printed -> job starts (queue, dispatch)", col("url_to_job_start"),
               note="negative: the job started before launch had finished linktoken and printed"),
        Figure("4 in the job", "job start -> registered (token read)", col("stamp:registered")),
        Figure("4 in the job", "registered -> modules loaded (init, reset, load)",
               diff("stamp:registered", "stamp:modules")),
        Figure("4 in the job", "modules loaded -> jupyter-ready (Jupyter start + poll)",
               diff("stamp:modules", "stamp:jupyter-ready")),
        Figure("4 in the job", "job start -> redeemed", col("stamp:redeemed")),
        Figure("4 in the job", "redeemed -> page served to the client (route delay + poll)",
               [r["redeem_to_page"] for r in rows if r.get("redeem_to_page") is not None and
                r in [x["rows"][0] for x in out.get("sessions", {}).get("0", []) if x["rows"]]],
               note="route delay 0 only"),
    ]
    return [f for f in figures if f.samples]


def section_scale(user, ledger, sizes: List[int], out: dict) -> List[Figure]:
    from cluster_bench import node_capacity, sessions

    results = []
    figures: List[Figure] = []
    out["scale_disturbed"] = []
    for n in sizes:
        cap = node_capacity()
        log(f"scale: {n} concurrent launches "
            f"(the {cap['nodes']} nodes fit {cap['fits_1cpu_1gb']} more one-CPU 1-GB sessions)")
        result = sessions(user, ledger, n, interval=0.5 if n > 1 else 0.1, settle_timeout=200)
        if result["disturbed"]:
            log(f"  disturbed ({result['disturbed']}); measuring again")
            out["scale_disturbed"].append({"n": n, "reason": result["disturbed"], "result": result})
            result = sessions(user, ledger, n, interval=0.5 if n > 1 else 0.1, settle_timeout=200)
        starts, ends = result["starts"], result["ends"]
        readies = [r for r in result["readies"] if r]
        result["all_urls_s"] = max(ends) - min(starts) if ends else None
        result["all_ready_s"] = (max(readies) - min(starts)) if readies else None
        result["n_ready"] = len(readies)
        result["n_pending"] = sum(1 for r in result["rows"] if r["pending_reason"])
        results.append(result)
        figures.append(Figure("6 scale", f"{n} concurrent: launch latency (each)",
                              [r["launch"] for r in result["rows"]]))
    out["scale"] = results
    one = next((r for r in results if r["n"] == 1 and r["all_ready_s"]), None)
    for r in results:
        if r["all_ready_s"] and r["n_ready"]:
            figures.append(Figure(
                "6 scale", f"{r['n']} concurrent: until all {r['n_ready']} runnable sessions usable, per session",
                [r["all_ready_s"] / r["n_ready"]], "1 session", one["all_ready_s"] if one else None,
                note=f"all usable after {r['all_ready_s']:.1f} s; {r['n_pending']} pending"))
    return figures


def scale_md(out: dict) -> List[str]:
    if not out.get("scale"):
        return []
    lines = ["## Scale (section 6)", "",
             "| launches | nodes fit (1 CPU, 1 GB) | URLs printed (all) | launch each: median / max | usable | "
             "until all usable | per usable session | marginal per extra session | pending (reason) | "
             "error pages / empty replies |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    one = next((r["all_ready_s"] for r in out.get("scale", []) if r["n"] == 1 and r["all_ready_s"]), None)
    for r in out.get("scale", []):
        lat = [row["launch"] for row in r["rows"]]
        reasons = sorted({row["pending_reason"] for row in r["rows"] if row["pending_reason"]})
        anomalies = sum(len(row["anomalies"]) for row in r["rows"])
        per = f"{r['all_ready_s'] / r['n_ready']:.2f} s" if r["all_ready_s"] and r["n_ready"] else "-"
        marginal = f"{(r['all_ready_s'] - one) / (r['n_ready'] - 1):.2f} s" \
            if one and r["all_ready_s"] and r["n_ready"] > 1 else "-"
        lines.append(f"| {r['n']} | {r['node_before']['fits_1cpu_1gb']} | {r['all_urls_s']:.2f} s | "
                     f"{med(lat):.2f} / {max(lat):.2f} s | {r['n_ready']} | "
                     f"{(r['all_ready_s'] or 0):.1f} s | {per} | {marginal} | {r['n_pending']} "
                     f"({', '.join(reasons) or '-'}) | {anomalies} |")
    return lines + [""]


def imports_md(out: dict) -> List[str]:
    imp = out.get("imports")
    if not imp:
        return []
    lines = ["## Imports of `generate` from the pyz (section 7)", "",
             f"{imp['pyz_modules']} modules, {imp['pyz_import_us'] / 1000:.1f} ms of import time (self, summed) "
             f"from the pyz; {imp['direct_modules']} modules, {imp['direct_import_us'] / 1000:.1f} ms run from the "
             f"unpacked site-packages without shiv; a bare jinja2 render imports {imp['jinja_render_modules']} "
             f"({imp['jinja_import_us'] / 1000:.1f} ms).", "",
             f"Imported only because of shiv's bootstrap (not needed by generate), "
             f"{imp['shiv_bootstrap_only_us'] / 1000:.1f} ms self time in total:", "",
             ", ".join(f"`{r['module']}` {r['self_us'] / 1000:.1f}" for r in imp["shiv_bootstrap_only"]), "",
             f"Imported by galyleo's generate beyond a bare jinja2 render, "
             f"{imp['galyleo_beyond_jinja_us'] / 1000:.1f} ms self time:", "",
             ", ".join(f"`{r['module']}` {r['self_us'] / 1000:.1f}" for r in imp["galyleo_beyond_jinja"]), "",
             *[f"`{label}` imports beyond the printing reference pyz ({v['self_us'] / 1000:.1f} ms self time): "
               + ", ".join(f"`{m['module']}` {m['self_us'] / 1000:.1f}" for m in v["modules"]) + "\n"
               for label, v in imp.get("beyond_printing_reference", {}).items()],
             "Network or launch-only modules imported by generate: "
             + (", ".join(f"`{r['module']}`" for r in imp["flagged_network_or_launch"]) or "none") + ".", ""]
    phases = out.get("generate_phases")
    if phases:
        lines += ["Where one `generate` spends its time in process (fresh interpreter each, unpacked site-packages, "
                  "no shiv; median of runs; `bench/profile_generate.py`):", "",
                  "| phase | median | min | max |", "|---|---|---|---|"]
        lines += [f"| {name} | {v['median'] * 1000:.1f} ms | {v['min'] * 1000:.1f} ms | {v['max'] * 1000:.1f} ms |"
                  for name, v in phases.items() if name != "script bytes"]
        lines.append("")
    return lines


def session_md(out: dict) -> List[str]:
    lines = []
    for label, runs in out.get("sessions", {}).items():
        for r in runs:
            for row in r["rows"]:
                if row["anomalies"]:
                    lines.append(f"- route delay {label}: job {row['job']}: {len(row['anomalies'])} non-waiting "
                                 f"replies before the page, first: {row['anomalies'][0]}")
    if "floor" not in out and not lines:
        return []
    head = ["## Usable session (section 5)", "",
            f"Floor: {out['floor']['floor']:.2f} s. Client polls every 0.1 s; the stand-in's waiting page is "
            "expected, anything else is listed here."] if "floor" in out else []
    return head + [""] + (lines or ["- no error page, empty reply or connection error seen in any session."]) + [""]


def cleanup_md(out: dict) -> List[str]:
    c = out.get("cleanup")
    if not c:
        return []
    return ["## Clean-up", "",
            f"Jobs caused by the bench: {c['jobs']}; still queued or running at the end: {c['jobs_left']}. "
            f"Aliases of the bench left in the stand-in at the end: {c['aliases_left']}. Aliases the bench had to "
            f"destroy itself (their jobs were cancelled while pending, so no job trap ran): "
            f"{len(c['destroyed_by_bench'])}. Session files of the bench removed from the test user's ~/.galyleo: "
            f"{c.get('files_removed', '-')}. Other users' jobs at the end: {len(c['foreign_jobs'])}.", ""]


def vscode_modules(env: Dict[str, str]) -> str:
    """The harness's -e value with Jupyter and code-server (tests/harness/vscode-up: idempotent, about
    2 s when installed; waits for a build still running in the background)."""
    import subprocess

    from common import REPO

    done = subprocess.run(["bash", os.path.join(REPO, "tests", "harness", "vscode-up")], capture_output=True,
                          text=True, timeout=1200)
    if done.returncode != 0:
        raise RuntimeError(f"tests/harness/vscode-up failed: {(done.stderr or done.stdout)[-1500:]}")
    from cluster_bench import harness_env

    return harness_env()["VSCODE_MODULES"]


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    only = set(args.only.split(","))
    reps = REPS_QUICK if args.quick else REPS_FULL
    if not os.path.exists(PYZ):
        sys.exit("bench: dist/galyleo.pyz is missing: run `make pyz`")
    os.makedirs(WORK, exist_ok=True)
    log(f"load average {os.getloadavg()[0]:.2f}; waiting up to {args.wait_quiet:g} s for < 1.5")
    wait_quiet(args.wait_quiet)
    started = time.time()
    from cluster_bench import Ledger, UserSide, foreign_jobs, harness_env, node_capacity

    env = harness_env()
    for key in ("SATELLITE_DOMAIN", "SATELLITE_CA", "SATELLITE_CONTROL"):
        os.environ[key] = env[key]
    out: Dict[str, object] = {"mode": "quick" if args.quick else "full", "reps": reps,
                              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started))}
    load_note(out, "start")
    figures = section_startup(reps, only, env["JUPYTER_MODULE"], out)
    load_note(out, "after start-up sections")
    cluster_sections = only & {"3", "4", "5", "6", "8"}
    if cluster_sections:
        ledger = Ledger()
        user = UserSide(env)
        out["node_at_start"] = node_capacity()
        out["foreign_jobs_at_start"] = foreign_jobs(ledger)
        try:
            user.run("warm")  # unpack the pyz once for the test user: launches below are warm
            if "3" in only:
                figures += section_launch(user, ledger, reps["launch"], out)
                load_note(out, "after launch")
            if "5" in only or "4" in only:
                figures += section_sessions(user, ledger, reps, args.route_delay, out)
                load_note(out, "after sessions")
            if "6" in only:
                figures += section_scale(user, ledger, [int(n) for n in args.scale.split(",")], out)
                load_note(out, "after scale")
            if "8" in only:
                figures += section_apps(user, ledger, reps["apps"], vscode_modules(env), out)
                load_note(out, "after vscode")
            figures += section_stamps(out)
        finally:
            ledger.cancel(set(ledger.jobs))
            ledger.settle_aliases(set(ledger.aliases), timeout=5)
            removed = ledger.remove_files()
            out["cleanup"] = {"jobs": len(ledger.jobs), "jobs_left": sorted(ledger.live_jobs()),
                              "aliases_left": [r["alias"] for r in ledger.my_aliases_left()],
                              "destroyed_by_bench": ledger.destroyed_by_bench,
                              "foreign_jobs": foreign_jobs(ledger), "files_removed": removed}
            user.close()
    import report

    out["total_seconds"] = time.time() - started
    out["machine"] = report.machine(str(out.get("shiv", "")), env["JUPYTER_MODULE"])
    out["figures"] = [f.as_dict() for f in figures]
    sections = session_md(out) + scale_md(out) + apps_md(out) + imports_md(out) + cleanup_md(out)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started)) + ("-quick" if args.quick else "")
    path = report.write(out, figures, sections, stamp)
    log(f"wrote {path} and latest.md/latest.json ({out['total_seconds']:.0f} s)")
    print(open(path).read())
    return 0


if __name__ == "__main__":
    sys.exit(main())
