"""Slurm's pending reasons in plain words, and which ones mean "never starts as submitted".

A reason that can never clear by waiting names the option to change; the rest
just say what the job waits for. Unknown reasons are shown as Slurm spells them.
"""

from __future__ import annotations

import re
from typing import Dict, NamedTuple, Optional

from galyleo.slurm import Partition


class Reason(NamedTuple):
    words: str
    never: bool = False
    advice: str = ""


REASONS: Dict[str, Reason] = {
    "None": Reason("not yet considered by the scheduler"),
    "Priority": Reason("waiting for jobs with higher priority"),
    "Resources": Reason("waiting for CPUs, memory or GPUs to become free"),
    "Dependency": Reason("waiting for a job it depends on"),
    "BeginTime": Reason("waiting for its requested start time"),
    "JobHeldUser": Reason("held by you", advice="release it with `scontrol release <job id>`"),
    "JobHeldAdmin": Reason("held by an administrator", advice="ask your site's support"),
    "Reservation": Reason("waiting for its reservation to start"),
    "ReqNodeNotAvail": Reason("a required node is unavailable (down, drained or reserved)"),
    "PartitionDown": Reason("the partition is down", advice="try another --partition"),
    "PartitionInactive": Reason("the partition is inactive", advice="try another --partition"),
    "NodeDown": Reason("a node it needs is down"),
    "QOSMaxCpuPerUserLimit": Reason("your QOS's CPU-per-user limit is reached (waits for your other jobs)"),
    "QOSMaxJobsPerUserLimit": Reason("your QOS's running-jobs limit is reached (waits for your other jobs)"),
    "AssocMaxJobsLimit": Reason("your account's running-jobs limit is reached (waits for your other jobs)"),
    "AssocGrpCpuLimit": Reason("your account's group CPU limit is reached (waits for other jobs)"),
    "AssocGrpMemLimit": Reason("your account's group memory limit is reached (waits for other jobs)"),
    "PartitionTimeLimit": Reason("the time limit is above the partition's maximum", True, "lower --time-limit"),
    "PartitionNodeLimit": Reason("the partition cannot give that many nodes", True, "choose another --partition"),
    "QOSMaxWallDurationPerJobLimit": Reason("the time limit is above the QOS's maximum", True,
                                            "lower --time-limit or choose another --qos"),
    "AssocMaxWallDurationPerJobLimit": Reason("the time limit is above your account's per-job maximum", True,
                                              "lower --time-limit or use another --account"),
    "AssocMaxCpuPerJobLimit": Reason("the CPUs asked are above your account's per-job maximum", True,
                                     "lower --cpus or use another --account"),
    "AssocMaxCpuPerNode": Reason("the CPUs asked are above your account's per-node maximum", True, "lower --cpus"),
    "AssocMaxCpuMinutesPerJobLimit": Reason("CPUs times time limit is above your account's per-job maximum", True,
                                            "lower --cpus or --time-limit"),
    "AssocMaxMemPerJob": Reason("the memory asked is above your account's per-job maximum", True,
                                "lower --memory or use another --account"),
    "AssocMaxMemPerNode": Reason("the memory asked is above your account's per-node maximum", True, "lower --memory"),
    "AssocMaxGRESPerJob": Reason("the GPUs/GRES asked are above your account's per-job maximum", True,
                                 "lower --gpus or --gres, or use another --account"),
    "AssocMaxGRESPerNode": Reason("the GPUs/GRES asked are above your account's per-node maximum", True,
                                  "lower --gpus or --gres"),
    "AssocMaxNodePerJobLimit": Reason("your account may not use even the one node a session asks for", True,
                                      "use another --account"),
    "AssocMaxBillingPerJob": Reason("the job's billing weight is above your account's per-job maximum", True,
                                    "lower --cpus, --memory or --gpus"),
    "QOSMaxMemoryPerJob": Reason("the memory asked is above the QOS's maximum", True, "lower --memory"),
    "QOSMaxCpuPerJobLimit": Reason("the CPUs asked are above the QOS's maximum", True, "lower --cpus"),
    "QOSMaxGRESPerJob": Reason("the GPUs/GRES asked are above the QOS's maximum", True, "lower --gpus or --gres"),
    "QOSMaxMemoryPerNode": Reason("the memory asked is above the QOS's per-node maximum", True,
                                  "lower --memory or choose another --qos"),
    "QOSMaxCpuPerNode": Reason("the CPUs asked are above the QOS's per-node maximum", True,
                               "lower --cpus or choose another --qos"),
    "QOSMaxGRESPerNode": Reason("the GPUs/GRES asked are above the QOS's per-node maximum", True,
                                "lower --gpus or --gres, or choose another --qos"),
    "QOSMaxCpuMinutesPerJobLimit": Reason("CPUs times time limit is above the QOS's per-job maximum", True,
                                          "lower --cpus or --time-limit, or choose another --qos"),
    "QOSMaxNodePerJobLimit": Reason("the QOS does not allow even the one node a session asks for", True,
                                    "choose another --qos"),
    "QOSMaxBillingPerJob": Reason("the job's billing weight is above the QOS's per-job maximum", True,
                                  "lower --cpus, --memory or --gpus, or choose another --qos"),
    "QOSMinCpuNotSatisfied": Reason("the QOS needs more CPUs than the job asks for", True,
                                    "raise --cpus or choose another --qos"),
    "QOSMinMemory": Reason("the QOS needs more memory than the job asks for", True,
                           "raise --memory or choose another --qos"),
    "QOSMinGRES": Reason("the QOS needs GPUs/GRES the job does not ask for", True,
                         "add --gpus or choose another --qos"),
    "AssocGrpCPUMinutesLimit": Reason("your account has no CPU time left", True, "use another --account"),
    "AssocGrpBillingMinutes": Reason("your account has no allocation left", True, "use another --account"),
    "InvalidAccount": Reason("the account is not valid for you", True, "check --account"),
    "InvalidQOS": Reason("the QOS is not valid for you", True, "check --qos"),
    "QOSNotAllowed": Reason("the QOS is not allowed on this partition or account", True, "check --qos"),
    "AccountNotAllowed": Reason("the account may not use this partition", True, "check --account or --partition"),
    "BadConstraints": Reason("no node has the features asked for", True, "change --constraint"),
    "ReqNodeNotAvail, UnavailableNodes": Reason("required nodes are unavailable"),
    "PartitionConfig": Reason("the partition's nodes cannot give what the job asks for (CPUs, memory, GPUs or "
                              "node features)", True,
                              "lower --cpus, --memory or --gpus, or choose another --partition"),
    "Nodes_required_for_job_are_DOWN,_DRAINED_or_reserved_for_jobs_in_higher_priority_partitions":
        Reason("the nodes it could use are down, drained or kept for jobs in other partitions"),
    "launch failed requeued held": Reason("held after its launch failed", advice="ask your site's support"),
    "JobLaunchFailure": Reason("its launch failed", advice="ask your site's support"),
    "Cleaning": Reason("waiting while Slurm cleans up after an earlier run"),
    "Licenses": Reason("waiting for a license"),
    "ReqNodeNotAvail, Reserved for maintenance": Reason("the nodes are reserved for maintenance"),
    "QOSGrpCpuLimit": Reason("your QOS's group CPU limit is reached (waits for other jobs)"),
    "QOSGrpMemLimit": Reason("your QOS's group memory limit is reached (waits for other jobs)"),
    "QOSGrpNodeLimit": Reason("your QOS's group node limit is reached (waits for other jobs)"),
    "QOSGrpGRES": Reason("your QOS's group GPU/GRES limit is reached (waits for other jobs)"),
    "QOSMaxSubmitJobPerUserLimit": Reason("your QOS's submitted-jobs limit is reached (waits for your other jobs)"),
    "QOSResourceLimit": Reason("a limit of your QOS is reached (waits for other jobs)"),
    "AssocGrpNodeLimit": Reason("your account's group node limit is reached (waits for other jobs)"),
    "AssocGrpGRES": Reason("your account's group GPU/GRES limit is reached (waits for other jobs)"),
    "AssocGrpJobsLimit": Reason("your account's group running-jobs limit is reached (waits for other jobs)"),
    "MaxCpuPerAccount": Reason("your account's CPU limit is reached (waits for other jobs)"),
    "InactiveLimit": Reason("ended by the inactivity limit"),
    "SystemFailure": Reason("a Slurm or node failure"),
    "FrontEndDown": Reason("no front-end node is available"),
}


def explain(code: str) -> Reason:
    """Plain words for Slurm's reason code (also with a suffix: `(...)`, `, UnavailableNodes:...`);
    a code this table does not know is shown as Slurm's own word, said to be Slurm's."""
    base = re.split(r"[(,:]", code)[0].strip()
    return REASONS.get(code) or REASONS.get(base) or Reason(f"Slurm's reason: {code}" if code else "no reason given")


def limit(code: str, partition: Optional[Partition]) -> str:
    """The partition's limit a never-start reason ran into, in words ("" when sinfo could not say)."""
    from galyleo.rules import canonical_time, seconds

    base = re.split(r"[(,:]", code)[0].strip()
    if partition is None:
        return ""
    if base == "PartitionTimeLimit":
        total = seconds(partition.max_time)
        return f"the {partition.name} partition allows at most {canonical_time(total) if total else partition.max_time}"
    if base == "PartitionConfig" and partition.cpus:
        memory = f" and {partition.memory_mb // 1024} GB of memory" if partition.memory_mb >= 1024 else ""
        return f"the largest node in the {partition.name} partition has {partition.cpus} CPUs{memory}"
    return ""


def advice(code: str) -> Optional[str]:
    reason = explain(code)
    if not reason.never:
        return None
    return f"this job can never start as submitted: {reason.words}; {reason.advice}"
