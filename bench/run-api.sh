#!/usr/bin/env bash
# The API server and node agent (issue 4), side by side with containerd's daemon where a peer
# runs here (k3s and a kubelet do not: no internet to fetch them):
#
#   idle RSS       `hoist server` with its node registered and no pods, 10 s after start,
#                  against containerd 1.6's daemon idle in the same run
#   create rate    pods created per second through the API with kube-rs (the `podload`
#                  example), 1000 pods, 16 requests in flight, SQLite store, no node (so the
#                  pods stay Pending and only the API is measured)
#   create→Running 100 pods of a present image (`sleep 3600`), created with 16 in flight,
#                  until each is reported Running by a watch; p50 and p99 on the client's clock
#
# Needs root and the release builds (`cargo build --release -p hoist` and
# `cargo build --release -p hoist-apiserver --example podload`). Writes
# bench/results/<date>-api.md.
#
#   RUNS=3 bash bench/run-api.sh
set -uo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

RUNS=${RUNS:-3}
PODLOAD=${PODLOAD:-$REPO_DIR/target/release/examples/podload}
[[ $(id -u) == 0 ]] || { echo "run-api.sh needs root" >&2; exit 1; }
[[ -x $HOIST && -x $PODLOAD ]] || { echo "build hoist and podload in release first" >&2; exit 1; }
bash "$BENCH_DIR/build-busybox.sh" || exit 1
LOGS=$WORK/logs/api
rm -rf "$LOGS"
mkdir -p "$LOGS"
SERVER_PID=

stop_server() {
    [[ -n $SERVER_PID ]] || return 0
    KUBECONFIG=$DATA/api/kubeconfig.yaml kubectl delete pods --all --grace-period=1 \
        --wait=true --timeout=120s >>"$LOGS/delete.log" 2>&1
    kill "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=
}
cleanup() { stop_server; containerd_stop; stop_registry; }
trap cleanup EXIT

# start_server NAME [ARGS...]: a fresh data directory and a server in it; waits for it.
start_server() {
    local name=$1 want="listening on"
    shift
    DATA=$WORK/api-$name
    rm -rf "$DATA"
    mkdir -p "$DATA"
    [[ " $* " == *" --no-agent "* ]] || want="is Ready"
    "$HOIST" --data-dir "$DATA" server --listen 127.0.0.1:0 "$@" >"$LOGS/server-$name.log" 2>&1 &
    SERVER_PID=$!
    local i
    for i in $(seq 300); do grep -q "$want" "$LOGS/server-$name.log" && return 0; sleep 0.1; done
    log "server $name did not start"; cat "$LOGS/server-$name.log" >&2; return 1
}

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

start_registry || exit 1
push "$WORK/busybox" busybox bench/busybox:1 || { log "push failed"; exit 1; }
IMAGE=$REG/bench/busybox:1
LOAD_START=$(load_note)

declare -A V
for run in $(seq "$RUNS"); do
    log "run $run: idle RSS"
    start_server idle || exit 1
    sleep 10
    V[hoist_rss]+=" $(rss_kb "$SERVER_PID")"
    stop_server
    CTRD=$WORK/api-containerd
    rm -rf "$CTRD"
    containerd_start || { log "containerd did not start"; exit 1; }
    sleep 10
    V[ctrd_rss]+=" $(rss_kb "$CTRD_PID")"
    containerd_stop

    log "run $run: create rate"
    start_server rate --no-agent || exit 1
    out=$("$PODLOAD" "$DATA/api/kubeconfig.yaml" 1000 16 "$IMAGE" 2>>"$LOGS/podload.log")
    echo "$out" >>"$LOGS/podload.log"
    V[rate]+=" $(sed -n 's/.*: \([0-9]*\) pods\/s.*/\1/p' <<<"$out")"
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=

    log "run $run: create to Running"
    start_server running || exit 1
    "$HOIST" --data-dir "$DATA" image pull "$IMAGE" >>"$LOGS/pull.log" 2>&1
    out=$("$PODLOAD" "$DATA/api/kubeconfig.yaml" 100 16 "$IMAGE" --running 2>>"$LOGS/podload.log")
    echo "$out" >>"$LOGS/podload.log"
    V[p50]+=" $(sed -n 's/.*p50 \([0-9]*\) ms.*/\1/p' <<<"$out")"
    V[p99]+=" $(sed -n 's/.*p99 \([0-9]*\) ms.*/\1/p' <<<"$out")"
    V[reached]+=" $(sed -n 's/^running \([0-9]*\)\/.*/\1/p' <<<"$out")"
    stop_server
done

med() { local m; read -r m _ < <(stat_of "$1"); [[ -n $m ]] && printf '%.0f' "$m" || echo "?"; }
mb() { awk -v k="$1" 'BEGIN { if (k == "?") print "?"; else printf "%.0f MB", k / 1024 }'; }
result=$BENCH_DIR/results/$(date -u +%F)-api.md
{
    echo "API server and node agent, $(date -u '+%F %H:%M') UTC, $(nproc) cores, $(uname -r);"
    echo "$RUNS runs per row, medians; load at start: $LOAD_START, at end: $(load_note)."
    echo
    echo "| measure | hoist | peer | target |"
    echo "|---|---:|---:|---:|"
    echo "| idle RSS, server + agent | $(mb "$(med "${V[hoist_rss]:-}")") | containerd daemon $(mb "$(med "${V[ctrd_rss]:-}")") | < 40 MB |"
    echo "| pods created per second (kube-rs, SQLite) | $(med "${V[rate]:-}") | | 1,000 |"
    echo "| create→Running, 100 pods, p50 | $(med "${V[p50]:-}") ms | | |"
    echo "| create→Running, 100 pods, p99 | $(med "${V[p99]:-}") ms | Kubernetes SLO 5,000 ms | < 1,000 ms |"
    echo
    echo "Raw: idle RSS kB hoist [${V[hoist_rss]:-} ], containerd [${V[ctrd_rss]:-} ];"
    echo "pods/s [${V[rate]:-} ]; p50 ms [${V[p50]:-} ]; p99 ms [${V[p99]:-} ];"
    echo "pods that reached Running [${V[reached]:-} ] of 100."
} | tee "$result"
