"""The words of `galyleo help` beyond each option's one line: what each command does and
what a user must know to use it, since a user on a login node has no other manual.

Plain strings, read by arguments.py; a blank line is a paragraph break (arguments.Formatter).
"""

TOP = ("Private, HTTPS, token-protected Jupyter sessions as Slurm jobs. From a laptop: "
       "galyleo --host HOST COMMAND ... runs COMMAND on HOST over ssh (galyleo --host --help).")
TOP_EPILOG = """\
A first session: `galyleo launch -A ACCOUNT -p PARTITION -t 01:00:00` prints its URL as the last line;
open it in a browser (until Slurm starts the job, the proxy shows a waiting page). `galyleo help
COMMAND` (or `galyleo COMMAND -h`) explains a command, with this site's defaults.

ID (status, open, logs, stop, clean, relaunch): a job id, an alias or a session name; with exactly
one live session it may be left out. Options are never abbreviated. Each session's files (job script,
job output, record) are kept under the output_dir setting (default ~/.galyleo).

Settings, each overriding the one before: built-in, the site file (galyleo.toml beside galyleo, or
$GALYLEO_CONFIG), your file ~/.config/galyleo/config.toml (`galyleo config set`), the environment
(GALYLEO_<KEY>, and sbatch's SBATCH_ACCOUNT, SBATCH_PARTITION, ...), then the command line.

Exit status: 0 done, 1 failed (Slurm, the proxy or a file: one line says which), 2 bad input (one line
naming the option, the value and what is accepted; nothing was done), 130 interrupted."""

LAUNCH = """\
Submit a Jupyter session as a Slurm job and print its HTTPS URL (the last line of stdout). Open it in
a browser: the session starts once Slurm has allocated the resources. launch first gets an alias
from the proxy, writes the job script and a session record, then runs sbatch. A failure after that
(sbatch refuses, Ctrl-C, TERM) cancels the job, releases the alias and removes the files.

With --connect ssh no proxy is used: launch waits for the job, then prints the ssh command to run on
your laptop (it opens a tunnel to the session) and, last, the local URL http://127.0.0.1:PORT/?token=...

Before submitting, launch checks on the login node that the conda environment, the yml, the modules
and Jupyter's command exist (--no-preflight skips it)."""

GENERATE = """\
Print a self-contained job script and do nothing else: `galyleo generate ... > job.sh; sbatch job.sh`
is a complete session. The job gets its own alias and token, writes its URL to
galyleo-JOBID.url (mode 0600) in your sessions folder and a session record, so list, status, open,
logs and stop know it too; its job output names the file but never holds the token."""

RELAUNCH = """\
Launch a new session with the options of an earlier one (ended, running or a plain sbatch); any
option given overrides the recorded one. --dry-run shows the result."""

LIST = """\
One line per live session (--all: ended ones too): job id; state (PENDING with Slurm's reason,
RUNNING with the time left, ENDED with how it ended: stopped, time limit, idle, failed, ...);
interface; node; age; and the URL of a running session. If Slurm does not answer, the state is
UNKNOWN, never ENDED."""

STATUS = """\
Everything known about one session: its state, Slurm's reason in plain words, the expected start, why
a job can never start as submitted and which option to change, node, time left, when an idle session
would end, the proxy's state (ssh mode: the ssh command) and the paths of its files."""

OPEN = """\
Print a session's URL again (ssh mode: the ssh command, then the local URL). For an ended session it
says how it ended and exits 1; a pending one has no URL until it starts."""

LOGS = """\
Print a session's job output. --follow keeps printing until the job ends (Ctrl-C stops following).
For a pending job it says so, with Slurm's reason; --follow waits for it to start."""

STOP = """\
End sessions: a pending job is cancelled and galyleo releases its alias; a running job's own clean-up
releases it; exactly once either way. If Slurm does not answer or scancel fails, nothing is changed
(exit 1). --all lists the live sessions and asks on a terminal; without one it needs --yes."""

CLEAN = """\
Remove the records and files of ended sessions, never a live one (and nothing while Slurm does not
answer). With ids: only those (no question; one not ended is an error and nothing is removed). With
--older-than: only those created more than DAYS days ago. Otherwise it asks first, unless --yes."""

CONFIG = """\
Your defaults for every option and setting. show: each setting, its value and where it comes from.
set KEY VALUE: write it to your user file ~/.config/galyleo/config.toml (or under $XDG_CONFIG_HOME),
checked as the command line would check it. unset KEY: back to the site's value. check [FILE]: check
a config file (default: this site's).

Settings, each overriding the one before: built-in, the site file, your file, the environment
(GALYLEO_<KEY>, e.g. GALYLEO_PARTITION=debug), then the command line. A config file may also name
sets of launch options: a table [presets.NAME] of option = value lines (cpus = 4, gpus = 1,
partition = "gpu"), used with --preset NAME."""

CONFIG_SET = """\
A list setting takes a TOML array ('["a","b"]') or a comma list (a,b). A time_limit above its
partition's maximum (sinfo) is refused. The site limits idle_timeout_max, time_limit_max and
connect_allowed cannot be set here. A symlinked config.toml stays a link; its comments are kept."""

CACHE_COMMAND = """\
The conda environments that --conda-yml with --cache built and packed with conda-pack, kept in
the cache folder (setting conda_cache_dir, default: cache in your sessions folder) and keyed on the
yml's content and the platform. list shows them; rm removes them by key, or --all."""

COMPLETION = """\
Print a completion script for bash or zsh. Load it in your shell (e.g. from ~/.bashrc) with
eval "$(galyleo completion bash)". It completes commands, options, -i, --connect and --preset values,
config keys, your sessions' job ids, partitions (sinfo) and, for -e, module names (module avail)."""

HELP = "Show how to use galyleo, or one command with this site's defaults (as `galyleo COMMAND -h`)."

LAUNCH_RULES = """\
Options that cannot be combined are refused: --conda-env with --conda-yml, --gpus with --gres, --nv
with --rocm; --mamba and --cache need --conda-yml, --conda-init a conda option, --bind, --nv and
--rocm need --sif. A value that is exactly `--` is refused."""

SBATCH = ("any other sbatch option, as one word: --sbatch=--mail-type=END (repeatable); options galyleo"
          " sets itself (--output, --job-name, --signal, ...) or has its own option for (--time: -t) are refused")
PRESET = ("start from a named set of options ([presets.NAME] in the site or your config file;"
          " options given override it)")
IDLE = ("A kernel running code is never stopped; an idle one is shut down (its notebook file is kept), and the"
        " session ends once no kernel runs and no request came for MINUTES (an open, visible JupyterLab tab"
        " counts as requests; in VS Code, a connected tab and a terminal running a command count as activity)")
CACHE = ("pack the --conda-yml environment with conda-pack after its first build and reuse it while the yml is"
         " unchanged (`galyleo cache`)")
WAIT = ("follow the session on stderr until its URL answers: Slurm's reason, the expected start, then ready"
        " (exit 0) or the job ended first (exit 1); Ctrl-C while it is pending cancels it")
LAUNCH_JSON = ("print one JSON document on stdout: {name, job_id, alias, url, script, output, record, interface,"
               " created, state} (state SUBMITTED; with --wait, RUNNING once ready; ssh mode adds connect and"
               " ssh_argv); words go to stderr; a failure prints {error, exit}")
LIST_JSON = ("one JSON document: {sessions: [...]}, each with job_id, name, alias, url, state, reason, node,"
             " time_left, ended, interface, created, connect, ...")
STATUS_JSON = "one JSON document: the session as `list --json` shows it, plus satellite (the proxy's view)"
