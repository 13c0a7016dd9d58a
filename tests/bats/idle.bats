#!/usr/bin/env bats
# Idle culling (--idle-timeout): exactly the documented Jupyter settings per interface,
# none when off; the job's watcher beside Jupyter (activity file read back by Python,
# a Jupyter that stopped listening is stopped); the ending says why.

load helpers

setup() {
  common_setup
  OUT="${T}/out/galyleo-${JOBID}.out"  # where Slurm writes a plain sbatch's output
}
teardown() { common_teardown; }

# run_job_logged [RUN FLAGS...]: run the job with its output in $OUT, as Slurm would.
run_job_logged() {
  job_env
  run "$@" bash -c 'env -i "$@" >"'"${OUT}"'" 2>&1' job-env "${JOB_ENV[@]}" bash "${JOB}"
}

# fast_watch: the generated script, looking at Jupyter every second (the test's patience).
fast_watch() {
  sed -i 's/^GALYLEO_WATCH_INTERVAL=.*/GALYLEO_WATCH_INTERVAL=1/' "${JOB}"
}

IDLE_SETTINGS=(--ServerApp.shutdown_no_activity_timeout=180 --MappingKernelManager.cull_idle_timeout=180
  --MappingKernelManager.cull_interval=45 --MappingKernelManager.cull_connected=True
  --MappingKernelManager.cull_busy=False --TerminalManager.cull_inactive_timeout=180
  --TerminalManager.cull_interval=45)

@test "--idle-timeout 3: lab and notebook get exactly the documented settings" {
  for interface in lab notebook; do
    rm -f "${STUB_LOG}/calls.jsonl"
    generate -d "${T}/nb" -i "${interface}" --idle-timeout 3
    run_job -0
    assert_argv jupyter 1 "${interface}" --no-browser --KernelManager.transport=ipc "${IDLE_SETTINGS[@]}"
  done
}

@test "--idle-timeout 0 (and the default): no culling setting reaches Jupyter or Voila" {
  for interface in lab notebook voila; do
    rm -f "${STUB_LOG}/calls.jsonl"
    generate -d "${T}/nb" -i "${interface}" --idle-timeout 0
    # as settings (galyleo's own server extension in the script reads the timeout by name, and acts only if set)
    run grep -c -e '--MappingKernelManager\.' -e '--TerminalManager\.' -e '--ServerApp\.shutdown_no_activity' "${JOB}"
    assert_output 0
    run_job -0
    local cmd=jupyter
    [[ "${interface}" != voila ]] || cmd=voila
    run -0 stublog argv "${cmd}" 1
    [[ "${output}" != *cull* && "${output}" != *shutdown_no_activity* ]] || fail "settings passed: ${output}"
  done
}

@test "Jupyter shuts itself down idle: 'ended: idle for 3 min', exit 0, alias destroyed once" {
  generate -d "${T}/nb" --idle-timeout 3
  fast_watch  # the job decides by its own look at /api/status: let it look within a second
  STUB_ENV+=(STUB_JUPYTER_EXIT=idle)
  run_job_logged -0
  assert_equal "$(satellite_count destroytoken)" 1
  run -0 cat "${OUT}"
  assert_output --partial "ended: idle for 3 min"
  refute_output --partial "lab exited with status"
  assert_file_not_exists "${T}/out/galyleo-${JOBID}.activity"
}

@test "the idle ending is the job's own private file; Python reads it back" {
  generate -d "${T}/nb" --idle-timeout 3
  fast_watch
  STUB_ENV+=(STUB_JUPYTER_EXIT=idle)
  run_job_logged -0
  local ending="${T}/out/galyleo-${JOBID}.ending"
  run -0 stat -c %a "${ending}"
  assert_output 600
  run -0 env PYTHONPATH="${REPO}" "${GALYLEO_PY}" -c '
import sys
from galyleo import sessions
from galyleo.contract import Record
print(sessions.ended_how(Record(name="x", job_id="1", output=sys.argv[1]), "COMPLETED"))' "${OUT}"
  assert_output "idle for 3 min"
}

@test "a forged idle line in the job output (Jupyter was active) is not an idle ending" {
  generate -d "${T}/nb" --idle-timeout 3
  fast_watch
  STUB_ENV+=(STUB_JUPYTER_EXIT=idle STUB_JUPYTER_RECENT=1)  # the line is in the output; /api/status says active
  run_job_logged -0
  run -0 cat "${OUT}"
  assert_output --partial "No kernels for 180 seconds; shutting down"
  assert_output --partial "lab exited with status 0"
  refute_output --partial "ended: idle"
  assert_file_not_exists "${T}/out/galyleo-${JOBID}.ending"
}

@test "Jupyter exits 0 for another reason with culling on: not called idle" {
  generate -d "${T}/nb" --idle-timeout 3
  run_job_logged -0  # the fake ends once redeemed, without jupyter_server's idle line
  run -0 cat "${OUT}"
  assert_output --partial "lab exited with status 0"
  refute_output --partial "ended: idle"
}

@test "activity: the job keeps Jupyter's /api/status beside its output; Python reads it back" {
  generate -d "${T}/nb" --idle-timeout 3
  fast_watch
  STUB_ENV+=(STUB_JUPYTER_EXIT=never STUB_JUPYTER_KERNELS=2)
  job_env
  setsid env -i "${JOB_ENV[@]}" bash "${JOB}" >"${OUT}" 2>&1 3>&- &
  JOB_PID=$!
  local activity="${T}/out/galyleo-${JOBID}.activity" deadline=$((SECONDS + 15))
  until [[ -s "${activity}" ]]; do
    ((SECONDS < deadline)) || fail "no activity file; output: $(cat "${OUT}")"
    sleep 0.1
  done
  run -0 stat -c %a "${activity}"
  assert_output 600
  run -0 env PYTHONPATH="${REPO}" "${GALYLEO_PY}" -c '
import sys
from galyleo import idle
a = idle.read_activity(sys.argv[1])
print(a.timeout, a.kernels, a.last_activity > 1.7e9, int(a.ends_around() - a.last_activity))' "${OUT}"
  assert_output "180 2 True 285"
  kill -TERM "${JOB_PID}"
  wait "${JOB_PID}" || true
  assert_file_not_exists "${activity}"
  assert_equal "$(satellite_count destroytoken)" 1
}

@test "a Jupyter that stopped listening but did not exit is stopped; clean-up runs once" {
  generate -d "${T}/nb" --idle-timeout 3
  fast_watch
  STUB_ENV+=(STUB_JUPYTER_EXIT=deaf)
  run_job_logged
  assert_equal "$(stublog count jupyter deaf)" 1
  assert_equal "$(stublog field jupyter terminated signal)" SIGTERM
  assert_equal "$(satellite_count destroytoken)" 1
  run -0 cat "${OUT}"
  assert_output --partial "stopped answering on port"
  assert_output --partial "session ended"
}

@test "the time-limit warning (USR1) does not disturb the watcher or the ending" {
  generate -d "${T}/nb" --idle-timeout 3
  fast_watch
  STUB_ENV+=(STUB_JUPYTER_EXIT=never)
  job_env
  setsid env -i "${JOB_ENV[@]}" bash "${JOB}" >"${OUT}" 2>&1 3>&- &
  JOB_PID=$!
  wait_for_redeem
  sleep 1.5
  kill -USR1 "${JOB_PID}"
  sleep 1.5
  kill -0 "${JOB_PID}" || fail "the job ended on USR1: $(cat "${OUT}")"
  kill -TERM "${JOB_PID}"
  status=0
  wait "${JOB_PID}" || status=$?
  assert_equal "${status}" 143
  assert_equal "$(satellite_count destroytoken)" 1
  run -0 cat "${OUT}"
  assert_output --partial "warning: the time limit ends this session"
  refute_output --partial "stopped answering"
}
