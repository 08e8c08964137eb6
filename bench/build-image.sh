#!/usr/bin/env bash
# Build the 5-layer bench image as an OCI image layout, with no network but Debian's apt mirror.
#
#   layer 1  debootstrap --variant=minbase bookworm (device nodes under /dev kept: hoist's unpack
#            skips char/block devices by policy, containerd and podman create them as root)
#   layer 2  python3, installed with apt-get in a chroot over a copy of layer 1; the layer is the
#            diff (new or changed files, by checksum) taken with rsync --compare-dest
#   layer 3  many small files: $SMALL_FILES files of 1-8 KiB, half random half text
#   layer 4  one large incompressible file of $BIG_MB MiB
#   layer 5  deletions: whiteouts of files and directories of layers 1-3, an opaque directory
#
# Every synthetic byte comes from a seeded PRNG and every tar is written with sorted names, a
# fixed mtime and numeric owners, so only layers 1-2 depend on what the mirror serves that day.
# The result is cached: bench/work/image (the layout, ref name "bench") is built once; delete
# bench/work/image (or bench/work entirely) to rebuild.
#
# Needs root (debootstrap, chroot), debootstrap, rsync, pigz (or gzip), python3, jq, tar.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
IMAGE=$WORK/image
SMALL_FILES=${SMALL_FILES:-30000}
BIG_MB=${BIG_MB:-150}

if [[ -f $IMAGE/index.json ]]; then
    log "cached: $IMAGE (delete it to rebuild)"
    exit 0
fi
[[ $(id -u) == 0 ]] || { echo "build-image.sh needs root (debootstrap, chroot)" >&2; exit 1; }
for t in debootstrap rsync python3 jq tar sha256sum; do
    command -v "$t" >/dev/null || { echo "missing tool: $t (apt-get install $t)" >&2; exit 1; }
done

# The mirror the machine's apt uses: first deb.debian.org-like URI of the main archive.
mirror() {
    local m
    m=$(grep -rhE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
        | grep -v security | grep -oE 'https?://[^ ]*/debian/?' | head -n1 || true)
    echo "${m:-http://deb.debian.org/debian}"
}
MIRROR=${MIRROR:-$(mirror)}

mkdir -p "$WORK"
ROOT1=$WORK/rootfs1            # layer 1 tree
ROOT2=$WORK/rootfs2            # layer 1 + python3
L2=$WORK/layer2 L3=$WORK/layer3 L4=$WORK/layer4 L5=$WORK/layer5

# --- layer 1: debootstrap -------------------------------------------------------------------
if [[ ! -f $WORK/.rootfs1.done ]]; then
    log "debootstrap minbase bookworm from $MIRROR"
    rm -rf "$ROOT1"
    debootstrap --variant=minbase bookworm "$ROOT1" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
        || { tail -n 30 "$WORK/debootstrap.log" >&2; exit 1; }
    rm -rf "$ROOT1"/var/cache/apt/archives/*.deb "$ROOT1"/var/lib/apt/lists/* \
        "$ROOT1"/var/log/* "$ROOT1"/var/cache/ldconfig/aux-cache
    touch "$WORK/.rootfs1.done"
fi

# --- layer 2: python3 in a chroot, diffed against layer 1 ----------------------------------
if [[ ! -f $WORK/.rootfs2.done ]]; then
    log "installing python3 into a copy of the rootfs"
    rm -rf "$ROOT2"
    cp -a "$ROOT1" "$ROOT2"
    cp /etc/resolv.conf "$ROOT2/etc/resolv.conf"
    echo "deb $MIRROR bookworm main" >"$ROOT2/etc/apt/sources.list"
    mount -t proc proc "$ROOT2/proc"
    trap 'umount "$ROOT2/proc" 2>/dev/null || true' EXIT
    chroot "$ROOT2" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
        sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends python3' \
        >"$WORK/python3.log" 2>&1 || { tail -n 30 "$WORK/python3.log" >&2; exit 1; }
    umount "$ROOT2/proc"
    trap - EXIT
    cp "$ROOT1/etc/resolv.conf" "$ROOT2/etc/resolv.conf" 2>/dev/null || rm -f "$ROOT2/etc/resolv.conf"
    rm -rf "$ROOT2"/var/cache/apt/archives/*.deb "$ROOT2"/var/cache/apt/*.bin \
        "$ROOT2"/var/lib/apt/lists/* "$ROOT2"/var/log/* "$ROOT2"/var/cache/ldconfig/aux-cache
    rm -rf "$L2"
    mkdir -p "$L2"
    rsync -a -H -c --numeric-ids --compare-dest="$ROOT1/" "$ROOT2/" "$L2/"
    # rsync recreates every directory of the tree; keep only those that hold something new.
    find "$L2" -mindepth 1 -depth -type d -empty -delete
    touch "$WORK/.rootfs2.done"
fi

# --- layers 3-5: synthetic ------------------------------------------------------------------
if [[ ! -f $WORK/.synthetic.done ]]; then
    log "generating $SMALL_FILES small files, a $BIG_MB MiB file, and the deletion layer"
    rm -rf "$L3" "$L4" "$L5"
    python3 - "$L3" "$L4" "$L5" "$SMALL_FILES" "$BIG_MB" <<'EOF'
import os, random, sys
l3, l4, l5, n, big_mb = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
rng = random.Random(20240101)
words = b"the quick brown fox jumps over a lazy dog while hoist pulls images fast ".split()
# Layer 3: 100 directories of small files; odd files random (incompressible), even files text.
for i in range(n):
    d = os.path.join(l3, "srv/small", f"d{i % 100:03d}")
    if i < 100:
        os.makedirs(d)
    size = rng.randint(1024, 8192)
    if i % 2:
        data = rng.randbytes(size)
    else:
        out = bytearray()
        while len(out) < size:
            out += rng.choice(words) + b" "
        data = bytes(out[:size])
    with open(os.path.join(d, f"f{i:06d}.dat"), "wb") as f:
        f.write(data)
# Layer 4: one large incompressible file.
os.makedirs(os.path.join(l4, "srv/big"))
with open(os.path.join(l4, "srv/big/blob.bin"), "wb") as f:
    for _ in range(big_mb):
        f.write(rng.randbytes(1 << 20))
# Layer 5: whiteouts of files and directories of earlier layers, an opaque directory.
def touch(p, data=b""):
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
touch(os.path.join(l5, "usr/share/.wh.doc"))                 # a whole tree of layer 1
touch(os.path.join(l5, "usr/share/.wh.info"))
touch(os.path.join(l5, "etc/.wh.motd"))                      # single files of layer 1
touch(os.path.join(l5, "etc/.wh.issue.net"))
touch(os.path.join(l5, "usr/bin/.wh.pydoc3"))                # a file of layer 2
for i in range(0, 200, 7):                                   # files of layer 3
    touch(os.path.join(l5, "srv/small", f"d{i % 100:03d}", f".wh.f{i:06d}.dat"))
touch(os.path.join(l5, "srv/small/.wh.d099"))                # a directory of layer 3
touch(os.path.join(l5, "srv/small/d042/.wh..wh..opq"))       # opaque: d042 emptied ...
touch(os.path.join(l5, "srv/small/d042/replaced.txt"), b"only file left in d042\n")  # ... refilled
touch(os.path.join(l5, "etc/bench-release"), b"hoist bench image\n")
EOF
    touch "$WORK/.synthetic.done"
fi

# --- tar + gzip each layer, write the layout ------------------------------------------------
rm -rf "$IMAGE.tmp"
mkdir -p "$IMAGE.tmp/blobs/sha256"
BLOBS=$IMAGE.tmp/blobs/sha256

layers=()
for spec in "$ROOT1:keep:debootstrap minbase bookworm" "$L2:keep:apt-get install python3" \
    "$L3:root:$SMALL_FILES small files" "$L4:root:one ${BIG_MB} MiB random file" \
    "$L5:root:whiteouts and an opaque directory"; do
    dir=${spec%%:*}; rest=${spec#*:}; owners=${rest%%:*}; what=${rest#*:}
    log "layer: $what"
    read -r digest size diff < <(layer_tar "$dir" "$owners" "$BLOBS")
    layers+=("$digest $size $diff $what")
done

python3 "$HERE/mklayout.py" "$IMAGE.tmp" bench '["/bin/sh"]' "${layers[@]}"

rm -rf "$IMAGE"
mv "$IMAGE.tmp" "$IMAGE"
comp=$(jq '[.layers[].size] | add' "$IMAGE/blobs/sha256/$(jq -r '.manifests[0].digest' \
    "$IMAGE/index.json" | cut -d: -f2)")
unp=$(du -sb "$ROOT1" "$L2" "$L3" "$L4" | awk '{s+=$1} END {print s}')
log "done: $IMAGE  compressed $((comp / 1000000)) MB, layers unpacked ~$((unp / 1000000)) MB"
