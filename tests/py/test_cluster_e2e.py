"""End to end on the real local cluster: galyleo launch as an unprivileged user ->
Slurm job -> Lmod -> real Jupyter -> Satellite stand-in -> Apache HTTPS proxy -> a
client that behaves like a browser. Needs `make harness`; skip with -m "not cluster".
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

import pytest
from cluster import Browser, Cluster, run_code, sat, servers_on, wait_for_page

pytestmark = pytest.mark.cluster


def alias_entry(alias: str):
    return next((a for a in sat.state() if a["alias"] == alias), None)


def wait_alias_gone(alias: str, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and alias_entry(alias) is not None:
        time.sleep(0.3)
    assert alias_entry(alias) is None, f"alias {alias} still registered: {alias_entry(alias)}"


def calls_for(alias: str, endpoint: str):
    return [c for c in sat.calls() if c["endpoint"].startswith(endpoint) and c["params"].get("token") == alias]


def test_lab_like_a_browser_runs_code_over_the_proxy(cluster: Cluster) -> None:
    launched = cluster.launch()
    try:
        browser = wait_for_page(launched.url, "JupyterLab")
        # From here on only the cookie, never the token, as a browser does.
        assert run_code(launched, browser, "print(1+1)") == "2\n"
        # No token or cookie: refused.
        assert Browser().get(f"{launched.origin}/api/kernels")[0] == 403
        status, body, final = Browser().get(f"{launched.origin}/lab")
        assert "login" in final or "Password or token" in body, (status, final)
        # A WebSocket from a foreign origin with a valid cookie is refused.
        kernels = browser.get(f"{launched.origin}/api/kernels")
        kernel_id = re.search(r'"id": ?"([0-9a-f-]+)"', kernels[1]).group(1)
        with pytest.raises(ConnectionError):
            sat.ws_connect(
                f"wss://{launched.alias}.{cluster.env['SATELLITE_DOMAIN']}/api/kernels/{kernel_id}/channels",
                headers={"Origin": "https://evil.example.org", "Cookie": browser.cookie_header()},
            )
        # The token is in no process's argv, not in the script, not in the job output.
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
        assert launched.token not in ps
        assert launched.token not in open(launched.script).read()
        output = cluster.output(launched)
        assert launched.token not in output
        # No warning about a setting the user never made (Voila's extension reads ServerApp.token).
        assert "voila" in output.lower() and "DeprecationWarning" not in output, output
        assert oct(os.stat(os.path.dirname(launched.script)).st_mode & 0o777) == "0o700"
    finally:
        cluster.cancel(launched.job_id)
    wait_alias_gone(launched.alias)
    assert sat.destroy_count(launched.alias) == 1


def test_scancel_destroys_the_alias_and_stops_jupyter(cluster: Cluster) -> None:
    launched = cluster.launch()
    wait_for_page(launched.url, "JupyterLab")
    port = alias_entry(launched.alias)["port"]
    assert servers_on(cluster.user, port), "Jupyter not found before the scancel"
    cluster.cancel(launched.job_id)
    wait_alias_gone(launched.alias)
    cluster.wait_job_gone(launched.job_id)
    assert sat.destroy_count(launched.alias) == 1
    deadline = time.time() + 15
    while time.time() < deadline and servers_on(cluster.user, port):
        time.sleep(0.3)
    assert not servers_on(cluster.user, port)
    assert "received SIGTERM" in cluster.output(launched)


ANSWER_NOTEBOOK = {
    "cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
               "source": ["import json\n", "from ipykernel.connect import get_connection_file\n",
                          "print('answer', 6 * 7)\n",
                          "print('transport', json.load(open(get_connection_file()))['transport'])"]}],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
    "nbformat": 4, "nbformat_minor": 5,
}


def test_notebook_and_voila_at_once_on_distinct_ports(cluster: Cluster) -> None:
    folder = cluster.fresh_home()
    with open(os.path.join(folder, "answer.ipynb"), "w") as handle:
        json.dump(ANSWER_NOTEBOOK, handle)
    notebook = cluster.launch(interface="notebook")
    voila = cluster.launch("-d", folder, interface="voila")
    try:
        wait_for_page(notebook.url, "Jupyter Notebook")
        browser = wait_for_page(voila.url, "voila")
        # Voila runs the notebook in a kernel reached over IPC, like lab and notebook.
        status, body, _ = browser.get(f"{voila.origin}/voila/render/answer.ipynb")
        assert status == 200 and "answer 42" in body, body[-2000:]
        assert "transport ipc" in body, body[-2000:]
        ports = {alias_entry(notebook.alias)["port"], alias_entry(voila.alias)["port"]}
        assert len(ports) == 2
        for launched in (notebook, voila):
            status, body, final = Browser().get(launched.url.split("?")[0])
            assert status in (401, 403) or "/login" in final, (launched.url, status, final, body[:200])
        assert Browser().get(f"{notebook.origin}/api/contents")[0] == 403
    finally:
        cluster.cancel(notebook.job_id)
        cluster.cancel(voila.job_id)
    wait_alias_gone(notebook.alias)
    wait_alias_gone(voila.alias)


def sbatch_generated(cluster: Cluster, name: str, *options: str) -> str:
    """`galyleo generate OPTIONS > ~/NAME; sbatch ~/NAME` as the test user; the job id."""
    generated = cluster.galyleo("generate", *options)
    assert generated.returncode == 0, generated.stderr
    script = os.path.join(cluster.home, name)
    cluster.as_user(["sh", "-c", f"cat > {script}"], input=generated.stdout)
    submitted = cluster.as_user(["sbatch", "--parsable", script])
    assert submitted.returncode == 0, submitted.stderr
    return submitted.stdout.strip()


def test_generate_then_plain_sbatch_is_a_whole_session(cluster: Cluster) -> None:
    job_id = sbatch_generated(cluster, "job-e2e.sh", "-e", cluster.module, "-t", "10")
    url_file = os.path.join(cluster.home, ".galyleo", f"galyleo-{job_id}.url")
    try:
        deadline = time.time() + 30
        while time.time() < deadline and not os.path.exists(url_file):
            time.sleep(0.3)
        assert oct(os.stat(url_file).st_mode & 0o777) == "0o600"
        url = open(url_file).read().strip()
        browser = wait_for_page(url, "JupyterLab")
        assert browser.cookie("_xsrf")
        alias = url.split("//")[1].split(".")[0]
        assert alias_entry(alias)["jobid"] == job_id
        output_file = os.path.join(cluster.home, ".galyleo", f"galyleo-{job_id}.out")
        assert oct(os.stat(output_file).st_mode & 0o777) == "0o600", "Slurm made it with the umask; the job must not"
        assert url.split("token=")[1] not in open(output_file).read()
        record = json.load(open(os.path.join(cluster.home, ".galyleo", f"galyleo-{job_id}.json")))
        assert (record["job_id"], record["alias"], record["cluster"]) == (job_id, alias, "galyleotest"), record
    finally:
        cluster.cancel(job_id)
    wait_alias_gone(alias)


def test_route_delay_session_comes_up_redeemed_once(cluster: Cluster) -> None:
    sat.configure(route_delay=4)
    try:
        launched = cluster.launch()
        try:
            wait_for_page(launched.url, "JupyterLab", timeout=120)
            assert len(calls_for(launched.alias, "redeemtoken")) == 1
        finally:
            cluster.cancel(launched.job_id)
    finally:
        sat.configure(route_delay=0)
    wait_alias_gone(launched.alias)


def test_satellite_unreachable_no_job_left(cluster: Cluster) -> None:
    before = cluster.squeue()
    done = cluster.galyleo("launch", "-e", cluster.module, extra_env={"GALYLEO_CONFIG": unreachable_config(cluster)})
    assert done.returncode == 1
    assert "Satellite proxy" in done.stderr and "connection refused" in done.stderr
    # No job of its own: compare job ids (a job of an earlier test may still be COMPLETING).
    assert {line.split()[0] for line in cluster.squeue()} <= {line.split()[0] for line in before}
    assert done.stdout == ""


def unreachable_config(cluster: Cluster) -> str:
    path = os.path.join("/srv/galyleo-test", "site-unreachable.toml")
    text = open(cluster.site).read() + 'satellite_url = "https://manage.satellite.test:1"\n'
    with open(path, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o644)
    return path


def test_sbatch_rejects_job_alias_destroyed_once(cluster: Cluster) -> None:
    before = {a["alias"] for a in sat.state()}
    home = cluster.fresh_home()
    done = cluster.galyleo("launch", "-e", cluster.module, "-p", "nosuchpartition", extra_env={"HOME": home})
    assert done.returncode == 1
    assert "sbatch refused the job" in done.stderr and "invalid partition" in done.stderr.lower()
    alias = re.search(r"alias ([a-z0-9]+-[a-z0-9]+-[a-z0-9]+) withdrawn", done.stderr).group(1)
    assert alias not in before and alias_entry(alias) is None
    assert sat.destroy_count(alias) == 1
    assert os.listdir(os.path.join(home, ".galyleo")) == []


def test_jupyter_cannot_start_job_ends_alias_destroyed(cluster: Cluster) -> None:
    done = cluster.galyleo("launch", "--no-preflight", "-e", "py-jupyterlab/0.0.0-missing", "-t", "5")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    job_id = lines[0].split()[3]
    output = dict(line.split(": ", 1) for line in lines if line.startswith("Job "))["Job output"]
    alias = lines[-1].split("//")[1].split(".")[0]
    cluster.wait_job_gone(job_id)
    wait_alias_gone(alias)
    assert sat.destroy_count(alias) == 1
    text = open(output).read()
    assert "module load py-jupyterlab/0.0.0-missing failed" in text
