# Shared by seven scripts: test, demo, bench, api-fuzz, build-lambdas and
# check-template source it; smoke-aws uses only its installer, in a subshell.
# Installs what is missing into the repo (never the machine) and runs the
# emulators on loopback.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
MOTO_VERSION="5.2.5"
CARGO_LAMBDA_VERSION="1.9.2"
RUN_DIR="$ROOT/.run"
mkdir -p "$RUN_DIR"

say() { printf '\033[1m==> [%s] %s\033[0m\n' "$(date +%T)" "$*" >&2; }

# uv (PyPI, pinned) installs the venvs: it resolves and unpacks
# on every core, where pip took a minute of CPU for the linters alone (uv: 18 s).
# It lives in .uv, its cache in .uv-cache, both under the repo.
UV_VERSION="0.13.9"
UV="$ROOT/.uv/bin/uv"
export UV_CACHE_DIR="$ROOT/.uv-cache" UV_PYTHON_DOWNLOADS=never
ensure_uv() {
  if [ ! -x "$UV" ] || [[ "$("$UV" --version)" != "uv $UV_VERSION "* ]]; then
    say "installing uv==$UV_VERSION into .uv"
    rm -rf "$ROOT/.uv"
    python3 -m pip install --quiet --root-user-action=ignore --target "$ROOT/.uv" "uv==$UV_VERSION"
  fi
}

# Python compiles a module when it is first imported and keeps the bytecode under the
# repo (.pycache), even where the machine sets PYTHONDONTWRITEBYTECODE: without it, each
# of the many starts of moto and the linters compiled what it imports again. Byte-compiling
# whole venvs at install instead cost 42 s of CPU, most of it on modules never imported.
export PYTHONPYCACHEPREFIX="$ROOT/.pycache"
unset PYTHONDONTWRITEBYTECODE

# ensure_venv DIR REQUIREMENT…: a venv under the repo with exactly these pins.
ensure_venv() {
  local dir="$1"
  shift
  ensure_uv
  if [ ! -x "$dir/bin/python" ]; then
    say "creating ${dir#"$ROOT"/}"
    "$UV" venv --quiet --python python3 "$dir"
  fi
  local stamp
  stamp="$dir/.installed-$(printf '%s\n' "$@" | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    say "installing $* into ${dir#"$ROOT"/}"
    "$UV" pip install --quiet --native-tls --python "$dir/bin/python" "$@"
    touch "$stamp"
  fi
}

# The emulator and cargo-lambda (which brings zig), in .venv.
ensure_tools() {
  ensure_venv "$VENV" "moto[server]==$MOTO_VERSION" "cargo-lambda==$CARGO_LAMBDA_VERSION"
  export PATH="$VENV/bin:$PATH"
  # cargo-lambda's zig wrapper tries `python3 -m ziglang` before a zig binary, and starts
  # it three times for each C file of AWS-LC and each link: 20 % of AWS-LC's arm64 build
  # (157 s of CPU against 126 s with zig itself). The venv's zig, with no Python to find.
  local zig
  zig="$(echo "$VENV"/lib/python3*/site-packages/ziglang/zig)"
  [ ! -x "$zig" ] || export CARGO_ZIGBUILD_ZIG_PATH="$zig" CARGO_ZIGBUILD_PYTHON_PATH="$ROOT/.no-python-for-zig"
}

# The template's linters, in their own venv (their pins and moto's need not agree).
LINT_VENV="$ROOT/.venv-lint"
ensure_linters() {
  ensure_venv "$LINT_VENV" "aws-sam-cli==1.170.0" "cfn-lint==1.58.0" "checkov==3.2.459" "schemathesis==4.32.5"
}

# dynalite (npm, pinned): a second DynamoDB, stricter on validation, that
# returns no old item on a refused write. Installed into .node/.
DYNALITE_VERSION="4.0.0"
NODE_DIR="$ROOT/.node"
ensure_dynalite() {
  if [ ! -x "$NODE_DIR/node_modules/.bin/dynalite" ]; then
    say "installing dynalite@$DYNALITE_VERSION into .node"
    mkdir -p "$NODE_DIR"
    npm install --silent --no-audit --no-fund --prefix "$NODE_DIR" "dynalite@$DYNALITE_VERSION" >/dev/null
  fi
}

# start_dynalite PORT
start_dynalite() {
  "$NODE_DIR/node_modules/.bin/dynalite" --port "$1" --createTableMs 0 >"$RUN_DIR/dynalite-$1.log" 2>&1 &
  DYNALITE_PID=$!
  wait_for_answer "http://127.0.0.1:$1/" 30 "$DYNALITE_PID" || { say "dynalite did not start"; return 1; }
  say "dynalite $DYNALITE_VERSION on http://127.0.0.1:$1 (log: .run/dynalite-$1.log)"
}

free_port() {
  "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_for_http URL SECONDS [PID]: until URL answers 2xx. Fails after SECONDS, or as soon
# as PID (the server being waited for) has exited.
wait_for_http() { wait_until_up -f "$@"; }
# wait_for_answer URL SECONDS [PID]: the same, for any answer (a 404 included).
wait_for_answer() { wait_until_up "" "$@"; }
wait_until_up() { # curl-flag url seconds [pid]
  local deadline=$((SECONDS + $3)) pid="${4:-}"
  until curl $1 -s -o /dev/null "$2"; do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then say "$2: its server exited"; return 1; fi
    if [ $SECONDS -ge $deadline ]; then say "timed out waiting for $2"; return 1; fi
    sleep 0.2
  done
}

# start_moto PORT: moto's server on 127.0.0.1:PORT, with state machines really executing
# and DynamoDB's conditional writes atomic, as on AWS (infra/local/moto_server.py).
start_moto() {
  local port="$1"
  # MOTO_PORT: where moto's Step Functions interpreter sends a task's SQS message (its own server).
  MOTO_PORT="$port" "$VENV/bin/python" "$ROOT/infra/local/moto_server.py" -H 127.0.0.1 -p "$port" >"$RUN_DIR/moto-$port.log" 2>&1 &
  MOTO_PID=$!
  echo "$MOTO_PID" >"$RUN_DIR/moto-$port.pid"
  wait_for_http "http://127.0.0.1:$port/moto-api/" 60 "$MOTO_PID"
  # Without this switch moto leaves every execution RUNNING forever
  # (it applies to state machines created after it).
  curl -fsS -X POST "http://127.0.0.1:$port/moto-api/config" \
    -H 'content-type: application/json' \
    -d '{"stepfunctions":{"execute_state_machine":true}}' >/dev/null
  say "moto $MOTO_VERSION on http://127.0.0.1:$port (log: .run/moto-$port.log)"
}

# build_local_api: examples/local_api.rs, the local front of the http Lambda's handler
# (the demo and the API test serve it), unless LOCAL_API_BUILT=1 says it was just built
# (scripts/test, whose lints hold cargo's build directory meanwhile).
build_local_api() {
  [ "${LOCAL_API_BUILT:-}" = 1 ] || cargo build --quiet --example local_api
}

# in_group CMD…: runs CMD in the background as the leader of a process group of its own,
# so that stop_group can stop it with everything it started (cargo, rustc, zig).
in_group() { setsid --wait "$@" & }

stop_group() {
  local pid="${1:-}"
  [ -n "$pid" ] || return 0
  kill -- -"$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

stop_pid() {
  local pid="${1:-}"
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
# Keep the SDK off the instance-metadata service and any shared profile of the host.
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
