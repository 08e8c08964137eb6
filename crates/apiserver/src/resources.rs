//! The resource types the server serves, as one static table: names, kind, group and version,
//! scope, short names and verbs. Discovery, OpenAPI, routing and the store keys all read it,
//! so a resource added here appears everywhere at once.

/// One served resource type.
#[derive(Debug)]
pub struct Resource {
    /// The plural name in URLs: `pods`.
    pub plural: &'static str,
    /// The singular name: `pod`.
    pub singular: &'static str,
    /// The kind: `Pod`.
    pub kind: &'static str,
    /// The API group; empty for core.
    pub group: &'static str,
    /// The version: `v1`.
    pub version: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Short names for kubectl: `po`.
    pub short_names: &'static [&'static str],
    /// Categories: `all` for `kubectl get all`.
    pub categories: &'static [&'static str],
    /// Subresources with their kind and verbs.
    pub subresources: &'static [Subresource],
}

/// A subresource such as `pods/status`.
#[derive(Debug)]
pub struct Subresource {
    pub name: &'static str,
    pub kind: &'static str,
    pub group: &'static str,
    pub verbs: &'static [&'static str],
}

/// The verbs of every served resource.
pub const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

const fn core(
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
) -> Resource {
    Resource {
        plural,
        singular,
        kind,
        group: "",
        version: "v1",
        namespaced,
        short_names,
        categories: &[],
        subresources: &[],
    }
}

const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

/// Every served resource.
pub static RESOURCES: &[Resource] = &[
    Resource {
        categories: &["all"],
        subresources: &[
            Subresource {
                name: "binding",
                kind: "Binding",
                group: "",
                verbs: &["create"],
            },
            Subresource {
                name: "log",
                kind: "Pod",
                group: "",
                verbs: &["get"],
            },
            Subresource {
                name: "status",
                kind: "Pod",
                group: "",
                verbs: STATUS_VERBS,
            },
        ],
        ..core("pods", "pod", "Pod", true, &["po"])
    },
    Resource {
        subresources: &[Subresource {
            name: "status",
            kind: "Namespace",
            group: "",
            verbs: STATUS_VERBS,
        }],
        ..core("namespaces", "namespace", "Namespace", false, &["ns"])
    },
    Resource {
        subresources: &[Subresource {
            name: "status",
            kind: "Node",
            group: "",
            verbs: STATUS_VERBS,
        }],
        ..core("nodes", "node", "Node", false, &["no"])
    },
    core("secrets", "secret", "Secret", true, &[]),
    core("configmaps", "configmap", "ConfigMap", true, &["cm"]),
    core(
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        &["sa"],
    ),
    core("events", "event", "Event", true, &["ev"]),
    Resource {
        group: "coordination.k8s.io",
        ..core("leases", "lease", "Lease", true, &[])
    },
];

impl Resource {
    /// `v1` or `coordination.k8s.io/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The store prefix of every object of this type: `/pods/`.
    pub fn prefix(&self) -> String {
        format!("/{}/", self.plural)
    }

    /// The store prefix of this type's objects in one namespace, or of all of them.
    pub fn list_prefix(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("/{}/{ns}/", self.plural),
            _ => self.prefix(),
        }
    }

    /// The store key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("/{}/{ns}/{name}", self.plural),
            _ => format!("/{}/{name}", self.plural),
        }
    }

    /// The resource name for messages: `pods`, or `leases.coordination.k8s.io`.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Whether `sub` is one of this type's subresources.
    pub fn has_subresource(&self, sub: &str) -> bool {
        self.subresources.iter().any(|s| s.name == sub)
    }
}

/// The resource served at `group`/`version` under `plural`.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource of a kind, for objects that name their own type.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.kind == kind && r.api_version() == api_version)
}

/// The served API groups other than core, each with its one version.
pub fn groups() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

/// The resources of one group and version.
pub fn in_group(group: &str, version: &str) -> impl Iterator<Item = &'static Resource> {
    let (group, version) = (group.to_string(), version.to_string());
    RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

/// The pods resource, which several handlers need by name.
pub fn pods() -> &'static Resource {
    find("", "v1", "pods").expect("pods are served")
}

/// The namespaces resource.
pub fn namespaces() -> &'static Resource {
    find("", "v1", "namespaces").expect("namespaces are served")
}

/// The nodes resource.
pub fn nodes() -> &'static Resource {
    find("", "v1", "nodes").expect("nodes are served")
}

/// The events resource.
pub fn events() -> &'static Resource {
    find("", "v1", "events").expect("events are served")
}

/// The service accounts resource.
pub fn serviceaccounts() -> &'static Resource {
    find("", "v1", "serviceaccounts").expect("service accounts are served")
}
