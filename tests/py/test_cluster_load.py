"""Load: 20 launches at once on the test cluster, all from one home.

The node has 32 one-CPU slots of DefMemPerCPU=512 MB (slurm.conf: CPUs=32,
RealMemory=16384) on 2 real cores, and these launches ask for no memory of their own
(site memory = 0): all 20 must be submitted with distinct names, job ids and aliases,
all 20 must come up at once, each on its own port with its own alias routed, and
`galyleo stop --all` must then leave no job, no alias and only intact records behind.
"""

from __future__ import annotations

import json
import os
import time

import pytest
from cluster import Cluster, harness_env, sat, slurm
from faultkit import my_jobs, run, site_config, spawn, wait_alias_gone, wait_no_jobs

pytestmark = pytest.mark.cluster
COUNT = 20


def test_twenty_concurrent_launches() -> None:
    cluster = Cluster(harness_env())
    cluster.install_pyz()
    home = cluster.fresh_home()
    config = site_config(cluster, home, ready_timeout=300, memory=0)
    args = ("launch", "--json", "-e", cluster.module, "-c", "1", "-t", "00:10:00")
    procs = [spawn(cluster, home, *args, config=config) for _ in range(COUNT)]
    results = [p.communicate(timeout=180) for p in procs]
    try:
        assert [p.returncode for p in procs] == [0] * COUNT, [err for _, err in results if err]
        docs = [json.loads(out) for out, _ in results]
        for key in ("name", "job_id", "alias", "record"):
            assert len({d[key] for d in docs}) == COUNT, key
        aliases = {d["alias"] for d in docs}
        deadline = time.time() + 300  # a bound for a hung test, not a speed goal
        routed: dict = {}
        while time.time() < deadline and len(routed) < COUNT:
            states = dict(line.split() for line in slurm(
                "squeue", "-h", "-o", "%i %T", "-j", ",".join(d["job_id"] for d in docs)).stdout.splitlines())
            records = {a: sat.alias_record(a) for a in aliases}
            routed = {a: r["port"] for a, r in records.items() if r and r["state"] in ("mapped", "proxied")}
            time.sleep(1)
        assert len(routed) == COUNT, (len(routed), states)
        running = [d for d in docs if states.get(d["job_id"]) == "RUNNING"]
        assert len(running) == COUNT, states
        assert len(set(routed.values())) == len(routed), routed  # distinct ports
        for doc in docs:
            assert json.load(open(doc["record"]))["alias"] == doc["alias"]
    finally:
        stopped = run(cluster, home, "stop", "--all", "--yes", timeout=180)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.count("stopped job") == COUNT, stopped.stdout
    wait_no_jobs(home, timeout=120)
    for alias in aliases:
        wait_alias_gone(alias, timeout=60)
        assert sat.destroy_count(alias) == 1, alias
    for doc in docs:
        assert json.load(open(doc["record"]))["job_id"] == doc["job_id"]
    assert my_jobs(home) == [] and not [f for f in os.listdir(os.path.join(home, ".galyleo")) if f.endswith(".token")]
