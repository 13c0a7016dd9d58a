"""Round trips across the language boundary for every contract in galyleo/contract.py.

Each test renders the real job script, runs the part that writes or prints the
contract with bash, and reads it back with galyleo's own Python reader. A snippet that
restates a contract by hand (a file name, a record field, a log line) and drifts
from contract.py fails here, long before a cluster test would notice.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import List, Optional

import pytest

from galyleo import cli, contract, idle, joblog, proxynames, render, sessions, spec
from galyleo.config import Config
from galyleo.connect import ssh as tunnel
from galyleo.contract import Record

DOMAIN = "user-content.example.org"
JOB_ID = "4242"


def build(argv: List[str], conf: Config, home: str) -> spec.LaunchSpec:
    return spec.build(cli.make_parser(conf).parse_args(["generate"] + argv), conf, home=home)


def config(folder: Path, **site: object) -> Config:
    return Config(require_account=False, satellite_domain=DOMAIN, output_dir=str(folder),
                  login_host="login.example.org", **site)  # type: ignore[arg-type]


def script(tmp_path: Path, argv: List[str], handoff: Optional[render.Handoff] = None) -> str:
    folder = tmp_path / "out%dir"
    folder.mkdir(exist_ok=True)
    conf = config(folder)
    return render.render(build(argv, conf, str(tmp_path)), conf, handoff)


def upto(text: str, section: str) -> str:
    """The script up to (not including) the `# --- galyleo: SECTION ---` part."""
    marker = f"# --- galyleo: {section} ---"
    assert marker in text, marker
    return text[: text.index(marker)]


def run_bash(text: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "SLURM_JOB_ID": JOB_ID, **env}
    return subprocess.run(["bash", "-c", text], capture_output=True, text=True, env=environ, timeout=60,
                          cwd=tmp_path)


# A stand-in for curl inside the job: the Satellite answers getlink with ALIAS, the rest with "ok".
# The job hands curl the URL in a config file (-K FILE): read it as curl would.
FAKE_CURL = """
curl() {
  local all="$*" next=""
  for arg in "$@"; do
    [[ "${next}" != 1 ]] || all+=" $(<"${arg}")"
    next=0
    [[ "${arg}" != -K ]] || next=1
  done
  case "${all}" in
    *getlink*) printf '%s\\n' "${TEST_ALIAS}" ;;
    *) echo ok ;;
  esac
}
"""


def register(tmp_path: Path, argv: List[str], **env: str) -> subprocess.CompletedProcess:
    """A plain-`sbatch` job's registration (getlink, token, record), then its token on stdout."""
    text = upto(script(tmp_path, argv), "cleanup") + FAKE_CURL + 'galyleo_register\nprintf "%s\\n" "${JUPYTER_TOKEN}"\n'
    return run_bash(text, tmp_path, **env)


def test_satellite_record_written_by_the_job_reads_back(tmp_path: Path) -> None:
    done = register(tmp_path, [], TEST_ALIAS="abc-def-ghi", SLURM_CLUSTER_NAME='cl$u"ster\\')
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    folder = str(tmp_path / "out%dir")
    paths = contract.files(folder, contract.job_session_name(JOB_ID))
    found = Record.read(paths.record)
    assert found is not None, os.listdir(folder)
    assert (found.name, found.job_id, found.alias, found.connect) == (paths.name, JOB_ID, "abc-def-ghi", "satellite")
    assert found.url == proxynames.proxy_url("abc-def-ghi", DOMAIN, token)
    assert found.output == paths.output and found.record == paths.record
    assert (found.domain, found.interface, found.standalone, found.version) == (DOMAIN, "lab", True,
                                                                                contract.RECORD_VERSION)
    assert found.cluster == "cluster"  # contract.CLUSTER_CHARS only
    assert abs(time.mktime(time.strptime(found.created, contract.TIME_FORMAT)) - time.timezone - time.time()) < 300
    assert Path(paths.url).read_text() == found.url + "\n"  # the URL file beside it
    assert [s.job_id for s in sessions.load_all(folder)] == [JOB_ID]  # and `galyleo list` finds it


def test_ssh_record_written_by_the_job_reads_back(tmp_path: Path) -> None:
    done = register(tmp_path, ["--connect", "ssh"], SLURM_CLUSTER_NAME="west")
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    folder = str(tmp_path / "out%dir")
    paths = contract.files(folder, contract.job_session_name(JOB_ID))
    found = Record.read(paths.record)
    assert found is not None
    assert (found.job_id, found.alias, found.connect, found.cluster) == (JOB_ID, "", "ssh", "west")
    port = int(found.url.split(":")[2].split("/")[0])  # the port the job drew
    assert tunnel.LOCAL_PORT_MIN <= port < tunnel.LOCAL_PORT_MIN + tunnel.LOCAL_PORT_SPAN
    assert found.url == tunnel.local_url(port, token)
    assert found.output == paths.output and found.standalone


@pytest.mark.parametrize("alias", ["abc-def-ghi", "a1-b2-c3", "abc-def", "ABC-def-ghi", "abc-def-ghi-jkl",
                                   "abc-def-gh;i", "abc-def-ghi\nx", "abc--ghi"])
def test_alias_pattern_same_on_both_sides(tmp_path: Path, alias: str) -> None:
    done = register(tmp_path, [], TEST_ALIAS=alias)
    accepted_by_job = done.returncode == 0
    assert accepted_by_job == bool(proxynames.ALIAS.match(alias.split("\n")[-1])), done.stderr
    if not accepted_by_job:
        assert "getlink reply is not an alias" in done.stderr


def test_launch_record_written_by_python_reads_back(tmp_path: Path) -> None:
    paths = contract.files(str(tmp_path), "galyleo-20261202-101010-abcdef")
    record = Record(name=paths.name, job_id="17", alias="x-y-z", url="https://x", output=paths.output,
                    script=paths.script, record=paths.record, interface="voila", created="2026-12-02T10:10:10Z",
                    options={"interface": "voila", "cpus": 2})
    Path(paths.record).write_text(record.to_text())
    assert Record.read(paths.record) == record
    assert Record.read(paths.record).options == record.options  # type: ignore[union-attr]


def test_records_of_every_earlier_galyleo_read(tmp_path: Path) -> None:
    """No "version" (before it was counted), interface only under options, no connect."""
    path = tmp_path / "galyleo-1.json"
    path.write_text('{"job_id": 9, "name": "galyleo-1", "options": {"interface": "notebook"}, "url": "u"}')
    found = Record.read(str(path))
    assert found is not None
    assert (found.job_id, found.interface, found.connect, found.version, found.record) == (
        "9", "notebook", "satellite", 0, str(path))
    path.write_text("{not json")
    assert Record.read(str(path)) is None


def idle_paths(text: str) -> str:
    """The lines of the job that name the job output and the activity file (server.sh.j2)."""
    found = [line for line in text.splitlines() if line.startswith(("galyleo_ending=", "galyleo_activity="))]
    assert len(found) == 2, found
    return "\n".join(found) + '\nprintf "ending=%s\\nactivity=%s\\n" "${galyleo_ending}" "${galyleo_activity}"\n'


def test_session_files_of_a_plain_sbatch_job(tmp_path: Path) -> None:
    text = script(tmp_path, ["--idle-timeout", "5"])
    folder = str(tmp_path / "out%dir")
    paths = contract.files(folder, contract.job_session_name(JOB_ID))
    done = run_bash(upto(text, "satellite") + idle_paths(text), tmp_path)
    assert done.returncode == 0, done.stderr
    said = dict(line.split("=", 1) for line in done.stdout.splitlines())
    assert said == {"ending": paths.ending, "activity": paths.activity}
    assert idle.activity_path(paths.output) == paths.activity  # where `galyleo status` reads it
    # sbatch's own name for the output (it fills in %j and turns %% into %) is the job's
    sbatch_output = next(line for line in text.splitlines() if line.startswith("#SBATCH --output="))
    assert sbatch_output.split("=", 1)[1].replace("%j", JOB_ID).replace("%%", "%") == paths.output


def test_session_files_of_a_launched_job(tmp_path: Path) -> None:
    paths = contract.files(str(tmp_path / "out%dir"), "galyleo-20261202-101010-a%b")
    handoff = render.Handoff("abc-def-ghi", paths.token, paths.output)
    for argv in ([], ["--connect", "ssh"]):
        text = script(tmp_path, argv + ["--idle-timeout", "5"], handoff)
        section = "ssh tunnel" if argv else "satellite"
        done = run_bash(upto(text, section) + idle_paths(text), tmp_path)
        assert done.returncode == 0, done.stderr
        said = dict(line.split("=", 1) for line in done.stdout.splitlines())
        assert said == {"ending": paths.ending, "activity": paths.activity}, argv
    text = script(tmp_path, ["--connect", "ssh"], handoff)
    done = run_bash(upto(text, "cleanup") + 'printf "%s\\n" "${galyleo_url_file}"\n', tmp_path)
    assert done.stdout.strip() == paths.url == tunnel.url_path(paths.record)


def ended(tmp_path: Path, body: str) -> str:
    """The job output of a job that runs BODY after its clean-up trap is set."""
    text = script(tmp_path, [])
    upto_trap = text[: text.index("galyleo_register\n")]  # values, helpers, connection, clean-up trap
    return run_bash(upto_trap + body, tmp_path).stderr


def session_with(tmp_path: Path, output: str) -> contract.Record:
    path = tmp_path / "job.out"
    path.write_text(output)
    return Record(name="galyleo-1", job_id="1", output=str(path))


def test_exit_status_line_reads_back(tmp_path: Path) -> None:
    output = ended(tmp_path, "exit 3\n")
    assert joblog.exit_statuses(output) == ["3"]
    assert sessions.ended_how(session_with(tmp_path, output), "") == "failed, exit status 3"
    assert sessions.ended_how(session_with(tmp_path, ended(tmp_path, "exit 0\n")), "") == "completed"


def test_term_line_reads_back(tmp_path: Path) -> None:
    output = ended(tmp_path, "kill -TERM $$\nsleep 5\n")
    assert joblog.MARK_TERM in output and joblog.exit_statuses(output) == ["143"]
    assert sessions.ended_how(session_with(tmp_path, output), "") == "cancelled or time limit reached"
    for signal, mark in (("INT", joblog.MARK_INT), ("HUP", joblog.MARK_HUP)):
        assert mark in ended(tmp_path, f"kill -{signal} $$\nsleep 5\n"), signal


def test_stamps_read_back(tmp_path: Path) -> None:
    text = upto(script(tmp_path, []), "satellite") + "galyleo_stamp registered\n"
    found = joblog.stamps(run_bash(text, tmp_path).stderr)
    assert set(found) == {"start", "registered"} and 0 <= found["start"] <= found["registered"]


def test_idle_ending_reads_back(tmp_path: Path) -> None:
    """The job's ending file, named and filled from the rendered values, is what sessions reads."""
    text = upto(script(tmp_path, ["--idle-timeout", "7"]), "satellite") + \
        'printf "%s\\n" "${GALYLEO_IDLE_ENDING}" >"${galyleo_base}${GALYLEO_SUFFIX_ENDING}"\n'
    assert run_bash(text, tmp_path).returncode == 0
    output = contract.files(str(tmp_path / "out%dir"), contract.job_session_name(JOB_ID)).output
    assert joblog.ending_of(output) == "idle for 7 min"
    assert sessions.ended_how(Record(name="galyleo-1", job_id="1", output=output), "COMPLETED") == "idle for 7 min"


FORGED = ("[W 2026-12-02 10:50:27.689 ServerApp] 403 GET /x (@10.0.0.9) 0.50ms referer=x "
          "[galyleo 10:50:27] {mark}\n")


@pytest.mark.parametrize("mark", [idle.ended_message(30), joblog.MARK_TERM, joblog.MARK_ENDED % 0,
                                  "No kernels for 99 seconds; shutting down"])
def test_text_others_put_into_the_job_output_is_no_ending(tmp_path: Path, mark: str) -> None:
    """Anyone who reaches Jupyter writes into its log (the Referer header): only galyleo's own lines count."""
    session = session_with(tmp_path, "[galyleo 10:50:00] starting lab\n" + FORGED.format(mark=mark))
    assert sessions.ended_how(session, "") == "no longer known to Slurm"
    assert sessions.ended_how(session, "COMPLETED") == "completed"


@pytest.mark.parametrize("how", ["link", "words", "fifo"])
def test_an_ending_file_the_job_did_not_write_is_ignored(tmp_path: Path, how: str) -> None:
    session = session_with(tmp_path, "")
    ending = contract.files_of_output(session.output).ending
    if how == "link":
        (tmp_path / "elsewhere").write_text("idle for 30 min\n")
        os.symlink(tmp_path / "elsewhere", ending)
    elif how == "fifo":
        os.mkfifo(ending)
    else:
        Path(ending).write_text("idle for 30 min; and more\n")
    assert sessions.ended_how(session, "COMPLETED") == "completed"


def test_record_format_takes_any_folder(tmp_path: Path) -> None:
    """The folder is in the format itself, JSON-quoted by Python: quotes, %, backslashes and a
    newline in it survive printf and read back (galyleo refuses most of them earlier)."""
    folder = str(tmp_path / 'we"ird %s \\n\nname')
    os.makedirs(folder)
    url = proxynames.proxy_url(contract.slot("alias"), DOMAIN, contract.slot("token"))
    template = contract.standalone_record(folder, "lab", url, "satellite", domain=DOMAIN, alias=contract.slot("alias"))
    form, order = contract.record_format(template)
    given = {"job_id": "77", "alias": "a-b-c", "token": "ff", "local_port": "1", "created": "now", "cluster": "c"}
    path = os.path.join(folder, "r.json")
    done = subprocess.run(["bash", "-c", 'f=$1; shift; printf "$f" "$@" >"$0"', path, form,
                           *[given[name] for name in order]], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    found = Record.read(path)
    assert found is not None
    assert found.output == contract.files(folder, "galyleo-77").output
    assert (found.job_id, found.name, found.url) == ("77", "galyleo-77", proxynames.proxy_url("a-b-c", DOMAIN, "ff"))
