# Shared set-up for the tier-2 bats tests: a site config, a private log dir for the
# stand-ins in stubs/, a generated job script, and a hermetic way to run it
# (`env -i`, stand-ins first on PATH, SLURM_* set as Slurm would).
# shellcheck shell=bash disable=SC2034 # (variables here are for the .bats files)

bats_require_minimum_version 1.5.0
bats_load_library bats-support
bats_load_library bats-assert
bats_load_library bats-file

BATS_HERE="$(cd "$(dirname "${BATS_TEST_FILENAME}")" && pwd)"
REPO="$(cd "${BATS_HERE}/../.." && pwd)"
STUBS="${BATS_HERE}/stubs"
GALYLEO_PY="${REPO}/.venv/bin/python"
[[ -x "${GALYLEO_PY}" ]] || GALYLEO_PY=python3

# common_setup: fresh dirs, default site config values and stand-in knobs per test.
common_setup() {
  T="${BATS_TEST_TMPDIR}"
  export STUB_LOG="${T}/log"
  mkdir -p "${STUB_LOG}" "${T}/home" "${T}/out" "${T}/nb" "${T}/scratch" "${T}/tmp"
  : >"${T}/ca.pem"
  ALIAS=wages-astonish-recapture
  DOMAIN=example.test
  ORIGIN="https://${ALIAS}.${DOMAIN}"
  JOBID=4242
  CANARY="${T}/pwned"
  JOB="${T}/job.sh"
  declare -gA CFG=(
    [satellite_domain]="\"${DOMAIN}\""
    [ca_bundle]="\"${T}/ca.pem\""
    [http_timeout]=5
    [require_account]=false
    [bind_address]='"127.0.0.1"'
    [ready_timeout]="$(patience 10)"  # the job's own patience, scaled to the machine too
    [module_init]="[\"${T}/no-such-init\", \"${STUBS}/modules/init.bash\"]"
    [module_reset]='"reset"'
    [output_dir]="\"${T}/out\""
    [scratch_dir]="\"${T}/scratch\""
  )
  STUB_ENV=(STUB_ALIAS="${ALIAS}")
  JOB_PID=""
  # Every process the test starts from now on carries this tag (exported, and in JOB_ENV),
  # so teardown finds it wherever it went.
  export GALYLEO_BATS_TEST="${T}"
  REAP_TAG="GALYLEO_BATS_TEST=${T}"
  # A watchdog, detached (bats' timeout kills the test's children, and would kill it first);
  # teardown ends it (it carries the tag too).
  if [[ -n "${BATS_TEST_TIMEOUT:-}" ]]; then
    ("${BATS_HERE}/reap" --after $((BATS_TEST_TIMEOUT + 2)) "${REAP_TAG}" </dev/null >/dev/null 2>&1 3>&- &)
  fi
}

# common_teardown: stop anything a test left running (job group, Jupyter, squatter),
#   also after BATS_TEST_TIMEOUT ended the test: whatever carries the test's tag is killed.
common_teardown() {
  local pid
  if [[ -n "${JOB_PID}" ]] && kill -0 "${JOB_PID}" 2>/dev/null; then
    kill -KILL -- "-${JOB_PID}" 2>/dev/null || kill -KILL "${JOB_PID}" 2>/dev/null || true
  fi
  for pid in $(stublog_pids) $(cat "${STUB_LOG}/squatter.pid" 2>/dev/null); do
    kill -KILL "${pid}" 2>/dev/null || true
  done
  "${BATS_HERE}/reap" "${REAP_TAG}" 2>/dev/null || true
}

stublog() { "${STUBS}/lib/stublog" "$@"; }

# stublog_pids: pids of every fake server that started.
stublog_pids() {
  [[ -r "${STUB_LOG}/calls.jsonl" ]] || return 0
  python3 -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["cmd"] in ("jupyter", "voila") and r["event"] == "call": print(r["pid"])' "${STUB_LOG}/calls.jsonl"
}

# write_config: the site config from CFG (TOML), at $T/galyleo.toml.
write_config() {
  local key
  for key in "${!CFG[@]}"; do
    printf '%s = %s\n' "${key}" "${CFG[${key}]}"
  done >"${T}/galyleo.toml"
}

# generate OPTIONS...: `galyleo generate OPTIONS` (standalone mode) into $JOB.
generate() {
  write_config
  (cd "${REPO}" && GALYLEO_CONFIG="${T}/galyleo.toml" HOME="${T}/home" "${GALYLEO_PY}" -m galyleo generate "$@") >"${JOB}" \
    || fail "galyleo generate $* failed"
}

# generate_launch ALIAS TOKEN_FILE OPTIONS...: the script `galyleo launch` would submit.
generate_launch() {
  local alias="$1" token_file="$2"
  shift 2
  write_config
  (cd "${REPO}" && PYTHONPATH="${REPO}" GALYLEO_CONFIG="${T}/galyleo.toml" HOME="${T}/home" \
    "${GALYLEO_PY}" "${BATS_HERE}/render_launch.py" "${alias}" "${token_file}" "${T}/out/job.out" "$@") >"${JOB}" \
    || fail "render in launch mode failed"
}

# seed_alias ALIAS: the fake proxy already knows ALIAS as pending (as after launch's getlink).
seed_alias() {
  printf '{"%s": {"state": "pending", "jobid": null, "port": null}}\n' "$1" >"${STUB_LOG}/satellite.json"
}

# job_env: the environment the job runs with (as on a compute node, stand-ins first).
job_env() {
  JOB_ENV=(HOME="${T}/home" USER=tester LOGNAME=tester LANG=C.UTF-8
    PATH="${STUBS}/bin:/usr/local/bin:/usr/bin:/bin" TMPDIR="${T}/tmp"
    SLURM_JOB_ID="${JOBID}" SLURM_JOB_NAME=galyleo SLURM_SUBMIT_DIR="${T}" SLURM_CPUS_PER_TASK=1
    STUB_LOG="${STUB_LOG}" "${STUB_ENV[@]}" "${REAP_TAG}")
  # the runner's tag too (tests/bats/run reaps what a whole run left behind)
  [[ -z "${GALYLEO_BATS_RUN:-}" ]] || JOB_ENV+=(GALYLEO_BATS_RUN="${GALYLEO_BATS_RUN}")
  rm -f "${STUB_LOG}"/redeemed-*
}

# Deadlines that hold on a loaded machine. A job run by run_job is watched, not timed:
#   - JOB_STALL: seconds with no progress (no file under the test's dir created or written:
#     the stand-ins' log, the job's output, its scratch) after which it is hung: killed, the
#     test fails. A slow machine slows every step, but the steps still come.
#   - JOB_DEADLINE: seconds a job that keeps progressing may take in all; past it the job is
#     killed and the test is reported "too slow" (a bats skip whose reason starts so), never
#     as failed: tests/bats/run runs such tests again, alone, and says which stayed too slow.
# Both, and the tests' own waits (patience), are multiplied by machine_scale.
JOB_STALL="${GALYLEO_BATS_JOB_STALL:-30}"
JOB_DEADLINE="${GALYLEO_BATS_JOB_DEADLINE:-60}"
TOO_SLOW=121  # reaped's status for a job past JOB_DEADLINE that was still progressing
TOO_SLOW_WORDS="too slow"  # what tests/bats/run looks for in a skip reason

# machine_scale: how many times slower than an idle machine this one is now, a whole number
#   from 1 to 4 (stdout): the 1-minute load average per core, rounded up; GALYLEO_BATS_SCALE
#   when set (tests/bats/run sets it when it runs too-slow tests again).
machine_scale() {
  local load
  if [[ -n "${GALYLEO_BATS_SCALE:-}" ]]; then
    printf '%s\n' "${GALYLEO_BATS_SCALE}"
    return 0
  fi
  read -r load _ </proc/loadavg
  awk -v l="${load}" -v c="$(nproc)" 'BEGIN { s = int(l / c + 0.999); print (s < 1 ? 1 : (s > 4 ? 4 : s)) }'
}

# patience SECONDS: SECONDS scaled to the machine (stdout), for a test's own waits.
patience() {
  echo $(($1 * $(machine_scale)))
}

# progressed STAMP: 0 if any file under the test's dir changed since STAMP was touched
#   (and touches it again), 1 if nothing did.
progressed() {
  [[ -n "$(find "${T}" -newer "$1" -print -quit 2>/dev/null)" ]] || return 1
  touch "$1"
}

# too_slow WHAT: end the test as "too slow" (not failed), saying what was still going on.
too_slow() {
  skip "${TOO_SLOW_WORDS}: $1 (load $(cut -d' ' -f1 /proc/loadavg) on $(nproc) cores)"
}

# reaped CMD...: run CMD in a process group of its own, without bats' fd 3, watched. Killed
#   with its whole group when it makes no progress for JOB_STALL seconds (hung: exit 124),
#   or runs past JOB_DEADLINE seconds while still progressing (exit TOO_SLOW), both scaled
#   to the machine. Anything still running in that group once CMD has ended (a Jupyter the
#   job failed to stop) is killed and turns the status into 125. Never leaves a process behind.
reaped() {
  local status=0 leader left scale stall cap stamp="${T}.progress" quiet=0 tick=0 never
  scale="$(machine_scale)"
  stall=$((JOB_STALL * scale))
  cap=$((JOB_DEADLINE * scale))
  touch "${stamp}"
  timeout --kill-after=5 "${cap}" "$@" 3>&- &
  leader=$!
  exec {never}<> <(:)
  while kill -0 "${leader}" 2>/dev/null; do  # a look every 0.2 s, at progress every second
    read -r -t 0.2 -u "${never}" || true
    (((++tick % 5) == 0)) || continue
    if progressed "${stamp}"; then
      quiet=0
    elif ((++quiet >= stall)); then
      kill -TERM -- "-${leader}" 2>/dev/null || true
      break
    fi
  done
  exec {never}>&-
  wait "${leader}" || status=$?
  if ((quiet >= stall)); then
    echo "reaped: the job made no progress for ${stall} s (hung): killed with its process group" >&2
    status=124
  elif ((status == 124 || status == 137)); then
    echo "reaped: the job was still progressing after ${cap} s: ${TOO_SLOW_WORDS}, killed with its process group" >&2
    status="${TOO_SLOW}"
  fi
  for _ in {1..100}; do  # up to 5 s for what the job killed to be gone
    left="$(ps -eo pid=,pgid=,stat=,args= | awk -v g="${leader}" '$2 == g && $3 !~ /^Z/' || true)"
    [[ -n "${left}" ]] || return "${status}"
    sleep 0.05
  done
  kill -KILL -- "-${leader}" 2>/dev/null || true
  printf 'reaped: still running after the job ended (killed):\n%s\n' "${left}" >&2
  return 125
}

# run_job [RUN FLAGS...]: `bash job.sh` under bats' `run` (e.g. run_job -0, run_job -1), reaped.
#   The expected status (-N, !) is checked after the run, so that a job that was too slow
#   ends its test as "too slow" rather than as a wrong status.
run_job() {
  local flags=() expect="" flag
  for flag in "$@"; do
    case "${flag}" in
      -[0-9]*) expect="${flag#-}" ;;
      !) expect="!" ;;
      *) flags+=("${flag}") ;;
    esac
  done
  job_env
  run ${flags[@]+"${flags[@]}"} reaped env -i "${JOB_ENV[@]}" bash "${JOB}"
  ((status != TOO_SLOW)) || too_slow "the job was still progressing after $((JOB_DEADLINE * $(machine_scale))) s"
  if [[ "${expect}" == "!" ]] && ((status == 0)); then
    fail "run_job: expected a non-zero exit status, got 0"
  elif [[ -n "${expect}" && "${expect}" != "!" ]] && ((status != expect)); then
    fail "run_job: expected exit status ${expect}, got ${status}"
  fi
}

# start_job: run the job in the background in its own process group; sets JOB_PID.
start_job() {
  job_env
  setsid env -i "${JOB_ENV[@]}" bash "${JOB}" >"${T}/job.out" 2>&1 3>&- &
  JOB_PID=$!
}

# wait_until WHAT SECONDS CMD...: until CMD succeeds. Past SECONDS (scaled to the machine)
#   the test fails if the job made no progress in the last JOB_STALL (scaled) seconds, and
#   is "too slow" if it still did.
wait_until() {
  local what="$1" scale deadline quiet_since=${SECONDS} stamp="${T}.waiting"
  scale="$(machine_scale)"
  deadline=$((SECONDS + $2 * scale))
  shift 2
  touch "${stamp}"
  until "$@"; do
    ! progressed "${stamp}" || quiet_since=${SECONDS}
    if ((SECONDS >= deadline)); then
      ((SECONDS - quiet_since >= JOB_STALL * scale)) || too_slow "still waiting for ${what}, the job still progressing"
      fail "timed out waiting for ${what}; log: $(stublog events)"
    fi
    sleep 0.05
  done
}

# wait_for CMD EVENT [SECONDS]: until the stand-ins have logged CMD/EVENT.
wait_for() {
  wait_until "$1 $2" "${3:-10}" logged "$1" "$2"
}

logged() { [[ "$(stublog count "$1" "$2")" -gt 0 ]]; }

# wait_for_redeem [SECONDS]: until the job has redeemed its alias (the session is live).
wait_for_redeem() {
  wait_until redeemtoken "${1:-10}" redeemed
}

redeemed() { [[ "$(satellite_count redeemtoken)" -gt 0 ]]; }

# satellite_count ENDPOINT: how many times the job called ENDPOINT.
satellite_count() {
  stublog satellite | awk -v e="$1" '$1 == e' | wc -l
}

# assert_argv CMD N EXPECTED...: the Nth call of CMD had exactly this argv.
#   CMD may be "CMD:EVENT" for other records with an argv (curl:satellite).
assert_argv() {
  local cmd="${1%%:*}" event="call" n="$2" got=() want
  [[ "$1" == *:* ]] && event="${1#*:}"
  shift 2
  want=("$@")
  mapfile -d '' -t got < <(stublog argv "${cmd}" "${n}" "${event}")
  assert_equal "$(declare -p got | sed 's/^declare -a got=//')" "$(declare -p want | sed 's/^declare -a want=//')"
}

# jupyter_port [CMD]: the port the fake Jupyter (or voila) really listened on.
jupyter_port() {
  stublog field "${1:-jupyter}" listening port
}

# jupyter_setting CMD KEY [N]: what the config file the Nth CMD call read (default: the last)
#   set KEY to (JSON for non-strings): the job hands ip, port and origin so, never in argv.
jupyter_setting() {
  stublog field "$1" call config "${3:--1}" \
    | python3 -c 'import json, sys; v = (json.load(sys.stdin) or {}).get(sys.argv[1]); print(v if isinstance(v, str) else json.dumps(v))' "$2"
}

# assert_jupyter_settings CMD N IP PORT [ORIGIN]: the Nth CMD call got IP, PORT, no port
#   retries and (Jupyter; Voila's is in tornado_settings) ORIGIN from its config file.
assert_jupyter_settings() {
  assert_equal "$(jupyter_setting "$1" ip "$2")" "$3"
  assert_equal "$(jupyter_setting "$1" port "$2")" "$4"
  assert_equal "$(jupyter_setting "$1" port_retries "$2")" 0
  [[ -z "${5:-}" ]] || assert_equal "$(jupyter_setting "$1" allow_origin "$2")" "$5"
}

# assert_no_canary: no injected command ran.
assert_no_canary() {
  assert_file_not_exists "${CANARY}"
}
