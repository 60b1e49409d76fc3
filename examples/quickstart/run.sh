#!/usr/bin/env bash
# weir quickstart: two whoami backends and weir serving the manifests in ./manifests on :8000.
#
#   ./examples/quickstart/run.sh
#   curl -H 'Host: whoami.localhost' http://127.0.0.1:8000/
#
# weir runs in the foreground (it starts weir-dataplane itself); Ctrl-C stops it, and the
# backends are stopped on the way out.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"

cargo build --release -p weir-control -p weir-dataplane -p weir-whoami
bin=${CARGO_TARGET_DIR:-target}/release

run_dir=$(mktemp -d "${TMPDIR:-/tmp}/weir-quickstart.XXXXXX")
backend_pids=()
cleanup() {
  # Runs once: on normal exit, and after Ctrl-C has stopped weir.
  trap - EXIT INT TERM
  for pid in "${backend_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  wait "${backend_pids[@]}" 2>/dev/null || true
  rm -rf "$run_dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Starts a backend and waits for its "listening on" line (it exits at once if the port is taken).
start_backend() {
  local name=$1 addr=$2 out="$run_dir/$1.out"
  "$bin/weir-whoami" --listen "$addr" --name "$name" >"$out" &
  local pid=$!
  backend_pids+=("$pid")
  for _ in $(seq 100); do
    if grep -q '^listening on ' "$out"; then
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "quickstart: $name could not listen on $addr (is the port in use?)" >&2
      return 1
    fi
    sleep 0.05
  done
  echo "quickstart: $name did not start listening on $addr" >&2
  return 1
}

start_backend whoami-1 127.0.0.1:9001
start_backend whoami-2 127.0.0.1:9002

cat <<'EOF'

weir quickstart: backends whoami-1 on 127.0.0.1:9001 and whoami-2 on 127.0.0.1:9002,
weir listening on :8000 (entry point "web"), routes from examples/quickstart/manifests.

In another terminal:
  curl -H 'Host: whoami.localhost' http://127.0.0.1:8000/    # route Host(`whoami.localhost`)
  curl http://127.0.0.1:8000/whoami                          # route PathPrefix(`/whoami`)
Repeat either one: whoami-1 and whoami-2 share the load (see the Name: line of each answer).
Ctrl-C stops everything.

EOF

"$bin/weir" --manifests examples/quickstart/manifests --entryPoints.web.address=:8000
