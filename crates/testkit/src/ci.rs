//! The rule for tests whose prerequisites may be missing: outside CI they skip with a printed
//! reason; under `CI=true` a missing prerequisite fails the test, so CI cannot go green by
//! skipping everything.
//!
//! [`require`] applies the rule using the environment; [`decide`] is the same rule as a pure
//! function, so the rule itself can be tested without touching the environment.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// True when the environment variable `CI` is exactly `true`.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// What a test does about one prerequisite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The prerequisite holds: go on.
    Run,
    /// It does not, and we are not in CI: return early.
    Skip,
    /// It does not, and we are in CI: fail.
    Fail,
}

/// The rule without side effects: `cond` is whether the prerequisite holds.
pub fn decide(cond: bool, in_ci: bool) -> Verdict {
    match (cond, in_ci) {
        (true, _) => Verdict::Run,
        (false, false) => Verdict::Skip,
        (false, true) => Verdict::Fail,
    }
}

/// Returns `true` when `cond` holds. Otherwise, outside CI, prints `skipped: <why>` to stderr
/// and returns `false` (the test then returns early); under `CI=true` it panics with
/// `required in CI: <why>`.
///
/// ```no_run
/// if !hoist_testkit::require(hoist_testkit::ci::have_binary("runc"), "runc is not installed") {
///     return;
/// }
/// ```
pub fn require(cond: bool, why: &str) -> bool {
    match decide(cond, ci()) {
        Verdict::Run => true,
        Verdict::Skip => {
            eprintln!("skipped: {why}");
            false
        }
        Verdict::Fail => panic!("required in CI: {why}"),
    }
}

/// True when this process runs with effective uid 0. Read from the owner of `/proc/self`,
/// which the kernel sets to the process's effective uid, so no libc call is needed.
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// True when `name` is an executable file: as given when it contains a `/`, otherwise found
/// in one of the directories of `PATH` (and the sbin directories, which a non-login root
/// shell may lack).
pub fn have_binary(name: &str) -> bool {
    which(name).is_some()
}

/// The path `have_binary` found, if any.
pub fn which(name: &str) -> Option<std::path::PathBuf> {
    if name.contains('/') {
        return is_executable(Path::new(name)).then(|| name.into());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/local/sbin", "/usr/sbin", "/sbin"].map(std::path::PathBuf::from);
    std::env::split_paths(&path)
        .chain(extra)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_runs_skips_or_fails() {
        assert_eq!(decide(true, false), Verdict::Run);
        assert_eq!(decide(true, true), Verdict::Run);
        assert_eq!(decide(false, false), Verdict::Skip);
        assert_eq!(decide(false, true), Verdict::Fail);
    }

    #[test]
    fn finds_binaries() {
        assert!(have_binary("sh"));
        assert!(have_binary("/bin/sh"));
        assert!(!have_binary("hoist-testkit-no-such-binary"));
        assert!(!have_binary("/etc/passwd"));
    }
}
