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
- the cluster-name alphabet and the time format;
Contracts of one feature stay with it and follow the same rule: joblog.py (the lines
the job prints that galyleo reads back, its own ending), conda.py (where the job looks
for conda, the cache key), idle.py (the activity file), connect/*.py (each connection
mode's, e.g. the ssh URL file).
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

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


# --- the names Slurm gives ------------------------------------------------------------
CLUSTER_CHARS = "A-Za-z0-9_.-"  # a cluster name is kept to these (a bracket expression's inside)
CLUSTER = re.compile(f"[{CLUSTER_CHARS}]{{0,64}}\\Z")


def clean_cluster(text: str) -> str:
    return re.sub(f"[^{CLUSTER_CHARS}]", "", text)


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
        "GALYLEO_TIME_FORMAT": TIME_FORMAT,
        "GALYLEO_RECORD_FORMAT": form,
        "GALYLEO_RECORD_SLOTS": order,
    }
