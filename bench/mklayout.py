"""Write the config, manifest, index.json and oci-layout of an OCI image layout whose layer blobs
are already in OUT/blobs/sha256.

usage: mklayout.py OUT REF_NAME CMD_JSON "DIGEST SIZE DIFF_ID WHAT" ...
(digests as bare hex; WHAT becomes the layer's history entry).
"""

import hashlib
import json
import os
import sys


def main():
    out, ref_name, cmd, specs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4:]
    blobs = os.path.join(out, "blobs", "sha256")

    def put(obj):
        data = json.dumps(obj, indent=2, sort_keys=True).encode() + b"\n"
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, digest), "wb") as f:
            f.write(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    layers, diff_ids, history = [], [], []
    for spec in specs:
        digest, size, diff, what = spec.split(" ", 3)
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                       "digest": f"sha256:{digest}", "size": int(size)})
        diff_ids.append(f"sha256:{diff}")
        history.append({"created": "2024-01-01T00:00:00Z", "created_by": f"bench: {what}"})
    config = {
        "created": "2024-01-01T00:00:00Z", "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": cmd, "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": history,
    }
    cdesc = put(config)
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cdesc},
                "layers": layers}
    mdesc = put(manifest)
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", **mdesc,
                            "annotations": {"org.opencontainers.image.ref.name": ref_name},
                            "platform": {"architecture": "amd64", "os": "linux"}}]}
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f, indent=2)
    with open(os.path.join(out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)


if __name__ == "__main__":
    main()
