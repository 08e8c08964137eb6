//! The table machinery of the unpack-level hostile suite: layers written as lists of
//! entries ([`E`]), cases ([`Case`]) saying what must happen, and [`run_all`], which applies
//! each case into a fresh fixture and checks the error (or the snapshot) and the canary.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use hoist_image::unpack::{
    AppliedLayer, ApplyOptions, Refusal, UnpackError, apply_layer, resolve_pending_hardlinks,
};
use oci::Compression;
use tar::EntryType;
use testkit::layer::{LayerBuilder, Meta, RawEntry, pax_record};

use crate::canary::{self, Fixture};

/// The label a layer is applied with, as a pull passes the layer digest.
pub const LABEL: &str = "sha256:4a1c0ffee0000000000000000000000000000000000000000000000000000000";

/// One tar entry. Names and targets are written byte for byte after `@C` is replaced by the
/// canary's absolute path.
#[derive(Debug, Clone, Copy)]
pub enum E {
    Dir(&'static str),
    DirMode(&'static str, u32),
    File(&'static str, &'static [u8]),
    FileMode(&'static str, &'static [u8], u32),
    Sym(&'static str, &'static str),
    /// A symlink carrying an xattr, which would land on the target if it were followed.
    SymXattr(&'static str, &'static str, &'static str),
    Hard(&'static str, &'static str),
    Fifo(&'static str),
    Char(&'static str, u32, u32),
    Block(&'static str, u32, u32),
    /// Any type with this exact name and no data.
    Raw(EntryType, &'static str),
    /// A regular file declaring `.1` bytes and holding `.2`.
    Sized(&'static str, u64, usize),
    /// A PAX header with one record, which applies to the next entry.
    Pax(&'static str, &'static str),
}

pub fn build(fx: &Fixture, entries: &[E]) -> Vec<u8> {
    let x = |s: &str| fx.expand(s).into_bytes();
    let mut b = LayerBuilder::new();
    for e in entries {
        let entry = match *e {
            E::Dir(p) => RawEntry::new(EntryType::Directory, dir(x(p))),
            E::DirMode(p, m) => {
                RawEntry::new(EntryType::Directory, dir(x(p))).meta(Meta::new().mode(m))
            }
            E::File(p, d) => RawEntry::new(EntryType::Regular, x(p)).data(d),
            E::FileMode(p, d, m) => RawEntry::new(EntryType::Regular, x(p))
                .data(d)
                .meta(Meta::new().mode(m)),
            E::Sym(p, t) => RawEntry::new(EntryType::Symlink, x(p)).link_name(x(t)),
            E::SymXattr(p, t, name) => RawEntry::new(EntryType::Symlink, x(p))
                .link_name(x(t))
                .meta(Meta::new().xattr(name, b"hostile")),
            E::Hard(p, t) => RawEntry::new(EntryType::Link, x(p)).link_name(x(t)),
            E::Fifo(p) => RawEntry::new(EntryType::Fifo, x(p)),
            E::Char(p, ma, mi) => RawEntry::new(EntryType::Char, x(p)).device(ma, mi),
            E::Block(p, ma, mi) => RawEntry::new(EntryType::Block, x(p)).device(ma, mi),
            E::Raw(kind, p) => RawEntry::new(kind, x(p)),
            E::Sized(p, declared, held) => RawEntry::new(EntryType::Regular, x(p))
                .data(vec![b'z'; held])
                .declared_size(declared),
            E::Pax(key, value) => RawEntry::new(EntryType::XHeader, &b"././@PaxHeader"[..])
                .data(pax_record(key.as_bytes(), &x(value))),
        };
        b = b.raw(entry);
    }
    b.build()
}

/// A directory's name as tar tools write it, with a trailing `/`.
fn dir(mut name: Vec<u8>) -> Vec<u8> {
    if !name.ends_with(b"/") {
        name.push(b'/');
    }
    name
}

/// A check of an applied snapshot: `Err` says what is wrong.
pub type Check = fn(&Fixture, &Path, &AppliedLayer) -> Result<(), String>;

/// What a case must do.
pub enum Want {
    /// Refused: the entry as written (before `@C` is expanded), and the reason.
    Refused(&'static str, fn(&Refusal) -> bool),
    /// Another error, whose message holds this text (expanded), of this kind.
    Fails(&'static str, fn(&UnpackError) -> bool),
    /// Applied, and the snapshot passes the check.
    Applies(Check),
}

pub struct Case {
    pub name: &'static str,
    /// Layers applied below this one, bottom first; each must apply cleanly.
    pub lowers: &'static [&'static [E]],
    pub layer: &'static [E],
    pub opts: fn(&mut ApplyOptions),
    pub want: Want,
}

pub fn refused(
    name: &'static str,
    layer: &'static [E],
    entry: &'static str,
    reason: fn(&Refusal) -> bool,
) -> Case {
    case(name, layer, Want::Refused(entry, reason))
}

pub fn applies(name: &'static str, layer: &'static [E], check: Check) -> Case {
    case(name, layer, Want::Applies(check))
}

pub fn case(name: &'static str, layer: &'static [E], want: Want) -> Case {
    Case {
        name,
        lowers: &[],
        layer,
        opts: |_| {},
        want,
    }
}

impl Case {
    pub fn lowers(mut self, lowers: &'static [&'static [E]]) -> Case {
        self.lowers = lowers;
        self
    }

    pub fn opts(mut self, opts: fn(&mut ApplyOptions)) -> Case {
        self.opts = opts;
        self
    }
}

/// Runs every case and panics naming each one that failed, with what went wrong.
pub fn run_all(cases: Vec<Case>) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| run(c).err().map(|e| format!("case {}: {e}", c.name)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Applies the lowers and the layer (and its pending hardlinks, as a pull does) into a fresh
/// fixture, then checks the outcome and the canary.
fn run(case: &Case) -> Result<(), String> {
    let fx = Fixture::new();
    let before = fx.state();
    let mut lowers: Vec<PathBuf> = Vec::new();
    for (i, lower) in case.lowers.iter().enumerate() {
        let dir = fx.snapshot_dir(&format!("lower-{i}"));
        let opts = ApplyOptions::new(format!("lower-{i}"));
        apply_layer(&build(&fx, lower)[..], Compression::None, &dir, &opts)
            .map_err(|e| format!("lower layer {i} failed: {e}"))?;
        lowers.insert(0, dir);
    }
    let dest = fx.snapshot_dir("top");
    let mut opts = ApplyOptions::new(LABEL);
    (case.opts)(&mut opts);
    let outcome = apply_layer(&build(&fx, case.layer)[..], Compression::None, &dest, &opts)
        .and_then(|applied| {
            let pending = &applied.pending_hardlinks;
            resolve_pending_hardlinks(&dest, &lowers, pending, LABEL).map(|()| applied)
        });

    let canary = canary::diff(&before, &fx.state());
    let checked = check(&fx, &dest, &case.want, outcome);
    match (canary, checked) {
        (None, r) => r,
        (Some(d), Ok(())) => Err(format!("the canary changed:\n  {d}")),
        (Some(d), Err(e)) => Err(format!("{e}; and the canary changed:\n  {d}")),
    }
}

fn check(
    fx: &Fixture,
    dest: &Path,
    want: &Want,
    outcome: Result<AppliedLayer, UnpackError>,
) -> Result<(), String> {
    match (want, outcome) {
        (Want::Applies(check), Ok(applied)) => check(fx, dest, &applied),
        (Want::Applies(_), Err(e)) => Err(format!("expected to apply, got: {e}")),
        (_, Ok(_)) => Err("expected an error, the layer applied".to_string()),
        (Want::Refused(entry, reason), Err(e)) => {
            let entry = fx.expand(entry);
            let text = e.to_string();
            let named = text.contains(LABEL) && text.contains(&format!("{entry:?}"));
            match &e {
                UnpackError::Refused {
                    layer,
                    entry: got,
                    reason: r,
                } if layer == LABEL && *got == entry && reason(r) && named => Ok(()),
                _ => Err(format!("expected entry {entry:?} refused, got {e:?}: {e}")),
            }
        }
        (Want::Fails(holds, kind), Err(e)) => {
            let holds = fx.expand(holds);
            let text = e.to_string();
            if kind(&e) && text.contains(LABEL) && text.contains(&holds) {
                Ok(())
            } else {
                Err(format!(
                    "expected an error holding {holds:?}, got {e:?}: {e}"
                ))
            }
        }
    }
}

/// Checks for [`Want::Applies`] cases: the kind of a path in the snapshot.
pub fn kind_at(dest: &Path, path: &str) -> Result<&'static str, String> {
    let meta = std::fs::symlink_metadata(dest.join(path))
        .map_err(|e| format!("{path:?} in the snapshot: {e}"))?;
    let ft = meta.file_type();
    Ok(match () {
        _ if ft.is_dir() => "dir",
        _ if ft.is_file() => "file",
        _ if ft.is_symlink() => "symlink",
        _ if ft.is_fifo() => "fifo",
        _ if ft.is_char_device() => "char",
        _ if ft.is_block_device() => "block",
        _ => "other",
    })
}

/// `Ok` when `cond` holds, else `Err(what)`.
pub fn ensure(cond: bool, what: impl Into<String>) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what.into()) }
}

// Reasons a case expects an entry refused for.

pub fn dotdot(r: &Refusal) -> bool {
    matches!(r, Refusal::DotDot)
}

pub fn via_symlink(r: &Refusal) -> bool {
    matches!(r, Refusal::SymlinkOnPath { .. })
}

pub fn replaces_root(r: &Refusal) -> bool {
    matches!(r, Refusal::ReplacesRoot)
}

pub fn bad_whiteout(r: &Refusal) -> bool {
    matches!(r, Refusal::BadWhiteout { .. })
}

pub fn bad_target(r: &Refusal) -> bool {
    matches!(r, Refusal::BadLinkTarget { .. })
}

pub fn target_via_symlink(r: &Refusal) -> bool {
    matches!(r, Refusal::BadLinkTarget { why, .. } if why.contains("symlink"))
}

pub fn target_dotdot(r: &Refusal) -> bool {
    matches!(r, Refusal::BadLinkTarget { why, .. } if why.contains("`..`"))
}
