# Fake conda install (galyleo test harness): the shell side of conda, as a real
# install's etc/profile.d/conda.sh is. Defines the `conda` shell function
# (activate/deactivate change this shell; everything else runs $CONDA_EXE).
# @ROOT@ is replaced by tests/harness/conda-up with the install's prefix.
export CONDA_EXE='@ROOT@/bin/conda'
export _CE_M='' _CE_CONDA=''
export CONDA_PYTHON_EXE='/usr/bin/python3'
if [ -z "${CONDA_SHLVL+x}" ]; then
  export CONDA_SHLVL=0
fi

__conda_prefix_of() {
  case "$1" in
    */*) [ -d "$1/conda-meta" ] && (cd "$1" && pwd) && return 0
         echo "DirectoryNotACondaEnvironmentError: The target directory exists, but it is not a conda environment: $1" >&2
         return 1 ;;
    base) echo '@ROOT@'; return 0 ;;
  esac
  for __d in '@ROOT@/envs' "${HOME}/.conda/envs"; do
    if [ -d "${__d}/$1/conda-meta" ]; then echo "${__d}/$1"; return 0; fi
  done
  echo "EnvironmentNameNotFound: Could not find conda environment: $1" >&2
  echo "You can list all discoverable environments with \`conda info --envs\`." >&2
  return 1
}

__conda_deactivate() {
  if [ -n "${CONDA_PREFIX:-}" ]; then
    PATH=":${PATH}:"
    PATH="${PATH//:${CONDA_PREFIX}\/bin:/:}"
    PATH="${PATH#:}"; PATH="${PATH%:}"
    export PATH
    unset CONDA_PREFIX CONDA_DEFAULT_ENV CONDA_PROMPT_MODIFIER
    CONDA_SHLVL=$(( ${CONDA_SHLVL:-1} - 1 )); export CONDA_SHLVL
  fi
}

conda() {
  local __p
  case "${1-}" in
    activate)
      __p="$(__conda_prefix_of "${2:-base}")" || return 1
      __conda_deactivate
      export PATH="${__p}/bin:${PATH}" CONDA_PREFIX="${__p}" CONDA_DEFAULT_ENV="${2:-base}"
      export CONDA_PROMPT_MODIFIER="(${2:-base}) " CONDA_SHLVL=$(( ${CONDA_SHLVL:-0} + 1 ))
      hash -r ;;
    deactivate) __conda_deactivate; hash -r ;;
    *) "${CONDA_EXE}" "$@" ;;
  esac
}
