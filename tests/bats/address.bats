#!/usr/bin/env bats
# Where Jupyter listens: with bind_address unset (the default), the node's own address,
# resolved in the job from `hostname -s` + node_domain_suffix (stand-ins: STUB_HOSTNAME,
# STUB_HOSTS), never every interface of a shared node. The fake Jupyter records what it
# was told, by argv or by config (`told`), and, like jupyter_server, listens everywhere
# when told '' or '*': so these compare the address it was told with the resolved one,
# whatever the stand-in accepts.

load helpers

setup() {
  common_setup
  NODE_ADDRESS=127.31.7.9  # the suffixed (cluster) name's address; the bare name has another
  unset 'CFG[bind_address]'
  CFG[node_domain_suffix]='".ib.example"'
  STUB_ENV+=(STUB_HOSTNAME=node7.cluster.example "STUB_HOSTS=node7=127.31.7.10 node7.ib.example=${NODE_ADDRESS}")
}
teardown() { common_teardown; }

# assert_told ADDRESS [CMD]: the server (jupyter, or CMD) was told ADDRESS, not every
#   interface (nor nothing), and listened there.
assert_told() {
  local cmd="${2:-jupyter}" told
  told="$(stublog field "${cmd}" told ip)"
  case "${told}" in
    "" | "*" | 0.0.0.0 | :: | "[::]" | 0:0:0:0:0:0:0:0 | null)
      fail "${cmd} was told '${told}' (every interface, or no address): expected $1" ;;
  esac
  assert_equal "${told}" "$1"
  assert_equal "$(stublog field "${cmd}" listening ip)" "$1"
}

@test "bind_address unset: lab is told the node's own resolved address (name + suffix), never every interface" {
  generate -d "${T}/nb"
  run_job -0
  assert_told "${NODE_ADDRESS}"
  assert_equal "$(satellite_count redeemtoken)" 1
}

@test "bind_address unset: notebook is told the node's own resolved address" {
  generate -d "${T}/nb" -i notebook
  run_job -0
  assert_told "${NODE_ADDRESS}"
}

@test "bind_address unset: voila is told the node's own resolved address" {
  generate -d "${T}/nb" -i voila
  run_job -0
  assert_told "${NODE_ADDRESS}" voila
}

@test "bind_address unset, ssh mode: Jupyter and the tunnel's ssh command both use the node's resolved address" {
  CFG[login_host]='"login.example.org"'
  STUB_ENV+=(STUB_JUPYTER_EXIT=tunneled STUB_URL_DIR="${T}/out")
  generate -d "${T}/nb" --connect ssh
  run_job -0
  assert_told "${NODE_ADDRESS}"
  run -0 sed -n 1p "${T}/out/galyleo-${JOBID}.url"
  assert_output --partial ":${NODE_ADDRESS}:$(jupyter_port) "
}

@test "bind_address set: Jupyter is told exactly that address" {
  CFG[bind_address]='"127.31.7.20"'
  generate -d "${T}/nb"
  run_job -0
  assert_told 127.31.7.20
}

@test "the node's name does not resolve: the job ends naming it, Jupyter never started" {
  STUB_ENV+=("STUB_HOSTS=node7=127.31.7.10")  # the bare name only (a later value wins in env)
  generate -d "${T}/nb"
  run_job -1 --separate-stderr
  [[ "${stderr}" == *"node7.ib.example"* ]] || fail "the unresolved name is not named in: ${stderr}"
  assert_equal "$(stublog count jupyter)" 0
}
