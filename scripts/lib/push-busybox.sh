# shellcheck shell=bash
# push_busybox_image HOST REPO TAG WORKDIR: builds a one-layer image from Debian's
# busybox-static (the binary plus the applet links a shell needs, and an /etc/passwd) and
# pushes it to a plain-HTTP registry with the distribution API, using only curl and coreutils.

push_blob() { # host repo file -> pushes the file as a blob named by its sha256
  local host=$1 repo=$2 file=$3 digest location
  digest=sha256:$(sha256sum "$file" | cut -d' ' -f1)
  if curl -fsI "http://$host/v2/$repo/blobs/$digest" >/dev/null; then return; fi
  location=$(curl -fsS -X POST -D - -o /dev/null "http://$host/v2/$repo/blobs/uploads/" \
    | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
  case $location in http*) ;; *) location="http://$host$location" ;; esac
  case $location in *\?*) location="$location&digest=$digest" ;; *) location="$location?digest=$digest" ;; esac
  curl -fsS -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$file" \
    "$location" >/dev/null
}

push_busybox_image() {
  local host=$1 repo=$2 tag=$3 work=$4 root applet
  root=$work/busybox-rootfs
  rm -rf "$root" && mkdir -p "$root/bin" "$root/etc" "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  for applet in sh echo cat ls sleep env id true false printf head yes; do
    ln -sf busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' \
    >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  chmod 1777 "$root/tmp"

  tar -C "$root" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$work/layer.tar" .
  local diff_id size config manifest
  diff_id=sha256:$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
  gzip -n -f "$work/layer.tar"
  size=$(stat -c %s "$work/layer.tar.gz")
  printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["%s"]}}' \
    "$diff_id" >"$work/config.json"
  push_blob "$host" "$repo" "$work/layer.tar.gz"
  push_blob "$host" "$repo" "$work/config.json"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
    "$(sha256sum "$work/config.json" | cut -d' ' -f1)" "$(stat -c %s "$work/config.json")" \
    "$(sha256sum "$work/layer.tar.gz" | cut -d' ' -f1)" "$size" >"$work/manifest.json"
  curl -fsS -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary "@$work/manifest.json" "http://$host/v2/$repo/manifests/$tag" >/dev/null
  echo "pushed $host/$repo:$tag (one busybox layer, $size bytes)"
}
