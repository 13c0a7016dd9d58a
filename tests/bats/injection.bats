#!/usr/bin/env bats
# Hostile values (quotes, $(...), backticks, ;, newlines, $HOME, globs) given as the
# notebook dir, module names and paths, conda env names and bind paths arrive in
# the stand-ins' argv byte for byte, and nothing they contain ever runs (the
# canary file is never created).

load helpers

setup() {
  common_setup
  # shellcheck disable=SC2016 # every $ here is meant literally
  EVIL="it's \$(touch ${CANARY}) \"x\" \`touch ${CANARY}\`; touch ${CANARY} && \$HOME"$'\n'"line2 | > * ? [a] ~ \\ # \${HOME}"
  # Module names hold no spaces or newlines and conda envs no newlines (galyleo refuses
  # those up front): the same attacks, spelt without them.
  EVIL_NAME="it's\$(touch\${IFS}${CANARY})\"x\"\`touch\${IFS}${CANARY}\`;touch\${IFS}${CANARY}&&\$HOME|>*?[a]~\\#\${HOME}"
  EVIL_LINE="${EVIL//$'\n'/ }"
  # comma-separated options cannot carry commas; everything else is fair game
  [[ "${EVIL}" != *,* && "${EVIL_NAME}" != *,* && "${EVIL_NAME}" != *" "* ]]
  CONDA_SH="${STUBS}/conda/etc/profile.d/conda.sh"
}
teardown() { common_teardown; }

@test "notebook dir: Jupyter starts in it verbatim; nothing runs" {
  nb="${T}/my dir/${EVIL}"
  mkdir -p "${nb}"
  generate -d "${nb}"
  run_job -0 --separate-stderr
  assert_equal "$(stublog field jupyter call cwd)" "${nb}"
  assert_no_canary
  assert_equal "$(satellite_count destroytoken)" 1
}

@test "module names and module paths: each arrives verbatim as one argument; nothing runs" {
  mod1="my-mod/${EVIL_NAME}"
  mod2="\`touch\${IFS}${CANARY}\`"
  path="${T}/mods \$(touch ${CANARY});'\"${EVIL}"
  generate -d "${T}/nb" -e "${mod1},${mod2}" --append-modulepath "${path}"
  run_job -0
  assert_argv module 2 use --append "${path}"
  assert_argv module 3 load "${mod1}"
  assert_argv module 4 load "${mod2}"
  assert_equal "$(stublog count module)" 4
  assert_no_canary
}

@test "conda env name: activated verbatim; nothing runs" {
  env_name="env ${EVIL_LINE}"
  generate -d "${T}/nb" --conda-env "${env_name}" --conda-init "${CONDA_SH}"
  run_job -0
  assert_argv conda 1 activate "${env_name}"
  assert_equal "$(stublog field jupyter call conda)" "${env_name}"
  assert_no_canary
}

@test "conda env name inside a container: still verbatim through the wrapper shell; nothing runs" {
  : >"${T}/image.sif"
  env_name="env ${EVIL_LINE}"
  generate -d "${T}/nb" --sif "${T}/image.sif" --conda-env "${env_name}" --conda-init "${CONDA_SH}"
  run_job -0
  assert_argv conda 1 activate "${env_name}"
  assert_equal "$(stublog field conda call container)" "${T}/image.sif"
  assert_no_canary
}

@test "bind paths and image path: verbatim in --bind and the image argument; nothing runs" {
  img_dir="${T}/imgs \$(touch ${CANARY}) 'q'"
  mkdir -p "${img_dir}"
  : >"${img_dir}/my image.sif"
  bind1="/data/my dir:/mnt/\$(touch ${CANARY}) 'q' \`touch ${CANARY}\`;\$HOME"
  bind2="${EVIL}"
  generate -d "${T}/nb" --sif "${img_dir}/my image.sif" --bind "${bind1},${bind2}"
  run_job -0
  assert_argv apptainer 1 exec --bind "${bind1},${bind2}" "${img_dir}/my image.sif" jupyter lab \
    --no-browser --KernelManager.transport=ipc
  assert_no_canary
}

@test "a getlink reply that is not an alias is refused before it is used anywhere" {
  STUB_ENV=(STUB_ALIAS="a-b-c\$(touch ${CANARY})")
  generate -d "${T}/nb"
  run_job -1 --separate-stderr
  [[ "${stderr}" == *"getlink reply is not an alias"* ]] || fail "${stderr}"
  run -0 stublog satellite
  assert_output getlink
  assert_equal "$(stublog count jupyter)" 0
  assert_no_canary
}

# galyleo ARGS...: the CLI as a user runs it, with this test's site config and home.
galyleo() {
  (cd "${REPO}" && GALYLEO_CONFIG="${T}/galyleo.toml" HOME="${T}/home" "${GALYLEO_PY}" -m galyleo "$@")
}

@test "#SBATCH values holding a newline are refused: exit 2, one line naming the option, no script" {
  write_config
  for option in --account --partition --qos --reservation --constraint; do
    for value in $'abc\n#SBATCH --qos=high' $'abc\n' $'\nabc' $'abc\r\n'; do
      run -2 --separate-stderr galyleo generate "${option}=${value}" -d "${T}/nb"
      assert_output ""
      assert_equal "${#stderr_lines[@]}" 1
      [[ "${stderr}" == "galyleo: error: ${option} "* ]] || fail "${option}: ${stderr}"
    done
  done
  # the same options with values sbatch takes: each is one #SBATCH line of its own
  run -0 galyleo generate --account=abc --partition=debug,gpu --qos=high --reservation=r1 --constraint='a&b' -d "${T}/nb"
  run -0 grep -c -e '^#SBATCH --account=abc$' -e '^#SBATCH --partition=debug,gpu$' -e '^#SBATCH --qos=high$' \
    -e '^#SBATCH --reservation=r1$' -e '^#SBATCH --constraint=a&b$' <<<"${output}"
  assert_output 5
}
