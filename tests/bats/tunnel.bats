#!/usr/bin/env bats
# ssh-tunnel mode (connect = ssh), run for real: no Satellite call of any kind, Jupyter
# on the cluster address with the tunnel's origin, the URL file (0600, the ssh command
# then the local URL) written by the job and read back by galyleo's own reader.

load helpers

setup() {
  common_setup
  CFG[login_host]='"login.example.org"'
  TARGET="$(id -un)@login.example.org"
  STUB_ENV+=(STUB_JUPYTER_EXIT=tunneled STUB_URL_DIR="${T}/out")  # Jupyter ends once the job wrote its URL file
}
teardown() { common_teardown; }

# tunnel_py CODE ARGS...: run CODE with galyleo.connect.ssh imported as tunnel (the Python side of the contract).
tunnel_py() {
  local code="$1"
  shift
  PYTHONPATH="${REPO}" "${GALYLEO_PY}" -c "import sys; from galyleo.connect import ssh as tunnel; ${code}" "$@"
}

# url_local_port URL_FILE: the laptop's port the job chose, from the ssh line of URL_FILE
#   (stdout); the line is `ssh -N -o ExitOnForwardFailure=yes -L 127.0.0.1:PORT:...`.
url_local_port() {
  sed -n '1s/^ssh -N -o ExitOnForwardFailure=yes -L 127\.0\.0\.1:\([0-9]*\):.*/\1/p' "$1"
}

# assert_no_satellite_calls: the stand-in proxy saw nothing.
assert_no_satellite_calls() {
  assert_equal "$(stublog satellite)" ""
}

# assert_no_satellite: no Satellite call, and the script holds no way to make one.
assert_no_satellite() {
  assert_no_satellite_calls
  run grep -nE 'galyleo_satellite|\.cgi|manage\.|GALYLEO_SATELLITE_URL|GALYLEO_ALIAS|satellite_domain' "${JOB}"
  assert_failure 1
}

@test "plain sbatch: no Satellite call; Jupyter on the cluster address with the tunnel's origin" {
  generate --connect ssh -d "${T}/nb"
  run_job -0 --separate-stderr
  assert_no_satellite
  LOCAL_PORT="$(url_local_port "${T}/out/galyleo-${JOBID}.url")"
  assert_argv jupyter 1 lab --no-browser --KernelManager.transport=ipc
  assert_jupyter_settings jupyter 1 127.0.0.1 "$(jupyter_port)" "http://127.0.0.1:${LOCAL_PORT}"
  assert_equal "$(stublog field jupyter listening ip)" 127.0.0.1
  [[ "${LOCAL_PORT}" != 8888 && "${LOCAL_PORT}" -ge 20000 && "${LOCAL_PORT}" -le 29999 ]] || fail "port ${LOCAL_PORT}"
}

@test "plain sbatch: the URL file is 0600 and holds the ssh command, then the local URL with Jupyter's token" {
  generate --connect ssh -d "${T}/nb"
  run_job -0 --separate-stderr
  url_file="${T}/out/galyleo-${JOBID}.url"
  assert_equal "$(stat -c %a "${url_file}")" 600
  port="$(jupyter_port)"
  LOCAL_PORT="$(url_local_port "${url_file}")"
  assert_equal "$(sed -n 1p "${url_file}")" "ssh -N -o ExitOnForwardFailure=yes -L 127.0.0.1:${LOCAL_PORT}:127.0.0.1:${port} ${TARGET}"
  url="$(sed -n 2p "${url_file}")"
  [[ "${url}" =~ ^http://127\.0\.0\.1:${LOCAL_PORT}/\?token=([0-9a-f]{64})$ ]] || fail "bad URL line: ${url}"
  token="${BASH_REMATCH[1]}"
  assert_equal "$(wc -l <"${url_file}")" 2
  assert_equal "$(stublog field jupyter call token_sha256)" "$(printf %s "${token}" | sha256sum | cut -d' ' -f1)"
  # the token is in no argv, no job output, not in the script
  [[ "${stderr}${output}" != *"${token}"* ]] || fail "token in the job output"
  run grep -rlF -- "${token}" "${STUB_LOG}" "${JOB}"
  assert_failure 1
  # the job output tells the user where to look, with the ssh command (no token)
  run -0 bash -c "grep -F 'ready: on your laptop run: ssh -N -o ExitOnForwardFailure=yes -L 127.0.0.1:${LOCAL_PORT}:' <<<\"\$1\"" _ "${stderr}"
}

@test "round trip: galyleo's reader gives back what the job wrote (node, port, local port, argv, URL)" {
  generate --connect ssh -d "${T}/nb"
  run_job -0
  url_file="${T}/out/galyleo-${JOBID}.url"
  LOCAL_PORT="$(url_local_port "${url_file}")"
  run -0 tunnel_py 't = tunnel.read(sys.argv[1]); print(t.local_port, t.node, t.port, t.target); print(t.ssh_argv()); print(t.text(), end="")' "${url_file}"
  assert_line --index 0 "${LOCAL_PORT} 127.0.0.1 $(jupyter_port) ${TARGET}"
  assert_line --index 1 "['ssh', '-N', '-o', 'ExitOnForwardFailure=yes', '-L', '127.0.0.1:${LOCAL_PORT}:127.0.0.1:$(jupyter_port)', '${TARGET}']"
  # Python's own text of the two lines is byte for byte the file the job wrote
  assert_equal "$(printf '%s\n' "${lines[@]:2}")" "$(<"${url_file}")"
}

@test "plain sbatch: the record the job writes is read by galyleo's sessions (ssh, local URL, no alias)" {
  generate --connect ssh -i notebook -d "${T}/nb"
  run_job -0
  record="${T}/out/galyleo-${JOBID}.json"
  assert_equal "$(stat -c %a "${record}")" 600
  run -0 env PYTHONPATH="${REPO}" "${GALYLEO_PY}" -c 'import sys
from galyleo.contract import Record
s = Record.read(sys.argv[1])
print(s.job_id, s.connect, s.alias or "-", s.interface, s.output, s.name)
print(s.url)' "${record}"
  assert_line --index 0 "${JOBID} ssh - notebook ${T}/out/galyleo-${JOBID}.out galyleo-${JOBID}"
  assert_line --index 1 "$(sed -n 2p "${T}/out/galyleo-${JOBID}.url")"
}

@test "launch mode: token file read and deleted, URL file beside the launch's output, no record, no Satellite" {
  token=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
  token_file="${T}/out/session.token"
  LOCAL_PORT=27182  # launch's choice, rendered into the script
  (umask 077 && printf '%s\n' "${token}" >"${token_file}")
  GALYLEO_TEST_LOCAL_PORT="${LOCAL_PORT}" generate_launch "" "${token_file}" --connect ssh -d "${T}/nb"
  run_job -0
  assert_no_satellite
  assert_file_not_exists "${token_file}"
  assert_equal "$(sed -n 2p "${T}/out/job.url")" "http://127.0.0.1:${LOCAL_PORT}/?token=${token}"
  assert_equal "$(stat -c %a "${T}/out/job.url")" 600
  assert_file_not_exists "${T}/out/galyleo-${JOBID}.json"
  assert_file_not_exists "${T}/out/galyleo-${JOBID}.url"
  assert_equal "$(stublog field jupyter call token_sha256)" "$(printf %s "${token}" | sha256sum | cut -d' ' -f1)"
}

@test "voila: the tunnel's origin reaches it through its private config file" {
  generate --connect ssh -i voila -d "${T}/nb"
  run_job -0
  assert_no_satellite
  LOCAL_PORT="$(url_local_port "${T}/out/galyleo-${JOBID}.url")"
  run -0 stublog field voila call config
  assert_output --partial "\"tornado_settings\": {\"allow_origin\": \"http://127.0.0.1:${LOCAL_PORT}\"}"
}

@test "SIGTERM (scancel): exit 143, Jupyter stopped, still no Satellite call" {
  generate --connect ssh -d "${T}/nb"
  STUB_ENV+=(STUB_JUPYTER_EXIT=never)
  start_job
  wait_for jupyter http
  deadline=$((SECONDS + 10))
  until [[ -s "${T}/out/galyleo-${JOBID}.url" ]]; do
    ((SECONDS < deadline)) || fail "no URL file; log: $(stublog events)"
    sleep 0.05
  done
  sleep 0.2  # into `wait`
  kill -TERM "${JOB_PID}"
  status=0
  wait "${JOB_PID}" || status=$?
  JOB_PID=""
  assert_equal "${status}" 143
  assert_equal "$(stublog count jupyter terminated)" 1
  assert_no_satellite
}

@test "plain sbatch: the local port is drawn at random in galyleo's range, not from the job id" {
  generate --connect ssh -d "${T}/nb"
  rule="$(sed -n "s/^GALYLEO_LOCAL_PORT_RULE='\(.*\)'$/\1/p" "${JOB}")"
  assert_equal "${rule}" "$(tunnel_py 'print(tunnel.port_rule())')"
  [[ "${rule}" != *job* ]] || fail "the rule reads the job id: ${rule}"
  seen=()
  for id in 1 2; do  # the same job id twice: two draws
    run_job -0
    seen+=("$(url_local_port "${T}/out/galyleo-${JOBID}.url")")
    rm -f "${T}/out/galyleo-${JOBID}".*
    : >"${STUB_LOG}/calls.jsonl"
  done
  for port in "${seen[@]}"; do
    ((port >= 20000 && port <= 29999)) || fail "port ${port}"
  done
  # 1 in 10000 to collide by chance; the old rule (20000 + job id % 10000) gave one port
  [[ "${seen[0]}" != "${seen[1]}" || "${seen[0]}" != $((20000 + JOBID % 10000)) ]] || fail "ports ${seen[*]}"
}

@test "galyleo launch --connect ssh end to end: the real job writes the URL file, launch prints its two lines" {
  # sbatch, squeue, scancel stand-ins: sbatch runs the script at once (as job JOBID) with the job's environment
  job_env
  mkdir -p "${T}/slurm"
  cat >"${T}/slurm/sbatch" <<SH
#!/bin/bash
script="\${@: -1}"
setsid env -i $(printf '%q ' "${JOB_ENV[@]}") bash "\${script}" >"\${script%.sh}.out" 2>&1 </dev/null &
echo "\$!" >"${T}/slurm/job.pid"
echo ${JOBID}
SH
  printf '#!/bin/bash\necho "%s|RUNNING|None|node1|9:00|x|debug|x|galyleo"\n' "${JOBID}" >"${T}/slurm/squeue"
  printf '#!/bin/bash\nkill -TERM "$(cat %q)"\n' "${T}/slurm/job.pid" >"${T}/slurm/scancel"
  chmod +x "${T}/slurm/"*
  write_config
  run -0 --separate-stderr env -C "${REPO}" GALYLEO_CONFIG="${T}/galyleo.toml" HOME="${T}/home" \
    PATH="${T}/slurm:/usr/bin:/bin" "${GALYLEO_PY}" -m galyleo launch --connect ssh --no-preflight -d "${T}/nb"
  JOB_PID="$(cat "${T}/slurm/job.pid")"
  url_file="$(ls "${T}"/out/galyleo-*.url)"
  assert_equal "$(stat -c %a "${url_file}")" 600
  assert_equal "${lines[-1]}" "$(sed -n 2p "${url_file}")"
  assert_equal "${lines[-3]}" "$(sed -n 1p "${url_file}")"
  LOCAL_PORT="$(url_local_port "${url_file}")"
  assert_equal "${lines[-3]}" "ssh -N -o ExitOnForwardFailure=yes -L 127.0.0.1:${LOCAL_PORT}:127.0.0.1:$(jupyter_port) ${TARGET}"
  [[ "${lines[-1]}" =~ ^http://127\.0\.0\.1:${LOCAL_PORT}/\?token=[0-9a-f]{64}$ ]] || fail "${lines[-1]}"
  assert_no_satellite_calls
  [[ "${stderr}" == *"ready: job ${JOBID} on node1"* ]] || fail "no progress: ${stderr}"
  # the token: not in the script, the job output or any stand-in's log; the token file was read and removed
  token="${lines[-1]##*=}"
  run grep -rlF -- "${token}" "${STUB_LOG}" "${T}"/out/*.sh "${T}"/out/*.out
  assert_failure 1
  assert_equal "$(find "${T}/out" -name '*.token' | wc -l)" 0
  run -0 env PYTHONPATH="${REPO}" "${GALYLEO_PY}" -c 'import json, sys; print(json.load(open(sys.argv[1]))["local_port"])' \
    "${url_file%.url}.json"
  assert_equal "${output}" "${LOCAL_PORT}"  # the record keeps launch's choice
}
