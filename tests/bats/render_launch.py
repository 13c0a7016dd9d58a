"""render_launch.py ALIAS TOKEN_FILE OUTPUT_FILE [GENERATE OPTIONS...]: print the job
script `galyleo launch` would submit (launch mode: alias bound, token in a file; in
ssh mode the laptop's port from GALYLEO_TEST_LOCAL_PORT, else the job draws one),
without calling sbatch or the proxy. Uses the same parser, spec and render steps."""

import os
import sys

from galyleo import cli, configfiles, render, spec

alias, token_file, output_file = sys.argv[1:4]
site = configfiles.load().config
args = cli.make_parser(site).parse_args(["generate"] + sys.argv[4:])
handoff = render.Handoff(alias, token_file, output_file, int(os.environ.get("GALYLEO_TEST_LOCAL_PORT") or 0))
sys.stdout.write(render.render(spec.build(args, site), site, handoff))
