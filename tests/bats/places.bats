#!/usr/bin/env bats
# Private places, run for real: a session's folder, its token file and its job output
# must be the user's own and not links, or the job stops with one line before it makes
# a token, starts Jupyter or calls the proxy (another user who could replace them would
# have the job serve her token, or write into her file). Scratch: see environment.bats.

load helpers

setup() {
  common_setup
  TOKEN=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
  NEIGHBOUR_TOKEN=fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210
  printf '%s\n' "${NEIGHBOUR_TOKEN}" >"${T}/neighbour.token"
}
teardown() { common_teardown; }

# assert_nothing_started: no Jupyter ran and the neighbour's token reached nothing.
assert_nothing_started() {
  assert_equal "$(stublog count jupyter)" 0
  assert_equal "$(satellite_count redeemtoken)" 0
  run grep -rlF -- "${NEIGHBOUR_TOKEN}" "${STUB_LOG}"
  assert_failure 1
}

@test "launch mode: a token file that is a link (to a neighbour's token) is refused with one line" {
  ln -s "${T}/neighbour.token" "${T}/out/job.token"
  seed_alias "${ALIAS}"
  generate_launch "${ALIAS}" "${T}/out/job.token" -d "${T}/nb"
  run_job -1 --separate-stderr
  assert_equal "$(grep -c 'error:' <<<"${stderr}")" 1
  [[ "${stderr}" == *"error: the token file ${T}/out/job.token is missing, a link or not your own"* ]] || fail "${stderr}"
  assert_nothing_started
  assert_equal "$(satellite_count destroytoken)" 1  # launch's alias is still released
}

@test "ssh mode: a token file that is a link is refused too" {
  CFG[login_host]='"login.example.org"'
  ln -s "${T}/neighbour.token" "${T}/out/job.token"
  generate_launch "" "${T}/out/job.token" --connect ssh -d "${T}/nb"
  run_job -1 --separate-stderr
  [[ "${stderr}" == *"error: the token file ${T}/out/job.token is missing, a link or not your own"* ]] || fail "${stderr}"
  assert_nothing_started
  assert_file_not_exists "${T}/out/job.url"
}

@test "launch mode: a token file another user owns is refused" {
  [[ "$(id -u)" == 0 ]] || skip "needs root to give a file to another user"
  cp "${T}/neighbour.token" "${T}/out/job.token"
  chown 65534 "${T}/out/job.token"
  seed_alias "${ALIAS}"
  generate_launch "${ALIAS}" "${T}/out/job.token" -d "${T}/nb"
  run_job -1 --separate-stderr
  [[ "${stderr}" == *"error: the token file ${T}/out/job.token is missing, a link or not your own"* ]] || fail "${stderr}"
  assert_nothing_started
}

@test "a session folder the group can write in (a site's shared 2770 folder) stops the job before anything" {
  generate -d "${T}/nb"
  chmod 2770 "${T}/out"
  run_job -1 --separate-stderr
  [[ "${stderr}" == *"error: the session folder ${T}/out is not yours alone"* ]] || fail "${stderr}"
  assert_equal "$(grep -c 'error:' <<<"${stderr}")" 1
  assert_nothing_started
  assert_equal "$(stublog satellite)" ""  # not even getlink
  assert_equal "$(ls -A "${T}/out")" ""
}

@test "a session folder that is a link to the user's own private folder is used" {
  mkdir -m 700 "${T}/real"
  rmdir "${T}/out"
  ln -s "${T}/real" "${T}/out"
  generate -d "${T}/nb"
  run_job -0
  assert_file_exists "${T}/real/galyleo-${JOBID}.json"
}

@test "a job output that is a link, or another user's file, stops the job before a token is made" {
  generate -d "${T}/nb"
  ln -s "${T}/elsewhere.out" "${T}/out/galyleo-${JOBID}.out"
  start_job
  wait "${JOB_PID}" && fail "the job ran" || true
  JOB_PID=""
  grep -qF "error: the job output ${T}/out/galyleo-${JOBID}.out is not your own file (or a link)" "${T}/job.out" \
    || fail "$(cat "${T}/job.out")"
  assert_nothing_started
  rm "${T}/out/galyleo-${JOBID}.out"
  [[ "$(id -u)" == 0 ]] || skip "needs root to give a file to another user"
  : >"${T}/job.out"
  chown 65534 "${T}/job.out"  # Slurm opened the neighbour's file in its place
  start_job
  wait "${JOB_PID}" && fail "the job ran" || true
  JOB_PID=""
  grep -qF "is not your own file (or a link); nothing was started" "${T}/job.out" || fail "$(cat "${T}/job.out")"
  assert_nothing_started
  assert_equal "$(stublog satellite)" ""
}

# --- scratch: a fresh private folder per job, never a fixed name in a shared one ---

# neighbour_squats: the names the old code used for job JOBID, made first in the scratch
#   folder as another user would: an env folder that is a link to hers, her 0666 image,
#   and her 0777 image cache (given to another user when the tests run as root).
neighbour_squats() {
  mkdir -p "${T}/hers"
  ln -s "${T}/hers" "${T}/scratch/galyleo-conda-${JOBID}"
  printf 'her image\n' >"${T}/scratch/galyleo-${JOBID}.sif"
  chmod 666 "${T}/scratch/galyleo-${JOBID}.sif"
  mkdir -m 777 "${T}/scratch/galyleo-cache-tester"
  chmod 777 "${T}/scratch/galyleo-cache-tester"
  if [[ "$(id -u)" == 0 ]]; then
    chown -h 65534 "${T}/hers" "${T}/scratch/galyleo-conda-${JOBID}" "${T}/scratch/galyleo-${JOBID}.sif" \
      "${T}/scratch/galyleo-cache-tester"
  fi
}

@test "scratch: the old fixed names, made first by a neighbour, are neither used nor fatal (--sif docker:// --conda-yml)" {
  printf 'name: demo\ndependencies:\n  - python=3.11\n' >"${T}/environment.yml"
  neighbour_squats
  generate -d "${T}/nb" --sif docker://quay.io/jupyter/base-notebook:latest --conda-yml "${T}/environment.yml" \
    --conda-init "${STUBS}/conda/etc/profile.d/conda.sh"
  run_job -0 --separate-stderr
  image="$(stublog field jupyter call container)"
  prefix="$(stublog field jupyter call conda)"
  [[ "${image}" =~ ^"${T}/scratch/galyleo-${JOBID}."[A-Za-z0-9]{10}/image\.sif$ ]] || fail "image ${image}"
  [[ "${prefix}" =~ ^"${T}/scratch/galyleo-${JOBID}."[A-Za-z0-9]{10}/galyleo-conda-${JOBID}$ ]] || fail "env ${prefix}"
  assert_argv apptainer 1 pull --force "${image}" docker://quay.io/jupyter/base-notebook:latest
  # her image cache was not used: one line says so, and the pull went to the job's own folder
  [[ "${stderr}" != *"(cache ${T}/scratch/galyleo-cache-tester)"* ]] || fail "pulled with her cache: ${stderr}"
  assert_equal "$(grep -c "not using the image cache ${T}/scratch/galyleo-cache-tester" <<<"${stderr}")" 1
  # her files are as she left them, and the job put nothing in them
  assert_equal "$(cat "${T}/scratch/galyleo-${JOBID}.sif")" "her image"
  assert_equal "$(ls -A "${T}/hers" "${T}/scratch/galyleo-cache-tester")" "${T}/hers:

${T}/scratch/galyleo-cache-tester:"
  run compgen -G "${T}/scratch/galyleo-${JOBID}.??????????"
  assert_failure  # the job's own folder: removed at the end
}

@test "scratch: a scratch_dir another user made first (scratch_dir with %u) stops the job with one line" {
  [[ "$(id -u)" == 0 ]] || skip "needs root to give a folder to another user"
  CFG[scratch_dir]="\"${T}/scratch/%u\""
  mkdir -m 777 "${T}/scratch/tester"
  chown 65534 "${T}/scratch/tester"
  printf 'name: demo\ndependencies:\n  - python=3.11\n' >"${T}/environment.yml"
  generate -d "${T}/nb" --conda-yml "${T}/environment.yml" --conda-init "${STUBS}/conda/etc/profile.d/conda.sh"
  run_job -1 --separate-stderr
  [[ "${stderr}" == *"error: the scratch folder ${T}/scratch/tester is another user's, or others can replace"* ]] \
    || fail "${stderr}"
  assert_equal "$(stublog count conda)" 0
  assert_equal "$(stublog count jupyter)" 0
  assert_equal "$(ls -A "${T}/scratch/tester")" ""
}
