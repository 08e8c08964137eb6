//! The hostile-layer cases about hardlinks, whiteouts, device nodes and size limits; a
//! module of `hostile.rs`, whose header says what unpack does with each kind of entry.

use std::os::unix::fs::MetadataExt;

use hoist_image::unpack::{ApplyOptions, DevicePolicy, Limits, Refusal, UnpackError};

use crate::harness::{E::*, Want, applies, case, ensure, kind_at, refused, run_all};
use crate::harness::{bad_whiteout, target_dotdot, target_via_symlink, via_symlink};

#[test]
fn hardlinks_to_outside() {
    run_all(vec![
        refused(
            "hardlink to ../",
            &[Hard("h", "../../../canary/f")],
            "h",
            target_dotdot,
        ),
        case(
            "hardlink to an absolute path outside the layer",
            &[Hard("h", "@C/f")],
            Want::Fails("\"h\"", |e| {
                matches!(e, UnpackError::HardlinkTargetMissing { .. })
            }),
        ),
        applies(
            "hardlink to an absolute path the layer itself holds",
            &[File("@C/f", b"mine"), Hard("h", "@C/f")],
            |_, d, _| {
                let meta = std::fs::metadata(d.join("h")).map_err(|e| e.to_string())?;
                ensure(meta.nlink() == 2, "h linked to the layer's own copy")
            },
        ),
        refused(
            "hardlink through a symlinked dir",
            &[Sym("l", "@C"), Hard("h", "l/f")],
            "h",
            target_via_symlink,
        ),
        refused(
            "hardlink through a relative symlink",
            &[Sym("l", "../../../canary"), Hard("h", "l/f")],
            "h",
            target_via_symlink,
        ),
        refused(
            "hardlink through a lower layer's symlink",
            &[Hard("h", "l/f")],
            "h",
            target_via_symlink,
        )
        .lowers(&[&[Sym("l", "@C")]]),
        refused(
            "hardlink placed through a symlink",
            &[File("t", b"t"), Sym("l", "@C"), Hard("l/h", "t")],
            "l/h",
            via_symlink,
        ),
        refused(
            "hardlink to ../ in a PAX linkpath",
            &[Pax("linkpath", "../x"), Hard("h", "t")],
            "h",
            target_dotdot,
        ),
        applies(
            "hardlink to a symlink to the canary links the symlink",
            &[Sym("s", "@C/f"), Hard("h", "s")],
            |_, d, _| ensure(kind_at(d, "h")? == "symlink", "h is the symlink"),
        ),
        applies(
            "hardlink to a lower layer's symlink to the canary copies the symlink",
            &[Hard("h", "s")],
            |_, d, _| ensure(kind_at(d, "h")? == "symlink", "h is a symlink"),
        )
        .lowers(&[&[Sym("s", "@C/f")]]),
        refused(
            "a pending hardlink whose directory a later entry made a symlink",
            &[Hard("d/h", "t"), Sym("d", "@C")],
            "d/h",
            via_symlink,
        )
        .lowers(&[&[File("t", b"lower")]]),
        refused(
            "a pending hardlink to a lower file through this layer's symlink",
            &[Sym("l", "@C"), Hard("h", "l/f")],
            "h",
            target_via_symlink,
        )
        .lowers(&[&[Dir("l"), File("l/f", b"lower")]]),
    ]);
}

#[test]
fn whiteouts() {
    run_all(vec![
        refused(".wh.", &[File(".wh.", b"")], ".wh.", bad_whiteout),
        refused(".wh..", &[File(".wh..", b"")], ".wh..", bad_whiteout),
        refused(".wh...", &[File(".wh...", b"")], ".wh...", bad_whiteout),
        refused(
            "d/.wh..",
            &[Dir("d"), File("d/.wh..", b"")],
            "d/.wh..",
            bad_whiteout,
        ),
        refused(
            "a directory named .wh..",
            &[Dir(".wh..")],
            ".wh../",
            bad_whiteout,
        ),
        refused(
            "whiteout under a symlinked parent",
            &[Sym("link", "@C"), File("link/.wh.f", b"")],
            "link/.wh.f",
            via_symlink,
        ),
        refused(
            "whiteout under a relative symlinked parent",
            &[Sym("link", "../../../canary"), File("link/.wh.dir", b"")],
            "link/.wh.dir",
            via_symlink,
        ),
        refused(
            "opaque marker under a symlinked parent",
            &[Sym("link", "@C/dir"), File("link/.wh..wh..opq", b"")],
            "link/.wh..wh..opq",
            via_symlink,
        ),
        // The documented shortcoming: below a lower layer's symlink, a layer gets its own
        // directory (hiding the symlink in the merged view) rather than following it.
        applies(
            "whiteout under a lower layer's symlink stays in this snapshot",
            &[File("link/.wh.f", b"")],
            |_, d, _| ensure(kind_at(d, "link")? == "dir", "link is this layer's own dir"),
        )
        .lowers(&[&[Sym("link", "@C")]]),
        applies(
            "whiteout of a symlink to the canary deletes nothing",
            &[Sym("l", "@C/dir"), File(".wh.l", b"")],
            |_, d, _| ensure(kind_at(d, "l")? == "symlink", "l is still the symlink"),
        ),
        applies(
            "whiteout at the canary's absolute path stays in the snapshot",
            &[File("@C/.wh.f", b""), File("@C/dir/.wh..wh..opq", b"")],
            |fx, d, _| {
                let inside = d.join(fx.canary.strip_prefix("/").unwrap());
                ensure(
                    kind_at(&inside, "dir")? == "dir",
                    "the opaque dir is in the snapshot",
                )
            },
        ),
    ]);
}

#[test]
fn device_nodes_follow_the_policy() {
    fn refuse(o: &mut ApplyOptions) {
        o.devices = DevicePolicy::Refuse;
    }
    let device = |r: &Refusal| matches!(r, Refusal::Device);
    run_all(vec![
        applies(
            "char and block devices are skipped by default",
            &[
                Char("dev/mem", 1, 1),
                Block("dev/sda", 8, 0),
                Char("@C/f", 1, 3),
            ],
            |_, d, applied| {
                ensure(applied.skipped_devices == 3, "three devices skipped")?;
                ensure(
                    !d.join("dev/mem").exists() && !d.join("dev/sda").exists(),
                    "none made",
                )
            },
        ),
        applies(
            "a device through a symlink is skipped before its path is looked at",
            &[Sym("l", "@C"), Char("l/null", 1, 3)],
            |_, _, applied| ensure(applied.skipped_devices == 1, "one device skipped"),
        ),
        applies("fifos are created", &[Fifo("run/p")], |_, d, _| {
            ensure(kind_at(d, "run/p")? == "fifo", "run/p is a fifo")
        }),
        refused(
            "char device, policy Refuse",
            &[Char("dev/mem", 1, 1)],
            "dev/mem",
            device,
        )
        .opts(refuse),
        refused(
            "block device, policy Refuse",
            &[Block("dev/sda", 8, 0)],
            "dev/sda",
            device,
        )
        .opts(refuse),
    ]);
}

#[test]
fn sizes_are_bounded() {
    let limit = |e: &UnpackError| matches!(e, UnpackError::Limit { .. });
    run_all(vec![
        case(
            "a declared size far past the data",
            &[Sized("big", 1 << 40, 16)],
            Want::Fails("entry \"big\": read file data failed", |e| {
                matches!(e, UnpackError::Entry { source, .. }
                    if source.kind() == std::io::ErrorKind::UnexpectedEof)
            }),
        ),
        case(
            "file content past the unpacked limit",
            &[File("a", &[1; 3000])],
            Want::Fails("the unpacked size exceeds the limit of 1024", limit),
        )
        .opts(|o| o.limits.max_unpacked_bytes = 1024),
        case(
            "more entries than the limit",
            &[File("a", b""), File("b", b""), File("c", b"")],
            Want::Fails("the number of entries exceeds the limit of 2", limit),
        )
        .opts(|o| o.limits.max_entries = 2),
        case(
            "a stream past the tar limit",
            &[File("a", &[1; 8192])],
            Want::Fails("the uncompressed layer stream exceeds the limit", limit),
        )
        .opts(|o| o.limits.max_tar_bytes = 4096),
        refused(
            "a name past the path limit",
            &[File("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", b"")],
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            |r| matches!(r, Refusal::PathTooLong { len: 40, limit: 32 }),
        )
        .opts(|o| {
            o.limits = Limits {
                max_path_len: 32,
                ..Limits::default()
            }
        }),
    ]);
}

#[test]
fn created_device_nodes_stay_in_the_snapshot() {
    if !testkit::require(testkit::ci::is_root(), "creating device nodes needs root") {
        return;
    }
    fn create(o: &mut ApplyOptions) {
        o.devices = DevicePolicy::Create;
    }
    run_all(vec![
        applies(
            "policy Create makes the node in the snapshot",
            &[Char("dev/null", 1, 3), Block("@C/f", 7, 0)],
            |fx, d, applied| {
                let inside = d.join(fx.canary.strip_prefix("/").unwrap());
                ensure(applied.skipped_devices == 0, "nothing skipped")?;
                ensure(
                    kind_at(d, "dev/null")? == "char",
                    "dev/null is a char device",
                )?;
                ensure(
                    kind_at(&inside, "f")? == "block",
                    "the block device is inside",
                )
            },
        )
        .opts(create),
        refused(
            "policy Create does not make a node through a symlink",
            &[Sym("l", "@C"), Char("l/null", 1, 3)],
            "l/null",
            via_symlink,
        )
        .opts(create),
        refused(
            "policy Create does not replace the root",
            &[Char(".", 1, 3)],
            ".",
            |r| matches!(r, Refusal::ReplacesRoot),
        )
        .opts(create),
    ]);
}
