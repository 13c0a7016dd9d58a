#!/usr/bin/env bats
# A shared node (issue 24, items 1 and 4): nothing on a command line names the session
# (alias, Jupyter's port, token); a port a neighbour bound first is never taken for
# Jupyter, and never sent the token; a refused redeem ends the job in one line; the job's
# own word that its route is live (contract.SessionFiles.routed) reads back in Python.

load helpers

setup() { common_setup; }
teardown() { common_teardown; }

# assert_no_argv_names VALUE...: no recorded command line (Jupyter, Voila, curl, the
#   container runtime, the Satellite calls) holds any VALUE.
assert_no_argv_names() {
  local value found
  for value in "$@"; do
    [[ -n "${value}" ]] || fail "an empty value to look for"
    found="$(stublog dump | python3 -c 'import json, sys
hits = [r["cmd"] + " " + " ".join(r["argv"]) for r in map(json.loads, sys.stdin) if sys.argv[1] in " ".join(r.get("argv") or [])]
print("\n".join(hits))' "${value}")"
    [[ -z "${found}" ]] || fail "'${value}' is on a command line: ${found}"
  done
}

# url_token FILE: the token in the session URL file (its last line).
url_token() {
  sed -n 's/.*?token=//p' "$1"
}

@test "no command line names the alias, Jupyter's port or the token (lab, notebook, voila)" {
  for interface in lab notebook voila; do
    rm -f "${STUB_LOG}/calls.jsonl" "${STUB_LOG}/satellite.json"
    idle=(--idle-timeout 5)
    [[ "${interface}" != voila ]] || idle=()
    generate -d "${T}/nb" -i "${interface}" "${idle[@]}"
    cmd=jupyter
    [[ "${interface}" != voila ]] || cmd=voila
    run_job -0 --separate-stderr
    assert_equal "$(satellite_count redeemtoken)" 1
    [[ "$(stublog count curl)" -gt 0 ]] || fail "no readiness request recorded"
    assert_no_argv_names "${ALIAS}" ":$(jupyter_port "${cmd}")" "=$(jupyter_port "${cmd}")" \
      "$(url_token "${T}/out/galyleo-${JOBID}.url")"
  done
}

@test "ssh mode: no command line names Jupyter's port, the laptop's port or the token" {
  generate --connect ssh -d "${T}/nb"
  STUB_ENV+=(STUB_JUPYTER_EXIT=tunneled STUB_URL_DIR="${T}/out")
  run_job -0
  url_file="${T}/out/galyleo-${JOBID}.url"
  local_port="$(sed -n 's|.*http://127.0.0.1:\([0-9]*\)/.*|\1|p' "${url_file}")"
  assert_no_argv_names ":$(jupyter_port)" "${local_port}" "$(url_token "${url_file}")"
}

@test "a neighbour's server on the chosen port, answering like Jupyter, is never ready nor sent the token: another port is" {
  generate -d "${T}/nb"
  STUB_ENV+=(STUB_JUPYTER_FAIL=squat-once STUB_SQUAT_LINGER=3)
  run_job -0 --separate-stderr
  squatted="$(stublog field jupyter failed port 1)"
  assert_equal "$(stublog count jupyter)" 2
  [[ "$(jupyter_port)" != "${squatted}" ]] || fail "listened on the squatted port ${squatted}"
  run -0 stublog satellite
  assert_line "redeemtoken token=${ALIAS} port=$(jupyter_port)"
  refute_line "redeemtoken token=${ALIAS} port=${squatted}"
  # the squatter was up and answering all along, and was asked nothing (so never sent the token)
  assert_file_exists "${STUB_LOG}/squatter.pid"
  assert_file_empty "${STUB_LOG}/squatter-requests.jsonl"
  run -0 curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${squatted}/"
  assert_output 302
}

@test "a refused redeem (the alias redeemed by someone else) ends the job with one error line; no ready, no routed word" {
  STUB_ENV+=(STUB_SATELLITE_OOPS=redeemtoken)
  generate -d "${T}/nb"
  start_job
  wait "${JOB_PID}" && status=0 || status=$?
  assert_equal "${status}" 1
  run -0 grep -c 'error:' "${T}/job.out"
  assert_output 1
  run -0 grep 'error:' "${T}/job.out"
  assert_output --regexp "error: the Satellite proxy would not route ${ORIGIN} to port [0-9]+: Oops! stand-in told to fail redeemtoken$"
  run -1 grep -E 'ready:|satellite redeemtoken' "${T}/job.out"
  assert_file_not_exists "${T}/out/galyleo-${JOBID}.routed"
}

@test "the job's word that its own route is live: written after its redeem, read by the Satellite mode (routed_by_job), gone with the job" {
  generate -d "${T}/nb"
  STUB_ENV+=(STUB_JUPYTER_EXIT=never)
  start_job
  wait_for_redeem 20
  routed="${T}/out/galyleo-${JOBID}.routed"
  for _ in {1..100}; do [[ -e "${routed}" ]] && break; sleep 0.05; done
  run -0 env PYTHONPATH="${REPO}" "${GALYLEO_PY}" -c 'import sys
from galyleo import contract
from galyleo.connect.satellite import routed_by_job
paths = contract.files_of_output(sys.argv[1])
print(paths.routed == sys.argv[2], routed_by_job(paths.routed))' "${T}/out/galyleo-${JOBID}.out" "${routed}"
  assert_output "True True"
  assert_equal "$(stat -c %a "${routed}")" 600
  kill -TERM "${JOB_PID}"
  wait "${JOB_PID}" || true
  assert_file_not_exists "${routed}"
}
