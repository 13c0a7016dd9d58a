"""Daily use (issue 23) on the real local cluster: the time limit checked against the
partition's maximum on every launch, node choice reaching Slurm, and relaunch.
Needs the test cluster; skip with -m "not cluster".
"""

from __future__ import annotations

import json

import pytest
from cluster import Cluster, sat, slurm

pytestmark = pytest.mark.cluster


def default_partition() -> tuple:
    """(name, MaxTime) of the default partition, as sinfo prints them."""
    rows = [line.split("|") for line in slurm("sinfo", "-h", "-o", "%P|%l", check=True).stdout.split()]
    return next((name.rstrip("*"), most) for name, most in rows if name.endswith("*"))


def test_a_time_limit_above_the_partition_maximum_is_refused_before_anything(cluster: Cluster) -> None:
    name, most = default_partition()
    if most in ("infinite", "UNLIMITED"):
        pytest.skip(f"partition {name} has no maximum")
    calls = len(sat.calls())
    jobs = cluster.squeue()
    home = cluster.fresh_home()
    done = cluster.galyleo("launch", "-e", cluster.module, "-t", "365-00:00:00", extra_env={"HOME": home})
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.count("\n") == 1 and f"the {name} partition allows at most" in done.stderr
    assert len(sat.calls()) == calls and set(cluster.squeue()) <= set(jobs)


def node_of(job_id: str) -> str:
    return slurm("squeue", "-h", "-j", job_id, "-o", "%N").stdout.strip()


def test_node_choice_reaches_slurm_and_relaunch_keeps_it(cluster: Cluster) -> None:
    home = cluster.fresh_home()
    node = cluster.nodes[-1]
    first = cluster.galyleo("launch", "-e", cluster.module, "-t", "00:07:00", "-w", node, "--sbatch=--comment=daily",
                            "--json", extra_env={"HOME": home})
    assert first.returncode == 0, first.stderr
    job = json.loads(first.stdout)["job_id"]
    second = None
    try:
        shown = slurm("scontrol", "show", "job", job).stdout
        assert f"ReqNodeList={node}" in shown and "Comment=daily" in shown and "TimeLimit=00:07:00" in shown
        assert cluster.galyleo("stop", job, extra_env={"HOME": home}).returncode == 0
        again = cluster.galyleo("relaunch", job, "-t", "00:08:00", "--json", extra_env={"HOME": home})
        assert again.returncode == 0, again.stderr
        second = json.loads(again.stdout)["job_id"]
        shown = slurm("scontrol", "show", "job", second).stdout
        assert f"ReqNodeList={node}" in shown and "Comment=daily" in shown  # the earlier options
        assert "TimeLimit=00:08:00" in shown  # the option given overrides
        listed = json.loads(cluster.galyleo("list", "--all", "--json", extra_env={"HOME": home}).stdout)
        ended = next(s for s in listed["sessions"] if s["job_id"] == job)["ended"]
        assert ended in ("stopped by the user", "cancelled while pending")
    finally:
        cluster.cancel(job)
        if second:
            cluster.cancel(second)
