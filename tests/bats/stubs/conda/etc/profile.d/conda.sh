# shellcheck shell=bash
# Stand-in conda install (this tree: etc/profile.d/conda.sh, bin/conda, bin/mamba),
# laid out like Miniforge. Source this file as a real conda.sh: it sets CONDA_EXE
# and defines the `conda` function, which handles `activate` itself (it changes
# the shell) and hands everything else to bin/conda. Every call is logged with its
# argv, once (as "conda ...", or "mamba ..." for bin/mamba).
#   activate TARGET -> CONDA_PREFIX=STUB_CONDA_ACTIVE=TARGET, TARGET/bin on PATH
#                      (fails when TARGET equals $STUB_CONDA_FAIL_ACTIVATE)
_stub_conda_root="$(cd -P "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export CONDA_EXE="${_stub_conda_root}/bin/conda"
export PATH="${_stub_conda_root}/condabin:${PATH}"

conda() {
  if [[ "${1:-}" != activate ]]; then
    "${CONDA_EXE}" "$@"
    return
  fi
  "${_stub_conda_root}/../lib/record" conda "$@" || return 99
  if [[ -n "${STUB_CONDA_FAIL_ACTIVATE:-}" && "$2" == "${STUB_CONDA_FAIL_ACTIVATE}" ]]; then
    echo "EnvironmentNameNotFound: Could not find conda environment: $2" >&2
    return 1
  fi
  export CONDA_PREFIX="$2" STUB_CONDA_ACTIVE="$2"
  if [[ -d "$2/bin" ]]; then
    export PATH="$2/bin:${PATH}"
  fi
  return 0
}
