"""Runs as the unprivileged test user (Jupyter refuses root; sbatch jobs belong to a user).

Started once per batch by bench/cluster_bench.py on the login host (tests/harness/on), so its own cost is in
no figure: every timing here starts right before the timed command. Stdlib only
(Debian's /usr/bin/python3). Usage: userdriver.py COMMAND JSON-ARGS; prints JSON.

Commands:
  launch-bench  interleaved reps of: galyleo launch (then scancel), bare sbatch of the
                generated script (then scancel), python -c "import jinja2, requests",
                two bare HTTPS calls (getlink, destroytoken) on one connection.
  launch-many   N concurrent `galyleo launch`; start/end epoch and output of each.
  floor-sbatch  reps of: sbatch a one-line job, epoch of its first line minus before sbatch.
  floor-jupyter reps of: a job that loads the Jupyter module and starts jupyter lab,
                polling it every 50 ms; its own start-to-answer time.
"""

import glob
import http.client
import json
import os
import random
import ssl
import subprocess
import sys
import time

PY = sys.executable


def galyleo(args, cfg):
    return [PY, cfg["pyz"], *args]


def job_gone(job_ids, timeout=40.0):
    """Wait until squeue no longer shows any of the jobs as pending/running/completing."""
    deadline = time.time() + timeout
    ids = [j for j in job_ids if j]
    while ids and time.time() < deadline:
        out = subprocess.run(["squeue", "-h", "-j", ",".join(ids), "-o", "%i %T"],
                             capture_output=True, text=True).stdout
        live = [line.split()[0] for line in out.splitlines()
                if line.split()[1] not in ("COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY")]
        if not live:
            return True
        time.sleep(0.1)
    return not ids


def parse_launch(stdout):
    lines = stdout.strip().splitlines()
    fields = dict(line.split(": ", 1) for line in lines if line.startswith("Job "))
    job = lines[0].split()[3] if lines and lines[0].startswith("Submitted batch job") else ""
    return {"url": lines[-1] if lines else "", "job": job, "output": fields.get("Job output", ""),
            "script": fields.get("Job script", "")}


def alias_of(url):
    return url.split("://", 1)[-1].split(".", 1)[0]


def direct(args, cfg):
    """galyleo from the unpacked site-packages, without shiv's bootstrap (diagnostic)."""
    code = (f"import sys; sys.path.insert(0, {cfg['site_packages']!r}); "
            "from galyleo.cli import main; sys.exit(main(sys.argv[1:]))")
    return [PY, "-c", code, *args]


def time_launch(cfg, unpacked=False, extra=()):
    start = time.time()
    args = ["launch", *cfg["launch_args"], *extra]
    argv = direct(args, cfg) if unpacked else galyleo(args, cfg)
    t0 = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:  # another test may have injected a fault into the shared stand-in
        raise LaunchFailed(done.stderr.strip()[-300:])
    return elapsed, start, parse_launch(done.stdout)


class LaunchFailed(Exception):
    pass


def time_sbatch(script):
    t0 = time.perf_counter()
    done = subprocess.run(["sbatch", "--parsable", script], capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"sbatch failed: {done.stderr}")
    return elapsed, done.stdout.strip().split(";")[0]


def time_import(cfg):
    # The pyz's site-packages first on sys.path (set in the code: this machine's interpreter
    # runs a .pth at start-up that imports certifi, which PYTHONPATH would redirect).
    code = f"import sys; sys.path.insert(0, {cfg['site_packages']!r}); import jinja2, requests"
    t0 = time.perf_counter()
    subprocess.run([PY, "-c", code], check=True)
    return time.perf_counter() - t0


def time_https(cfg):
    """getlink then destroytoken, one TLS connection, as bare as a client gets."""
    t0 = time.perf_counter()
    context = ssl.create_default_context(cafile=cfg["ca"])
    conn = http.client.HTTPSConnection(cfg["manage_host"], 443, context=context, timeout=10)
    conn.request("GET", "/getlink.cgi")
    body = conn.getresponse().read().decode()
    alias = body.strip().splitlines()[-1].strip()
    conn.request("GET", f"/destroytoken.cgi?token={alias}")
    reply = conn.getresponse().read().decode()
    conn.close()
    elapsed = time.perf_counter() - t0
    if not body.startswith("Your token is") or not reply.startswith("Success"):
        raise LaunchFailed(f"bare HTTPS baseline failed (a fault injected by another test?): {body[:80]!r}")
    return elapsed, alias


SUBMITTED = []  # every (job id, URL) this driver caused, returned so the bench can check each


def launch_bench(cfg):
    script = os.path.join(cfg["workdir"], "generated.sh")
    with open(script, "w") as handle:
        handle.write(subprocess.run(galyleo(["generate", *cfg["launch_args"]], cfg), capture_output=True,
                                    text=True, check=True).stdout)
    rows, failures = [], []
    while len(rows) < cfg["reps"] + cfg.get("warmup", 1):
        try:
            rows.append(launch_rep(cfg, script, len(rows)))
        except LaunchFailed as exc:
            failures.append(str(exc))
            if len(failures) > 10:
                raise SystemExit(f"launch keeps failing: {failures[-3:]}") from None
            time.sleep(2)
    return {"rows": rows, "failures": failures, "submitted": SUBMITTED}


def launch_rep(cfg, script, rep):
    """One interleaved repetition; every job it submits is cancelled and waited for."""
    kinds = ["launch", "sbatch", "import", "https", "launch-direct", "launch-nopreflight"]
    row = {"rep": rep, "warmup": rep < cfg.get("warmup", 1)}
    jobs = []
    try:
        for kind in kinds[rep % len(kinds):] + kinds[:rep % len(kinds)]:
            if kind.startswith("launch"):
                extra = ["--no-preflight"] if kind == "launch-nopreflight" else []
                elapsed, start, launched = time_launch(cfg, unpacked=kind == "launch-direct", extra=extra)
                subprocess.run(["scancel", launched["job"]])
                jobs.append(launched["job"])
                SUBMITTED.append([launched["job"], launched["url"], launched["script"]])
                if kind == "launch":
                    row["launch"], row["launch_start"] = elapsed, start
                    row.update(launched)
                elif kind == "launch-nopreflight":
                    row["launch_nopreflight"] = elapsed
                else:
                    row["launch_direct"] = elapsed
                    row["direct_job"], row["direct_url"] = launched["job"], launched["url"]
            elif kind == "sbatch":
                row["sbatch"], row["sbatch_job"] = time_sbatch(script)
                subprocess.run(["scancel", row["sbatch_job"]])
                jobs.append(row["sbatch_job"])
                SUBMITTED.append([row["sbatch_job"], "", ""])
            elif kind == "import":
                row["import"] = time_import(cfg)
            else:
                row["https"], row["https_alias"] = time_https(cfg)
    finally:
        row["gone"] = job_gone(jobs)
    return row


def launch_many_timed(cfg):
    """N launches at once, one thread each; each latency is timed by its own thread."""
    import threading

    results = [None] * cfg["n"]

    def one(i, start):
        t0 = time.perf_counter()
        done = subprocess.run(galyleo(["launch", *cfg["launch_args"]], cfg), capture_output=True, text=True)
        elapsed = time.perf_counter() - t0
        results[i] = {"start": start, "end": start + elapsed, "latency": elapsed, "rc": done.returncode,
                      "stderr": done.stderr[-400:], **(parse_launch(done.stdout) if done.returncode == 0 else {})}

    threads = []
    for i in range(cfg["n"]):
        thread = threading.Thread(target=one, args=(i, time.time()))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    return {"launches": results}


def wait_line(path, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open(path) as handle:
                text = handle.read()
            if text.endswith("\n"):
                return text
        except FileNotFoundError:
            pass
        time.sleep(0.01)
    raise SystemExit(f"no output in {path} after {timeout} s")


def submit_script(cfg, name, body, rep):
    path = os.path.join(cfg["workdir"], f"{name}.sh")
    with open(path, "w") as handle:
        handle.write(body)
    out = os.path.join(cfg["workdir"], f"{name}-{rep}.out")
    if os.path.exists(out):
        os.unlink(out)
    start = time.time()
    done = subprocess.run(["sbatch", "--parsable", "-p", "debug", "-c", "1", "--mem=1G", "-t", "00:05:00",
                           "-o", out, path], capture_output=True, text=True, check=True)
    return start, done.stdout.strip().split(";")[0], out


def floor_sbatch(cfg):
    body = "#!/bin/bash\necho \"first-line ${EPOCHREALTIME}\"\n"
    rows = []
    for rep in range(cfg["reps"]):
        start, job, out = submit_script(cfg, "floor-sbatch", body, rep)
        line = wait_line(out)
        rows.append({"job": job, "start": start, "first_line": float(line.split()[1]) - start})
        job_gone([job])
    return {"rows": rows}


JUPYTER_FLOOR = r"""#!/bin/bash
t0="${EPOCHREALTIME}"
source /etc/profile.d/lmod.sh
module load %(module)s
t1="${EPOCHREALTIME}"
export JUPYTER_TOKEN=galyleo-bench-floor
port=$((61000 + RANDOM %% 4000))
jupyter lab --no-browser --ip=127.0.0.1 --port="${port}" --ServerApp.port_retries=0 >/dev/null 2>&1 &
pid=$!
until curl --silent --output /dev/null --max-time 2 "http://127.0.0.1:${port}/"; do
  kill -0 "${pid}" 2>/dev/null || { echo "jupyter-failed"; exit 1; }
  sleep 0.05
done
t2="${EPOCHREALTIME}"
echo "jupyter-cold ${t0} ${t1} ${t2}"
kill "${pid}"
wait "${pid}" || true
"""


def floor_jupyter(cfg):
    rows = []
    for rep in range(cfg["reps"]):
        start, job, out = submit_script(cfg, "floor-jupyter", JUPYTER_FLOOR % {"module": cfg["module"]}, rep)
        line = wait_line(out, timeout=120)
        fields = line.split()
        if fields[0] != "jupyter-cold":
            raise SystemExit(f"jupyter floor job failed: {line}")
        t0, t1, t2 = (float(x) for x in fields[1:4])
        rows.append({"job": job, "sbatch_to_job_start": t0 - start, "module_load": t1 - t0,
                     "jupyter_answers": t2 - t1, "job_start_to_answer": t2 - t0})
        job_gone([job])
    return {"rows": rows}


def warm(cfg):
    """Unpack the pyz once for this user, so every timed launch is warm."""
    return {"rc": subprocess.run(galyleo(["--version"], cfg), capture_output=True).returncode}


def site_packages(shiv_root):
    found = glob.glob(os.path.join(shiv_root, "galyleo.pyz_*", "site-packages"))
    return found[0] if found else ""


def main():
    command, cfg = sys.argv[1], json.loads(sys.argv[2])
    random.seed()
    if command != "warm":
        cfg["site_packages"] = site_packages(os.environ["SHIV_ROOT"])
    handler = {"launch-bench": launch_bench, "launch-many": launch_many_timed, "floor-sbatch": floor_sbatch,
               "floor-jupyter": floor_jupyter, "warm": warm}[command]
    json.dump(handler(cfg), sys.stdout)


if __name__ == "__main__":
    main()
