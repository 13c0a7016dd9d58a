#!/usr/bin/env bats
# The stand-ins themselves: the fake Satellite answers as the protocol says
# (docs/satellite-protocol.md), argv is recorded verbatim, other URLs reach
# the real curl. If these drift, every job test above them means less.

load helpers

setup() {
  common_setup
  PATH="${STUBS}/bin:${PATH}"
  SAT="https://manage.${DOMAIN}"
  export STUB_ALIAS="${ALIAS}"
}
teardown() { common_teardown; }

sat() { curl --silent --show-error --fail --get "${@:2}" "${SAT}/$1.cgi"; }

@test "fake Satellite: getlink, linktoken once, redeem once, destroy" {
  run -0 sat getlink
  assert_output "Your token is "$'\n'"${ALIAS}"
  run -0 sat tokenjobstate --data-urlencode "token=${ALIAS}"
  assert_output PE
  run -0 sat linktoken --data-urlencode "token=${ALIAS}" --data-urlencode jobid=77
  assert_output "Success! Token linked to jobid."
  run -0 sat linktoken --data-urlencode "token=${ALIAS}" --data-urlencode jobid=77
  assert_output "Oops! Nonce already linked to a jobid, you can do this only once!"
  run -0 sat redeemtoken --data-urlencode "token=${ALIAS}" --data-urlencode port=80
  assert_output --partial "Oops! Port must be"
  run -0 sat redeemtoken --data-urlencode "token=${ALIAS}"
  assert_output "Oops! Missing 'port' parameter"
  run -0 sat redeemtoken --data-urlencode "token=${ALIAS}" --data-urlencode port=45678
  assert_output "Success!"
  run -0 sat tokenjobstate --data-urlencode "token=${ALIAS}"
  assert_output M
  run -0 sat redeemtoken --data-urlencode "token=${ALIAS}" --data-urlencode port=45678
  assert_output "Oops! Unknown nonce or nonce already used"
  run -0 sat destroytoken --data-urlencode "token=${ALIAS}"
  assert_output "Success! Token destroyed."
  run -0 sat destroytoken --data-urlencode "token=${ALIAS}"
  assert_output --regexp '^Oops!'
  run -0 stublog satellite
  assert_line --index 0 getlink
  assert_line --index 6 "redeemtoken token=${ALIAS} port=45678"
}

@test "fake Satellite: unknown endpoint is an HTTP error; DOWN is a connect failure; missing CA file fails" {
  run -22 sat nosuch
  run -7 env STUB_SATELLITE_DOWN=1 curl --silent --show-error --fail "${SAT}/getlink.cgi"
  run -77 curl --silent --cacert "${T}/missing.pem" "${SAT}/getlink.cgi"
}

@test "fake curl: other URLs go to the real curl" {
  python3 -m http.server --bind 127.0.0.1 0 --directory "${T}" >"${T}/http.log" 2>&1 3>&- &
  server=$!
  echo hello >"${T}/hello.txt"
  for _ in {1..100}; do
    port="$(sed -n 's/.*port \([0-9]*\).*/\1/p' "${T}/http.log")"
    [[ -n "${port}" ]] && break
    sleep 0.05
  done
  run -0 curl --silent --noproxy '*' "http://127.0.0.1:${port}/hello.txt"
  kill "${server}"
  assert_output hello
  assert_equal "$(stublog count curl satellite)" 0
}

@test "recorder: argv with newlines, quotes, NUL-free binary-ish text comes back verbatim" {
  weird=("a b" "it's" '"q"' $'line1\nline2' '$(x) `y` ;' "" $'\t\x01tab')
  "${STUBS}/lib/record" probe "${weird[@]}"
  assert_argv probe 1 "${weird[@]}"
  run -0 stublog calls probe
  assert_output "probe 'a b' 'it'\"'\"'s' '\"q\"' 'line1
line2' '\$(x) \`y\` ;' '' '"$'\t\x01'"tab'"
}

# told_by ARGS...: run the fake jupyter (told to fail at once, after recording what it was
#   told) and print "IP PORT BY_IP BY_PORT" from its `told` record.
told_by() {
  STUB_JUPYTER_FAIL=start jupyter lab "$@" 2>/dev/null && fail "the fake jupyter started"
  printf '%s %s %s %s\n' "$(stublog field jupyter told ip)" "$(stublog field jupyter told port)" \
    "$(stublog field jupyter told by_ip)" "$(stublog field jupyter told by_port)"
}

@test "fake Jupyter: records the address it was told by argv, a config file (JSON, Python, --config) or JUPYTER_PORT" {
  export STUB_LOG
  run -0 told_by --ip=10.1.2.3 --port 4242
  assert_output "10.1.2.3 4242 argv argv"
  run -0 told_by --ServerApp.ip=10.1.2.8 --ServerApp.port=4247
  assert_output "10.1.2.8 4247 argv argv"
  mkdir -p "${T}/conf" "${T}/conf2"
  printf '{"ServerApp": {"ip": "10.1.2.4", "port": 4243}}\n' >"${T}/conf/jupyter_server_config.json"
  JUPYTER_CONFIG_PATH="${T}/conf" run -0 told_by
  assert_output "10.1.2.4 4243 config ${T}/conf/jupyter_server_config.json config ${T}/conf/jupyter_server_config.json"
  printf 'import os\nc.ServerApp.ip = os.environ["NODE"]\n' >"${T}/conf2/jupyter_server_config.py"
  NODE=10.1.2.5 JUPYTER_PORT=4244 JUPYTER_CONFIG_PATH="${T}/conf2" run -0 told_by
  assert_output "10.1.2.5 4244 config ${T}/conf2/jupyter_server_config.py environment JUPYTER_PORT"
  JUPYTER_CONFIG_PATH="${T}/conf" run -0 told_by --ip=10.1.2.6  # argv wins over a config file
  assert_output "10.1.2.6 4243 argv config ${T}/conf/jupyter_server_config.json"
  NODE=10.1.2.7 run -0 told_by --config="${T}/conf2/jupyter_server_config.py" --port=4245
  assert_output "10.1.2.7 4245 config ${T}/conf2/jupyter_server_config.py argv"
  run -0 told_by --port=4246  # told no address: jupyter_server's default, localhost, and the record says so
  assert_output "null 4246 null argv"
  assert_equal "$(stublog field jupyter failed reason)" "told to fail to start"
}
