"""Every Slurm command galyleo runs: argv (never a shell), environment, timeouts, retries, and
parsing into typed results (submit, cancel, one job's state, this user's jobs, queue position,
start estimate, a partition's limits, the cluster's name). Failures carry the command and its output.

A controller that does not answer is None (callers say UNKNOWN), never "ended".
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from galyleo import contract
from galyleo.errors import GalyleoError, SubmitError

TIMEOUT = 60
LIVE = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "REQUEUED", "RESIZING")
SQUEUE_FORMAT = "%i|%T|%r|%N|%L|%S|%P|%V|%j"  # the job name last: it may hold a '|'
SQUEUE_MIN_FIELDS = 7  # rows without submit time and name still parse
BACKOFF = (0.5, 1.0, 2.0)
SQUEUE_TIMEOUT = 20  # a controller that hangs this long is "not answering": no retry after it
DIGITS = re.compile(r"[0-9]{1,18}\Z")


# sbatch reads these input variables, and they would override the script's own #SBATCH
# lines: every SBATCH_* and SLURM_* variable is kept out of sbatch's environment except
# those that choose where the job goes or how Slurm talks (not what the job asks for).
# Those with a galyleo setting are first folded into it (configfiles.SBATCH_ENV), so their
# values still count, with the command line above them.
SBATCH_KEPT = ("SBATCH_CLUSTERS", "SLURM_CLUSTERS", "SLURM_CONF", "SLURM_DEBUG_FLAGS", "SLURM_TIME_FORMAT")


def sbatch_environment(environ: Mapping[str, str]) -> Dict[str, str]:
    """ENVIRON without the variables that would override the script's #SBATCH lines."""
    return {k: v for k, v in environ.items() if not k.startswith(("SBATCH_", "SLURM_")) or k in SBATCH_KEPT}


def call(
    argv: Sequence[str], timeout: int = TIMEOUT, env: Optional[Dict[str, str]] = None
) -> subprocess.CompletedProcess:
    """Run one Slurm command; raise SubmitError naming it when it cannot even start."""
    try:
        # Own session: a Ctrl-C at the terminal reaches galyleo, which decides; never a half-run sbatch.
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False, env=env,
                              start_new_session=True)
    except FileNotFoundError:
        raise SubmitError(f"{argv[0]}: command not found (is Slurm installed on this node?)") from None
    except subprocess.TimeoutExpired:
        raise SubmitError(f"{' '.join(argv)}: no answer within {timeout} s (is the controller up?)") from None


def submit(script: str) -> Tuple[str, str]:
    """sbatch --parsable SCRIPT: (job id, cluster) from the last line `jobid[;cluster]`, the id checked numeric.

    The cluster is "" unless sbatch names one (SLURM_CLUSTERS / SBATCH_CLUSTERS sent the job elsewhere)."""
    done = call(submit_argv(script), env=sbatch_environment(os.environ))
    lines = done.stdout.strip().splitlines()
    job_id, _, cluster = (lines[-1] if lines else "").partition(";")
    job_id, cluster = job_id.strip(), cluster.strip()
    if done.returncode != 0 or not DIGITS.match(job_id) or not contract.CLUSTER.match(cluster):
        reason = done.stderr.strip() or done.stdout.strip() or f"exit status {done.returncode}"
        raise SubmitError(f"sbatch refused the job: {reason}")
    return job_id, cluster


def submit_argv(script: str) -> List[str]:
    """What submit runs (launch --dry-run shows it)."""
    return ["sbatch", "--parsable", script]


def on_cluster(cluster: str) -> List[str]:
    """`-M CLUSTER` for a job on another cluster than this node's ([] for ours: -M needs slurmdbd,
    and [] when this node's own name is unknown, e.g. configless Slurm: as before clusters were kept)."""
    other = other_cluster(cluster)
    return ["-M", other] if other else []


def other_cluster(cluster: str) -> str:
    """CLUSTER if it is not this node's own (whose name is known), else "": where -M must point."""
    here = cluster_name() if cluster else ""
    return cluster if here and cluster != here else ""


def cancel(job_id: str, pending_only: bool = False, cluster: str = "") -> str:
    """scancel JOB_ID (only while pending, if asked): "" when scancel succeeded, else its complaint."""
    argv: List[str] = ["scancel"] + on_cluster(cluster) + (["--state=PENDING"] if pending_only else []) + [job_id]
    done = call(argv)
    return "" if done.returncode == 0 else (" ".join(done.stderr.split()) or f"scancel: exit status {done.returncode}")


@dataclass(frozen=True)
class JobInfo:
    """Slurm's view of one job: state, reason code, node, time left, expected start, partition, how it ended.

    UNKNOWN (the controller did not answer) counts as live: galyleo must not treat
    a job that may still run as ended.
    """

    state: str
    reason: str = ""
    node: str = ""
    time_left: str = ""
    start: str = ""
    partition: str = ""
    submitted: str = ""
    name: str = ""
    how: str = ""

    @property
    def live(self) -> bool:
        return self.state in LIVE or self.state == "UNKNOWN"


def my_jobs(cluster: str = "") -> Optional[Dict[str, JobInfo]]:
    """This user's jobs (all states Slurm still remembers) by job id, on CLUSTER if it is another
    than this node's; None if squeue keeps failing."""
    text = ask(["squeue", *on_cluster(cluster), "--noheader", "--me", "--states=all", "--format", SQUEUE_FORMAT])
    return None if text is None else parse_rows(text)


def job(job_id: str, retry: bool = True, cluster: str = "") -> Optional[JobInfo]:
    """One job as squeue sees it now: ENDED once Slurm has forgotten it, None if squeue does not answer."""
    argv = ["squeue", *on_cluster(cluster), "--noheader", "--states=all", "--jobs", job_id,
            "--format", SQUEUE_FORMAT]
    text = ask(argv, retry)
    return None if text is None else parse_rows(text).get(job_id, JobInfo("ENDED"))


def position(job_id: str, partition: str) -> Optional[Tuple[int, int]]:
    """(place, count) among PARTITION's pending jobs by priority, 1 = next; None if squeue cannot say."""
    argv = ["squeue", "--noheader", "--states=PENDING", "--partition", partition, "--format", "%i", "--sort=-p,i"]
    text = ask(argv, retry=False) if partition else None
    ids = list(dict.fromkeys(text.split())) if text else []
    return (ids.index(job_id) + 1, len(ids)) if job_id in ids else None


def expected_start(job_id: str) -> str:
    """The scheduler's estimate of when a pending job starts; "" when it has none (N/A, Unknown)."""
    done = call(["squeue", "--noheader", "--start", "--jobs", job_id, "--format", "%S"], timeout=SQUEUE_TIMEOUT)
    value = done.stdout.strip() if done.returncode == 0 else ""
    return "" if value in ("N/A", "Unknown") else value


def ask(argv: List[str], retry: bool = True) -> Optional[str]:
    """squeue's output, retried with back-off; None if it keeps failing. An unknown job id is an answer."""
    for delay in (BACKOFF if retry else ()) + (0.0,):
        try:
            done = call(argv, timeout=SQUEUE_TIMEOUT)
        except GalyleoError:  # hung past the timeout, or no squeue at all: no answer either way
            return None
        if done.returncode == 0:
            return done.stdout
        if "Invalid job id" in done.stderr:
            return ""
        if delay:
            time.sleep(delay)
    return None


def parse_rows(text: str) -> Dict[str, JobInfo]:
    """SQUEUE_FORMAT lines by job id; lines of any other shape are skipped."""
    rows = {}
    for line in text.splitlines():
        parts = [p.strip() for p in line.split("|", SQUEUE_FORMAT.count("|"))]
        if len(parts) >= SQUEUE_MIN_FIELDS:
            rows[parts[0]] = JobInfo(*parts[1:])
    return rows


@dataclass(frozen=True)
class Partition:
    """What a partition allows, as sinfo says: MaxTime as Slurm prints it, and its largest node."""

    name: str
    max_time: str
    cpus: int
    memory_mb: int


def partition(name: str) -> Optional[Partition]:
    """sinfo's view of partition NAME ("": the default one); None if sinfo cannot say."""
    if "," in name:  # a job on a list of partitions starts in whichever allows it first
        return None
    argv = ["sinfo", "--noheader", "--Node", "--format", "%P|%l|%c|%m"] + (["--partition", name] if name else [])
    try:
        done = call(argv, timeout=20)
    except SubmitError:
        return None
    lines = done.stdout.splitlines() if done.returncode == 0 else []
    rows = [r for r in (line.split("|") for line in lines)
            if len(r) == 4 and (r[0].rstrip("*") == name if name else r[0].endswith("*"))]
    if not rows:
        return None
    return Partition(rows[0][0].rstrip("*"), rows[0][1], max(whole(r[2]) for r in rows), max(whole(r[3]) for r in rows))


def whole(text: str) -> int:
    """sinfo's count (`4`, or `4+` where nodes differ), 0 if it is not one."""
    text = text.strip().rstrip("+")
    return int(text) if text.isdigit() else 0


def available() -> bool:
    return any(os.access(os.path.join(d, "sbatch"), os.X_OK) for d in os.environ.get("PATH", "").split(os.pathsep) if d)


def cluster_name(environ: Optional[Mapping[str, str]] = None) -> str:
    """ClusterName from slurm.conf ($SLURM_CONF, else Slurm's usual places), "" if unknown.

    Read from the file, not `scontrol show config`: launch pays no extra Slurm call."""
    conf = (os.environ if environ is None else environ).get("SLURM_CONF", "")
    paths = [conf] if conf else ["/etc/slurm/slurm.conf", "/etc/slurm-llnl/slurm.conf"]
    for path in paths:  # as Slurm's own commands look
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    key, _, value = line.split("#", 1)[0].partition("=")
                    if key.strip().lower() == "clustername":
                        return contract.clean_cluster(value.strip())
        except OSError:
            continue
    return ""


def job_ids_argv(job_name: str) -> List[str]:
    """What `galyleo completion` asks for this user's job ids named JOB_NAME, one a line."""
    return ["squeue", "--me", "--noheader", "--name", job_name, "--format", "%i"]


def my_job_ids_argv() -> List[str]:
    """What `galyleo completion` asks for the ids of this user's jobs Slurm lists (live ones), one a line."""
    return ["squeue", "--me", "--noheader", "--format", "%i"]


PARTITIONS_ARGV = ["sinfo", "--noheader", "--format", "%R"]  # the partition names `galyleo completion` offers


def shell_job_ids(job_name: str) -> str:
    """job_ids_argv as the completion script spells it: one shell command, each word quoted."""
    return shlex.join(job_ids_argv(job_name))
