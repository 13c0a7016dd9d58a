"""Every message a user can see for bad input, and the internal error hierarchy.

Usage errors are one line naming the option, the value and what is accepted;
the CLI prints them and exits 2. Tests import the texts from here.
"""

from __future__ import annotations

from galyleo import apps


class GalyleoError(Exception):
    """Something failed after validation (Slurm, Satellite, files)."""

    exit_status = 1


class UsageError(GalyleoError):
    """Bad input from the command line or a config file: exit 2, no side effects."""

    exit_status = 2


class ConfigError(UsageError):
    """A config file that cannot be read or holds a bad value."""


class SubmitError(GalyleoError):
    """sbatch refused the job or could not be run."""


class SatelliteError(GalyleoError):
    """The Satellite proxy could not be reached or answered `Oops!`/garbage."""


def show(value: object) -> str:
    """Quote a value for a one-line message, escaping anything unprintable."""
    text = str(value)
    if len(text) > 200:  # a 5000-digit number still makes a short one-line message
        text = f"{text[:60]}...({len(text)} characters)"
    if text.isprintable() and "'" not in text:
        return f"'{text}'"
    return repr(text)


def bad(option: str, value: object, accepted: str) -> UsageError:
    """The standard one-line usage error: option, offending value, accepted form."""
    return UsageError(f"{option} {show(value)}: expected {accepted}")


ACCEPT = {
    "account": "a Slurm account name of letters, digits, '_', '.' or '-'",
    "name": "a name of letters, digits, '_', '.' or '-'",
    "partition": "a partition name (letters, digits, '_', '.', '-'), or a comma list of them",
    "constraint": "a Slurm feature expression (letters, digits and _ . - & | , * [ ] ( ) ! :)",
    "gres": "a Slurm GRES list such as gpu:2 or gpu:a100:1",
    "count": "a whole number from 1 to 100000",
    "memory": "a number of GB from 1 to 1048576: 4, 4G or 4GB; or in Slurm's units M, G, T: 4096M, 4g, 1T",
    "time": "minutes (30), MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS, above zero and at most 365 days",
    "interface": "one of " + ", ".join(apps.NAMES),
    "idle": "whole minutes from 0 (never) to 525600",
    "directory": "an existing directory",
    "file": "an existing readable file",
    "sif": "an existing image file, or a docker://, library://, oras:// or shub:// URI without spaces",
    "list": "a comma-separated list with no empty items",
    "module": "module names separated by commas (none empty, none starting with '-', none holding a space)",
    "bind": "comma-separated bind specs src[:dest[:opts]], none empty",
    "nonempty": "a non-empty value",
    "hostlist": "node names or ranges such as node[01-04],gpu7 (letters, digits, _ . - [ ] ,)",
    "sbatch": "one long sbatch option, --name or --name=value (value of letters, digits and _ . , : @ % + = / - [ ])",
    "line": "a non-empty value on one line (no control characters)",
}
