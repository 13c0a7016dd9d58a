# shellcheck shell=bash
# Stand-in module system init (source it, as a site's Lmod init would be).
# Defines `module`: every call is logged with its argv, then
#   reset  -> status $STUB_MODULE_RESET_STATUS (default 1, like Debian's Lmod with
#             no site default modules) and a message on stderr
#   purge  -> 0;  use [--append] PATH -> adds PATH to MODULEPATH
#   load NAME... -> appends each NAME to LOADEDMODULES; a NAME equal to
#             $STUB_MODULE_FAIL fails with Lmod's "unknown module" message
_stub_module_lib="$(cd "$(dirname "${BASH_SOURCE[0]}")/../lib" && pwd)"

module() {
  "${_stub_module_lib}/record" module "$@" || return 99
  local sub="${1:-}" name
  shift
  case "${sub}" in
    reset)
      echo "Lmod stand-in: no default modules are defined for this site" >&2
      return "${STUB_MODULE_RESET_STATUS:-1}"
      ;;
    purge) return 0 ;;
    use)
      [[ "${1:-}" == --append || "${1:-}" == -a ]] && shift
      export MODULEPATH="${MODULEPATH:+${MODULEPATH}:}$1"
      ;;
    load)
      for name in "$@"; do
        if [[ -n "${STUB_MODULE_FAIL:-}" && "${name}" == "${STUB_MODULE_FAIL}" ]]; then
          printf 'Lmod has detected the following error:  The following module(s) are unknown: "%s"\n' "${name}" >&2
          return 1
        fi
        export LOADEDMODULES="${LOADEDMODULES:+${LOADEDMODULES}:}${name}"
      done
      ;;
    *)
      echo "module stand-in: unknown subcommand '${sub}'" >&2
      return 1
      ;;
  esac
}
