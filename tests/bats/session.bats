#!/usr/bin/env bats
# One whole session per test, standalone and launch mode: exact Jupyter command
# lines, the token's path (environment and 0600 files only), the proxy transcript.

load helpers

setup() { common_setup; }
teardown() { common_teardown; }

@test "lab: exact command line, cwd, port redeemed = port listened on" {
  generate -d "${T}/nb"
  run_job -0 --separate-stderr
  port="$(jupyter_port)"
  assert_argv jupyter 1 lab --no-browser --KernelManager.transport=ipc
  assert_jupyter_settings jupyter 1 127.0.0.1 "${port}" "${ORIGIN}"
  assert_equal "$(stublog field jupyter call cwd)" "${T}/nb"
  assert_equal "$(stublog field jupyter listening ip)" 127.0.0.1
  run -0 stublog satellite
  assert_line --index 2 "redeemtoken token=${ALIAS} port=${port}"
  # Jupyter answered HTTP before the proxy was told to route to it
  run -0 stublog events
  assert_output --regexp $'jupyter listening\n(curl call\n)*jupyter http\n(curl call\n)*curl satellite redeemtoken\n'
}

@test "notebook: exact command line" {
  generate -i notebook -d "${T}/nb"
  run_job -0
  assert_argv jupyter 1 notebook --no-browser --KernelManager.transport=ipc
  assert_jupyter_settings jupyter 1 127.0.0.1 "$(jupyter_port)" "${ORIGIN}"
}

@test "voila: exact command line; token and origin reach it through a private config file" {
  generate -i voila -d "${T}/nb"
  run_job -0
  port="$(jupyter_port voila)"
  assert_argv voila 1 --no-browser
  assert_jupyter_settings voila 1 127.0.0.1 "${port}"
  assert_equal "$(stublog count jupyter)" 0
  run -0 stublog satellite
  assert_line "redeemtoken token=${ALIAS} port=${port}"
  # Voila ignores JUPYTER_TOKEN: the voila.py it loads must set the same token and the origin
  token="$(sed -n 's/.*?token=//p' "${T}/out/galyleo-${JOBID}.url")"
  sha="$(printf %s "${token}" | sha256sum | cut -d' ' -f1)"
  assert_equal "$(stublog field voila call token_sha256)" "${sha}"
  run -0 stublog field voila call config
  assert_output --partial "\"token_sha256\": \"${sha}\""
  assert_output --partial "\"tornado_settings\": {\"allow_origin\": \"${ORIGIN}\"}"
  # the config dir lived under TMPDIR only for the session
  assert_equal "$(find "${T}/tmp" -mindepth 1 | wc -l)" 0
}

@test "standalone: getlink, linktoken with SLURM_JOB_ID, redeem, destroy once, in that order" {
  generate -d "${T}/nb"
  run_job -0
  run -0 stublog satellite
  assert_output "getlink
linktoken token=${ALIAS} jobid=${JOBID}
redeemtoken token=${ALIAS} port=$(jupyter_port)
destroytoken token=${ALIAS}"
  # the exact curl command: the site's CA bundle, a bounded time, values URL-encoded by curl;
  # the URL and the values (the alias) in a config file, never on curl's command line
  mapfile -d '' -t got < <(stublog argv curl 2 satellite)
  assert_equal "${got[*]:0:8}" "--silent --show-error --fail --get --max-time 5 --cacert ${T}/ca.pem"
  assert_equal "${got[8]} ${#got[@]}" "-K 10"
  run -0 stublog field curl satellite params 2
  assert_output "[[\"token\", \"${ALIAS}\"], [\"jobid\", \"${JOBID}\"]]"
  run -0 stublog field curl satellite endpoint 2
  assert_output linktoken
}

@test "standalone: URL file is 0600, holds the token Jupyter got; the token is in no argv or output" {
  generate -d "${T}/nb"
  run_job -0 --separate-stderr
  url_file="${T}/out/galyleo-${JOBID}.url"
  assert_file_exists "${url_file}"
  assert_equal "$(stat -c %a "${url_file}")" 600
  url="$(<"${url_file}")"
  [[ "${url}" =~ ^https://${ALIAS}\.${DOMAIN}/\?token=([0-9a-f]{64})$ ]] || fail "bad URL file: ${url}"
  token="${BASH_REMATCH[1]}"
  assert_equal "$(stublog field jupyter call token_set)" true
  assert_equal "$(stublog field jupyter call token_len)" 64
  assert_equal "$(stublog field jupyter call token_sha256)" "$(printf %s "${token}" | sha256sum | cut -d' ' -f1)"
  refute_output --partial "${token}"
  [[ "${stderr}" != *"${token}"* ]] || fail "token in the job's stderr"
  run grep -rlF -- "${token}" "${STUB_LOG}" "${JOB}"
  assert_failure 1
}

@test "launch mode: alias from the script, token file read and deleted, no getlink or linktoken" {
  launch_alias=lucky-brave-otter
  token=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
  token_file="${T}/out/session.token"
  (umask 077 && printf '%s\n' "${token}" >"${token_file}")
  seed_alias "${launch_alias}"
  generate_launch "${launch_alias}" "${token_file}" -d "${T}/nb"
  run_job -0 --separate-stderr
  assert_file_not_exists "${token_file}"
  run -0 stublog satellite
  assert_output "redeemtoken token=${launch_alias} port=$(jupyter_port)
destroytoken token=${launch_alias}"
  assert_argv jupyter 1 lab --no-browser --KernelManager.transport=ipc
  assert_jupyter_settings jupyter 1 127.0.0.1 "$(jupyter_port)" "https://${launch_alias}.${DOMAIN}"
  assert_equal "$(stublog field jupyter call token_sha256)" "$(printf %s "${token}" | sha256sum | cut -d' ' -f1)"
  assert_file_not_exists "${T}/out/galyleo-${JOBID}.url"
  run grep -rlF -- "${token}" "${STUB_LOG}" "${JOB}"
  assert_failure 1
}
