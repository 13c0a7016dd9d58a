#!/usr/bin/env bats
# The stand-ins themselves: the fake Satellite answers as the protocol says
# (shared/satellite-protocol.md), argv is recorded verbatim, other URLs reach
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
