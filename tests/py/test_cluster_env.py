"""Software environments in real Slurm jobs: conda (fake install whose envs are real
venvs running the real JupyterLab), the conda-pack cache, pre-flight refusals, and
containers (fake apptainer/singularity running on the host) with conda inside.
Each session is checked through the real proxy. Needs `make harness` (conda-up).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Dict, List

import pytest
from cluster import Cluster, Launched, harness_env, wait_for_page

pytestmark = pytest.mark.cluster
YML = "name: galyleo-test\nchannels:\n  - conda-forge\ndependencies:\n  - python=3.11\n  - jupyterlab\n"


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    c = Cluster(harness_env())
    if "FAKE_CONDA_ROOT" not in c.env:
        pytest.fail("the fake conda is not installed: run `make harness` (tests/harness/conda-up)")
    c.install_pyz()
    return c


def conda_sh(cluster: Cluster) -> str:
    return os.path.join(cluster.env["FAKE_CONDA_ROOT"], "etc", "profile.d", "conda.sh")


def user_file(cluster: Cluster, folder: str, name: str, text: str) -> str:
    path = os.path.join(folder, name)
    with open(path, "w") as handle:
        handle.write(text)
    shutil.chown(path, cluster.user, cluster.user)
    return path


def env_for(cluster: Cluster, home: str, path: str = "", **extra: str) -> Dict[str, str]:
    env = {"HOME": home, "PATH": f"{path + ':' if path else ''}/usr/local/bin:/usr/bin:/bin"}
    env.update(extra)
    return env


def launch(cluster: Cluster, env: Dict[str, str], *args: str) -> Launched:
    done = cluster.galyleo("launch", "-t", "00:10:00", *args, extra_env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    fields = dict(line.split(": ", 1) for line in lines if line.startswith("Job "))
    return Launched(lines[-1], lines[0].split()[3], fields["Job script"], fields["Job output"], done.stdout)


def up(cluster: Cluster, sessions: List[Launched]) -> List[str]:
    """Wait for each session's JupyterLab page through the proxy; cancel; return the outputs."""
    try:
        for s in sessions:
            wait_for_page(s.url, "JupyterLab", timeout=120)
        return [cluster.output(s) for s in sessions]
    finally:
        for s in sessions:
            cluster.cancel(s.job_id)


def stamp(output: str, step: str) -> float:
    return float(re.search(rf"\[galyleo stamp\] {step} ([0-9.]+)", output).group(1))


def cache_files(folder: str) -> List[str]:
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def test_conda_yml_cache_miss_then_hit_and_a_changed_yml_misses(cluster: Cluster) -> None:
    home = cluster.fresh_home()
    cache = os.path.join(home, "packs")
    env = env_for(cluster, home, GALYLEO_CONDA_CACHE_DIR=cache)
    yml = user_file(cluster, home, "environment.yml", YML)
    common = ("--conda-yml", yml, "--cache", "--conda-init", conda_sh(cluster))
    [first] = up(cluster, [launch(cluster, env, *common)])
    assert "cache miss" in first and "fake-conda: conda env create" in first, first
    assert stamp(first, "conda-created") > 0 and stamp(first, "conda-packed") > stamp(first, "conda-created")
    packs = [f for f in cache_files(cache) if f.endswith(".tar.gz")]
    assert len(packs) == 1 and not [f for f in cache_files(cache) if f.startswith(".")]
    changed = user_file(cluster, home, "changed.yml", YML + "  - voila\n")
    second, third = up(cluster, [launch(cluster, env, *common),
                                 launch(cluster, env, "--conda-yml", changed, *common[2:])])
    assert "cache hit" in second and "env create" not in second and "fake-conda-unpack" in second, second
    assert stamp(second, "conda-unpacked") > 0
    assert "cache miss" in third and "env create" in third, third
    assert len([f for f in cache_files(cache) if f.endswith(".tar.gz")]) == 2
    listing = cluster.galyleo("cache", "list", extra_env=env)
    assert listing.returncode == 0 and listing.stdout.count("galyleo-conda-") == 2, listing.stdout
    removed = cluster.galyleo("cache", "rm", "--all", extra_env=env)
    assert removed.returncode == 0 and cache_files(cache) == [], (removed.stderr, cache_files(cache))


def test_two_jobs_building_one_key_at_once_leave_one_whole_pack(cluster: Cluster) -> None:
    home = cluster.fresh_home()
    cache = os.path.join(home, "packs")
    env = env_for(cluster, home, GALYLEO_CONDA_CACHE_DIR=cache)
    yml = user_file(cluster, home, "environment.yml", YML + "# concurrent\n")
    common = ("--conda-yml", yml, "--cache", "--conda-init", conda_sh(cluster))
    outputs = up(cluster, [launch(cluster, env, *common), launch(cluster, env, *common)])
    assert all("cache miss" in o for o in outputs), outputs
    files = cache_files(cache)
    assert len([f for f in files if f.endswith(".tar.gz")]) == 1 and not [f for f in files if f.startswith(".")]
    pack = os.path.join(cache, next(f for f in files if f.endswith(".tar.gz")))
    assert subprocess.run(["tar", "-tzf", pack], capture_output=True).returncode == 0
    [third] = up(cluster, [launch(cluster, env, *common)])
    assert "cache hit" in third and "env create" not in third


@pytest.mark.parametrize("args,message", [
    (["--conda-env", "no-such-env"], "--conda-env 'no-such-env': no such conda environment"),
    (["--conda-env", "bare-env"], "has no jupyter-lab"),
    (["--conda-yml", "{broken}"], "line 2: expected a top-level 'key: value'"),
    (["--conda-yml", "{noname}"], "no top-level 'name:' key"),
    (["-e", "py-jupyterlab/0.0.0-missing"], 'the module system says: Lmod has detected the following error'),
])
def test_preflight_refuses_before_anything_happens(cluster: Cluster, args: List[str], message: str) -> None:
    home = cluster.fresh_home()
    files = {"{broken}": user_file(cluster, home, "broken.yml", "name: x\n- python\n"),
             "{noname}": user_file(cluster, home, "noname.yml", "dependencies:\n  - python\n")}
    argv = [files.get(a, a) for a in args]
    done = cluster.galyleo("launch", *argv, "--conda-init", conda_sh(cluster), extra_env=env_for(cluster, home)) \
        if "-e" not in args else cluster.galyleo("launch", *argv, extra_env=env_for(cluster, home))
    assert done.returncode == 2 and done.stdout == "", done
    errors = [line for line in done.stderr.splitlines() if "warning: no site config" not in line]
    assert len(errors) == 1 and message in errors[0], done.stderr
    assert not os.path.exists(os.path.join(home, ".galyleo"))  # no record, token file or script: no alias made


def test_containers_with_conda_reach_jupyterlab(cluster: Cluster) -> None:
    home = cluster.fresh_home()
    bins = cluster.env["FAKE_CONTAINER_BIN"]
    image = user_file(cluster, home, "local.sif", "FAKE-SIF local\n")
    yml = user_file(cluster, home, "environment.yml", YML + "# in a container\n")
    log = os.path.join(home, "container.log")
    env = env_for(cluster, home, bins, FAKE_CONTAINER_LOG=log)
    only_singularity = env_for(cluster, home, os.path.join(bins, "singularity-only"), FAKE_CONTAINER_LOG=log)
    jupyter_env = os.path.join(cluster.env["FAKE_CONDA_ROOT"], "envs", "jupyter-env")
    init = ("--conda-init", conda_sh(cluster))
    sessions = [
        launch(cluster, env, "--sif", "docker://quay.io/jupyter/base-notebook:latest", "--conda-env", "jupyter-env",
               *init, "--bind", f"{home},/tmp", "--nv"),
        launch(cluster, env, "--sif", image, "--conda-yml", yml, *init),
        launch(cluster, only_singularity, "--sif", image, "--conda-env", jupyter_env, *init, "--rocm"),
    ]
    pulled, with_yml, singularity = up(cluster, sessions)
    assert "fake-apptainer: pull" in pulled and stamp(pulled, "pulled") < stamp(pulled, "redeemed"), pulled
    pull = re.search(r"fake-apptainer: pull dest=(\S+) uri=\S+ cache=(\S+) tmp=(\S+)", pulled)
    assert not any(p.startswith(home) for p in pull.groups()), pull.group(0)  # scratch, never $HOME
    assert f"binds={home},/tmp flags=--nv" in pulled and "conda env jupyter-env active" in pulled
    assert "fake-apptainer: exec image=" + image in with_yml and "env create" in with_yml
    assert "fake-singularity: exec" in singularity and "flags=--rocm" in singularity
    with open(log) as handle:
        recorded = handle.read()
    assert all(s.token not in recorded and s.token not in cluster.output(s) for s in sessions)
    assert recorded.count("exec image=") == 3
