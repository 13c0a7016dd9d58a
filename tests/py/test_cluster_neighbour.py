# ruff: noqa: F811
"""A hostile neighbour on the real local cluster (issue 24): the second unprivileged user
(GALYLEO_NEIGHBOUR_USER, `mallory`) on the same hosts as the test user's sessions, doing
what the review did to them. Each test fails on the galyleo before the issue's fix.

The hosts share one pid namespace without hidepid, so her `ps` on any host sees every
command line of every node, as on a real node; her servers bind in the node's own
network namespace (tests/harness/on), as her Slurm job on that node would.
"""

from __future__ import annotations

import json
import os
import pwd
import random
import re
import subprocess

import pytest
from cluster import (
    Cluster,
    Launched,
    neighbour,
    neighbour_call,
    neighbour_server,
    neighbour_watch,
    on,
    run_code,
    sat,
    stop,
    wait_for_page,
)
from faultkit import launched, run, site_config, spawn, wait_alias_gone, wait_alias_state, wait_no_jobs
from test_cluster_faults import cluster, launch  # noqa: F401 (its Cluster fixture, shadowed by the tests' parameters)

pytestmark = pytest.mark.cluster


def free_port() -> int:
    """A port above every ephemeral range, for one test's squatter."""
    return random.randint(61000, 64999)


def redeems_of(alias: str) -> list:
    return [c for c in sat.calls() if c.get("endpoint") == "redeemtoken" and alias in json.dumps(c.get("params"))]


# --- Items 1 and 4: nothing in argv; a squatter is not Jupyter; a stolen alias is no ready --------

def test_her_ps_during_start_up_and_use_shows_no_alias_port_or_token(cluster: Cluster, home: str) -> None:
    """Her watcher sees every command line from before the launch until a kernel ran: the
    session's Jupyter is there, but not its alias, its port or its token; nor does Slurm show them."""
    watcher, seen_path = neighbour_watch(cluster.env, cluster.nodes[0])
    session = {}
    try:
        done = launch(cluster, home)
        session = launched(done)
        port = wait_alias_state(session["alias"], ("mapped", "proxied"))["port"]
        browser = wait_for_page(session["url"], "JupyterLab")
        real = Launched(session["url"], session["job_id"], session["script"], session["output"], done.stdout)
        assert run_code(real, browser, "print(6*7)") == "42\n"
        slurm_view = "".join(
            subprocess.run(on(cluster.login, argv, neighbour(cluster.env)), capture_output=True, text=True,
                           timeout=60).stdout
            for argv in (["scontrol", "show", "job", session["job_id"]], ["squeue", "-h", "-o", "%all"]))
    finally:
        stop(watcher)
        if session:
            cluster.cancel(session["job_id"])
    seen = open(seen_path, encoding="utf-8", errors="replace").read()
    token = session["url"].split("token=")[1]
    assert "--no-browser" in seen and "ipykernel" in seen, "her watcher never saw the session's processes"
    assert session["job_id"] in slurm_view, slurm_view
    for text in (seen, slurm_view):
        assert session["alias"] not in text
        assert token not in text
        found = [line for line in text.splitlines() if re.search(rf"(?<![0-9]){port}(?![0-9])", line)]
        assert not found, found
    wait_no_jobs(home)
    wait_alias_gone(session["alias"])


def test_her_server_on_the_chosen_port_is_never_routed_nor_sent_the_token(cluster: Cluster, home: str) -> None:
    """The site's range is one port; her server takes it on every node the moment the user's Jupyter
    starts (before Jupyter binds), answering anyone like Jupyter. The job must not take it for its
    Jupyter: no redeem, no request to her at all, one clear error line."""
    port = free_port()
    config = site_config(cluster, home, port_min=port, port_max=port)
    victim = pwd.getpwnam(cluster.user).pw_uid
    squatters = [neighbour_server(cluster.env, node, port, victim) for node in cluster.nodes]
    session = {}
    try:
        session = launched(launch(cluster, home, config=config))
        wait_no_jobs(home, timeout=150)
    finally:
        for proc, _ in squatters:
            stop(proc)
        if session:
            cluster.cancel(session["job_id"])
    output = open(session["output"]).read()
    node = re.search(r"job \d+ on (\S+)", output).group(1)  # type: ignore[union-attr]
    served = dict(zip(cluster.nodes, (path for _, path in squatters)))
    bound = open(served[node]).read() if os.path.exists(served[node]) else None
    assert bound is not None, f"her server did not win the race on {node}: {output}"
    assert bound == "", f"her server was asked: {bound}"  # never the token, nor anything else
    assert redeems_of(session["alias"]) == [], output
    assert re.search(f"starting lab on [0-9.]+:{port} \\(attempt 1\\)", output), output  # free when chosen
    errors = [line for line in output.splitlines() if "error:" in line]
    assert len(errors) == 1 and f"no free port found between {port} and {port}" in errors[0], output
    wait_alias_gone(session["alias"])


def test_an_alias_she_redeemed_first_is_never_reported_ready(cluster: Cluster, home: str) -> None:
    """She redeems the user's alias before the job does, from another node, to her own server
    answering like Jupyter through the proxy. `launch --wait` must not say ready (its probe
    gets her answer), the job ends in one clear line, `status` says it failed, and nothing
    ever sends her the token."""
    port = free_port()
    other = cluster.nodes[-1]
    server, served = neighbour_server(cluster.env, other, port)
    proc = spawn(cluster, home, "launch", "-e", cluster.module, "-t", "00:10:00", "--wait")
    alias = job_id = ""
    try:
        lines = []
        while not lines or not lines[-1].startswith("https://"):
            line = proc.stdout.readline()  # type: ignore[union-attr]
            assert line, proc.communicate(timeout=60)
            lines.append(line.strip())
        job_id, url = lines[0].split()[3], lines[-1]
        alias, token = url.split("//")[1].split(".")[0], url.split("token=")[1]
        stolen = neighbour_call(cluster.env, other, "redeemtoken", token=alias, port=str(port))
        assert stolen.startswith("Success!"), stolen  # she is first: the job redeems once Jupyter answers
        out, err = proc.communicate(timeout=240)
    finally:
        stop(proc)
        stop(server)
        if job_id:
            cluster.cancel(job_id)
        if alias:
            neighbour_call(cluster.env, other, "destroytoken", token=alias)  # her route: only she can end it
    assert proc.returncode == 1, err
    assert "ready" not in err.replace("before the session was ready", ""), err
    assert f"job {job_id} ended (failed" in err, err
    wait_no_jobs(home)
    output = open(lines[2].split(": ", 1)[1]).read()
    errors = [line for line in output.splitlines() if "error:" in line]
    assert len(errors) == 1 and "the Satellite proxy would not route" in errors[0], output
    assert "Oops!" in errors[0], errors
    status = run(cluster, home, "status", job_id)
    assert re.search(r"ENDED \(failed", status.stdout), status.stdout
    assert token not in open(served).read()
    wait_alias_gone(alias)
