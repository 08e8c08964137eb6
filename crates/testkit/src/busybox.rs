//! A small runnable root filesystem: the host's static busybox with the applet links the
//! runtime tests use, users `root`, `app` (1000) and `nobody` (65534), and a sticky `/tmp`.
//! Built once per test process and cloned, since the binary is about 2 MB.

use std::sync::OnceLock;

use crate::image::{Compression, ImageBuilder, Layer};

/// Where Debian's busybox-static installs its binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// The applets linked to `/bin/busybox`.
pub const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "sleep", "ls", "id", "env", "pwd", "true", "false", "yes", "head", "dd",
    "printf",
];

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
app:x:1000:1000:app:/home/app:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";

const GROUP: &str = "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n";

/// A fixed mtime so the layer's digest is the same in every run with the same busybox.
const MTIME: u64 = 1_700_000_000;

/// True when the host has the static busybox this layer copies.
pub fn busybox_available() -> bool {
    crate::ci::have_binary(BUSYBOX)
}

/// The busybox root filesystem as a gzip layer.
///
/// # Panics
///
/// When `/bin/busybox` cannot be read; guard with
/// `require(busybox_available(), "...")` first.
pub fn busybox_rootfs_layer() -> Layer {
    static LAYER: OnceLock<Layer> = OnceLock::new();
    LAYER
        .get_or_init(|| Layer::from_tar(&busybox_tar(), Compression::Gzip))
        .clone()
}

/// An image of the busybox layer alone, with `Cmd: ["sh"]`, ready for more layers and
/// config.
pub fn busybox_image() -> ImageBuilder {
    ImageBuilder::new()
        .layer(busybox_rootfs_layer())
        .config(|c| {
            c.cmd(&["sh"]);
            c.env("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        })
}

fn busybox_tar() -> Vec<u8> {
    let binary = std::fs::read(BUSYBOX)
        .unwrap_or_else(|e| panic!("read {BUSYBOX} (install busybox-static): {e}"));
    let mut tar = tar::Builder::new(Vec::new());

    for (dir, mode, uid) in [
        ("bin", 0o755, 0),
        ("dev", 0o755, 0),
        ("etc", 0o755, 0),
        ("home", 0o755, 0),
        ("home/app", 0o755, 1000),
        ("proc", 0o555, 0),
        ("root", 0o700, 0),
        ("sys", 0o555, 0),
        ("tmp", 0o1777, 0),
    ] {
        let mut h = header(tar::EntryType::Directory, mode, uid);
        tar.append_data(&mut h, format!("{dir}/"), std::io::empty())
            .expect("tar dir");
    }

    let mut h = header(tar::EntryType::Regular, 0o755, 0);
    h.set_size(binary.len() as u64);
    tar.append_data(&mut h, "bin/busybox", binary.as_slice())
        .expect("tar busybox");

    for applet in APPLETS {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        tar.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .expect("tar link");
    }

    for (path, text) in [("etc/passwd", PASSWD), ("etc/group", GROUP)] {
        let mut h = header(tar::EntryType::Regular, 0o644, 0);
        h.set_size(text.len() as u64);
        tar.append_data(&mut h, path, text.as_bytes())
            .expect("tar file");
    }
    tar.into_inner().expect("tar finishes")
}

fn header(kind: tar::EntryType, mode: u32, uid: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(uid);
    h.set_mtime(MTIME);
    h.set_size(0);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_lists_busybox_links_and_users() {
        if !crate::require(busybox_available(), "busybox-static is not installed") {
            return;
        }
        let tar = busybox_tar();
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            if name == "bin/sh" {
                assert_eq!(
                    entry.link_name().unwrap().unwrap().to_str(),
                    Some("busybox")
                );
            }
            if name == "tmp/" {
                assert_eq!(entry.header().mode().unwrap(), 0o1777);
            }
            names.push(name);
        }
        assert!(names.contains(&"bin/busybox".to_string()));
        assert!(names.contains(&"etc/passwd".to_string()));
        assert!(APPLETS.iter().all(|a| names.contains(&format!("bin/{a}"))));
    }
}
