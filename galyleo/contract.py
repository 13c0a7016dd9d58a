"""Every fact galyleo and its job script share, owned here and rendered into the script.

galyleo is two programs that must agree: this Python on the login node and the
bash job it renders. Each agreement is spelled once, below, and reaches the job as
a `GALYLEO_*` value bound by values.sh.j2 (`job_values`), so no snippet restates
one; tests/py/test_contract.py runs the rendered bash and reads back what it wrote
or printed. What crosses, in one place:

- the session record (a JSON file): `Record`, its writer, reader and version, and
  the printf format a plain-`sbatch` job writes it with;
- the names of a session's files: `SessionFiles` (one base path, one suffix each), and
  the job's word that its own route is live (`routed`);
- the alias pattern the proxy hands out, the session URL, the cluster-name alphabet
  and the time format;
- the log lines the job prints that galyleo reads back (`MARK_*`);
- where the job looks for conda, and the conda-pack cache key's recipe.
Contracts of one feature stay with it (idle.py: the activity file; connect/ssh.py: the
ssh URL file) and follow the same rule.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from galyleo.connect import MODES as CONNECT_MODES  # how a session is reached (config's `connect` choices too)

# --- the session record ---------------------------------------------------------------
RECORD_VERSION = 1  # a record without "version" is from before it was counted: read the same way


@dataclass(frozen=True)
class Record:
    """One session as galyleo remembers it (0600 JSON beside the job output).

    launch writes it after sbatch; a plain-`sbatch` job writes its own once it runs
    (`standalone`), with the fields a job can know. `record` is where the file is."""

    name: str
    job_id: str
    alias: str = ""
    url: str = ""
    output: str = ""
    script: str = ""
    interface: str = ""
    created: str = ""
    record: str = ""
    cluster: str = ""  # set when sbatch named another cluster than this node's (slurm.on_cluster)
    connect: str = CONNECT_MODES[0]  # the connection mode (galyleo/connect/): ssh has no alias, url is the laptop's
    domain: str = ""
    login_host: str = ""
    ssh_target: str = ""
    local_port: int = 0
    standalone: bool = False
    options: Dict[str, Any] = field(default_factory=dict, compare=False)
    version: int = RECORD_VERSION

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)

    def to_text(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, data: Mapping[str, Any], path: str) -> "Record":
        """Tolerant of every record galyleo ever wrote: missing keys take their defaults.
        Raises BadFile for what no galyleo wrote: a newer version, an unknown connect mode,
        a port or job id out of shape."""
        if not isinstance(data, dict):
            raise BadFile("not a JSON object")
        options = data.get("options") or {}
        if not isinstance(options, dict):
            options = {}

        def text(key: str) -> str:
            return str(data.get(key) or "")

        version, port = data.get("version") or 0, data.get("local_port") or 0
        connect = text("connect") or CONNECT_MODES[0]
        if not (type(version) is int and 0 <= version <= RECORD_VERSION):
            raise BadFile(f"version {str(version)[:20]!r}: this galyleo reads versions up to {RECORD_VERSION}")
        if connect not in CONNECT_MODES:
            raise BadFile(f"connect {connect[:20]!r}: expected one of {', '.join(CONNECT_MODES)}")
        if not (type(port) is int and 0 <= port <= 65535):
            raise BadFile(f"local_port {str(port)[:20]!r}: expected a port number")
        if not JOB_ID.match(str(data.get("job_id", ""))):
            raise BadFile(f"job_id {str(data.get('job_id'))[:20]!r}: expected a Slurm job id")
        return cls(
            name=text("name"), job_id=str(data["job_id"]), alias=text("alias"), url=text("url"),
            output=text("output"), script=text("script"),
            interface=str(data.get("interface") or options.get("interface", "")),
            created=text("created"), record=path, cluster=text("cluster"),
            connect=connect, domain=text("domain"),
            login_host=text("login_host"), ssh_target=text("ssh_target"),
            local_port=port, standalone=bool(data.get("standalone")),
            options=options, version=version,
        )

    @classmethod
    def load(cls, path: str) -> "Record":
        """The record at PATH; BadFile (saying why) for anything that is not one of the user's
        records: a link, a FIFO, a device, another user's file, a huge file, bad JSON."""
        raw = read_own(path, RECORD_MAX_BYTES)
        try:
            data = json.loads(raw.decode("utf-8"), parse_constant=refuse_constant)
        except (ValueError, RecursionError) as exc:
            raise BadFile(f"not a galyleo record ({type(exc).__name__})") from None
        return cls.from_json(data, path)

    @classmethod
    def read(cls, path: str) -> Optional["Record"]:
        """The record at PATH, or None if it is missing or not one."""
        try:
            return cls.load(path)
        except (OSError, BadFile):
            return None


JOB_ID = re.compile(r"[0-9]{1,20}\Z")
RECORD_MAX_BYTES = 1 << 20  # a record is about 2 KB: a file this big is not one


class BadFile(ValueError):
    """A session file galyleo will not read, and why (one line)."""


def refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read_own(path: str, limit: int, tail: bool = False) -> bytes:
    """PATH's bytes, read only once it is known to be a regular file of this user's: opened
    without following a link or blocking on a FIFO. Larger than LIMIT: BadFile, or with TAIL
    its last LIMIT bytes. OSError when it cannot be opened (FileNotFoundError: it is gone)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise BadFile("a symbolic link") from None
        raise
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise BadFile("not a regular file")
        if info.st_uid != os.getuid():
            raise BadFile(f"owned by another user (uid {info.st_uid})")
        if info.st_size > limit:
            if not tail:
                raise BadFile(f"{info.st_size} bytes: too large")
            handle.seek(info.st_size - limit)
        return handle.read(limit)


# What only the job knows when a plain-`sbatch` job writes its own record, each from a
# JSON-safe alphabet (digits, the alias pattern, hex, a UTC time, the cluster alphabet).
JOB_SLOTS = ("job_id", "alias", "token", "local_port", "created", "cluster")
SLOT = "<<galyleo-slot-%s>>"  # kept as is by json.dumps
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # `created`, in UTC: strftime's, and `date -u +...`'s


def slot(name: str) -> str:
    """A place in a record template for the job's value of NAME (one of JOB_SLOTS)."""
    return SLOT % name


def standalone_record(folder: str, interface: str, url: str, connect: str, domain: str = "", alias: str = "") -> Record:
    """The record a plain-`sbatch` job writes once it runs, its run-time facts as slots (URL and
    ALIAS, the connection mode's, have theirs)."""
    job_id = slot("job_id")
    paths = files(folder, job_session_name(job_id))
    return Record(name=paths.name, job_id=job_id, alias=alias, url=url,
                  output=paths.output, interface=interface, created=slot("created"), cluster=slot("cluster"),
                  connect=connect, domain=domain, standalone=True)


def record_format(template: Record) -> Tuple[str, Tuple[str, ...]]:
    """TEMPLATE's JSON as a bash printf format, a %s where it has a slot, and the slots'
    names in the order the format takes them."""
    text = printf_safe(json.dumps(template.to_json(), sort_keys=True))
    order = tuple(m.group(1) for m in re.finditer(re.escape(SLOT).replace("%s", "([a-z_]+)"), text))
    for name in JOB_SLOTS:
        text = text.replace(slot(name), "%s")
    return text + "\\n", order


def printf_safe(text: str) -> str:
    """TEXT as a literal inside a bash printf format."""
    return text.replace("\\", "\\\\").replace("%", "%%")


def user_folder(text: str) -> str:
    """A configured folder with `%u` as the user's login name, so one site line
    (`/shared/galyleo/%u`) gives each user a folder of their own."""
    if "%u" not in text:
        return text
    import pwd

    return text.replace("%u", pwd.getpwuid(os.getuid()).pw_name)


# --- a session's files ----------------------------------------------------------------
PREFIX = "galyleo-"  # every session file's name starts so (records are found by it)
SUFFIXES = {"output": ".out", "script": ".sh", "token": ".token", "record": ".json", "url": ".url",
            "activity": ".activity", "routed": ".routed", "ending": ".ending"}


@dataclass(frozen=True)
class SessionFiles:
    """Where one session keeps its files: one base path, one suffix each (SUFFIXES)."""

    name: str
    base: str
    output: str
    script: str
    token: str
    record: str
    url: str
    activity: str
    routed: str
    ending: str  # how the job itself says it ended (ENDING_*), private: never text others wrote


def at(base: str) -> SessionFiles:
    return SessionFiles(os.path.basename(base), base, **{key: base + suffix for key, suffix in SUFFIXES.items()})


def files(folder: str, name: str) -> SessionFiles:
    """The files of the session NAME in FOLDER."""
    return at(os.path.join(folder, name))


def job_session_name(job_id: str) -> str:
    """The name a plain-`sbatch` job gives its session (launch names it before it has a job id)."""
    return f"{PREFIX}{job_id}"


def files_of(path: str, kind: str = "record") -> SessionFiles:
    """The files of the session one of whose files (a KIND: record, output...) is PATH."""
    suffix = SUFFIXES[kind]
    return at(path[: -len(suffix)] if path.endswith(suffix) else path)


def files_of_record(record_path: str) -> SessionFiles:
    return files_of(record_path, "record")


def files_of_output(output: str) -> SessionFiles:
    """launch names every file of a session after its job output."""
    return files_of(output, "output")


def routed(path: str) -> bool:
    """Whether the job says its own route is live: it writes PATH (SessionFiles.routed) only
    after its own redeem (or ssh URL file) succeeded. A file someone else put there, or
    anything but a regular file, is not the job's word."""
    import stat

    try:
        found = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(found.st_mode) and found.st_uid == os.getuid()


RECORD_NAMES = PREFIX + "*" + SUFFIXES["record"]  # a glob: every record in a folder


def record_glob(folder: str) -> str:
    import glob

    return os.path.join(glob.escape(folder), RECORD_NAMES)


def sbatch_output(folder: str) -> str:
    """`#SBATCH --output` for a plain-`sbatch` job: sbatch fills in %j (a literal % is %%)."""
    return folder.replace("%", "%%") + "/" + job_session_name("%j") + SUFFIXES["output"]


def base_format(folder: str, output_file: str = "") -> str:
    """The job's base path as a printf format: launch's (from its OUTPUT_FILE), else FOLDER's
    with a %s for the job id."""
    if output_file:
        return printf_safe(files_of_output(output_file).base)
    return printf_safe(os.path.join(folder, PREFIX)) + "%s"


# --- names the proxy and Slurm give ---------------------------------------------------
ALIAS_PATTERN = "[a-z0-9]+-[a-z0-9]+-[a-z0-9]+"  # an ERE, and a Python regex: both sides match it whole
ALIAS = re.compile(ALIAS_PATTERN + r"\Z")
PROXY_ORIGIN_FORMAT = "https://%s.%s"  # alias, domain: the origin the browser has
PROXY_URL_FORMAT = PROXY_ORIGIN_FORMAT + "/?token=%s"  # alias, domain, token: the session URL
CLUSTER_CHARS = "A-Za-z0-9_.-"  # a cluster name is kept to these (a bracket expression's inside)
CLUSTER = re.compile(f"[{CLUSTER_CHARS}]{{0,64}}\\Z")


def clean_cluster(text: str) -> str:
    return re.sub(f"[^{CLUSTER_CHARS}]", "", text)


def proxy_url(alias: str, domain: str, token: str) -> str:
    return PROXY_URL_FORMAT % (alias, domain, token)


# --- what the job prints and galyleo reads ---------------------------------------------
# Only lines in galyleo_log's own form count: `[galyleo HH:MM:SS] ` at a line's start, which
# Jupyter's log lines (`[I 2026-...`) never are, whatever a request puts into them.
LOGGED = r"^\[galyleo[^\]\n]*\] "
MARK_ENDED = "session ended (exit status %s)"  # cleanup.sh.j2's last line: a printf format
MARK_TERM = "received SIGTERM (scancel or time limit)"
MARK_INT = "received SIGINT"
MARK_HUP = "received SIGHUP"
MARK_IDLE_ENDED = "ended: idle for %s min (no kernel running and no request; Jupyter shut itself down)"
MARK_STAMP = "[galyleo stamp] %s %s"  # a step and its seconds since the job started (benchmarks read them)


def pattern(mark: str, slot: str = r"(\d+)") -> "re.Pattern[str]":
    """A MARK_* printf format as a regex, each %s a group matching SLOT."""
    return re.compile(re.escape(mark).replace("%s", slot))


def logged(mark: str) -> "re.Pattern[str]":
    """MARK as a whole line galyleo_log printed (not text inside another program's line)."""
    return re.compile(LOGGED + pattern(mark).pattern + "$", re.M)


def exit_statuses(text: str) -> List[str]:
    """The exit statuses the job output's MARK_ENDED lines give, in order."""
    return logged(MARK_ENDED).findall(text)


def says(text: str, mark: str) -> bool:
    """Whether the job itself logged MARK (a MARK_* without a slot) in TEXT."""
    return bool(logged(mark).search(text))


# The job's own ending, one line in the session's private `ending` file (never the job
# output, where anyone who reaches Jupyter can write through its request log).
ENDING_IDLE = "idle for %s min"  # the server shut itself down for no activity, as the job saw it
ENDING_MAX_BYTES = 256


def ending_of(output: str) -> str:
    """How the job whose output is OUTPUT says it ended, from its ending file ("" if it did not)."""
    if not output:  # a record without an output has no ending file either (never one in the cwd)
        return ""
    try:
        text = read_own(files_of_output(output).ending, ENDING_MAX_BYTES).decode("ascii").strip()
    except (OSError, BadFile, UnicodeDecodeError):
        return ""
    return text if pattern(ENDING_IDLE).fullmatch(text) else ""


def stamps(text: str) -> Dict[str, float]:
    """The job's timing stamps: step -> seconds since it started (the last of each)."""
    found = re.findall("^" + re.escape(MARK_STAMP).replace("%s", r"(\S+)", 1).replace("%s", r"([0-9.]+)") + "$",
                       text, re.M)
    return {step: float(value) for step, value in found}


# --- conda (the search order and the cache key) -----------------------------------------
# Where the job looks for conda when nothing else names it (the order a user's shell would);
# a leading `~/` is the user's home, on the login node as in the job.
CONDA_PREFIXES = ("~/miniforge3", "~/miniconda3", "~/anaconda3", "~/mambaforge", "/opt/conda")
CONDA_PREFIX_SEPARATOR = ":"  # the job gets the list as one string: a bash array cannot be exported into a container
KEY_LENGTH = 32  # hex digits of the sha256 a conda-pack cache entry is named by
KEY = re.compile(f"[0-9a-f]{{{KEY_LENGTH}}}\\Z")


def cache_key(yml: bytes, platform: str) -> str:
    """The cache key of the env a yml builds on a platform (`uname -sm`): one env per
    yml content and platform, so another machine type never unpacks a foreign pack."""
    import hashlib  # 3 ms that rendering a job (which imports this module) does not need

    return hashlib.sha256(yml + platform.encode() + b"\n").hexdigest()[:KEY_LENGTH]


def conda_values() -> Dict[str, Any]:
    """The conda contracts as the `GALYLEO_*` values conda.sh.j2 uses."""
    return {"GALYLEO_CONDA_PREFIXES": CONDA_PREFIX_SEPARATOR.join(CONDA_PREFIXES),
            "GALYLEO_CONDA_KEY_LENGTH": KEY_LENGTH}


# --- what the job script is given --------------------------------------------------------
def job_values(folder: str, output_file: str = "", template: Optional[Record] = None) -> Dict[str, Any]:
    """The contracts as the `GALYLEO_*` values the snippets use; TEMPLATE: the record a
    plain-`sbatch` job writes (None when launch writes it)."""
    form, order = record_format(template) if template else ("", ())
    return {
        "GALYLEO_SESSION_BASE": base_format(folder, output_file),
        "GALYLEO_SUFFIX_RECORD": SUFFIXES["record"],
        "GALYLEO_SUFFIX_URL": SUFFIXES["url"],
        "GALYLEO_SUFFIX_ROUTED": SUFFIXES["routed"],
        "GALYLEO_SUFFIX_OUTPUT": SUFFIXES["output"],
        "GALYLEO_CLUSTER_CHARS": CLUSTER_CHARS,
        "GALYLEO_MARK_ENDED": MARK_ENDED,
        "GALYLEO_MARK_TERM": MARK_TERM,
        "GALYLEO_MARK_INT": MARK_INT,
        "GALYLEO_MARK_HUP": MARK_HUP,
        "GALYLEO_MARK_STAMP": MARK_STAMP,
        "GALYLEO_TIME_FORMAT": TIME_FORMAT,
        "GALYLEO_RECORD_FORMAT": form,
        "GALYLEO_RECORD_SLOTS": order,
    }


def proxy_values() -> Dict[str, Any]:
    """What the Satellite connection (satellite.sh.j2) shares with satellite.py."""
    return {
        "GALYLEO_ALIAS_PATTERN": ALIAS_PATTERN,
        "GALYLEO_PROXY_URL_FORMAT": PROXY_URL_FORMAT,
        "GALYLEO_PROXY_ORIGIN_FORMAT": PROXY_ORIGIN_FORMAT,
    }


def activity_values() -> Dict[str, Any]:
    """Where the idle watch keeps the activity file (idle.py reads it) and the job its ending."""
    return {"GALYLEO_SUFFIX_ACTIVITY": SUFFIXES["activity"], "GALYLEO_SUFFIX_ENDING": SUFFIXES["ending"]}
