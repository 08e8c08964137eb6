//! The hostile-layer suite at the unpack level (issue 2, point 6): every way a layer might
//! create, change or delete something outside its snapshot, each applied into a snapshot of
//! a fresh data directory with a canary tree beside it, asserting the error (variant, layer
//! and entry) or the snapshot, and that the canary is unchanged. Paths, symlinks and the
//! root are here; hardlinks, whiteouts, devices and size limits in `hostile/special.rs`;
//! the fixture in `hostile/canary.rs` and the table runner in `hostile/harness.rs`.
//! `hostile_pull.rs` takes a few of these cases through a real registry and pull.
//!
//! What unpack does with each kind of entry, as these cases pin it:
//! - a leading `/` is dropped, as docker does, so `/x` and even the canary's absolute path
//!   land inside the snapshot; any `..` component is refused, in names and link targets;
//! - nothing is ever written through a symlink, inside or outside the layer, its own or a
//!   lower layer's: an entry with a symlink on its path is refused, an entry named like a
//!   symlink replaces it, and a hardlink target behind a symlink is refused;
//! - `.`, `./` and `/` as directories set the root's metadata (real tars have `./`); as
//!   anything else they are refused, as are whiteouts that name nothing;
//! - character and block devices are skipped by default (`DevicePolicy::Skip`), refused
//!   under `Refuse`, made inside the snapshot under `Create`; FIFOs are created.

#[path = "hostile/canary.rs"]
mod canary;
#[path = "hostile/harness.rs"]
mod harness;
#[path = "hostile/special.rs"]
mod special;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use tar::EntryType;

use harness::{E::*, applies, ensure, kind_at, refused, run_all};
use harness::{bad_target, bad_whiteout, dotdot, replaces_root, via_symlink};

#[test]
fn absolute_and_dotdot_paths() {
    run_all(vec![
        applies(
            "absolute /x lands in the snapshot",
            &[File("/x", b"abs")],
            |_, d, _| {
                ensure(
                    std::fs::read(d.join("x")).ok().as_deref() == Some(b"abs"),
                    "x != abs",
                )
            },
        ),
        applies(
            "the canary's absolute path lands in the snapshot",
            &[
                File("@C/f", b"pwned"),
                Dir("@C/dir"),
                Sym("@C/link", "/etc/shadow"),
            ],
            |fx, d, _| {
                let inside = d.join(fx.canary.strip_prefix("/").unwrap());
                let f = std::fs::read(inside.join("f")).map_err(|e| e.to_string())?;
                ensure(f == b"pwned", "f inside the snapshot")?;
                ensure(
                    kind_at(&inside, "link")? == "symlink",
                    "link inside the snapshot",
                )
            },
        ),
        refused("../x", &[File("../x", b"x")], "../x", dotdot),
        refused(
            "a/../../x",
            &[Dir("a"), File("a/../../x", b"x")],
            "a/../../x",
            dotdot,
        ),
        refused("/../../x", &[File("/../../x", b"x")], "/../../x", dotdot),
        refused(
            "a/.. that stays inside",
            &[File("a/../x", b"x")],
            "a/../x",
            dotdot,
        ),
        refused(
            "../ into the canary",
            &[File("../../../canary/f", b"x")],
            "../../../canary/f",
            dotdot,
        ),
        refused(
            "../ directory",
            &[Dir("../../../canary/new")],
            "../../../canary/new/",
            dotdot,
        ),
        refused(
            "../ in a GNU long name",
            &[File(LONG_DOTDOT, b"x")],
            LONG_DOTDOT,
            dotdot,
        ),
        refused(
            "../ in a PAX path",
            &[Pax("path", "../../../canary/f"), File("innocent", b"x")],
            "../../../canary/f",
            dotdot,
        ),
        refused(
            "../ as a symlink name",
            &[Sym("../../../canary/f", "/etc/passwd")],
            "../../../canary/f",
            dotdot,
        ),
        refused(
            "../ as a fifo name",
            &[Fifo("../../../canary/p")],
            "../../../canary/p",
            dotdot,
        ),
    ]);
}

const LONG_DOTDOT: &str = "a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z/a/b/c/d/e/f/g/h/i/j/\
                           ../../../../../../../../../../../../../../../../../../../../../../../../\
                           ../../../../../../../../../../../../../../../canary/f";

#[test]
fn writes_through_symlinks() {
    run_all(vec![
        refused(
            "absolute symlink to a dir, then a file through it",
            &[Sym("l", "@C"), File("l/pwned", b"x")],
            "l/pwned",
            via_symlink,
        ),
        refused(
            "absolute symlink, then an existing file overwritten through it",
            &[Sym("l", "@C"), File("l/f", b"x")],
            "l/f",
            via_symlink,
        ),
        refused(
            "relative ../../.. symlink, then a write through it",
            &[Sym("up", "../../.."), File("up/canary/pwned", b"x")],
            "up/canary/pwned",
            via_symlink,
        ),
        refused(
            "chained symlinks a -> b -> canary, then a write",
            &[
                Sym("a", "b"),
                Sym("b", "../../../canary"),
                File("a/f", b"x"),
            ],
            "a/f",
            via_symlink,
        ),
        refused(
            "symlink deep in the path",
            &[Dir("d"), Sym("d/root", "/"), File("d/root/tmp/pwned", b"x")],
            "d/root/tmp/pwned",
            via_symlink,
        ),
        refused(
            "symlink to a dir inside the layer is not written through either",
            &[Dir("real"), Sym("l", "real"), File("l/f", b"x")],
            "l/f",
            via_symlink,
        ),
        refused(
            "directory through a symlink",
            &[Sym("l", "@C"), Dir("l/new")],
            "l/new/",
            via_symlink,
        ),
        refused(
            "fifo through a symlink",
            &[Sym("l", "@C"), Fifo("l/p")],
            "l/p",
            via_symlink,
        ),
        refused(
            "symlink through a symlink",
            &[Sym("l", "@C"), Sym("l/f", "/etc/passwd")],
            "l/f",
            via_symlink,
        ),
        refused(
            "a dir replaced by a symlink, then a write to the old dir",
            &[
                Dir("d"),
                File("d/a", b"a"),
                Sym("d", "@C"),
                File("d/f", b"x"),
            ],
            "d/f",
            via_symlink,
        ),
        applies(
            "a file entry replaces a symlink to a canary file",
            &[Sym("s", "@C/f"), FileMode("s", b"mine", 0o4777)],
            |_, d, _| ensure(kind_at(d, "s")? == "file", "s is a regular file now"),
        ),
    ]);
}

#[test]
fn chmod_and_metadata_through_symlinks() {
    run_all(vec![
        applies(
            "a dir entry at a symlink's name replaces the symlink",
            &[Sym("l", "@C/dir"), DirMode("l", 0o777)],
            |_, d, _| {
                let mode = std::fs::symlink_metadata(d.join("l")).unwrap().mode();
                ensure(
                    kind_at(d, "l")? == "dir" && mode & 0o7777 == 0o777,
                    "l is a 0777 dir",
                )
            },
        ),
        applies(
            "a dir's deferred mode is not set through the symlink that replaced it",
            &[DirMode("d", 0o777), Sym("d", "@C/dir")],
            |_, d, _| ensure(kind_at(d, "d")? == "symlink", "d is the symlink"),
        ),
        applies(
            "the root's deferred mode is set on the root, not through anything",
            &[DirMode(".", 0o700), Sym("x", "@C")],
            |_, d, _| {
                let mode = std::fs::metadata(d).unwrap().mode() & 0o7777;
                ensure(mode == 0o700, format!("root mode {mode:o}"))
            },
        ),
        refused(
            "a dir entry with a new mode under a symlink",
            &[Sym("l", "@C"), DirMode("l/dir", 0o777)],
            "l/dir/",
            via_symlink,
        ),
        refused(
            "a file entry with a new mode under a symlink",
            &[Sym("l", "@C"), FileMode("l/secret", b"", 0o4777)],
            "l/secret",
            via_symlink,
        ),
        applies(
            "a symlink's xattr stays on the symlink",
            &[SymXattr("s", "@C/f", "trusted.hoist-hostile")],
            |_, d, _| ensure(kind_at(d, "s")? == "symlink", "s is a symlink"),
        ),
        applies(
            "a symlink re-declared keeps no mode and follows nothing",
            &[Sym("s", "@C/secret"), Sym("s", "@C/secret")],
            |_, d, _| ensure(kind_at(d, "s")? == "symlink", "s is a symlink"),
        ),
    ]);
}

#[test]
fn entries_that_would_replace_the_root() {
    run_all(vec![
        applies("directory .", &[DirMode(".", 0o750)], |_, d, _| {
            root_mode(d, 0o750)
        }),
        applies("directory ./", &[DirMode("./", 0o751)], |_, d, _| {
            root_mode(d, 0o751)
        }),
        applies("directory /", &[DirMode("/", 0o711)], |_, d, _| {
            root_mode(d, 0o711)
        }),
        refused(
            "file .",
            &[Raw(EntryType::Regular, ".")],
            ".",
            replaces_root,
        ),
        refused(
            "file ./",
            &[Raw(EntryType::Regular, "./")],
            "./",
            replaces_root,
        ),
        refused(
            "file /",
            &[Raw(EntryType::Regular, "/")],
            "/",
            replaces_root,
        ),
        refused(
            "file with an empty name",
            &[Raw(EntryType::Regular, "")],
            "",
            replaces_root,
        ),
        refused("symlink .", &[Sym(".", "@C")], ".", replaces_root),
        refused("symlink /", &[Sym("/", "/")], "/", replaces_root),
        refused(
            "hardlink ./",
            &[File("t", b"t"), Hard("./", "t")],
            "./",
            replaces_root,
        ),
        refused("fifo .", &[Fifo(".")], ".", replaces_root),
        refused(
            "whiteout of the root",
            &[File("/.wh.", b"")],
            "/.wh.",
            bad_whiteout,
        ),
        refused("hardlink to the root", &[Hard("h", "./")], "h", bad_target),
    ]);
}

fn root_mode(dest: &Path, mode: u32) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(dest).map_err(|e| e.to_string())?;
    let got = meta.mode() & 0o7777;
    ensure(
        meta.is_dir() && got == mode,
        format!("root: dir {} mode {got:o}", meta.is_dir()),
    )
}
