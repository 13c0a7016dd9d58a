"""Where one `generate` spends its time, phase by phase, in a fresh interpreter.

Run as: python profile_generate.py SITE_PACKAGES ARGS... (the unpacked pyz's site-packages
first on sys.path, no shiv bootstrap). Prints one JSON object of phase -> seconds. Uses
galyleo's own functions in the order cli.main calls them, so the phases add up to a run.
"""

import json
import sys
import time

T0 = time.perf_counter()


def main() -> None:
    sys.path.insert(0, sys.argv[1])
    argv = sys.argv[2:]
    marks = [("start", time.perf_counter())]

    def mark(name: str) -> None:
        marks.append((name, time.perf_counter()))

    from galyleo import cli, configfiles

    mark("import galyleo.cli + config")
    loaded = configfiles.load()
    mark("configfiles.load (TOML)")
    args = cli.parse(argv, loaded.config)
    mark("argparse: build + parse")
    from galyleo import render, spec

    mark("import galyleo.spec + render")
    launch_spec = spec.build(args, loaded.config)
    mark("spec.build (validation)")
    env = render.environment()
    mark("import jinja2 + Environment")
    for name in env.list_templates():
        env.get_template(name)
    mark("compile the snippets (Jinja -> Python, every run)")
    text = render.render(launch_spec, loaded.config)
    mark("render (templates compiled)")
    sys.stdout.flush()
    phases = {name: end - start for (_, start), (name, end) in zip(marks, marks[1:])}
    phases["total in process"] = marks[-1][1] - marks[0][1]
    phases["script bytes"] = len(text)
    json.dump(phases, sys.stdout)


if __name__ == "__main__":
    main()
