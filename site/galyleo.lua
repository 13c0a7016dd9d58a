-- galyleo: an Lmod modulefile template. Copy it to <a MODULEPATH folder>/galyleo/<version>.lua
-- and set `apps` to the folder that holds the pyz (installed as `galyleo`, mode 0755) and
-- this site's galyleo.toml (mode 0644). Nothing else is needed: galyleo finds its config
-- beside the real file, and each user's first run unpacks it (see docs/site.md).
whatis("galyleo: Jupyter sessions as Slurm jobs, reached through this site's HTTPS proxy")
help([[galyleo launch -A <account> -p <partition> starts a Jupyter session; galyleo help lists the commands.]])

local apps = "/cm/shared/apps/galyleo"
prepend_path("PATH", apps)
