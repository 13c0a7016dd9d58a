"""render_launch.py ALIAS TOKEN_FILE OUTPUT_FILE [GENERATE OPTIONS...]: print the job
script `galyleo launch` would submit (launch mode: alias bound, token in a file),
without calling sbatch or the proxy. Uses the same parser, spec and render steps."""

import sys

from galyleo import cli, config, render, spec

alias, token_file, output_file = sys.argv[1:4]
site = config.load().config
args = cli.make_parser(site).parse_args(["generate"] + sys.argv[4:])
handoff = render.Handoff(alias, token_file, output_file)
sys.stdout.write(render.render(spec.build(args, site), site, handoff))
