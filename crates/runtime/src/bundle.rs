//! A container's `config.json`: the pod spec and the image config turned into an OCI
//! runtime spec by the kubelet's and containerd's rules.
//!
//! [`BundleInput`] holds everything needed; [`generate`] does no IO but reading the
//! image's `/etc/passwd` and `/etc/group` and resolving `WorkingDir` inside the mounted
//! rootfs, both confined to it. What the image config says is hostile input: its working
//! directory and volumes are checked by [`crate::rootfs`], its user by [`crate::user`].

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod};
use oci::ImageConfig;

use crate::process::{self, PodFields, ProcessError};
use crate::quantity::{self, QuantityError};
use crate::rootfs::{self, RootfsError};
use crate::spec::{self, Cpu, Linux, Memory, Namespace, Resources, Root, Spec};
use crate::user::{self, UserError, UserRequest};

/// The CFS period the kubelet uses for CPU limits, in microseconds.
const CPU_PERIOD: u64 = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    Path(#[from] RootfsError),
    #[error("container {container:?}: resources.limits.{resource}")]
    Quantity {
        container: String,
        resource: String,
        #[source]
        source: QuantityError,
    },
    #[error(
        "container {container:?} asks for securityContext.privileged, which hoist does not \
         run; remove it or set it to false"
    )]
    Privileged { container: String },
}

/// The namespaces of a pod sandbox that a container joins, as bind-mounted files; `None`
/// means the host's (hostNetwork) namespace.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct SandboxNamespaces {
    pub network: Option<PathBuf>,
    pub ipc: Option<PathBuf>,
    pub uts: Option<PathBuf>,
}

/// Everything [`generate`] needs for one container.
pub struct BundleInput<'a> {
    pub pod: &'a Pod,
    pub container: &'a Container,
    pub image: &'a ImageConfig,
    /// The mounted, merged rootfs (read for `/etc/passwd` and `WorkingDir`).
    pub rootfs: &'a Path,
    pub namespaces: &'a SandboxNamespaces,
    /// The hostname inside the container: the pod's name, or `None` on the host's UTS.
    pub hostname: Option<&'a str>,
    pub cgroups_path: String,
    /// Whether the host can limit memory+swap (v2, or v1 with `memory.memsw.*`).
    pub swap_limit: bool,
    /// The container's volume mounts, made by [`crate::volumes::mounts`].
    pub volume_mounts: &'a [spec::Mount],
}

/// The runtime spec for `input`, with `root.path` = `rootfs` relative to the bundle.
pub fn generate(input: &BundleInput<'_>) -> Result<Spec, BundleError> {
    let c = input.container;
    let meta = &input.pod.metadata;
    let pod_name = meta.name.clone().unwrap_or_default();
    let pod_spec = input.pod.spec.as_ref();
    let image = input.image.config.clone().unwrap_or_default();
    let sc = c.security_context.as_ref();
    if sc.and_then(|s| s.privileged) == Some(true) {
        return Err(BundleError::Privileged {
            container: c.name.clone(),
        });
    }

    // Volumes an image declares get no volume of their own (their contents stay in the
    // container's upper dir); a volume path with `..` is still refused as hostile.
    for v in image.volumes.keys() {
        rootfs::clean("image volume", v)?;
    }

    let fields = PodFields {
        name: pod_name.clone(),
        namespace: meta.namespace.clone().unwrap_or_else(|| "default".into()),
        uid: meta.uid.clone().unwrap_or_default(),
        node_name: pod_spec
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default(),
    };
    let own_env = process::container_env(c, &fields)?;
    let hostname = input.hostname.map(str::to_string).unwrap_or_else(host_name);
    let env = process::merged_env(&hostname, &image.env, &own_env);
    let entrypoint = image.entrypoint.clone().unwrap_or_default();
    let cmd = image.cmd.clone().unwrap_or_default();
    let args = process::argv(c, &entrypoint, &cmd, &own_env)?;

    // The kubelet's workingDir wins over the image's; both are resolved confined.
    let cwd = match (c.working_dir.as_deref(), image.working_dir.as_deref()) {
        (Some(w), _) if !w.is_empty() => rootfs::resolve_in_root(input.rootfs, "workingDir", w)?,
        (_, Some(w)) if !w.is_empty() => {
            rootfs::resolve_in_root(input.rootfs, "image WorkingDir", w)?
        }
        _ => PathBuf::from("/"),
    };

    let user = user::resolve(&UserRequest {
        rootfs: input.rootfs,
        image_user: image.user.as_deref(),
        pod: pod_spec.and_then(|s| s.security_context.as_ref()),
        container: sc,
        pod_name: &pod_name,
        container_name: &c.name,
    })?;

    let mut caps = spec::capabilities();
    if let Some(cs) = sc.and_then(|s| s.capabilities.as_ref()) {
        let norm = |n: &String| {
            let n = n.to_ascii_uppercase();
            if n.starts_with("CAP_") {
                n
            } else {
                format!("CAP_{n}")
            }
        };
        let drop: Vec<String> = cs.drop.iter().flatten().map(norm).collect();
        let mut list = caps.bounding.clone();
        if drop.iter().any(|d| d == "CAP_ALL") {
            list.clear();
        }
        list.retain(|c| !drop.contains(c));
        for a in cs.add.iter().flatten().map(norm) {
            if a != "CAP_ALL" && !list.contains(&a) {
                list.push(a);
            }
        }
        caps = spec::Capabilities {
            bounding: list.clone(),
            effective: list.clone(),
            permitted: list,
        };
    }

    let (masked, readonly) = spec::masked_and_readonly();
    let mut mounts = spec::standard_mounts();
    mounts.push(spec::Mount {
        destination: "/dev/shm".into(),
        kind: "tmpfs".into(),
        source: "shm".into(),
        options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]
            .map(String::from)
            .to_vec(),
    });
    mounts.extend(input.volume_mounts.iter().cloned());

    let ns = input.namespaces;
    let mut namespaces = vec![
        Namespace {
            kind: "pid".into(),
            path: None,
        },
        Namespace {
            kind: "mount".into(),
            path: None,
        },
    ];
    for (kind, path) in [("network", &ns.network), ("ipc", &ns.ipc), ("uts", &ns.uts)] {
        if let Some(p) = path {
            namespaces.push(Namespace {
                kind: kind.into(),
                path: Some(p.display().to_string()),
            });
        }
    }

    Ok(Spec {
        oci_version: "1.0.2".into(),
        process: spec::Process {
            terminal: false,
            user,
            args,
            env,
            cwd: cwd.display().to_string(),
            capabilities: caps,
            no_new_privileges: sc.and_then(|s| s.allow_privilege_escalation) == Some(false),
            oom_score_adj: None,
        },
        root: Root {
            path: "rootfs".into(),
            readonly: sc
                .and_then(|s| s.read_only_root_filesystem)
                .unwrap_or(false),
        },
        hostname: ns.uts.as_ref().and(input.hostname.map(str::to_string)),
        mounts,
        linux: Linux {
            namespaces,
            cgroups_path: Some(input.cgroups_path.clone()),
            resources: resources(c, input.swap_limit)?,
            masked_paths: masked,
            readonly_paths: readonly,
            sysctl: Default::default(),
        },
    })
}

fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
}

/// `resources.limits` as cgroup limits, as the kubelet computes them: memory in bytes
/// (swap capped at the same value where the host can), CPU as a CFS quota per 100 ms
/// period, CPU requests as shares.
fn resources(c: &Container, swap_limit: bool) -> Result<Resources, BundleError> {
    let q = |resource: &str, f: fn(&str) -> Result<i64, QuantityError>, v: &str| {
        f(v).map_err(|source| BundleError::Quantity {
            container: c.name.clone(),
            resource: resource.to_string(),
            source,
        })
    };
    let mut r = Resources {
        devices: vec![spec::DeviceRule {
            allow: false,
            access: "rwm".into(),
        }],
        ..Default::default()
    };
    let Some(req) = &c.resources else {
        return Ok(r);
    };
    if let Some(mem) = req.limits.as_ref().and_then(|l| l.get("memory")) {
        let limit = q("memory", quantity::value, &mem.0)?;
        r.memory = Some(Memory {
            limit: Some(limit),
            swap: swap_limit.then_some(limit),
        });
    }
    let mut cpu = Cpu::default();
    if let Some(v) = req.limits.as_ref().and_then(|l| l.get("cpu")) {
        let milli = q("cpu", quantity::milli_value, &v.0)?;
        // The kubelet's minimum quota is 1 ms.
        cpu.quota = Some((milli * CPU_PERIOD as i64 / 1000).max(1000));
        cpu.period = Some(CPU_PERIOD);
    }
    let request = req.requests.as_ref().and_then(|l| l.get("cpu"));
    let request = request.or(req.limits.as_ref().and_then(|l| l.get("cpu")));
    if let Some(v) = request {
        let milli = q("cpu", quantity::milli_value, &v.0)?;
        cpu.shares = Some(((milli * 1024 / 1000) as u64).max(2));
    }
    if cpu != Cpu::default() {
        r.cpu = Some(cpu);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::{PodSpec, ResourceRequirements, SecurityContext};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    use super::*;

    fn input_spec(c: Container, image: oci::config::ContainerConfig) -> Result<Spec, BundleError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/:/bin/sh\napp:x:1000:1001::/:\n",
        )
        .unwrap();
        let pod = Pod {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("web".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![c.clone()],
                ..Default::default()
            }),
            ..Default::default()
        };
        let image = ImageConfig {
            config: Some(image),
            ..Default::default()
        };
        let ns = SandboxNamespaces {
            network: Some("/d/ns/net".into()),
            ipc: Some("/d/ns/ipc".into()),
            uts: Some("/d/ns/uts".into()),
        };
        generate(&BundleInput {
            pod: &pod,
            container: &c,
            image: &image,
            rootfs: dir.path(),
            namespaces: &ns,
            hostname: Some("web"),
            cgroups_path: "/hoist/x".into(),
            swap_limit: true,
            volume_mounts: &[],
        })
    }

    #[test]
    fn spec_from_pod_and_image() {
        let mut limits = BTreeMap::new();
        limits.insert("memory".to_string(), Quantity("16Mi".into()));
        limits.insert("cpu".to_string(), Quantity("500m".into()));
        let c = Container {
            name: "c".into(),
            args: Some(vec!["hi".into()]),
            resources: Some(ResourceRequirements {
                limits: Some(limits),
                ..Default::default()
            }),
            ..Default::default()
        };
        let image = oci::config::ContainerConfig {
            entrypoint: Some(vec!["/bin/echo".into()]),
            user: Some("app".into()),
            working_dir: Some("/srv".into()),
            ..Default::default()
        };
        let s = input_spec(c, image).unwrap();
        assert_eq!(s.process.args, ["/bin/echo", "hi"]);
        assert_eq!((s.process.user.uid, s.process.user.gid), (1000, 1001));
        assert_eq!(s.process.cwd, "/srv");
        assert_eq!(s.hostname.as_deref(), Some("web"));
        let mem = s.linux.resources.memory.unwrap();
        assert_eq!(mem.limit, Some(16 << 20));
        assert_eq!(s.linux.resources.cpu.unwrap().quota, Some(50_000));
        let net = s
            .linux
            .namespaces
            .iter()
            .find(|n| n.kind == "network")
            .unwrap();
        assert_eq!(net.path.as_deref(), Some("/d/ns/net"));
        assert!(
            s.process
                .capabilities
                .bounding
                .contains(&"CAP_CHOWN".to_string())
        );
        assert!(
            !s.process
                .capabilities
                .bounding
                .contains(&"CAP_SYS_ADMIN".to_string())
        );
        assert!(s.linux.masked_paths.contains(&"/proc/kcore".to_string()));
    }

    #[test]
    fn hostile_image_configs_are_refused() {
        let c = Container {
            name: "c".into(),
            command: Some(vec!["/x".into()]),
            ..Default::default()
        };
        let wd = |w: &str| oci::config::ContainerConfig {
            working_dir: Some(w.into()),
            ..Default::default()
        };
        assert!(matches!(
            input_spec(c.clone(), wd("/proc/self/fd/5")),
            Err(BundleError::Path(RootfsError::Forbidden { .. }))
        ));
        let mut vols = oci::config::ContainerConfig::default();
        vols.volumes
            .insert("/data/../../etc".into(), serde_json::json!({}));
        assert!(matches!(
            input_spec(c.clone(), vols),
            Err(BundleError::Path(_))
        ));
        let big = oci::config::ContainerConfig {
            user: Some("4294967296".into()),
            ..Default::default()
        };
        assert!(matches!(
            input_spec(c.clone(), big),
            Err(BundleError::User(_))
        ));
        let max = oci::config::ContainerConfig {
            user: Some("4294967295".into()),
            ..Default::default()
        };
        assert!(matches!(
            input_spec(c.clone(), max),
            Err(BundleError::User(_))
        ));
        let mut priv_c = c;
        priv_c.security_context = Some(SecurityContext {
            privileged: Some(true),
            ..Default::default()
        });
        assert!(matches!(
            input_spec(priv_c, Default::default()),
            Err(BundleError::Privileged { .. })
        ));
    }
}
