#!/usr/bin/env bats
# The tests' deadlines (helpers.bash): measured against the job's own progress and scaled to
# the machine, so a loaded machine is never a red run; a hung job still fails, and a job
# that keeps progressing past its deadline is reported "too slow", distinctly.

load helpers

setup() {
  common_setup
  export GALYLEO_BATS_SCALE=1
  JOB_STALL=2
  JOB_DEADLINE=4
}
teardown() { common_teardown; }

# ticking SECONDS: a job that writes under the test's dir every 0.3 s for SECONDS.
ticking() {
  printf 'for ((i = 0; i < %s * 10 / 3; i++)); do date >>%q; sleep 0.3; done\n' "$1" "${T}/out/ticks" >"${JOB}"
}

@test "deadlines: a job that makes no progress is hung: killed with its group, status 124" {
  printf 'sleep 300 &\nwait\n' >"${JOB}"
  run -124 --separate-stderr reaped bash "${JOB}"
  assert_equal "${stderr}" "reaped: the job made no progress for 2 s (hung): killed with its process group"
}

@test "deadlines: a job that keeps progressing outlives the stall window" {
  ticking 3  # longer than JOB_STALL, shorter than JOB_DEADLINE
  run -0 reaped bash "${JOB}"
}

@test "deadlines: a job still progressing at its deadline is too slow, not hung" {
  ticking 60
  run -"${TOO_SLOW}" --separate-stderr reaped bash "${JOB}"
  assert_equal "${stderr}" "reaped: the job was still progressing after 4 s: too slow, killed with its process group"
}

@test "deadlines: both scale with the machine" {
  GALYLEO_BATS_SCALE=3
  ticking 9  # past JOB_DEADLINE (4 s) unscaled, within it scaled (12 s)
  run -0 reaped bash "${JOB}"
  assert_equal "$(patience 10)" 30
  GALYLEO_BATS_SCALE="" run -0 machine_scale
  ((output >= 1 && output <= 4)) || fail "machine_scale gave ${output}"
}

@test "deadlines: bats reports a too-slow job as a skip saying so, and a hung one as a failure" {
  {
    printf 'load %q\n' "${BATS_HERE}/helpers"
    printf 'setup() { common_setup; export GALYLEO_BATS_SCALE=1; JOB_STALL=2; JOB_DEADLINE=3; }\n'
    printf 'teardown() { common_teardown; }\n'
    printf '@test "slow" { printf "while :; do date >>%%q; sleep 0.3; done\\n" "${T}/out/ticks" >"${JOB}"; run_job -0; }\n'
    printf '@test "hung" { printf "sleep 300\\n" >"${JOB}"; run_job -0; }\n'
  } >"${T}/inner.bats"
  run -1 bats --tap "${T}/inner.bats"
  assert_line --regexp '^ok 1 slow # skip too slow: the job was still progressing after 3 s \(load [0-9.]+ on [0-9]+ cores\)$'
  assert_line 'not ok 2 hung'
}
