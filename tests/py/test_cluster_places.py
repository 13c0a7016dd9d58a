"""A shared cluster, issue 24 items 2, 3 and 5, reproduced as the review did with the
neighbour `mallory` (GALYLEO_NEIGHBOUR_USER), an unprivileged user like the test user:

- ssh mode: she binds the printed local port on the laptop (this machine's root
  namespace) first; the printed ssh command must stop with an error, not run on while
  her listener gets the browser's token;
- private places: in a site's shared group-writable output folder she could replace a
  pending session's token and output; launch refuses such a folder, and a plain-`sbatch`
  job in it stops before it writes its URL (with the token) where she linked it;
- scratch: she pre-creates the old fixed names in the shared /tmp for the next job ids;
  a `--sif docker://` and a `--conda-yml` job neither use her files nor die.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import time
import uuid
from typing import Iterator, List

import pytest
from cluster import LOGIN, Cluster, on, slurm
from test_cluster_env import YML, conda_sh, env_for, launch, up, user_file
from test_cluster_env import cluster as env_cluster  # noqa: F401 (fixture)
from test_cluster_ssh import launch_ssh, ssh_cluster  # noqa: F401 (fixture)

pytestmark = pytest.mark.cluster
LISTEN = ("import socket, sys, time\ns = socket.socket()\ns.bind(('127.0.0.1', int(sys.argv[1])))\ns.listen()\n"
          "print('listening', flush=True)\ntime.sleep(600)\n")


def neighbour(cluster: Cluster) -> str:
    name = cluster.env.get("GALYLEO_NEIGHBOUR_USER", "")
    if not name:
        pytest.fail("env.sh has no GALYLEO_NEIGHBOUR_USER: run `make harness`")
    return name


def as_neighbour(cluster: Cluster, argv: List[str], host: str = LOGIN) -> subprocess.CompletedProcess:
    """ARGV as the neighbour on HOST, in her login environment."""
    return subprocess.run(on(host, argv, neighbour(cluster)), capture_output=True, text=True, timeout=120)


def next_job_ids(cluster: Cluster, count: int = 6) -> List[str]:
    """The ids the next jobs will get, as the neighbour learns them: from a job of her own."""
    done = as_neighbour(cluster, ["sbatch", "--parsable", "-p", "debug", "-t", "1", "--output=/dev/null",
                                  "--wrap", "true"])
    assert done.returncode == 0, done.stderr
    mine = int(done.stdout.strip().split(";")[0])
    return [str(mine + k) for k in range(1, count + 1)]


# --- item 2: ssh mode, the laptop's port ------------------------------------------------

def test_printed_ssh_command_stops_when_the_neighbour_holds_its_local_port(ssh_cluster) -> None:  # noqa: F811
    cluster, env = ssh_cluster
    job_id, line, _ = launch_ssh(cluster, cluster.fresh_home())
    squatter = None
    try:
        port = int(re.search(r" -L 127\.0\.0\.1:([0-9]+):", line)[1])
        squatter = subprocess.Popen(["runuser", "-u", neighbour(cluster), "--", "/usr/bin/python3", "-c", LISTEN,
                                     str(port)], stdout=subprocess.PIPE, text=True, start_new_session=True)
        assert squatter.stdout.readline().strip() == "listening"
        argv = shlex.split(line)  # as printed, plus only the test key and no host-key check
        extra = ["-i", env["LAPTOP_SSH_KEY"], "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                 "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]
        try:
            done = subprocess.run(argv[:1] + extra + argv[1:], stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the printed ssh ran on while {neighbour(cluster)} held port {port}: {line}")
        assert done.returncode != 0 and "forwarding" in done.stderr, (done.returncode, done.stderr)
    finally:
        if squatter:  # runuser keeps a parent beside her listener: end the whole group
            os.killpg(squatter.pid, signal.SIGKILL)
            squatter.wait()
        cluster.cancel(job_id)


# --- item 3: a shared group-writable output folder --------------------------------------

@pytest.fixture
def shared_folder(env_cluster: Cluster) -> Iterator[str]:  # noqa: F811
    """A site's shared folder: 2770, of a group the test user and the neighbour are in (the
    test user's own group, which Slurm's cached group list for her jobs already holds)."""
    group = env_cluster.user
    folder = os.path.join("/home", f"shared-{uuid.uuid4().hex[:6]}")
    subprocess.run(["gpasswd", "-a", neighbour(env_cluster), group], check=True, capture_output=True)
    try:
        os.mkdir(folder)
        shutil.chown(folder, "root", group)
        os.chmod(folder, 0o2770)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        subprocess.run(["gpasswd", "-d", neighbour(env_cluster), group], check=False, capture_output=True)


def test_launch_refuses_a_shared_output_folder_before_anything(env_cluster: Cluster,  # noqa: F811
                                                               shared_folder: str) -> None:
    home = env_cluster.fresh_home()
    done = env_cluster.galyleo("launch", "-e", env_cluster.module, "-t", "00:10:00",
                               extra_env={"HOME": home, "GALYLEO_OUTPUT_DIR": shared_folder})
    if done.returncode == 0:  # the old way: the session's files wait where she can replace them
        job = done.stdout.split("Submitted batch job ", 1)[1].split()[0]
        env_cluster.cancel(job)
        pytest.fail(f"launch kept a session's files in {shared_folder} (2770): {os.listdir(shared_folder)}")
    assert done.returncode == 2 and "Submitted" not in done.stdout, done
    errors = [line for line in done.stderr.splitlines() if "warning" not in line]
    assert errors == [line for line in errors if line.startswith(f"galyleo: error: setting output_dir {shared_folder}")]
    assert len(errors) == 1 and "writable by group or others" in errors[0], done.stderr
    assert os.listdir(shared_folder) == []


def test_a_plain_sbatch_job_in_a_shared_folder_writes_nothing_where_she_linked_it(env_cluster: Cluster,  # noqa: F811
                                                                                  shared_folder: str) -> None:
    """She links the next jobs' URL and record files to a file of hers; the victim's job must
    stop before writing its URL (with the token) through her link."""
    cluster = env_cluster
    home = cluster.fresh_home()
    generated = cluster.galyleo("generate", "-e", cluster.module, "-t", "00:10:00",
                                extra_env={"HOME": home, "GALYLEO_OUTPUT_DIR": shared_folder})
    assert generated.returncode == 0, generated.stderr
    script = user_file(cluster, home, "job.sh", generated.stdout)
    stolen = f"{shared_folder}/.stolen"
    made = as_neighbour(cluster, ["bash", "-c", f"umask 000; : >{stolen}; for id in {' '.join(next_job_ids(cluster))}; "
                                  f"do ln -s {stolen} {shared_folder}/galyleo-$id.url; "
                                  f"ln -s {stolen} {shared_folder}/galyleo-$id.url.tmp; done"])
    assert made.returncode == 0, made.stderr
    submitted = cluster.as_user(["sbatch", "--parsable", script], {"HOME": home})
    assert submitted.returncode == 0, submitted.stderr
    job = submitted.stdout.strip().split(";")[0]
    output = f"{shared_folder}/galyleo-{job}.out"
    try:
        deadline = time.time() + 90
        while time.time() < deadline and cluster.job_state(job) not in ("", "COMPLETED", "FAILED", "CANCELLED"):
            if os.path.getsize(stolen):
                break
            time.sleep(0.5)
        assert os.path.getsize(stolen) == 0, "the job wrote its URL (with the token) into the neighbour's file"
        assert cluster.job_state(job) in ("", "COMPLETED", "FAILED", "CANCELLED"), "the job runs in a shared folder"
        with open(output, errors="replace") as handle:
            said = handle.read()
        assert f"the session folder {shared_folder} is not yours alone" in said, said
        assert "token=" not in said
    finally:
        cluster.cancel(job)


# --- item 5: predictable scratch names in the shared /tmp ---------------------------------

def test_old_scratch_names_made_first_by_the_neighbour_are_neither_used_nor_fatal(env_cluster: Cluster) -> None:  # noqa: F811
    cluster = env_cluster
    home = cluster.fresh_home()
    ids = next_job_ids(cluster, 8)
    user = cluster.user
    squats = ([f"/tmp/galyleo-cache-{user}"] + [f"/tmp/galyleo-{i}.sif" for i in ids]
              + [f"/tmp/galyleo-conda-{i}" for i in ids])
    script = (f"umask 000; mkdir -m 777 /tmp/galyleo-cache-{user}; "
              + "".join(f"printf 'her image\\n' >/tmp/galyleo-{i}.sif; mkdir -m 777 /tmp/galyleo-conda-{i}; "
                        for i in ids))
    subprocess.run(["rm", "-rf", "--", *squats], check=False)  # left by an earlier run
    try:
        made = as_neighbour(cluster, ["bash", "-c", script], host=cluster.nodes[0])
        assert made.returncode == 0, made.stderr
        bins = cluster.env["FAKE_CONTAINER_BIN"]
        env = env_for(cluster, home, bins, FAKE_CONTAINER_LOG=os.path.join(home, "container.log"))
        yml = user_file(cluster, home, "environment.yml", YML + "# squatted scratch\n")
        init = ("--conda-init", conda_sh(cluster))
        pulled, built = up(cluster, [
            launch(cluster, env, "--sif", "docker://quay.io/jupyter/base-notebook:latest", "--conda-env",
                   "jupyter-env", *init),
            launch(cluster, env, "--conda-yml", yml, *init),
        ])
        pull = re.search(r"fake-apptainer: pull dest=(\S+) uri=\S+ cache=(\S+) tmp=(\S+)", pulled)
        assert pull, pulled
        assert not any(p in squats or p.startswith(f"/tmp/galyleo-cache-{user}/") for p in pull.groups()), pull[0]
        assert "not using the image cache" in pulled
        assert "env create" in built and "/tmp/galyleo-conda-" not in built, built
        for path in squats:  # hers, as she left them: nothing of the victim's in them
            if path.endswith(".sif"):
                with open(path) as handle:
                    assert handle.read() == "her image\n", path
            else:
                assert os.listdir(path) == [], path
    finally:
        subprocess.run(["rm", "-rf", "--", *squats], check=False)
        slurm("scancel", "-u", neighbour(cluster))
