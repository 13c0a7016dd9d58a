"""The cluster as hosts (tests/harness/README.md, "Topology"): where Jupyter listens and
who can reach it, sessions on each node managed from login, what the proxy records as
the session's address, a node lost mid-session, and the single-host settings
(bind_address, proxy_address) that sites without a cluster network still use.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from typing import Dict, List

import pytest
from cluster import Browser, Cluster, manage_call, on, sat, slurm, wait_for_page
from faultkit import launched, run, site_config, wait_alias_gone, wait_alias_state, wait_no_jobs

pytestmark = pytest.mark.cluster


def addr(cluster: Cluster, host: str) -> str:
    return cluster.env[f"ADDR_{host.upper()}"]


def node_of(job_id: str, timeout: float = 60) -> str:
    """The node a running job was given (squeue on login)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        node = slurm("squeue", "-h", "-j", job_id, "-t", "RUNNING", "-o", "%N").stdout.strip()
        if node:
            return node
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} never ran")


def listeners(host: str, port: int) -> List[str]:
    """Local addresses listening on PORT on HOST (ss in that host's network)."""
    out = subprocess.run(on(host, ["ss", "-Hltn", f"sport = :{port}"]), capture_output=True, text=True,
                         check=True).stdout
    return [line.split()[3] for line in out.splitlines() if line.strip()]


def http_code_from(host: str, url: str) -> str:
    done = subprocess.run(on(host, ["curl", "-s", "-o", "/dev/null", "--max-time", "5", "-w", "%{http_code}", url]),
                          capture_output=True, text=True)
    return done.stdout.strip()


def launch(cluster: Cluster, home: str, *args: str, **kw) -> Dict[str, str]:
    return launched(run(cluster, home, "launch", "-e", cluster.module, "-t", "00:10:00", *args, **kw))


def test_jupyter_listens_on_the_node_address_reached_by_the_proxy_only(cluster: Cluster, home: str) -> None:
    session = launch(cluster, home)
    try:
        wait_for_page(session["url"], "JupyterLab")
        node = node_of(session["job_id"])
        record = sat.alias_record(session["alias"])
        port, node_addr = record["port"], addr(cluster, node)
        # Listening on the node's cluster address, and only there (never loopback, never all).
        assert listeners(node, port) == [f"{node_addr}:{port}"]
        # The laptop has no way to the node: the safety route fails it at once, locally.
        with pytest.raises(OSError):
            socket.create_connection((node_addr, port), timeout=3).close()
        # The proxy (and only through it the laptop) reaches the session.
        assert http_code_from("proxy", f"http://{node_addr}:{port}/api/status") in ("200", "403")
    finally:
        cluster.cancel(session["job_id"])
    wait_no_jobs(home)
    wait_alias_gone(session["alias"])


def test_redeem_registers_the_node_address(cluster: Cluster, home: str) -> None:
    session = launch(cluster, home)
    try:
        record = wait_alias_state(session["alias"], ("mapped", "proxied"))
        node_addr = addr(cluster, node_of(session["job_id"]))
        assert record["host"] == node_addr
        assert node_addr not in (addr(cluster, "proxy"), addr(cluster, "login"), cluster.env["PROXY_PUBLIC_ADDR"])
        redeems = [c for c in sat.calls()
                   if c["endpoint"] == "redeemtoken" and c["params"].get("token") == session["alias"]]
        assert [c["client_ip"] for c in redeems] == [node_addr]
        # galyleo asked for the alias from login, over the cluster network.
        getlink = [c for c in sat.calls() if c["endpoint"] == "getlink" and c["reply"]
                   and session["alias"] in c["reply"]]
        assert [c["client_ip"] for c in getlink] == [addr(cluster, "login")]
        assert sat.routes()[session["alias"]] == f"{node_addr}:{record['port']}"
    finally:
        cluster.cancel(session["job_id"])
    wait_no_jobs(home)
    wait_alias_gone(session["alias"])


def test_node_filling_sessions_run_on_both_nodes_and_login_manages_each(cluster: Cluster, home: str) -> None:
    cpus = "16"  # slurm-up declares CPUs=16 per node: one such session fills a node
    sessions = [launch(cluster, home, "-c", cpus), launch(cluster, home, "-c", cpus)]
    try:
        nodes = [node_of(s["job_id"]) for s in sessions]
        assert sorted(nodes) == sorted(cluster.nodes), nodes
        for session in sessions:
            wait_for_page(session["url"], "JupyterLab")
        for session, node in zip(sessions, nodes):
            job = session["job_id"]
            assert run(cluster, home, "open", job).stdout.strip() == session["url"]
            status = run(cluster, home, "status", job, "--json")
            doc = json.loads(status.stdout)
            assert doc["state"] == "RUNNING" and doc["node"] == node, doc
            assert "Jupyter Server" in run(cluster, home, "logs", job).stdout
        for session in sessions:
            stopped = run(cluster, home, "stop", session["job_id"])
            assert stopped.returncode == 0 and f"stopped job {session['job_id']}" in stopped.stdout, stopped
    finally:
        for session in sessions:
            cluster.cancel(session["job_id"])
    wait_no_jobs(home)
    for session in sessions:
        wait_alias_gone(session["alias"])
        assert sat.destroy_count(session["alias"]) == 1


def test_single_host_settings_bind_address_and_proxy_address(cluster: Cluster, home: str) -> None:
    # A site without a resolvable node name sets bind_address; a login node that cannot
    # resolve <alias>.<domain> sets proxy_address (used by --wait). Here: node1's
    # address pinned with -C node1, and the proxy's cluster address.
    node = cluster.nodes[0]
    config = site_config(cluster, home, bind_address=addr(cluster, node), proxy_address=addr(cluster, "proxy"))
    done = run(cluster, home, "launch", "--wait", "-Q", "-e", cluster.module, "-t", "00:10:00", "-C", node,
               config=config, timeout=200)
    jobs = re.findall(r"ready: job (\d+)", done.stderr)
    try:
        assert done.returncode == 0, done.stderr
        alias = done.stdout.strip().split("//")[1].split(".")[0]
        record = sat.alias_record(alias)
        assert record["host"] == addr(cluster, node)
        assert listeners(node, record["port"]) == [f"{addr(cluster, node)}:{record['port']}"]
        wait_for_page(done.stdout.strip(), "JupyterLab", timeout=10)
    finally:
        for job in jobs:
            cluster.cancel(job)
        slurm("scancel", "-u", cluster.user, "-n", "galyleo", "-w", node)
    wait_no_jobs(home)


def netns_pids(host: str) -> List[int]:
    """Every process in HOST's network namespace: what dies when that machine does."""
    target = os.stat(f"/run/netns/galyleo-{host}").st_ino
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}/ns/net").st_ino == target:
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


def revive(cluster: Cluster, node: str) -> None:
    """Start the node's slurmd again and return it to service."""
    if not any(open(f"/proc/{p}/comm").read().strip() == "slurmd" for p in netns_pids(node)):
        subprocess.run(on(node, ["/usr/sbin/slurmd"]), check=True, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    deadline = time.time() + 60
    while time.time() < deadline:
        slurm("scontrol", "update", f"nodename={node}", "state=resume")
        state = slurm("sinfo", "-h", "-n", node, "-o", "%t").stdout.split()
        if state and state[0] in ("idle", "mix", "alloc"):
            return
        time.sleep(1)
    raise AssertionError(f"node {node} did not come back: {slurm('sinfo', '-n', node).stdout}")


def test_node_lost_mid_session(cluster: Cluster, home: str) -> None:
    node = cluster.nodes[-1]
    session = launch(cluster, home, "-C", node)
    alias = session["alias"]
    try:
        wait_alias_state(alias, ("mapped", "proxied"))
        assert node_of(session["job_id"]) == node
        # The machine dies: its slurmd, the job's shell, Jupyter and its kernels, all at once
        # (SIGKILL: no trap runs, so the alias is never destroyed by the job).
        for pid in netns_pids(node):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        slurm("scontrol", "update", f"nodename={node}", "state=down", "reason=lost in a test", check=True)
        # The proxy still routes the alias to a node that no longer answers.
        assert Browser().get(session["url"])[0] in (502, 503)
        wait_no_jobs(home, timeout=120)
        listed = run(cluster, home, "list", "--all")
        # The truth: Slurm's final state while it remembers the job, then what the output says.
        truth = r"ENDED \((node failure|no longer known to Slurm)\)"
        assert listed.returncode == 0 and re.search(truth, listed.stdout), listed
        status = run(cluster, home, "status", session["job_id"])
        assert re.search(truth, status.stdout), status
        assert sat.alias_record(alias) is not None  # the proxy still holds it: only the node could destroy it
        cleaned = run(cluster, home, "clean", "--yes")
        assert cleaned.returncode == 0, cleaned
        assert alias in cleaned.stderr and "could not be released" in cleaned.stderr, cleaned.stderr
        assert not os.path.exists(session["output"]) and not os.path.exists(session["script"])
    finally:
        cluster.cancel(session["job_id"])
        revive(cluster, node)
        # Tidy the stand-in as the admin would: from the node the alias was redeemed on.
        manage_call(cluster.env, "destroytoken", host=node, token=alias)
    wait_alias_gone(alias)
