#!/usr/bin/env bats
# How a session ends: the alias is destroyed exactly once however the job stops
# (normal end, scancel's SIGTERM, Jupyter failing or timing out, a proxy error),
# and a port that turns out to be taken is retried on another one.

load helpers

setup() {
  common_setup
  generate -d "${T}/nb"
}
teardown() { common_teardown; }

@test "normal exit: Jupyter ends on its own -> job exits 0, destroy exactly once, after redeem" {
  run_job -0 --separate-stderr
  assert_equal "$(satellite_count destroytoken)" 1
  run -0 stublog events
  assert_output --regexp $'redeemtoken\n(.*\n)*jupyter exited\n(.*\n)*curl satellite destroytoken$'
  assert_equal "$(stublog count jupyter terminated)" 0
  assert_equal "$(stublog field curl satellite reply)" "Success! Token destroyed."
  [[ "${stderr}" == *"alias ${ALIAS} destroyed"* ]] || fail "no destroy message in: ${stderr}"
}

@test "Jupyter exits mid-session with an error: its status is the job's, destroy once" {
  STUB_ENV+=(STUB_JUPYTER_EXIT_STATUS=3)  # ends on its own right after redeem
  run_job -3 --separate-stderr
  assert_equal "$(satellite_count redeemtoken)" 1
  assert_equal "$(satellite_count destroytoken)" 1
  assert_equal "$(stublog field jupyter exited status)" 3
  [[ "${stderr}" == *"lab exited with status 3"* ]] || fail "${stderr}"
}

@test "SIGTERM to the script (scancel): exit 143, destroy exactly once, Jupyter stopped" {
  STUB_ENV+=(STUB_JUPYTER_EXIT=never)
  start_job
  wait_for jupyter http
  wait_for_redeem
  sleep 0.2  # into `wait`
  kill -TERM "${JOB_PID}"
  status=0
  wait "${JOB_PID}" || status=$?
  assert_equal "${status}" 143
  assert_equal "$(satellite_count destroytoken)" 1
  assert_equal "$(stublog field jupyter terminated signal)" SIGTERM
  run -0 cat "${T}/job.out"
  assert_output --partial "received SIGTERM"
  assert_output --partial "alias ${ALIAS} destroyed"
}

@test "SIGTERM to the whole job (script and Jupyter at once): destroy exactly once" {
  STUB_ENV+=(STUB_JUPYTER_EXIT=never)
  start_job
  wait_for jupyter listening
  wait_for_redeem
  sleep 0.2
  kill -TERM -- "-${JOB_PID}"
  status=0
  wait "${JOB_PID}" || status=$?
  assert_equal "${status}" 143
  assert_equal "$(satellite_count destroytoken)" 1
  assert_equal "$(stublog count jupyter terminated)" 1
}

@test "a second SIGTERM (Slurm's, to the whole job) during a slow destroy: clean-up still finishes" {
  generate -d "${T}/nb" -i voila
  STUB_ENV+=(STUB_JUPYTER_EXIT=never STUB_SATELLITE_SLOW=destroytoken=2)
  start_job
  wait_for voila listening
  wait_for_redeem
  sleep 0.2  # into `wait`
  kill -TERM "${JOB_PID}"
  wait_for curl satellite-wait
  kill -TERM -- "-${JOB_PID}"  # as Slurm signals every process of the job, and Ctrl-C twice
  kill -INT "${JOB_PID}"
  status=0
  wait "${JOB_PID}" || status=$?
  assert_equal "${status}" 143
  assert_equal "$(satellite_count destroytoken)" 1
  assert_equal "$(stublog field curl satellite reply)" "Success! Token destroyed."
  assert_equal "$(stublog count voila terminated)" 1
  run -0 cat "${T}/job.out"
  assert_output --partial "alias ${ALIAS} destroyed"
  assert_output --partial "session ended (exit status 143)"
  run -0 find "${T}/tmp" -mindepth 1
  assert_output ""  # the private voila config folder went with the clean-up
}

@test "SIGHUP ends the job like SIGTERM: exit 129, destroy once, Jupyter stopped" {
  STUB_ENV+=(STUB_JUPYTER_EXIT=never)
  start_job
  wait_for jupyter listening
  wait_for_redeem
  sleep 0.2
  kill -HUP "${JOB_PID}"
  status=0
  wait "${JOB_PID}" || status=$?
  assert_equal "${status}" 129
  assert_equal "$(satellite_count destroytoken)" 1
  assert_equal "$(stublog count jupyter terminated)" 1
  run -0 cat "${T}/job.out"
  assert_output --partial "received SIGHUP"
}

@test "SIGTERM while waiting for Jupyter to answer: destroy once, never redeemed" {
  STUB_ENV+=(STUB_JUPYTER_DELAY=5 STUB_JUPYTER_EXIT=never)
  start_job
  wait_for jupyter call
  sleep 0.2
  kill -TERM "${JOB_PID}"
  status=0
  wait "${JOB_PID}" || status=$?
  assert_equal "${status}" 143
  assert_equal "$(satellite_count redeemtoken)" 0
  assert_equal "$(satellite_count destroytoken)" 1
  assert_equal "$(stublog count jupyter listening)" 0
}

@test "Jupyter fails to start: three attempts, exit 1 with the reason, destroy once, no redeem" {
  STUB_ENV+=(STUB_JUPYTER_FAIL=start)
  run_job -1 --separate-stderr
  assert_equal "$(stublog count jupyter)" 3
  assert_equal "$(satellite_count redeemtoken)" 0
  assert_equal "$(satellite_count destroytoken)" 1
  [[ "${stderr}" == *"error: lab could not be started"* ]] || fail "${stderr}"
  [[ "${stderr}" == *"told to fail to start"* ]] || fail "Jupyter's own message missing: ${stderr}"
}

@test "Jupyter slower than ready_timeout: exit 1 naming the port and timeout, destroy once, Jupyter stopped" {
  CFG[ready_timeout]=1
  generate -d "${T}/nb"
  STUB_ENV+=(STUB_JUPYTER_DELAY=4 STUB_JUPYTER_EXIT=never)
  run_job -1 --separate-stderr
  port="$(jupyter_setting jupyter port 1)"
  [[ "${stderr}" == *"lab did not answer on port ${port} within 1 s"* ]] || fail "${stderr}"
  assert_equal "$(satellite_count redeemtoken)" 0
  assert_equal "$(satellite_count destroytoken)" 1
  assert_equal "$(stublog count jupyter terminated)" 1
}

@test "Jupyter that takes a while to listen: redeemed only once it answers" {
  STUB_ENV+=(STUB_JUPYTER_DELAY=1.5)
  run_job -0
  run -0 stublog events
  assert_output --regexp $'jupyter call\n(.*\n)*jupyter listening\n(.*\n)*curl satellite redeemtoken\n'
  assert_equal "$(stublog field curl satellite params 3)" "[[\"token\", \"${ALIAS}\"], [\"port\", \"$(jupyter_port)\"]]"
}

@test "port grabbed between the probe and Jupyter's bind: retried on another port, that one redeemed" {
  base=$((20000 + RANDOM % 20000))
  CFG[port_min]="${base}"
  CFG[port_max]=$((base + 1))
  generate -d "${T}/nb"
  STUB_ENV+=(STUB_JUPYTER_FAIL=steal-once)
  run_job -0 --separate-stderr
  assert_equal "$(stublog count jupyter)" 2
  first="$(stublog field jupyter failed port)"
  second="$(jupyter_port)"
  [[ "${first}" != "${second}" ]] || fail "retried on the taken port ${first}"
  assert_equal "$(stublog field curl satellite params 3)" "[[\"token\", \"${ALIAS}\"], [\"port\", \"${second}\"]]"
  [[ "${stderr}" == *"(attempt 2)"* ]] || fail "${stderr}"
  assert_equal "$(satellite_count destroytoken)" 1
}

# squat_port PORT BACKLOG FILL: start a listener on PORT that never accepts, with
#   FILL connections of its own already queued (a full queue makes later connects
#   hang); returns once it listens and sets SQUATTER to its pid.
squat_port() {
  python3 - "$@" "${T}/squatting" 3>&- <<'PY' &
import socket, sys, time
port, backlog, fill = (int(a) for a in sys.argv[1:4])
server = socket.socket()
server.bind(("127.0.0.1", port))
server.listen(backlog)
held = [socket.socket() for _ in range(fill)]
for client in held:
    client.setblocking(False)
    client.connect_ex(("127.0.0.1", port))
time.sleep(0.3)
open(sys.argv[4], "w").write("ready")
time.sleep(300)
PY
  SQUATTER=$!
  for _ in {1..250}; do [[ -s "${T}/squatting" ]] && return 0; sleep 0.02; done
  fail "the squatter on port $1 did not start"
}

# port_pair_job BACKLOG FILL: a job whose port range is two ports, the first held by
#   a squatter; the job must choose the second and redeem it.
port_pair_job() {
  local base=$((20000 + RANDOM % 20000))
  CFG[port_min]="${base}"
  CFG[port_max]=$((base + 1))
  generate -d "${T}/nb"
  squat_port "${base}" "$@"
  run_job -0
  kill "${SQUATTER}"
  assert_equal "$(stublog count jupyter)" 1
  assert_equal "$(jupyter_port)" $((base + 1))
  run -0 stublog satellite
  assert_line "redeemtoken token=${ALIAS} port=$((base + 1))"
}

@test "something already listening on the only other port in range: the free one is chosen" {
  port_pair_job 5 0
}

@test "a listener that never accepts (full backlog) is not waited on: the probe gives up, the free port is chosen" {
  port_pair_job 0 3
}

@test "getlink fails (proxy says Oops): exit 1, nothing to destroy, Jupyter never started" {
  STUB_ENV+=(STUB_SATELLITE_OOPS=getlink)
  run_job -1 --separate-stderr
  [[ "${stderr}" == *"could not get an alias"* ]] || fail "${stderr}"
  run -0 stublog satellite
  assert_output "getlink"
  assert_equal "$(stublog count jupyter)" 0
}

@test "redeem refused: exit 1 with the reason, destroy once" {
  STUB_ENV+=(STUB_SATELLITE_OOPS=redeemtoken)
  run_job -1 --separate-stderr
  [[ "${stderr}" == *"would not route ${ORIGIN}"* ]] || fail "${stderr}"
  assert_equal "$(satellite_count destroytoken)" 1
  assert_equal "$(stublog count jupyter terminated)" 1
}

@test "linktoken refused: only a warning, the session still runs" {
  STUB_ENV+=(STUB_SATELLITE_OOPS=linktoken)
  run_job -0 --separate-stderr
  [[ "${stderr}" == *"warning: could not link the alias"* ]] || fail "${stderr}"
  assert_equal "$(satellite_count redeemtoken)" 1
  assert_equal "$(satellite_count destroytoken)" 1
}

# stubs_without NAME...: a PATH dir holding every stand-in but NAMEs ($T/bin).
stubs_without() {
  local stub
  mkdir -p "${T}/bin"
  for stub in "${STUBS}"/bin/*; do
    [[ " $* " == *" $(basename "${stub}") "* ]] && continue
    printf '#!/bin/sh\nexec "%s" "$@"\n' "${stub}" >"${T}/bin/$(basename "${stub}")"  # the stand-in finds its lib
    chmod +x "${T}/bin/$(basename "${stub}")"
  done
  STUB_ENV+=(PATH="${T}/bin:/usr/local/bin:/usr/bin:/bin")  # after job_env's PATH: env -i keeps the last
}

@test "no Jupyter in the session's environment: one clear line, no retries, destroy once" {
  stubs_without jupyter jupyter-lab jupyter-notebook
  run_job -1 --separate-stderr
  assert_equal "$(stublog count jupyter)" 0
  assert_equal "$(satellite_count redeemtoken)" 0
  assert_equal "$(satellite_count destroytoken)" 1
  [[ "${stderr}" == *"error: jupyter-lab: command not found in the session's environment (load the module"* ]] \
    || fail "${stderr}"
  [[ "${stderr}" != *"attempt 2"* && "${stderr}" != *"exited before answering"* ]] || fail "retried: ${stderr}"
}

@test "Jupyter's command vanishes as it starts (status 127): one clear line after one attempt" {
  stubs_without jupyter
  run_job -1 --separate-stderr
  assert_equal "$(satellite_count destroytoken)" 1
  [[ "${stderr}" == *"error: jupyter-lab: command not found in the session's environment"* ]] || fail "${stderr}"
  [[ "${stderr}" != *"attempt 2"* ]] || fail "retried: ${stderr}"
}

@test "time-limit warning (USR1) says the time really left, and the session keeps running" {
  generate -d "${T}/nb" -t 2
  grep -qx '#SBATCH --signal=B:USR1@60' "${JOB}" || fail "lead not capped: $(grep signal "${JOB}")"
  STUB_ENV+=(STUB_JUPYTER_EXIT=never)
  start_job
  wait_for_redeem
  kill -USR1 "${JOB_PID}"
  local deadline=$((SECONDS + 10))
  until grep -q "time limit ends this session" "${T}/job.out"; do
    ((SECONDS < deadline)) || fail "no warning: $(cat "${T}/job.out")"
    sleep 0.1
  done
  # 120 s left (a job that got here within its first second) reads "about 2 minutes"
  run -0 grep -cE "time limit ends this session in about (1[01][0-9] seconds|2 minutes): save your work now" "${T}/job.out"
  kill -0 "${JOB_PID}" || fail "the warning ended the job"
  assert_equal "$(satellite_count destroytoken)" 0
}
