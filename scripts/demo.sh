#!/usr/bin/env bash
# The tutorial's pod, end to end on this machine, as the tutorial runs it: builds hoist,
# starts Debian's registry on loopback and pushes a busybox image to it, shows the errors
# hoist gives for the tutorial's manifest exactly as written, then starts `hoist server`,
# creates the corrected pod (`imagePullPolicy: Always`) with the stock `kubectl create -f`,
# and prints SUCCESS when `kubectl logs` shows the container's own SUCCESS. Idempotent; as
# root.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

bash scripts/setup.sh
cargo build --locked -q -p hoist
hoist=$repo/target/debug/hoist

work=$(mktemp -d /tmp/hoist-demo.XXXXXX)
registry_pid=
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then
    # The agent stops the pod's containers before the server goes.
    kubectl delete pods --all --grace-period=1 --wait=true --timeout=30s >/dev/null 2>&1 || true
    kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  fi
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A registry of our own on a free loopback port; loopback registries are plain HTTP.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null \
  || shuf -i 20000-60000 -n 1)
cat >"$work/registry.yml" <<YML
version: 0.1
log: { level: error, accesslog: { disabled: true } }
storage: { filesystem: { rootdirectory: $work/registry } }
http: { addr: 127.0.0.1:$port }
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done

source scripts/lib/push-busybox.sh
push_busybox_image "127.0.0.1:$port" tutorial/busybox latest "$work"

echo
echo "== the tutorial's manifest as written (hoist names each mistake):"
sed -e 's/ *-*> *[0-9]*$//' -e "s|<Name of the Docker image>|127.0.0.1:$port/tutorial/busybox|" \
  scripts/tutorial-pod.yaml >"$work/as-written.yaml"
"$hoist" run -f "$work/as-written.yaml" && { echo "demo: expected errors" >&2; exit 1; } || true

echo
echo "== the corrected pod, through hoist server and kubectl:"
sed "s|IMAGE|127.0.0.1:$port/tutorial/busybox|" scripts/tutorial-pod-fixed.yaml >"$work/pod.yaml"
cat "$work/pod.yaml"
echo
"$hoist" --data-dir "$work/data" server --listen 127.0.0.1:0 >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do grep -q 'is Ready' "$work/server.log" && break; sleep 0.2; done
grep -q 'is Ready' "$work/server.log" || { cat "$work/server.log" >&2; exit 1; }
export KUBECONFIG=$work/data/api/kubeconfig.yaml

show() { echo "\$ $*" >&2; "$@"; }
show kubectl create -f "$work/pod.yaml"
for _ in $(seq 120); do
  phase=$(kubectl get pod testing-for-image-pull -o jsonpath='{.status.phase}')
  case $phase in Succeeded | Failed) break ;; esac
  sleep 0.5
done
show kubectl get pods
out=$(show kubectl logs testing-for-image-pull | tee /dev/stderr)
grep -qx SUCCESS <<<"$out" && echo SUCCESS || { echo "demo: FAILED" >&2; exit 1; }
