//! Keys as byte ranges. A prefix is the half-open range `[prefix, prefix_end(prefix))` in
//! byte order, which is how both SQLite (keys stored as BLOBs) and etcd (`range_end`) scan,
//! and a list that continues after a key starts at that key's [`successor`]. No IO here.

use crate::error::{Result, StoreError};

/// The first byte string after every string that starts with `prefix`, or `None` when there
/// is none (an empty prefix, which matches every key).
///
/// The last byte that is not `0xff` is incremented and everything after it dropped. Keys are
/// UTF-8, so `0xff` never occurs in them; the loop only matters for arbitrary bytes.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The smallest byte string greater than `key`: the key followed by a zero byte. A scan from
/// it inclusive is a scan after `key` exclusive.
pub fn successor(key: &str) -> Vec<u8> {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key.as_bytes());
    next.push(0);
    next
}

/// The range a list or watch of `prefix` scans, starting after `start_after` when it is given
/// and inside the prefix. `start` is inclusive, `end` exclusive, `None` unbounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    pub start: Vec<u8>,
    pub end: Option<Vec<u8>>,
}

impl KeyRange {
    /// Every key that starts with `prefix`.
    pub fn prefix(prefix: &str) -> Self {
        KeyRange {
            start: prefix.as_bytes().to_vec(),
            end: prefix_end(prefix.as_bytes()),
        }
    }

    /// The keys of `prefix` after `start_after`. A `start_after` before the prefix changes
    /// nothing; one after it leaves an empty range.
    pub fn prefix_after(prefix: &str, start_after: Option<&str>) -> Self {
        let mut range = KeyRange::prefix(prefix);
        if let Some(after) = start_after {
            let next = successor(after);
            if next > range.start {
                range.start = next;
            }
        }
        range
    }

    /// True when `key` lies in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        key >= self.start.as_slice() && self.end.as_deref().is_none_or(|end| key < end)
    }
}

/// Refuses the empty key, which no backend can store.
pub fn check_key(op: &'static str, key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(StoreError::Invalid {
            op,
            field: "key",
            reason: "the key is empty".into(),
        });
    }
    Ok(())
}

/// Refuses a negative revision.
pub fn check_revision(op: &'static str, field: &'static str, revision: i64) -> Result<()> {
    if revision < 0 {
        return Err(StoreError::Invalid {
            op,
            field,
            reason: format!("{revision} is negative"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte() {
        assert_eq!(
            prefix_end(b"/pods/default/"),
            Some(b"/pods/default0".to_vec())
        );
        assert_eq!(prefix_end(b"a\xff\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn a_prefix_ending_in_slash_does_not_match_a_longer_name() {
        let range = KeyRange::prefix("/pods/default/");
        assert!(range.contains(b"/pods/default/web"));
        assert!(!range.contains(b"/pods/default-x/web"));
        assert!(!range.contains(b"/pods/default"));
        assert!(!range.contains(b"/pods/defaulu"));
    }

    #[test]
    fn start_after_is_exclusive_and_clamped_to_the_prefix() {
        let range = KeyRange::prefix_after("/p/", Some("/p/b"));
        assert!(!range.contains(b"/p/b"));
        assert!(range.contains(b"/p/b0"));
        assert!(range.contains(b"/p/b\0"));
        assert_eq!(
            KeyRange::prefix_after("/p/", Some("/a")),
            KeyRange::prefix("/p/")
        );
        let past = KeyRange::prefix_after("/p/", Some("/q"));
        assert!(!past.contains(b"/p/z"));
    }

    #[test]
    fn the_empty_prefix_is_unbounded() {
        let range = KeyRange::prefix("");
        assert_eq!(range.end, None);
        assert!(range.contains("/é".as_bytes()));
    }

    #[test]
    fn empty_keys_and_negative_revisions_are_refused() {
        assert!(matches!(
            check_key("get", ""),
            Err(StoreError::Invalid { field: "key", .. })
        ));
        assert!(check_key("get", "/a").is_ok());
        assert!(check_revision("list", "at_revision", -1).is_err());
        assert!(check_revision("list", "at_revision", 0).is_ok());
    }
}
