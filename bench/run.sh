#!/usr/bin/env bash
# Cold and warm image pull, side by side in one run: hoist, containerd 1.6 (ctr), podman, skopeo
# (download only) and the raw lower bound (parallel curl | gzip -dc | tar -x, and the same with
# pigz). Needs root; builds the image with build-image.sh when it is not cached. Writes the
# tables to stdout and to bench/results/<date>-pull.md; raw logs go to bench/work/logs/.
#
#   RUNS=3 WARM_RUNS=20 bash bench/run.sh
#   TOOLS="hoist bound_gzip" bash bench/run.sh      # a subset
#   HOIST=/path/to/hoist HOIST_PULL_FLAGS="--plain-http" bash bench/run.sh
#
# Each tool is one function; a tool that is missing or fails is reported as such in the table.
set -uo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

TOOLS=${TOOLS:-"hoist containerd podman skopeo bound_gzip bound_pigz"}
REF_PATH=bench/big:1
[[ $(id -u) == 0 ]] || { echo "run.sh needs root" >&2; exit 1; }
bash "$BENCH_DIR/build-image.sh" || exit 1
LOGS=$WORK/logs/pull
rm -rf "$LOGS"
mkdir -p "$LOGS"

cleanup() {
    containerd_stop
    stop_registry
}
trap cleanup EXIT

# --- hoist -----------------------------------------------------------------------------------
HOIST_DATA=$WORK/hoist-data
hoist_check() {
    [[ -x $HOIST ]] || { S[hoist]="missing: no $HOIST (cargo build --release -p hoist)"; return 1; }
    if ! "$HOIST" image pull --help >/dev/null 2>&1; then
        S[hoist]="missing: \`hoist image pull\` not available in this build"
        return 1
    fi
    # A plain-HTTP switch, if this build has one (loopback may also be plain by default).
    if [[ -z ${HOIST_PULL_FLAGS+x} ]]; then
        HOIST_PULL_FLAGS=
        if "$HOIST" image pull --help 2>&1 | grep -q -- '--plain-http'; then
            HOIST_PULL_FLAGS=--plain-http
        elif "$HOIST" image pull --help 2>&1 | grep -q -- '--insecure'; then
            HOIST_PULL_FLAGS=--insecure
        fi
    fi
}
hoist_cold() {
    wipe "$HOIST_DATA"
    cold_caches
    # shellcheck disable=SC2086
    timed hoist "$HOIST" --data-dir "$HOIST_DATA" image pull $HOIST_PULL_FLAGS "$REG/$REF_PATH"
}
hoist_warm() {
    # shellcheck disable=SC2086
    timed_quick hoist_warm "$HOIST" --data-dir "$HOIST_DATA" image pull $HOIST_PULL_FLAGS \
        "$REG/$REF_PATH"
}

# --- containerd 1.6 ---------------------------------------------------------------------------
CTRD=$WORK/containerd
CTRD_SOCK=$CTRD/containerd.sock
containerd_check() {
    command -v containerd >/dev/null && command -v ctr >/dev/null \
        || { S[containerd]="missing: apt-get install containerd"; return 1; }
}
containerd_cold() {
    containerd_stop
    wipe "$CTRD/root"
    wipe "$CTRD/state"
    containerd_start || { S[containerd]="failed: daemon did not start"; return 1; }
    cold_caches
    timed containerd ctr -a "$CTRD_SOCK" images pull --plain-http --snapshotter overlayfs \
        "$REG/$REF_PATH" || return 1
    # The unpacking is done by the daemon: report its high-water mark too.
    R[containerd_daemon]+=" $(awk '/VmHWM/ {print $2}' "/proc/$CTRD_PID/status")"
}
containerd_warm() {
    timed_quick containerd_warm ctr -a "$CTRD_SOCK" images pull --plain-http \
        --snapshotter overlayfs "$REG/$REF_PATH"
}

# --- podman ------------------------------------------------------------------------------------
PODMAN_DIR=$WORK/podman
podman_check() {
    command -v podman >/dev/null || { S[podman]="missing: apt-get install podman"; return 1; }
}
podman_cold() {
    podman_cmd
    "${PODMAN[@]}" rmi -a -f >/dev/null 2>&1
    wipe "$PODMAN_DIR"
    podman_cmd  # the wipe took its containers.conf
    cold_caches
    if ! timed podman "${PODMAN[@]}" pull -q --tls-verify=false "$REG/$REF_PATH"; then
        if [[ $PODMAN_DRIVER == overlay ]]; then
            log "podman with overlay failed; falling back to vfs"
            PODMAN_DRIVER=vfs
            unset 'S[podman]'
            podman_cold
            return
        fi
        return 1
    fi
}
podman_warm() {
    timed_quick podman_warm "${PODMAN[@]}" pull -q --tls-verify=false "$REG/$REF_PATH"
}

# --- skopeo (download only) --------------------------------------------------------------------
skopeo_check() {
    command -v skopeo >/dev/null || { S[skopeo]="missing: apt-get install skopeo"; return 1; }
}
skopeo_cold() {
    wipe "$WORK/skopeo-out"
    cold_caches
    timed skopeo skopeo copy -q --src-tls-verify=false "docker://$REG/$REF_PATH" \
        "oci:$WORK/skopeo-out:bench"
}

# --- raw lower bound: all blobs in parallel, curl | INFLATER -dc | tar -x ----------------------
# Each layer goes into its own directory: no whiteouts, no ordering, no digest check.
bound_fetch() {
    set -o pipefail
    local inflater=$1 out=$2 manifest d i=0
    manifest=$(curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
        "http://$REG/v2/${REF_PATH%:*}/manifests/${REF_PATH#*:}") || return 1
    for d in $(jq -r '.layers[].digest' <<<"$manifest"); do
        mkdir -p "$out/$i"
        (curl -sf "http://$REG/v2/${REF_PATH%:*}/blobs/$d" | $inflater -dc | tar -x -C "$out/$i") &
        i=$((i + 1))
    done
    local rc=0
    for d in $(jobs -p); do wait "$d" || rc=1; done
    return $rc
}
bound_gzip_check() { :; }
bound_gzip_cold() {
    wipe "$WORK/bound-out"
    cold_caches
    timed bound_gzip bash -c 'bound_fetch "$@"' _ gzip "$WORK/bound-out"
}
bound_pigz_check() {
    command -v pigz >/dev/null || { S[bound_pigz]="missing: apt-get install pigz"; return 1; }
}
bound_pigz_cold() {
    wipe "$WORK/bound-out"
    cold_caches
    timed bound_pigz bash -c 'bound_fetch "$@"' _ pigz "$WORK/bound-out"
}
export -f bound_fetch

# --- the run -----------------------------------------------------------------------------------
start_registry || exit 1
log "pushing the image"
push "$WORK/image" bench "$REF_PATH" || { log "push failed"; exit 1; }
export REG REF_PATH

LOAD_START=$(load_note)
active=()
for t in $TOOLS; do
    if "${t}_check"; then active+=("$t"); else log "$t: ${S[$t]}"; fi
done

for run in $(seq "$RUNS"); do
    for t in "${active[@]}"; do
        [[ -n ${S[$t]:-} ]] && continue
        log "cold run $run/$RUNS: $t"
        "${t}_cold" || log "$t: ${S[$t]:-failed}"
    done
done
wipe "$WORK/bound-out"
wipe "$WORK/skopeo-out"

# Warm re-pulls, round-robin like the cold ones (one untimed re-pull each first, so that the
# first timed one does not pay for the binary's pages the cold runs of the others evicted).
warm=()
for t in hoist containerd podman; do
    [[ " ${active[*]} " == *" $t "* && -z ${S[$t]:-} ]] && warm+=("$t")
done
for t in "${warm[@]}"; do "${t}_warm"; done
for t in "${warm[@]}"; do T[${t}_warm]=; done
log "warm re-pulls x $WARM_RUNS: ${warm[*]}"
for _ in $(seq "$WARM_RUNS"); do
    for t in "${warm[@]}"; do
        [[ -n ${S[${t}_warm]:-} ]] || "${t}_warm"
    done
done
LOAD_END=$(load_note)
containerd_stop

# --- report ------------------------------------------------------------------------------------
label() {
    case $1 in
        hoist) echo "hoist image pull" ;;
        containerd) echo "containerd 1.6 ctr pull (unpack to overlayfs)" ;;
        podman) echo "podman pull ($PODMAN_DRIVER)" ;;
        skopeo) echo "skopeo copy to oci: (download only)" ;;
        bound_gzip) echo "bound: curl \\| gzip -dc \\| tar -x, layers in parallel" ;;
        bound_pigz) echo "bound: curl \\| pigz -dc \\| tar -x, layers in parallel" ;;
        *) echo "$1" ;;
    esac
}
mkdir -p "$BENCH_DIR/results"
OUT=$BENCH_DIR/results/$(date -u +%Y-%m-%d)-pull.md
mb() { awk -v k="$1" 'BEGIN {printf "%.0f MB", k / 1024}'; }
median_of() { read -r m _ < <(stat_of "$1"); echo "$m"; }
max_of() { read -r _ _ m < <(stat_of "$1"); echo "$m"; }

ref_ctr=$(median_of "${T[containerd]:-}")
ref_bound=$(median_of "${T[bound_gzip]:-}")
comp=$(jq '[.layers[].size] | add' "$WORK/image/blobs/sha256/$(jq -r '.manifests[0].digest' \
    "$WORK/image/index.json" | cut -d: -f2)")
{
    echo "Cold pull of a 5-layer image ($((comp / 1000000)) MB compressed) from a loopback registry,"
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r); runs per tool: $RUNS;"
    echo "page cache dropped before each cold run: ${DROP_CACHES:-n/a}. Shared machine: at the start"
    echo "$LOAD_START; at the end $LOAD_END."
    echo
    echo "| tool | median s | min s | max s | × containerd | × curl\\|gzip\\|tar | peak RSS (max of runs) |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for t in $TOOLS; do
        if [[ -n ${S[$t]:-} || -z ${T[$t]:-} ]]; then
            echo "| $(label "$t") | ${S[$t]:-no result} | | | | | |"
            continue
        fi
        read -r med lo hi < <(stat_of "${T[$t]}")
        rss=$(max_of "${R[$t]:-}")
        rss_txt=$( [[ -n $rss ]] && mb "$rss")
        case $t in
            containerd) [[ -n ${R[containerd_daemon]:-} ]] && rss_txt="ctr $rss_txt + daemon $(mb "$(max_of "${R[containerd_daemon]}")")" ;;
            bound_*) rss_txt="—" ;;
        esac
        rc=$( [[ -n $ref_ctr ]] && awk "BEGIN {printf \"%.2f\", $med / $ref_ctr}")
        rb=$( [[ -n $ref_bound ]] && awk "BEGIN {printf \"%.2f\", $med / $ref_bound}")
        printf '| %s | %.2f | %.2f | %.2f | %s | %s | %s |\n' "$(label "$t")" "$med" "$lo" "$hi" \
            "${rc:-—}" "${rb:-—}" "$rss_txt"
    done
    echo
    echo "Warm re-pull of the present image (manifest check only), $WARM_RUNS runs each, round-robin:"
    echo
    echo "| tool | median ms | min ms | max ms | × containerd | × podman |"
    echo "|---|---:|---:|---:|---:|---:|"
    wref_ctr=$(median_of "${T[containerd_warm]:-}")
    wref_pod=$(median_of "${T[podman_warm]:-}")
    for t in hoist containerd podman; do
        w=${t}_warm
        if [[ -n ${S[$w]:-} || -z ${T[$w]:-} ]]; then
            echo "| $(label "$t") | ${S[$w]:-${S[$t]:-not run}} | | | | |"
            continue
        fi
        read -r med lo hi < <(stat_of "${T[$w]}")
        awk -v l="$(label "$t")" -v a="$med" -v b="$lo" -v c="$hi" -v rc="${wref_ctr:-0}" \
            -v rp="${wref_pod:-0}" 'BEGIN {printf "| %s | %.1f | %.1f | %.1f | %s | %s |\n", l,
                a * 1000, b * 1000, c * 1000, (rc > 0 ? sprintf("%.2f", a / rc) : "—"),
                (rp > 0 ? sprintf("%.2f", a / rp) : "—")}'
    done
} | tee "$OUT"
log "written: $OUT"
