# Shared helpers of the bench scripts (sourced, not run): a private loopback registry, timing,
# cache wiping and the result tables.
# shellcheck shell=bash

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
WORK=${BENCH_WORK:-$BENCH_DIR/work}
HOIST=${HOIST:-$REPO_DIR/target/release/hoist}
RUNS=${RUNS:-3}
WARM_RUNS=${WARM_RUNS:-20}
# Raw logs of the current script (run.sh and run-pod.sh each set their own subdirectory).
LOGS=${LOGS:-$WORK/logs}

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }

# Fixed mtime of the synthetic layers' files (and upper bound of the others').
MTIME='2024-01-01 00:00:00Z'

# layer_tar DIR OWNERS BLOBS: deterministic tar of DIR's content (names without "./"), gzip it
# (pigz if present), store the blob in BLOBS (an OCI layout's blobs/sha256); prints
# "digest size diff_id". OWNERS is "root" (all files 0:0) or "keep" (numeric ids as on disk).
layer_tar() {
    local dir=$1 owners=$2 blobs=$3 tar diff digest size
    tar=$blobs/../../layer.tar
    local -a own
    if [[ $owners == root ]]; then own=(--owner=0 --group=0 --numeric-owner); else own=(--numeric-owner); fi
    (cd "$dir" && find . -mindepth 1 -printf '%P\0' | LC_ALL=C sort -z \
        | tar -c --null --no-recursion -T - --format=pax \
            --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
            --mtime="$MTIME" --clamp-mtime "${own[@]}") >"$tar"
    diff=$(sha256sum "$tar" | cut -d' ' -f1)
    if command -v pigz >/dev/null; then pigz -6 -n -c "$tar"; else gzip -6 -n -c "$tar"; fi >"$tar.gz"
    rm "$tar"
    digest=$(sha256sum "$tar.gz" | cut -d' ' -f1)
    size=$(stat -c %s "$tar.gz")
    mv "$tar.gz" "$blobs/$digest"
    echo "$digest $size $diff"
}


# A free loopback TCP port.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for CMD...: retry CMD for up to 10 s.
wait_for() {
    local i
    for i in $(seq 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    return 1
}

# start_registry: Debian's docker-registry on a free loopback port, storage under $WORK/registry
# (kept between invocations, so pushes after the first only upload what is missing). Sets PORT,
# REG and REGISTRY_PID; the registry is stopped by stop_registry.
start_registry() {
    PORT=${PORT:-$(free_port)}
    REG=127.0.0.1:$PORT
    mkdir -p "$WORK/registry"
    cat >"$WORK/registry.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $WORK/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$PORT
EOF
    docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
    REGISTRY_PID=$!
    wait_for curl -sf "http://$REG/v2/" || { log "registry did not start"; cat "$WORK/registry.log" >&2; return 1; }
    log "registry on $REG (pid $REGISTRY_PID)"
}

stop_registry() {
    [[ -n ${REGISTRY_PID:-} ]] && kill "$REGISTRY_PID" 2>/dev/null && wait "$REGISTRY_PID" 2>/dev/null
    REGISTRY_PID=
}

# push_blob FILE REPO DIGEST: upload one blob with the distribution API's monolithic upload
# (HEAD to skip what the registry has, POST to open an upload, PUT ?digest= with the bytes).
push_blob() {
    local file=$1 repo=$2 digest=$3 loc sep
    curl -sf -o /dev/null -I "http://$REG/v2/$repo/blobs/$digest" && return 0
    loc=$(curl -sf -o /dev/null -D - -X POST "http://$REG/v2/$repo/blobs/uploads/" \
        | tr -d '\r' | awk 'tolower($1) == "location:" {print $2}')
    [[ -n $loc ]] || { log "push: no upload location for $repo"; return 1; }
    [[ $loc == http* ]] || loc=http://$REG$loc
    [[ $loc == *\?* ]] && sep='&' || sep='?'
    curl -sf -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' \
        --data-binary "@$file" "$loc${sep}digest=$digest" \
        || { log "push: upload of $digest to $repo failed"; return 1; }
}

# push LAYOUT REF_NAME REPO:TAG: push the image named REF_NAME in the OCI layout LAYOUT to the
# registry $REG as REPO:TAG with curl: blobs (config and layers, in parallel), then the manifest.
push() {
    local layout=$1 name=$2 repo=${3%:*} tag=${3##*:} mdesc mtype mdigest mfile d rc=0
    mdesc=$(jq -c --arg n "$name" \
        '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $n)' \
        "$layout/index.json")
    [[ -n $mdesc ]] || { log "push: no image named $name in $layout"; return 1; }
    mtype=$(jq -r .mediaType <<<"$mdesc")
    mdigest=$(jq -r .digest <<<"$mdesc")
    mfile=$layout/blobs/sha256/${mdigest#sha256:}
    local -a pids=()
    for d in $(jq -r '.config.digest, .layers[].digest' "$mfile"); do
        push_blob "$layout/blobs/sha256/${d#sha256:}" "$repo" "$d" &
        pids+=($!)
    done
    for d in "${pids[@]}"; do wait "$d" || rc=1; done
    ((rc == 0)) || return 1
    curl -sf -o /dev/null -X PUT -H "Content-Type: $mtype" --data-binary "@$mfile" \
        "http://$REG/v2/$repo/manifests/$tag" || { log "push: manifest of $3 refused"; return 1; }
}

# wipe DIR: unmount whatever is mounted below DIR (deepest first), then delete it.
wipe() {
    local dir=$1 m
    [[ -e $dir ]] || return 0
    dir=$(realpath "$dir")
    while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(
        awk -v d="$dir" '$2 == d || index($2, d "/") == 1 {print $2}' /proc/mounts | sort -r)
    rm -rf "$dir"
}

# Drop the page cache (needs a writable /proc/sys/vm/drop_caches). Then read the registry's blobs
# back, so the registry plays a fast network and only the clients start cold. Sets DROP_CACHES
# to "yes" or "no (why)" for the report.
DROP_CACHES=
cold_caches() {
    sync
    if echo 3 2>/dev/null >/proc/sys/vm/drop_caches; then
        DROP_CACHES=yes
    else
        DROP_CACHES="no (drop_caches not writable here)"
    fi
    find "$WORK/registry" -type f -exec cat {} + >/dev/null 2>&1 || true
}

# load_note: the load averages and what else is busy (compilers of the other engineers on this
# shared machine), for the report.
load_note() {
    local busy
    busy=$(ps -eo comm= | grep -cE '^(rustc|cc1|cc1plus|ld|cargo|clang)' || true)
    echo "load $(cut -d' ' -f1-3 /proc/loadavg), $busy compiler processes running"
}

# now: wall clock in seconds with microseconds, without forking.
now() { echo "${EPOCHREALTIME/,/.}"; }

# Results, by tool name: T[name] wall times (s, space separated), R[name] peak RSS (KiB),
# S[name] "missing ..." or "failed ..." when the tool could not be measured.
declare -A T R S

# timed NAME CMD...: run CMD under /usr/bin/time, append its wall time to T[NAME] and its peak RSS
# to R[NAME]; on failure set S[NAME]. Output goes to $LOGS/NAME.log. Returns CMD's status.
timed() {
    local name=$1 t0 t1 rc
    shift
    mkdir -p "$LOGS"
    t0=$(now)
    /usr/bin/time -f '%M' -o "$LOGS/$name.rss" "$@" >>"$LOGS/$name.log" 2>&1
    rc=$?
    t1=$(now)
    if ((rc == 0)); then
        T[$name]+=" $(awk "BEGIN {print $t1 - $t0}")"
        R[$name]+=" $(tail -n1 "$LOGS/$name.rss")"
    else
        S[$name]="failed (exit $rc): $(tail -n1 "$LOGS/$name.log" | cut -c1-100)"
    fi
    return "$rc"
}

# timed_quick NAME CMD...: like timed without /usr/bin/time, for the millisecond-scale warm paths.
timed_quick() {
    local name=$1 t0 t1 rc
    shift
    mkdir -p "$LOGS"
    t0=$(now)
    "$@" >>"$LOGS/$name.log" 2>&1
    rc=$?
    t1=$(now)
    if ((rc == 0)); then
        T[$name]+=" $(awk "BEGIN {print $t1 - $t0}")"
    else
        S[$name]="failed (exit $rc): $(tail -n1 "$LOGS/$name.log" | cut -c1-100)"
    fi
    return "$rc"
}

# stat_of "v1 v2 ...": prints "median min max" (n even: mean of the two middle values).
stat_of() {
    # shellcheck disable=SC2086
    python3 -c '
import statistics, sys
v = sorted(float(x) for x in sys.argv[1:])
print(statistics.median(v), v[0], v[-1]) if v else print("")' $1
}

# containerd_start: a containerd of our own (root, state and socket under $CTRD, which the caller
# sets), with only the overlayfs and native snapshotters and no CRI plugin, so it neither touches
# nor depends on a system containerd. Sets CTRD_SOCK and CTRD_PID.
CTRD_PID=
containerd_start() {
    CTRD_SOCK=$CTRD/containerd.sock
    mkdir -p "$CTRD" "$LOGS"
    cat >"$CTRD/config.toml" <<CONF
version = 2
root = "$CTRD/root"
state = "$CTRD/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$CTRD_SOCK.ttrpc"
CONF
    containerd --config "$CTRD/config.toml" >>"$LOGS/containerd-daemon.log" 2>&1 &
    CTRD_PID=$!
    wait_for ctr -a "$CTRD_SOCK" version
}
containerd_stop() {
    [[ -n ${CTRD_PID:-} ]] || return 0
    kill "$CTRD_PID" 2>/dev/null
    wait "$CTRD_PID" 2>/dev/null
    CTRD_PID=
}

# podman_cmd: sets PODMAN to a podman command line with its own storage under $PODMAN_DIR (the
# caller sets it), cgroupfs and runc (Debian 12's crun 1.8 refuses this host's cgroup mounts).
PODMAN_DRIVER=${PODMAN_DRIVER:-overlay}
# podman as root raises the containers' nofile and nproc limits to 1048576, which fails where
# this process has no CAP_SYS_RESOURCE and lower hard limits (as in these sandboxes): a
# containers.conf of our own keeps the limits at the hard limits we have. podman 4.3 also lowers
# its own RLIMIT_NPROC to 32768 when it starts (see /proc/PID/limits of a running podman), and
# runc, started under that limit, cannot raise it again: nproc is capped at 32768 for that reason
# (the infra container of `kube play` fails with "error setting rlimit type 6" otherwise).
podman_cmd() {
    local nofile nproc
    nofile=$(ulimit -Hn)
    nproc=$(ulimit -Hu)
    [[ $nproc == unlimited || $nproc -gt 32768 ]] && nproc=32768
    mkdir -p "$PODMAN_DIR"
    cat >"$PODMAN_DIR/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
CONF
    PODMAN=(env CONTAINERS_CONF="$PODMAN_DIR/containers.conf" podman --root "$PODMAN_DIR/root" --runroot "$PODMAN_DIR/run"
        --storage-driver "$PODMAN_DRIVER" --cgroup-manager cgroupfs --events-backend file
        --runtime runc)
}
