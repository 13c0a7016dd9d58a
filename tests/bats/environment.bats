#!/usr/bin/env bats
# The software environment the job builds before Jupyter: modules (reset, paths,
# loads in order), conda (activate, create from a yml, conda-pack cache), and
# Apptainer/Singularity (image, binds, flags, registry pulls, conda inside), and what
# the job leaves behind: its scratch env and pulled image go, a local image stays.

load helpers

setup() {
  common_setup
  CONDA_SH="${STUBS}/conda/etc/profile.d/conda.sh"
  printf 'name: demo\ndependencies:\n  - python=3.11\n' >"${T}/environment.yml"
  : >"${T}/image.sif"
}
teardown() { common_teardown; }

# assert_scratch PATH [NAME]: PATH is NAME in this job's private scratch folder
#   (galyleo-<job id>.<10 random characters> under scratch_dir), or that folder itself.
assert_scratch() {
  [[ "$1" =~ ^"${T}/scratch/galyleo-${JOBID}."[A-Za-z0-9]{10}${2:+/"$2"}$ ]] || fail "not in the job's scratch: $1"
}

# live_scratch: the running job's scratch folder (stdout); it must be 0700 and the user's.
live_scratch() {
  local found=("${T}/scratch/galyleo-${JOBID}."*)
  assert_equal "${#found[@]}" 1
  assert_scratch "${found[0]}"
  assert_equal "$(stat -c '%a %u' "${found[0]}")" "700 $(id -u)"
  printf '%s\n' "${found[0]}"
}

# assert_no_scratch: the job's scratch folder is gone (the clean-up removed it).
assert_no_scratch() {
  run compgen -G "${T}/scratch/galyleo-${JOBID}.*"
  assert_failure
}

# end_job HOW [NAME...]: run the job to its end. HOW "exit": Jupyter ends by itself and
#   the job exits 0. HOW "term": once the session is live (each NAME must exist in its
#   scratch folder by then), SIGTERM to the script, as scancel or the time limit sends;
#   the job exits 143.
end_job() {
  local how="$1" path status=0 scratch
  shift
  if [[ "${how}" == exit ]]; then
    run_job -0
    return
  fi
  STUB_ENV+=(STUB_JUPYTER_EXIT=never)
  start_job
  wait_for_redeem
  scratch="$(live_scratch)"
  for path in "$@"; do
    assert_exists "${scratch}/${path}"
  done
  kill -TERM "${JOB_PID}"
  wait "${JOB_PID}" || status=$?
  assert_equal "${status}" 143
}

# yml_in_container HOW SIF: --sif SIF --conda-yml; the env is built inside the image
#   (a registry SIF is pulled to scratch first) and, once the job has ended HOW, the
#   host has removed the env's scratch prefix and any pulled image, never a local one.
#   Sets IMAGE (the image Jupyter ran in).
yml_in_container() {
  local how="$1" sif="$2" prefix names=("galyleo-conda-${JOBID}")
  IMAGE="$2"
  [[ "${sif}" == *://* ]] && names+=(image.sif)
  generate -d "${T}/nb" --sif "${sif}" --conda-yml "${T}/environment.yml" --conda-init "${CONDA_SH}"
  end_job "${how}" "${names[@]}"
  prefix="$(stublog field jupyter call conda)"
  assert_scratch "${prefix}" "galyleo-conda-${JOBID}"
  [[ "${sif}" == *://* ]] && IMAGE="${prefix%/*}/image.sif"
  local image="${IMAGE}"
  run -0 stublog calls conda
  assert_output "conda env create --yes --prefix ${prefix} --file ${T}/environment.yml
conda activate ${prefix}"
  assert_equal "$(stublog field conda call container 1)" "${image}"
  assert_equal "$(stublog field jupyter call container)" "${image}"
  assert_equal "$(stublog field jupyter call conda)" "${prefix}"
  assert_not_exists "${prefix}"
  assert_no_scratch
  if [[ "${sif}" == *://* ]]; then
    assert_not_exists "${image}"
  else
    assert_file_exists "${image}"
  fi
}

# cache_miss_job: run the generated --cache job as a first job: it creates the env at its
#   scratch prefix, packs it, then activates it. Sets PACK_OUTPUT (where conda pack was
#   told to write) and JOB_STDERR.
cache_miss_job() {
  local prefix
  run_job -0 --separate-stderr
  JOB_STDERR="${stderr}"
  prefix="$(stublog field jupyter call conda)"
  assert_scratch "${prefix}" "galyleo-conda-${JOBID}"
  run -0 stublog calls conda conda-unpack
  assert_line --index 0 "conda env create --yes --prefix ${prefix} --file ${T}/environment.yml"
  assert_line --index 2 "conda activate ${prefix}"
  assert_equal "${lines[1]% --output *}" "conda pack --quiet --force --prefix ${prefix}"
  PACK_OUTPUT="${lines[1]#* --output }"
}

# cache_hit_job: the same job later on another node (fresh scratch, new job id, a new
#   log): it unpacks the pack and activates it, and creates nothing. Sets JOB_STDERR.
cache_hit_job() {
  : >"${STUB_LOG}/calls.jsonl"
  rm -rf "${T}/scratch"/*
  JOBID=4343
  run_job -0 --separate-stderr
  JOB_STDERR="${stderr}"
  prefix="$(stublog field jupyter call conda)"
  assert_scratch "${prefix}" "galyleo-conda-${JOBID}"
  run -0 stublog calls conda conda-unpack
  assert_output "conda-unpack
conda activate ${prefix}"
}

@test "modules: init found by probing, reset failing is a warning, then use and loads in order" {
  generate -d "${T}/nb" -e gcc/10.2.0,python/3.11,jupyter --append-modulepath "${T}/modulefiles"
  run_job -0 --separate-stderr
  run -0 stublog calls module
  assert_output "module reset
module use --append ${T}/modulefiles
module load gcc/10.2.0
module load python/3.11
module load jupyter"
  [[ "${stderr}" == *"module system initialised from ${STUBS}/modules/init.bash"* ]] || fail "${stderr}"
  [[ "${stderr}" == *"warning: 'module reset' failed"* ]] || fail "${stderr}"
  # Jupyter ran with every module loaded
  run -0 stublog field jupyter call env
  assert_output --partial '"LOADEDMODULES": "gcc/10.2.0:python/3.11:jupyter"'
  assert_output --partial "\"MODULEPATH\": \"${T}/modulefiles\""
  # modules come after registration and before Jupyter starts
  run -0 stublog events
  assert_output --regexp $'linktoken\n(module call\n)+jupyter call\n'
}

@test "modules: site module_reset = \"purge\"" {
  CFG[module_reset]='"purge"'
  generate -d "${T}/nb" -e a,b
  run_job -0 --separate-stderr
  run -0 stublog calls module
  assert_output $'module purge\nmodule load a\nmodule load b'
  [[ "${stderr}" != *warning* ]] || fail "${stderr}"
}

@test "modules: site module_reset = \"none\" loads without resetting" {
  CFG[module_reset]='"none"'
  generate -d "${T}/nb" -e a,b
  run_job -0
  run -0 stublog calls module
  assert_output $'module load a\nmodule load b'
}

@test "modules: a load that fails stops the job (exit 1, named), destroy once, no Jupyter" {
  generate -d "${T}/nb" -e a,missing/1.0,c
  STUB_ENV+=(STUB_MODULE_FAIL=missing/1.0)
  run_job -1 --separate-stderr
  run -0 stublog calls module
  assert_output $'module reset\nmodule load a\nmodule load missing/1.0'
  [[ "${stderr}" == *"error: module load missing/1.0 failed"* ]] || fail "${stderr}"
  [[ "${stderr}" == *'module(s) are unknown: "missing/1.0"'* ]] || fail "module's own message missing: ${stderr}"
  assert_equal "$(stublog count jupyter)" 0
  assert_equal "$(satellite_count destroytoken)" 1
}

@test "modules: no module command and no init file -> exit 1 naming the files, destroy once" {
  CFG[module_init]="[\"${T}/nope1\", \"${T}/nope2\"]"
  generate -d "${T}/nb" -e a
  run_job -1 --separate-stderr
  [[ "${stderr}" == *"no 'module' command in the job, and none of these init files exists: ${T}/nope1 ${T}/nope2"* ]] \
    || fail "${stderr}"
  assert_equal "$(satellite_count destroytoken)" 1
}

@test "conda env: activated by name before Jupyter, which runs inside it" {
  generate -d "${T}/nb" --conda-env myenv --conda-init "${CONDA_SH}"
  run_job -0 --separate-stderr
  run -0 stublog calls conda
  assert_output "conda activate myenv"
  assert_equal "$(stublog field jupyter call conda)" myenv
  [[ "${stderr}" == *"conda from --conda-init ${CONDA_SH}"* ]] || fail "${stderr}"
}

@test "conda env: found in ~/miniforge3 without --conda-init; failed activate is fatal, destroy once" {
  ln -s "${STUBS}/conda" "${T}/home/miniforge3"
  generate -d "${T}/nb" --conda-env broken
  STUB_ENV+=(STUB_CONDA_FAIL_ACTIVATE=broken)
  run_job -1 --separate-stderr
  [[ "${stderr}" == *"conda from ${T}/home/miniforge3"* ]] || fail "${stderr}"
  [[ "${stderr}" == *"error: conda activate broken failed"* ]] || fail "${stderr}"
  assert_equal "$(stublog count jupyter)" 0
  assert_equal "$(satellite_count destroytoken)" 1
}

@test "conda yml: env created at a per-job prefix under scratch, then activated" {
  generate -d "${T}/nb" --conda-yml "${T}/environment.yml" --conda-init "${CONDA_SH}"
  run_job -0
  prefix="$(stublog field jupyter call conda)"
  assert_scratch "${prefix}" "galyleo-conda-${JOBID}"
  assert_no_scratch
  run -0 stublog calls conda
  assert_output "conda env create --yes --prefix ${prefix} --file ${T}/environment.yml
conda activate ${prefix}"
  assert_equal "$(stublog field jupyter call conda)" "${prefix}"
}

@test "conda yml with --mamba: the mamba beside conda creates the env" {
  generate -d "${T}/nb" --conda-yml "${T}/environment.yml" --mamba --conda-init "${CONDA_SH}"
  run_job -0
  prefix="$(stublog field jupyter call conda)"
  assert_scratch "${prefix}" "galyleo-conda-${JOBID}"
  run -0 stublog calls conda mamba
  assert_output "mamba env create --yes --prefix ${prefix} --file ${T}/environment.yml
conda activate ${prefix}"
}

@test "conda yml --cache: a miss creates and packs; the next job unpacks and does not create" {
  generate -d "${T}/nb" --conda-yml "${T}/environment.yml" --cache --conda-init "${CONDA_SH}"
  cache_miss_job
  [[ "${PACK_OUTPUT}" =~ ^"${T}/out/cache/."[0-9a-f]{32}"."[^/]+/pack\.tar\.gz$ ]] || fail "${PACK_OUTPUT}"
  run -0 find "${T}/out/cache" -name '*.tar.gz'
  assert_output --regexp "^${T}/out/cache/[0-9a-f]{32}\.tar\.gz$"
  pack="${output}"

  cache_hit_job
  [[ "${JOB_STDERR}" == *"${pack}"* ]] || fail "the pack used is not named: ${JOB_STDERR}"
}

@test "container: apptainer exec with --nv and the binds, Jupyter runs inside the image" {
  generate -d "${T}/nb" --sif "${T}/image.sif" --bind "/data,${T}/scratch:/scratch" --nv
  run_job -0
  port="$(jupyter_port)"
  assert_argv apptainer 1 exec --nv --bind "/data,${T}/scratch:/scratch" "${T}/image.sif" \
    jupyter lab --no-browser --KernelManager.transport=ipc
  assert_jupyter_settings jupyter 1 127.0.0.1 "${port}" "${ORIGIN}"
  assert_equal "$(stublog count apptainer)" 1
  assert_equal "$(stublog field jupyter call container)" "${T}/image.sif"
  assert_equal "$(stublog field jupyter call token_len)" 64
  run -0 stublog satellite
  assert_line "redeemtoken token=${ALIAS} port=${port}"
  assert_file_exists "${T}/image.sif"  # the user's image: never removed
}

@test "container: site container_runtime = \"singularity\", no binds or flags" {
  CFG[container_runtime]='"singularity"'
  generate -d "${T}/nb" --sif "${T}/image.sif" --rocm
  run_job -0
  assert_argv singularity 1 exec --rocm "${T}/image.sif" jupyter lab --no-browser --KernelManager.transport=ipc
  assert_jupyter_settings jupyter 1 127.0.0.1 "$(jupyter_port)" "${ORIGIN}"
  assert_equal "$(stublog count apptainer)" 0
}

@test "container: a registry image is pulled to scratch before Jupyter starts and before redeem" {
  generate -d "${T}/nb" --sif docker://quay.io/jupyter/base-notebook:latest
  run_job -0 --separate-stderr
  image="$(stublog field jupyter call container)"
  assert_scratch "${image}" image.sif
  assert_argv apptainer 1 pull --force "${image}" docker://quay.io/jupyter/base-notebook:latest
  assert_argv apptainer 2 exec "${image}" jupyter lab --no-browser --KernelManager.transport=ipc
  assert_jupyter_settings jupyter 1 127.0.0.1 "$(jupyter_port)" "${ORIGIN}"
  run -0 stublog events
  assert_output --regexp $'apptainer call\napptainer call\njupyter call\n(.*\n)*curl satellite redeemtoken'
  [[ "${stderr}" == *"cache ${T}/scratch/galyleo-cache-tester"* ]] || fail "${stderr}"
  assert_equal "$(stat -c %a "${T}/scratch/galyleo-cache-tester")" 700  # made private, kept for the next job
  assert_not_exists "${image}"  # the job's own copy: removed when the job ends
  assert_no_scratch
}

@test "container: a pulled registry image is removed on SIGTERM too" {
  generate -d "${T}/nb" --sif docker://quay.io/jupyter/base-notebook:latest
  end_job term image.sif
  assert_no_scratch
  assert_equal "$(satellite_count destroytoken)" 1
}

@test "container: a failed pull stops the job, destroy once, no Jupyter" {
  generate -d "${T}/nb" --sif docker://example.org/nope:1
  STUB_ENV+=(STUB_PULL_FAIL=1)
  run_job -1 --separate-stderr
  [[ "${stderr}" == *"error: could not pull docker://example.org/nope:1"* ]] || fail "${stderr}"
  assert_equal "$(stublog count jupyter)" 0
  assert_equal "$(satellite_count destroytoken)" 1
}

@test "container + conda: the env is activated inside the container, then Jupyter" {
  generate -d "${T}/nb" --sif "${T}/image.sif" --conda-env myenv --conda-init "${CONDA_SH}"
  run_job -0 --separate-stderr
  run -0 stublog calls conda
  assert_output "conda activate myenv"
  assert_equal "$(stublog field conda call container)" "${T}/image.sif"
  assert_equal "$(stublog field jupyter call container)" "${T}/image.sif"
  assert_equal "$(stublog field jupyter call conda)" myenv
  run -0 stublog events
  assert_output --regexp $'apptainer call\nconda call\njupyter call\n'
  # and Jupyter got its exact arguments through the wrapper shell
  assert_argv jupyter 1 lab --no-browser --KernelManager.transport=ipc
  assert_jupyter_settings jupyter 1 127.0.0.1 "$(jupyter_port)" "${ORIGIN}"
}

@test "container + conda yml: built inside the image; the host removes the scratch env at a normal end, keeps the image" {
  yml_in_container exit "${T}/image.sif"
}

@test "container + conda yml: SIGTERM removes the scratch env too, keeps the local image" {
  yml_in_container term "${T}/image.sif"
}

@test "registry image + conda yml: pulled before Jupyter, env created inside it, both removed at a normal end" {
  yml_in_container exit docker://quay.io/jupyter/base-notebook:latest
  assert_argv apptainer 1 pull --force "${IMAGE}" docker://quay.io/jupyter/base-notebook:latest
  run -0 stublog events
  assert_output --regexp $'apptainer call\napptainer call\nconda call\nconda call\njupyter call\n(.*\n)*curl satellite redeemtoken'
}

@test "registry image + conda yml: SIGTERM removes the pulled image and the scratch env" {
  yml_in_container term docker://quay.io/jupyter/base-notebook:latest
  assert_equal "$(satellite_count destroytoken)" 1
}

@test "container + --cache: the pack is built inside the image under the yml's key in the cache dir; the next job unpacks it there" {
  generate -d "${T}/nb" --sif "${T}/image.sif" --conda-yml "${T}/environment.yml" --cache --conda-init "${CONDA_SH}"
  key="$( (cat "${T}/environment.yml"; uname -sm) | sha256sum | cut -c1-32)"
  cache_miss_job
  [[ "${PACK_OUTPUT}" =~ ^"${T}/out/cache/.${key}."[^/]+/pack\.tar\.gz$ ]] || fail "${PACK_OUTPUT}"
  assert_equal "$(stublog field conda call container 2)" "${T}/image.sif"  # packed inside the image
  [[ "${JOB_STDERR}" == *"cache miss ${key}"* ]] || fail "${JOB_STDERR}"
  run -0 ls -A "${T}/out/cache"
  assert_output "${key}.info
${key}.tar.gz"

  cache_hit_job
  assert_equal "$(stublog field conda-unpack call container)" "${T}/image.sif"
  [[ "${JOB_STDERR}" == *"cache hit ${key}: unpacking ${T}/out/cache/${key}.tar.gz"* ]] || fail "${JOB_STDERR}"
}

@test "container + modules: loaded on the host before the container runs; Jupyter inside inherits them" {
  generate -d "${T}/nb" --sif "${T}/image.sif" -e gcc/10.2.0,python/3.11
  run_job -0
  run -0 stublog calls module
  assert_output $'module reset\nmodule load gcc/10.2.0\nmodule load python/3.11'
  assert_equal "$(stublog field module call container)" null
  run -0 stublog events
  assert_output --regexp $'(module call\n)+apptainer call\njupyter call\n'
  refute_output --regexp $'apptainer call\n(.*\n)*module call'
  assert_equal "$(stublog field jupyter call container)" "${T}/image.sif"
  run -0 stublog field jupyter call env
  assert_output --partial '"LOADEDMODULES": "gcc/10.2.0:python/3.11"'
}

@test "GALYLEO_RUN exported by the submitting shell never prefixes Jupyter in a job without a container" {
  printf '#!/bin/bash\ntouch %q\nexec "$@"\n' "${CANARY}" >"${T}/evil"
  chmod +x "${T}/evil"
  generate -d "${T}/nb" --conda-env myenv --conda-init "${CONDA_SH}"
  STUB_ENV+=(GALYLEO_RUN="${T}/evil")
  run_job -0
  assert_no_canary
  run -0 stublog calls jupyter
  assert_output 'jupyter lab --no-browser --KernelManager.transport=ipc'
  assert_equal "$(stublog field jupyter call conda)" myenv
  assert_equal "$(stublog field jupyter call container)" null
}
