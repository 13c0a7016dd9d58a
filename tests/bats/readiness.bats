#!/usr/bin/env bats
# Readiness before the route: the alias is redeemed (the proxy sends users to Jupyter)
# only after Jupyter has answered a request well, never when its process merely runs or
# its port merely accepts. The fake Jupyter listens late (STUB_JUPYTER_DELAY), then holds
# its port open without answering for a while (STUB_JUPYTER_WARMUP); the order of the
# stand-ins' records (`stublog index`) decides, no clock is compared.

load helpers

setup() {
  common_setup
  STUB_ENV+=(STUB_JUPYTER_DELAY=1 STUB_JUPYTER_WARMUP=1.5)
}
teardown() { common_teardown; }

# assert_routed_after_good_answer [CMD]: in the log, CMD listened, then answered a request
#   with 200, then (only then) the job redeemed the alias.
assert_routed_after_good_answer() {
  local cmd="${1:-jupyter}" listening answered routed
  listening="$(stublog index "${cmd}" listening)" || fail "${cmd} never listened: $(stublog events)"
  answered="$(stublog index "${cmd}" http status=200)" || fail "${cmd} never answered well: $(stublog events)"
  routed="$(stublog index curl satellite endpoint=redeemtoken)" || fail "never redeemed: $(stublog events)"
  ((listening < answered)) || fail "answered before listening? $(stublog events)"
  ((answered < routed)) || fail "redeemed (record ${routed}) before ${cmd}'s first good answer (record ${answered}): $(stublog events)"
}

@test "readiness before the route: lab redeemed only after its first good answer, though it listened late and answered later" {
  generate -d "${T}/nb"
  run_job
  assert_routed_after_good_answer
  assert_success
}

@test "readiness before the route: voila redeemed only after its first good answer" {
  generate -d "${T}/nb" -i voila
  run_job
  assert_routed_after_good_answer voila
  assert_success
}

@test "readiness before the route, launch mode: the redeem comes after the first good answer" {
  token_file="${T}/out/session.token"
  (umask 077 && printf '%s\n' 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef >"${token_file}")
  seed_alias "${ALIAS}"
  generate_launch "${ALIAS}" "${token_file}" -d "${T}/nb"
  run_job
  assert_routed_after_good_answer
  assert_success
}
