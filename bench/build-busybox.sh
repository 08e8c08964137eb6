#!/usr/bin/env bash
# Build the one-layer busybox image of the pod-start bench as an OCI layout in
# bench/work/busybox (ref name "busybox"): /bin/busybox of Debian's busybox-static, a symlink per
# applet in /bin, and empty /etc /tmp /proc /sys /dev. Built once; delete the directory to rebuild.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
OUT=$WORK/busybox
[[ -f $OUT/index.json ]] && { log "cached: $OUT"; exit 0; }
BB=${BUSYBOX:-/bin/busybox}
file -L "$BB" 2>/dev/null | grep -q 'statically linked' || [[ -n ${BUSYBOX:-} ]] \
    || { echo "$BB is not static: apt-get install busybox-static" >&2; exit 1; }

ROOT=$WORK/busybox-rootfs
rm -rf "$ROOT" "$OUT.tmp"
mkdir -p "$ROOT"/{bin,etc,tmp,proc,sys,dev,root} "$OUT.tmp/blobs/sha256"
chmod 1777 "$ROOT/tmp"
cp "$BB" "$ROOT/bin/busybox"
for applet in $("$BB" --list); do
    [[ $applet == busybox ]] || ln -s busybox "$ROOT/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$ROOT/etc/passwd"
echo 'root:x:0:' >"$ROOT/etc/group"
read -r digest size diff < <(layer_tar "$ROOT" root "$OUT.tmp/blobs/sha256")
python3 "$HERE/mklayout.py" "$OUT.tmp" busybox '["sh"]' "$digest $size $diff busybox-static"
rm -rf "$OUT" "$ROOT"
mv "$OUT.tmp" "$OUT"
log "done: $OUT ($((size / 1000)) kB compressed)"
