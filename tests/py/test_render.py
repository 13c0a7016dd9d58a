"""Rendering: templates quote at every `{{ }}`, `#SBATCH` pairs, time and memory
forms, section choice, the bound-values block, launch mode, an option matrix and
the README's examples, each emitted script passing `bash -n` and shellcheck.

Scripts are checked as lines (counted), never as whole heredocs.
"""

import contextlib
import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence

import pytest
from conftest import DATA, ROOT, hermetic

from galyleo import cli as galyleo_cli
from galyleo import config, configfiles, render, rules, spec
from galyleo.config import Config

ALLOWED_FILTERS = {"sh", "sbatch", "ident"}
SNIPPETS = sorted(p.name for p in (ROOT / "galyleo" / "snippets").glob("*.j2"))
BASE = Config(account="abc123", satellite_domain="proxy.example.org")
BANNERS = ("# --- galyleo: modules ---", "# --- galyleo: conda ---", "# --- galyleo: container ---")


def build(argv: Sequence[str], conf: Config = BASE, home: str = "/") -> spec.LaunchSpec:
    args = galyleo_cli.make_parser(conf).parse_args(["generate", *argv])
    return spec.build(args, conf, home=home)


def script(argv: Sequence[str], conf: Config = BASE, handoff: Optional[render.Handoff] = None,
           home: str = "/") -> str:
    return render.render(build(argv, conf, home), conf, handoff)


def sbatch_lines(text: str, key: str) -> List[str]:
    return [line for line in text.splitlines() if line.startswith(f"#SBATCH --{key}=")]


def values_block(text: str) -> str:
    lines = text.splitlines()
    start = lines.index("# --- galyleo: values (the only place user input appears) ---")
    end = lines.index("", start)
    return "\n".join(lines[start:end]) + "\n"


# --- templates ------------------------------------------------------------------------


def unquoted_outputs(env, source: str) -> List[str]:
    """Every `{{ }}` whose outermost node is not one of the quoting filters."""
    from jinja2 import nodes

    found = []
    for output in env.parse(source).find_all(nodes.Output):
        for node in output.nodes:
            if isinstance(node, nodes.TemplateData):
                continue
            if not (isinstance(node, nodes.Filter) and node.name in ALLOWED_FILTERS):
                found.append(f"line {node.lineno}: {type(node).__name__} {getattr(node, 'name', '')}".rstrip())
    return found


@pytest.mark.parametrize("name", SNIPPETS)
def test_every_output_is_quoted(name: str) -> None:
    env = render.make_environment()
    source = env.loader.get_source(env, name)[0]
    assert unquoted_outputs(env, source) == []


def test_quoting_check_can_fail() -> None:
    env = render.make_environment()
    assert unquoted_outputs(env, "a {{ x | sh }} {{ y | sbatch }} {{ z | ident }}") == []
    assert len(unquoted_outputs(env, "{{ x }} {{ x | sh | upper }} {{ x ~ (y | sh) }} {{ x | upper | sh }}")) == 3


def test_snippet_list_is_complete() -> None:
    assert {"job.sh.j2", "header.sh.j2", "values.sh.j2", "modules.sh.j2", "conda.sh.j2",
            "container.sh.j2", "server.sh.j2", "app_jupyter.sh.j2", "app_voila.sh.j2"} <= set(SNIPPETS)


def test_sbatch_filter_refuses_what_sbatch_would_split() -> None:
    for value in ("a b", "a;b", "a$b", "a'b", 'a"b', "a`b", "a\\b", "a\nb", ""):
        with pytest.raises(ValueError):
            render.sbatch_value(value)
    assert render.sbatch_value("gpu:a100:1") == "gpu:a100:1"


def test_ident_filter_refuses_non_identifiers() -> None:
    for value in ("1A", "A-B", "A B", "A;B", ""):
        with pytest.raises(ValueError):
            render.ident(value)


# --- #SBATCH header -------------------------------------------------------------------

HEADER = [
    (["-A", "xyz789"], "account", "xyz789"),
    (["-p", "gpu-debug"], "partition", "gpu-debug"),
    (["-p", "debug,compute"], "partition", "debug,compute"),
    (["-c", "10"], "cpus-per-task", "10"),
    (["-m", "92"], "mem", "92G"),
    (["-m", "4GB"], "mem", "4G"),
    (["-g", "1"], "gpus", "1"),
    (["--gres", "gpu:v100:2"], "gres", "gpu:v100:2"),
    (["--gres", "gpu:1,nvme:2"], "gres", "gpu:1,nvme:2"),
    (["-t", "00:30:00"], "time", "00:30:00"),
    (["-q", "hpc"], "qos", "hpc"),
    (["-R", "res-1.a"], "reservation", "res-1.a"),
    (["-C", "amd&ib"], "constraint", "amd&ib"),
    (["-C", "[rack1|rack2]*2"], "constraint", "[rack1|rack2]*2"),
]


@pytest.mark.parametrize("argv, key, value", HEADER, ids=[" ".join(h[0]) for h in HEADER])
def test_header_pair(argv: List[str], key: str, value: str) -> None:
    text = script(argv)
    assert sbatch_lines(text, key) == [f"#SBATCH --{key}={value}"]


def test_header_leaves_out_what_was_not_asked() -> None:
    text = script([])
    for key in ("partition", "mem", "gpus", "gres", "qos", "reservation", "constraint"):
        assert sbatch_lines(text, key) == [], key
    for line in ("#SBATCH --nodes=1", "#SBATCH --ntasks=1", "#SBATCH --cpus-per-task=1", "#SBATCH --no-requeue",
                 "#SBATCH --job-name=galyleo", "#SBATCH --time=00:30:00", "#SBATCH --account=abc123"):
        assert text.splitlines().count(line) == 1, line
    assert text.startswith("#!/bin/bash\n#SBATCH ")


def test_header_comes_before_any_command() -> None:
    lines = script(["-q", "hpc", "-g", "2"]).splitlines()
    last_sbatch = max(i for i, line in enumerate(lines) if line.startswith("#SBATCH"))
    assert all(line.startswith("#") for line in lines[: last_sbatch + 1])


def test_gres_replaces_site_gpus_in_header() -> None:
    conf = Config(account="a", gpus=2)
    assert sbatch_lines(script([], conf), "gpus") == ["#SBATCH --gpus=2"]
    text = script(["--gres", "gpu:1"], conf)
    assert sbatch_lines(text, "gpus") == [] and sbatch_lines(text, "gres") == ["#SBATCH --gres=gpu:1"]


def test_output_percent_is_doubled(tmp_path: Path) -> None:
    home = tmp_path / "100%"
    home.mkdir()
    assert sbatch_lines(script([], home=str(home)), "output") == [f"#SBATCH --output={home}%/.galyleo/galyleo-%j.out"]


# --- time limit and memory ------------------------------------------------------------

TIMES = [
    ("30", "00:30:00"), ("90", "01:30:00"), ("007", "00:07:00"), ("1440", "1-00:00:00"),
    ("5:30", "00:05:30"), ("0:30", "00:00:30"), ("90:00", "01:30:00"), ("1:02:03", "01:02:03"),
    ("00:30:00", "00:30:00"), ("48:00:00", "2-00:00:00"), ("1-0", "1-00:00:00"), ("2-12", "2-12:00:00"),
    ("0-1", "01:00:00"), ("1-2:30", "1-02:30:00"), ("0-0:1", "00:01:00"), ("1-02:03:04", "1-02:03:04"),
    ("0-00:00:01", "00:00:01"), ("14-23:59:59", "14-23:59:59"),
]


@pytest.mark.parametrize("given, canonical", TIMES)
def test_time_limit_forms(given: str, canonical: str) -> None:
    assert rules.time_limit("--time-limit", given) == canonical


def test_time_limit_reaches_header() -> None:
    assert sbatch_lines(script(["-t", "1-2:30"]), "time") == ["#SBATCH --time=1-02:30:00"]


@pytest.mark.parametrize("given, gb", [("4", 4), ("4G", 4), ("4GB", 4), ("04", 4), ("1024", 1024),
                                       ("1048576G", 1048576)])
def test_memory_forms(given: str, gb: int) -> None:
    assert build(["-m", given]).memory_mb == gb * 1024
    assert sbatch_lines(script(["-m", given]), "mem") == [f"#SBATCH --mem={gb}G"]


# --- sections ---------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> Dict[str, str]:
    (tmp_path / "environment.yml").write_text("dependencies: [python, jupyterlab]\n")
    (tmp_path / "image.sif").write_text("")
    (tmp_path / "conda.sh").write_text("conda() { :; }\n")
    return {"yml": str(tmp_path / "environment.yml"), "sif": str(tmp_path / "image.sif"),
            "init": str(tmp_path / "conda.sh"), "dir": str(tmp_path)}


SECTION_CASES = [
    ([], ()),
    (["-e", "gcc"], ("modules",)),
    (["--append-modulepath", "/opt/mods"], ("modules",)),
    (["--conda-env", "base"], ("conda",)),
    (["--conda-yml", "{yml}"], ("conda",)),
    (["-s", "{sif}"], ("container",)),
    (["-e", "gcc", "--conda-env", "base"], ("modules", "conda")),
    (["--conda-yml", "{yml}", "-s", "docker://a/b"], ("conda", "container")),
    (["-s", "{sif}", "-e", "singularity", "--conda-env", "x"], ("modules", "conda", "container")),
]


@pytest.mark.parametrize("argv, expected", SECTION_CASES, ids=[" ".join(c[0]) or "none" for c in SECTION_CASES])
def test_sections_only_when_asked_in_order(argv: List[str], expected: tuple, files: Dict[str, str]) -> None:
    lines = script([a.format(**files) for a in argv]).splitlines()
    present = [b.split(": ")[1].split(" ")[0] for b in BANNERS if lines.count(b) == 1]
    assert tuple(present) == expected
    positions = [lines.index(f"# --- galyleo: {name} ---") for name in expected]
    assert positions == sorted(positions)
    assert all(lines.index("# --- galyleo: cleanup ---") < p < lines.index("# --- galyleo: server ---")
               for p in positions)


def test_site_default_modules_select_the_modules_section() -> None:
    conf = Config(account="a", default_modules=["site/base"])
    lines = script([], conf).splitlines()
    assert lines.count("# --- galyleo: modules ---") == 1
    assert lines.count("GALYLEO_MODULES=(site/base)") == 1


def test_conda_runs_inside_the_container_when_both(files: Dict[str, str]) -> None:
    alone = script(["--conda-env", "base"]).splitlines()
    both = script(["--conda-env", "base", "-s", files["sif"]]).splitlines()
    assert alone.count("galyleo_conda_activate") == 1
    assert both.count("galyleo_conda_activate") == 0
    assert sum("galyleo_conda_activate && exec" in line for line in both) == 1


@pytest.mark.parametrize("interface, command", [("lab", "jupyter lab"), ("notebook", "jupyter notebook"),
                                                ("voila", "voila --no-browser"), ("vscode", "jupyter server")])
def test_interface_command(interface: str, command: str) -> None:
    text = script(["-i", interface])
    assert sum(line.startswith(f"GALYLEO_APP_ARGV=({command}") and line[len(command) + 18] in " )"
               for line in text.splitlines()) == 1
    assert sum('galyleo_cmd=("${GALYLEO_APP_ARGV[@]}"' in line for line in text.splitlines()) == 1
    assert f"GALYLEO_INTERFACE={interface}" in text.splitlines()


# --- the bound-values block -------------------------------------------------------------

NASTY = [
    "my dir/it's $(touch /tmp/x) \"x\"",
    "back`touch {tmp}/pwned`tick; rm -rf {tmp}/victim",
    "nl\nin name/${{HOME}}/$'\\x41'",
    "-dash/*glob?[ab] && | > < ~",
]


@pytest.mark.parametrize("name", NASTY, ids=range(len(NASTY)))
def test_notebook_dir_only_shell_quoted(name: str, tmp_path: Path) -> None:
    target = tmp_path / name.format(tmp=tmp_path)
    target.mkdir(parents=True)
    (tmp_path / "victim").mkdir()
    tmp_x_before = os.path.exists("/tmp/x")
    text = script(["-d", str(target)])
    path = str(target)
    assert text.count(shlex.quote(path)) == 1
    assert path not in text.replace(shlex.quote(path), ""), "the raw value appears unquoted"
    assert f"\nGALYLEO_NOTEBOOK_DIR={shlex.quote(path)}\n" in text
    block = tmp_path / "values.sh"
    block.write_text(values_block(text))
    proc = subprocess.run(["bash", "-c", 'source "$1"; printf %s "$GALYLEO_NOTEBOOK_DIR"', "_", str(block)],
                          capture_output=True, text=True, timeout=30, check=False, cwd=str(tmp_path))
    assert (proc.returncode, proc.stderr, proc.stdout) == (0, "", path)
    assert not (tmp_path / "pwned").exists() and (tmp_path / "victim").is_dir()
    if not tmp_x_before:
        assert not os.path.exists("/tmp/x")


def test_lists_become_arrays_verbatim(tmp_path: Path) -> None:
    conf = Config(account="a", module_init=["/etc/my init.sh", "$(id)"])
    argv = ["-e", "a&b,$(id),c'd", "--append-modulepath", "/opt/x y", "-s", "docker://a/b",
            "-B", "/data:/data:ro,/x y,`id`", "--nv"]
    block = tmp_path / "values.sh"
    block.write_text(values_block(script(argv, conf)))
    show = 'source "$1"; for n in GALYLEO_MODULES GALYLEO_MODULE_PATHS GALYLEO_BINDS GALYLEO_MODULE_INIT ' \
           'GALYLEO_CONTAINER_FLAGS; do a="$n[@]"; printf "%s=" "$n"; printf "<%s>" "${!a}"; echo; done'
    proc = subprocess.run(["bash", "-c", show, "_", str(block)], capture_output=True, text=True, timeout=30,
                          check=False)
    assert proc.stderr == ""
    assert proc.stdout.splitlines() == [
        "GALYLEO_MODULES=<a&b><$(id)><c'd>",
        "GALYLEO_MODULE_PATHS=</opt/x y>",
        "GALYLEO_BINDS=</data:/data:ro></x y><`id`>",
        "GALYLEO_MODULE_INIT=</etc/my init.sh><$(id)>",
        "GALYLEO_CONTAINER_FLAGS=<--nv>",
    ]


def test_values_block_is_the_only_place_user_values_appear(files: Dict[str, str]) -> None:
    text = script(["--conda-env", "zz-unique-env", "-e", "zz-unique-mod", "-d", files["dir"]])
    hits = [line for line in text.splitlines() if "zz-unique" in line]
    assert sorted(hits) == ["GALYLEO_CONDA_ENV=zz-unique-env", "GALYLEO_MODULES=(zz-unique-mod)"]


# --- launch mode ----------------------------------------------------------------------


def test_handoff_renders_alias_and_token_path_never_a_token(tmp_path: Path) -> None:
    token = "f" * 64
    token_file = tmp_path / "s.token"
    token_file.write_text(token)
    handoff = render.Handoff("ab12-cd34-ef56", str(token_file), str(tmp_path / "s.out"))
    text = script([], handoff=handoff)
    lines = text.splitlines()
    assert lines.count("GALYLEO_ALIAS=ab12-cd34-ef56") == 1
    assert lines.count(f"GALYLEO_TOKEN_FILE={token_file}") == 1
    assert sbatch_lines(text, "output") == [f"#SBATCH --output={tmp_path}/s.out"]
    assert token not in text and not re.search(r"\b[0-9a-f]{32,}\b", text)
    assert not [line for line in lines if re.match(r"\s*(export )?JUPYTER_TOKEN=[^\"$]", line)]
    plain = script([]).splitlines()
    assert plain.count("GALYLEO_ALIAS=''") == 1 and plain.count("GALYLEO_TOKEN_FILE=''") == 1


def test_launch_writes_a_script_without_the_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture) -> None:
    """The whole launch path with a fake proxy and sbatch: the token only in its 0600 file."""
    from galyleo import launch, slurm

    class FakeClient:
        def __init__(self, conf: Config) -> None:
            self.calls: List[str] = []

        def getlink(self) -> str:
            return "wages-astonish-recapture"

        def linktoken(self, alias: str, job_id: str) -> None:
            assert (alias, job_id) == ("wages-astonish-recapture", "4242")

        def destroy(self, alias: str) -> None:
            raise AssertionError("nothing failed: the alias must not be destroyed")

    monkeypatch.setattr("galyleo.satellite.Client", FakeClient)
    monkeypatch.setattr(slurm, "available", lambda: True)
    monkeypatch.setattr(slurm, "submit", lambda path: ("4242", ""))
    conf = Config(account="a", output_dir=str(tmp_path / "out"))
    assert launch.run(build(["-i", "lab"], conf, home=str(tmp_path)), conf, launch.Options(quiet=True)) == 0
    url = capsys.readouterr().out.strip()
    token = url.split("token=")[1]
    assert url == f"https://wages-astonish-recapture.{conf.satellite_domain}/?token={token}" and len(token) == 64
    (script_path,) = (tmp_path / "out").glob("*.sh")
    (token_path,) = (tmp_path / "out").glob("*.token")
    text = script_path.read_text()
    assert token not in text
    assert text.splitlines().count("GALYLEO_ALIAS=wages-astonish-recapture") == 1
    assert text.splitlines().count(f"GALYLEO_TOKEN_FILE={token_path}") == 1
    assert token_path.read_text() == token and (token_path.stat().st_mode & 0o777) == 0o600


# --- the option matrix ----------------------------------------------------------------


class Combo(NamedTuple):
    name: str
    argv: List[str]
    handoff: bool


def combos() -> List[Combo]:
    envs = [
        ("plain", []),
        ("modules", ["-e", "cpu/0.17.3b,gcc/10.2.0,py-jupyterlab/3.2.1"]),
        ("modpaths", ["-e", "jupyter", "--append-modulepath", "{dir}/mods", "--append-modulepath", "/opt/my mods"]),
        ("conda-env", ["--conda-env", "notebooks-sharing"]),
        ("conda-env-init", ["--conda-env", "{dir}/envs/x", "--conda-init", "{init}"]),
        ("conda-yml", ["--conda-yml", "{yml}"]),
        ("conda-yml-mamba-cache", ["--conda-yml", "{yml}", "--mamba", "--cache"]),
        ("sif-local", ["-s", "{sif}"]),
        ("docker-binds-nv", ["-s", "docker://quay.io/jupyter/r-notebook:latest", "-B", "/expanse,/scratch:/s:ro",
                             "--nv"]),
        ("oras-rocm-conda", ["-s", "oras://ghcr.io/x/y:1", "--rocm", "--conda-env", "base", "--conda-init", "{init}"]),
        ("all-yml", ["-e", "singularitypro", "--conda-yml", "{yml}", "--cache", "-s", "library://a/b/c:1",
                     "-B", "/data"]),
        ("all-env", ["-e", "gcc,cuda", "--append-modulepath", "/opt/m", "--conda-env", "x", "-s", "shub://a/b",
                     "--nv", "-B", "/a,/b c"]),
    ]
    scheds = [
        ("default", []),
        ("gpus-qos", ["-g", "2", "-q", "gpu-shared"]),
        ("gres-res-constraint", ["--gres", "gpu:a100:1", "-R", "res1", "-C", "a100&ib"]),
        ("parts-mem-cpus-days", ["-p", "debug,compute", "-m", "8GB", "-c", "16", "-t", "2-12"]),
        ("minutes-features", ["-t", "45", "-C", "[rack1|rack2]"]),
        ("mem-qos-res", ["-m", "4GB", "-q", "normal", "-R", "maint.2025", "-t", "1-0:30"]),
        ("spaced-notebook-dir", ["-d", "{dir}/my notebooks"]),
    ]
    found = []
    for i, (iface, (env_name, env_argv)) in enumerate((i, e) for i in ("lab", "notebook", "voila") for e in envs):
        sched_name, sched_argv = scheds[len(found) % len(scheds)]
        found.append(Combo(f"{len(found):02d}-{iface}-{env_name}-{sched_name}",
                           ["-i", iface, *env_argv, *sched_argv], handoff=len(found) % 4 == 0))
    return found


COMBOS = combos()


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory, shell_checks) -> Dict[str, Dict[str, object]]:
    """Render every combination into one folder; one shellcheck run; bash -n on each."""
    run_shellcheck, bash_n = shell_checks
    base = tmp_path_factory.mktemp("matrix")
    (base / "my notebooks").mkdir()
    (base / "environment.yml").write_text("dependencies: [python]\n")
    (base / "image.sif").write_text("")
    (base / "conda.sh").write_text("")
    fill = {"dir": str(base), "yml": str(base / "environment.yml"), "sif": str(base / "image.sif"),
            "init": str(base / "conda.sh")}
    conf = config.from_mapping({"account": "abc123", "scratch_dir": "/scratch/job", "default_modules": []}, "test")
    out = base / "scripts"
    out.mkdir()
    results: Dict[str, Dict[str, object]] = {}
    for combo in COMBOS:
        argv = [a.format(**fill) for a in combo.argv]
        handoff = render.Handoff("ab-cd-ef", str(base / "t.token"), str(base / "t.out")) if combo.handoff else None
        path = out / f"{combo.name}.sh"
        path.write_text(script(argv, conf, handoff, home=str(base)))
        results[combo.name] = {"path": path, "argv": argv, "bash": bash_n(path)}
    findings = run_shellcheck([r["path"] for r in results.values()])
    for r in results.values():
        r["shellcheck"] = findings[str(r["path"])]
    return results


def test_matrix_is_big_and_varied() -> None:
    assert len(COMBOS) >= 30 and len({c.name for c in COMBOS}) == len(COMBOS)
    joined = [" ".join(c.argv) for c in COMBOS]
    for fragment in ("-i lab", "-i notebook", "-i voila", "-e ", "--conda-env", "--conda-yml", "--mamba", "--cache",
                     "-s ", "-B ", "--nv", "--rocm", "-g ", "--gres", "-q ", "-R ", "-C ", "--append-modulepath"):
        assert any(fragment in j for j in joined), fragment
    assert any(c.handoff for c in COMBOS) and not all(c.handoff for c in COMBOS)


@pytest.mark.parametrize("name", [c.name for c in COMBOS])
def test_matrix_script(name: str, matrix: Dict[str, Dict[str, object]]) -> None:
    result = matrix[name]
    assert result["bash"] == "", result["bash"]
    assert result["shellcheck"] == [], "\n".join(result["shellcheck"])  # type: ignore[arg-type]
    lines = Path(str(result["path"])).read_text().splitlines()
    argv = " ".join(result["argv"])  # type: ignore[arg-type]
    assert (lines.count(BANNERS[0]) == 1) == ("-e " in argv or "--append-modulepath" in argv)
    assert (lines.count(BANNERS[1]) == 1) == ("--conda-" in argv)
    assert (lines.count(BANNERS[2]) == 1) == ("-s " in argv)


def test_shellcheck_findings_are_reported(tmp_path: Path, shell_checks) -> None:
    """The checker itself: a script with an unquoted expansion is not clean."""
    run_shellcheck, bash_n = shell_checks
    bad = tmp_path / "bad.sh"
    bad.write_text("#!/bin/bash\nx=$1\ncd $x\n")
    broken = tmp_path / "broken.sh"
    broken.write_text("#!/bin/bash\nif true; then\n")
    assert run_shellcheck([bad])[str(bad)] != []
    assert bash_n(broken) != ""


def test_dollar_in_a_value_is_shellcheck_clean(tmp_path: Path, shell_checks) -> None:
    run_shellcheck, _ = shell_checks
    path = tmp_path / "dollar.sh"
    path.write_text(script(["--conda-env", "x"], Config(account="a", scratch_dir="/scratch/$USER")))
    assert run_shellcheck([path]) == {str(path): []}


# --- the README's examples ------------------------------------------------------------


def readme_commands() -> List[str]:
    found = [line for line in (DATA / "readme_examples.txt").read_text().splitlines()
             if line.startswith("galyleo ")]
    for readme in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:  # the examples moved to docs/
        if not readme.exists():
            continue
        fenced = re.findall(r"^```(\w*)\n(.*?)^```", readme.read_text(), re.S | re.M)  # each block, paired
        for block in (text for language, text in fenced if language in ("", "bash", "sh", "shell", "console")):
            for line in block.replace("\\\n", " ").splitlines():
                if re.match(r"\s*\$?\s*galyleo (launch|generate) ", line):
                    found.append(" ".join(line.strip().lstrip("$").split()))
    return list(dict.fromkeys(found))


README = readme_commands()


@pytest.fixture(scope="module")
def readme_scripts(tmp_path_factory: pytest.TempPathFactory, shell_checks) -> Dict[str, Dict[str, object]]:
    """Each example with `generate` (through the CLI) and in launch mode; checked in one go."""
    from galyleo.cli import main

    run_shellcheck, bash_n = shell_checks
    base = tmp_path_factory.mktemp("readme")
    home = base / "home"
    (home / "miniforge3" / "etc" / "profile.d").mkdir(parents=True)
    (home / "miniforge3" / "etc" / "profile.d" / "conda.sh").write_text("")
    (home / "environment.yml").write_text("name: notebooks-sharing\ndependencies: [python]\n")
    results: Dict[str, Dict[str, object]] = {}
    with pytest.MonkeyPatch.context() as patch:
        for key in set(os.environ) - set(hermetic(dict(os.environ))):
            patch.delenv(key)
        patch.setenv("HOME", str(home))
        patch.setenv("GALYLEO_CONFIG", str(DATA / "site.toml"))
        patch.chdir(home)
        conf = configfiles.load().config
        for number, command in enumerate(README):
            words = shlex.split(command.replace("~/", f"{home}/"))[1:]
            out, err = base / f"{number}.out", base / f"{number}.err"
            with open(out, "w") as stdout, open(err, "w") as stderr, \
                    contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                status = main(["generate" if w == "launch" else w for w in words])
            handoff = render.Handoff("ab-cd-ef", str(home / "s.token"), str(home / "s.out"))
            args = galyleo_cli.make_parser(conf).parse_args(words)
            launched = base / f"launch-{number}.sh"
            launched.write_text(render.render(spec.build(args, conf), conf, handoff))
            results[command] = {"words": words, "status": status, "script": out, "err": err.read_text(),
                                "bash": [bash_n(out), bash_n(launched)]}
    findings = run_shellcheck([r["script"] for r in results.values()])
    for r in results.values():
        r["shellcheck"] = findings[str(r["script"])]
    return results


def test_readme_examples_found() -> None:
    assert len(README) >= 7


@pytest.mark.parametrize("command", README, ids=range(len(README)))
def test_readme_example_renders(command: str, readme_scripts: Dict[str, Dict[str, object]]) -> None:
    result = readme_scripts[command]
    assert (result["status"], result["err"]) == (0, ""), result["err"]
    assert result["bash"] == ["", ""] and result["shellcheck"] == []
    words: List[str] = result["words"]  # type: ignore[assignment]
    lines = Path(str(result["script"])).read_text().splitlines()
    for options, key, unit in ((("--account", "-A"), "account", ""), (("--partition", "-p"), "partition", ""),
                               (("--cpus", "-c"), "cpus-per-task", ""), (("--gpus", "-g"), "gpus", ""),
                               (("--memory", "-m"), "mem", "G"), (("--time-limit", "-t"), "time", "")):
        given = [words[i + 1] for i, w in enumerate(words) if w in options]
        if given:
            assert lines.count(f"#SBATCH --{key}={given[-1]}{unit}") == 1, key


@pytest.mark.parametrize(("time_limit", "lead", "signal"), [
    ("30", 300, ["#SBATCH --signal=B:USR1@300"]),
    ("2", 300, ["#SBATCH --signal=B:USR1@60"]),  # capped at half the time limit
    ("1", 300, []),  # under Slurm's one-minute resolution: no warning at all
    ("30", 0, []),  # the site turned it off
])
def test_time_limit_warning_lead_is_capped_by_the_time_limit(time_limit: str, lead: int, signal: List[str]) -> None:
    text = script(["-t", time_limit], Config(require_account=False, signal_lead=lead))
    assert sbatch_lines(text, "signal") == signal
    seconds = int(time_limit) * 60
    assert f"GALYLEO_TIME_LIMIT_SECONDS={seconds}" in values_block(text).splitlines()
