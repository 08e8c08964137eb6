#!/usr/bin/env bash
# Warm pod start, side by side in one run: the tutorial's pod (`echo SUCCESS`, the busybox image
# of build-busybox.sh already present) from the command's start until SUCCESS has been printed.
#
#   hoist run -f pod.yaml                        imagePullPolicy Always, and IfNotPresent
#   podman kube play pod.yaml + podman logs -f   Always, IfNotPresent, IfNotPresent --network none
#   ctr images pull + ctr run --rm               (the Always manifest check), and ctr run alone
#
# Needs root. Runs every variant RUNS times (default 10), round-robin so that a burst of load on
# this shared machine hits all of them alike, and writes bench/results/<date>-pod.md. The setup
# (pull, daemon start) and the teardown after each run (kube down) are not timed; the second
# column of the table (until exit) includes each tool's own teardown (ctr run --rm removes the
# container, hoist run removes the pod).
#
#   RUNS=10 bash bench/run-pod.sh
#   TOOLS="hoist ctr" bash bench/run-pod.sh
set -uo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

RUNS=${RUNS:-10}
TOOLS=${TOOLS:-"hoist podman ctr"}
REF_PATH=bench/busybox:1
[[ $(id -u) == 0 ]] || { echo "run-pod.sh needs root" >&2; exit 1; }
bash "$BENCH_DIR/build-busybox.sh" || exit 1
LOGS=$WORK/logs/pod
rm -rf "$LOGS"
mkdir -p "$LOGS" "$WORK/pod"

cleanup() {
    [[ -n ${PODMAN_DIR:-} ]] && podman_cmd && "${PODMAN[@]}" pod rm -a -f >/dev/null 2>&1
    containerd_stop
    stop_registry
}
trap cleanup EXIT

start_registry || exit 1
push "$WORK/busybox" busybox "$REF_PATH" || { log "push failed"; exit 1; }
IMAGE=$REG/$REF_PATH
POD=testing-for-image-pull
for policy in Always IfNotPresent; do
    sed -e "s|IMAGE|$IMAGE|" -e "s|imagePullPolicy: Always|imagePullPolicy: $policy|" \
        "$REPO_DIR/scripts/tutorial-pod-fixed.yaml" >"$WORK/pod/$policy.yaml"
done

# pod_time NAME CMD...: one timed start; appends to T[NAME] (until SUCCESS) and X[NAME] (until
# exit), or sets S[NAME] on failure.
declare -A X
pod_time() {
    local name=$1 out
    shift
    if out=$(python3 "$BENCH_DIR/podtime.py" SUCCESS "$@" 2>>"$LOGS/$name.log"); then
        T[$name]+=" ${out% *}"
        X[$name]+=" ${out#* }"
    else
        S[$name]="failed: $(tail -n1 "$LOGS/$name.log" | cut -c1-120)"
    fi
}

# The timed variants of each tool, in table order.
declare -A VARIANTS_OF=([hoist]="hoist_always hoist_present"
    [podman]="podman_always podman_present podman_nonet" [ctr]="ctr_always ctr_present")

# --- hoist -----------------------------------------------------------------------------------
HOIST_DATA=$WORK/hoist-pod
hoist_setup() {
    local v
    [[ -x $HOIST ]] || { S[hoist]="missing: no $HOIST (cargo build --release -p hoist)"; return 1; }
    wipe "$HOIST_DATA"
    "$HOIST" --data-dir "$HOIST_DATA" image pull "$IMAGE" >"$LOGS/hoist-setup.log" 2>&1 \
        || { S[hoist]="failed: hoist image pull: $(tail -n1 "$LOGS/hoist-setup.log")"; return 1; }
    VARIANTS+=(${VARIANTS_OF[hoist]})
}
hoist_always() { pod_time hoist_always "$HOIST" --data-dir "$HOIST_DATA" run -f "$WORK/pod/Always.yaml"; }
hoist_present() {
    pod_time hoist_present "$HOIST" --data-dir "$HOIST_DATA" run -f "$WORK/pod/IfNotPresent.yaml"
}

# --- podman kube play, logs read back ----------------------------------------------------------
PODMAN_DIR=$WORK/podman-pod
podman_setup() {
    command -v podman >/dev/null || { S[podman]="missing: apt-get install podman"; return 1; }
    podman_cmd
    "${PODMAN[@]}" pod rm -a -f >/dev/null 2>&1
    "${PODMAN[@]}" pull -q --tls-verify=false "$IMAGE" >"$LOGS/podman-setup.log" 2>&1 \
        || { S[podman]="failed: podman pull: $(tail -n1 "$LOGS/podman-setup.log")"; return 1; }
    VARIANTS+=(${VARIANTS_OF[podman]})
}
# podman 4.3: `kube play` starts the pod and returns; the container is named POD-CONTAINER and
# `logs -f` prints its output and returns when it has exited.
podman_play() {
    local name=$1
    shift
    pod_time "$name" bash -c "$(printf '%q ' "${PODMAN[@]}") kube play -q --tls-verify=false $* \
        >/dev/null && $(printf '%q ' "${PODMAN[@]}") logs -f $POD-neo4j-server"
    "${PODMAN[@]}" pod rm -f "$POD" >>"$LOGS/$name.log" 2>&1
}
podman_always() { podman_play podman_always "$WORK/pod/Always.yaml"; }
podman_present() { podman_play podman_present "$WORK/pod/IfNotPresent.yaml"; }
podman_nonet() { podman_play podman_nonet --network none "$WORK/pod/IfNotPresent.yaml"; }

# --- containerd: ctr run --rm -----------------------------------------------------------------
CTRD=$WORK/containerd-pod
ctr_setup() {
    command -v ctr >/dev/null || { S[ctr]="missing: apt-get install containerd"; return 1; }
    containerd_stop
    wipe "$CTRD"
    containerd_start || { S[ctr]="failed: containerd did not start"; return 1; }
    ctr -a "$CTRD_SOCK" images pull --plain-http "$IMAGE" >"$LOGS/ctr-setup.log" 2>&1 \
        || { S[ctr]="failed: ctr pull: $(tail -n1 "$LOGS/ctr-setup.log")"; return 1; }
    VARIANTS+=(${VARIANTS_OF[ctr]})
}
CTR_N=0
ctr_always() {
    CTR_N=$((CTR_N + 1))
    pod_time ctr_always bash -c "ctr -a $CTRD_SOCK images pull --plain-http $IMAGE >/dev/null \
        && exec ctr -a $CTRD_SOCK run --rm $IMAGE bench-$CTR_N echo SUCCESS"
}
ctr_present() {
    CTR_N=$((CTR_N + 1))
    pod_time ctr_present ctr -a "$CTRD_SOCK" run --rm "$IMAGE" "bench-$CTR_N" echo SUCCESS
}

# --- the run -----------------------------------------------------------------------------------
VARIANTS=()
for t in $TOOLS; do
    "${t}_setup" || log "$t: ${S[$t]}"
done
# Round 0 is a warm-up (binaries and the image's files into the page cache), not counted.
LOAD_START=$(load_note)
for run in $(seq 0 "$RUNS"); do
    log "round $run/$RUNS: ${VARIANTS[*]}"
    for v in "${VARIANTS[@]}"; do
        [[ -n ${S[$v]:-} ]] || "$v"
    done
    if ((run == 0)); then
        for v in "${VARIANTS[@]}"; do T[$v]=; X[$v]=; done
    fi
done
LOAD_END=$(load_note)

# --- report ------------------------------------------------------------------------------------
label() {
    case $1 in
        hoist_always) echo "hoist run -f (Always)" ;;
        hoist_present) echo "hoist run -f (IfNotPresent)" ;;
        podman_always) echo "podman kube play + logs (Always)" ;;
        podman_present) echo "podman kube play + logs (IfNotPresent)" ;;
        podman_nonet) echo "podman kube play + logs (IfNotPresent, --network none)" ;;
        ctr_always) echo "ctr images pull + ctr run --rm (Always)" ;;
        ctr_present) echo "ctr run --rm (image present, no check)" ;;
    esac
}
median_of() { local m; read -r m _ < <(stat_of "$1"); echo "$m"; }
ms() { awk -v s="$1" 'BEGIN {printf "%.0f", s * 1000}'; }
ratio() { [[ -n $1 && -n $2 ]] && awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}' || echo "—"; }
# Like against like: each hoist variant against the peers' variant with the same pull policy.
declare -A PODMAN_OF=([hoist_always]=podman_always [hoist_present]=podman_present)
declare -A CTR_OF=([hoist_always]=ctr_always [hoist_present]=ctr_present)
mkdir -p "$BENCH_DIR/results"
OUT=$BENCH_DIR/results/$(date -u +%Y-%m-%d)-pod.md
{
    echo "Warm start of the tutorial's pod (\`echo SUCCESS\`, one-layer busybox image present,"
    echo "loopback registry), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r),"
    echo "runc $(runc --version | awk 'NR == 1 {print $3}'); $RUNS runs per row, interleaved, after one"
    echo "uncounted warm-up round. Shared machine: at the start $LOAD_START; at the end $LOAD_END."
    echo
    echo "| command | median ms to SUCCESS | min | max | median ms to exit | × podman (same policy) | × ctr (same policy) |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for t in $TOOLS; do
        for v in ${VARIANTS_OF[$t]}; do
            if [[ -n ${S[$v]:-${S[$t]:-}} || -z ${T[$v]:-} ]]; then
                echo "| $(label "$v") | ${S[$v]:-${S[$t]:-not run}} | | | | | |"
                continue
            fi
            read -r med lo hi < <(stat_of "${T[$v]}")
            rp=— rc=—
            if [[ -n ${PODMAN_OF[$v]:-} ]]; then
                rp=$(ratio "$med" "$(median_of "${T[${PODMAN_OF[$v]}]:-}")")
                rc=$(ratio "$med" "$(median_of "${T[${CTR_OF[$v]}]:-}")")
            fi
            echo "| $(label "$v") | $(ms "$med") | $(ms "$lo") | $(ms "$hi") |" \
                "$(ms "$(median_of "${X[$v]}")") | $rp | $rc |"
        done
    done
} | tee "$OUT"
log "written: $OUT"
