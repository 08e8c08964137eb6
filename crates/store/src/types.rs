//! The values that cross the [`Backend`](crate::Backend) trait: a key's stored version
//! ([`KeyValue`]), a page of a list ([`ListPage`]) and a change seen by a watch ([`Event`]).
//! They do no IO. Values are [`Bytes`] so that one event fans out to many watchers without
//! copying the object.

use bytes::Bytes;

/// One version of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key, such as `/pods/default/web`.
    pub key: String,
    /// The stored bytes (the object's JSON). Empty in the `kv` of a [`EventKind::Deleted`]
    /// event; the deleted value is in the event's `prev`.
    pub value: Bytes,
    /// The revision that created this incarnation of the key.
    pub create_revision: i64,
    /// The revision of this version's write: the object's `resourceVersion`.
    pub mod_revision: i64,
}

/// One page of a list, read at one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    /// Live keys in key order.
    pub items: Vec<KeyValue>,
    /// The revision the page was read at. Later pages of the same list pass it back as
    /// `at_revision` to see the same snapshot; a watch that follows the list starts after
    /// it.
    pub revision: i64,
    /// True when keys remain after the last item; pass the last item's key as
    /// `start_after` to read them.
    pub more: bool,
}

/// What a write did to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Added,
    Modified,
    Deleted,
}

/// One write, as a watch delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// The key after the write. For a delete: the key, an empty value, the deleted
    /// incarnation's `create_revision`, and the delete's revision as `mod_revision`.
    pub kv: KeyValue,
    /// The version the write replaced: `None` for `Added`, the old object otherwise.
    pub prev: Option<KeyValue>,
}

impl Event {
    /// The revision of the write.
    pub fn revision(&self) -> i64 {
        self.kv.mod_revision
    }
}
