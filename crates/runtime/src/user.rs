//! The user a container runs as: `securityContext` against the image's `User`, resolved in
//! the image's own `/etc/passwd` and `/etc/group`.
//!
//! Those files are read through `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` on the
//! container's rootfs, so a symlink in the image (`/etc/passwd -> /etc/shadow` on the host,
//! or `../../..`) resolves inside the rootfs and never reaches a host file. A numeric id
//! must fit in 32 bits (2^32-1 is refused too: it is the kernel's "no id"), so a huge
//! number never wraps to 0.
//!
//! Rules, after the kubelet and containerd: `runAsUser` (container over pod) wins over the
//! image; its primary group comes from `runAsGroup`, else the user's passwd entry, else 0.
//! An image `User` is `name`, `uid`, `name:group` or `uid:gid`; a name that is not in the
//! image's passwd is an error, a number need not be there. Supplementary groups are the
//! user's memberships in the image's `/etc/group` plus `supplementalGroups` and `fsGroup`.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use k8s_openapi::api::core::v1::{PodSecurityContext, SecurityContext};
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::Mode;

use crate::spec::User;

/// The most a passwd or group file may hold before it is refused as hostile.
const MAX_DB: u64 = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error(
        "image user {user:?}: {what} {id:?} is not a valid id (a number from 0 to 4294967294 \
         or a name)"
    )]
    BadId {
        user: String,
        what: &'static str,
        id: String,
    },
    #[error("image user {user:?}: no user {name:?} in the image's /etc/passwd")]
    UnknownUser { user: String, name: String },
    #[error("image user {user:?}: no group {name:?} in the image's /etc/group")]
    UnknownGroup { user: String, name: String },
    #[error("reading the image's {file}")]
    Read {
        file: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "container has runAsNonRoot and image will run as root (pod: {pod:?}, container: \
         {container:?})"
    )]
    NonRootImage { pod: String, container: String },
    #[error(
        "container's runAsUser breaks non-root policy (pod: {pod:?}, container: {container:?})"
    )]
    NonRootRunAsUser { pod: String, container: String },
    #[error(
        "container has runAsNonRoot and image has non-numeric user ({user}), cannot verify \
         user is non-root (pod: {pod:?}, container: {container:?})"
    )]
    NonRootUnverifiable {
        user: String,
        pod: String,
        container: String,
    },
}

struct Entry {
    name: String,
    id: u32,
    gid: u32,
    members: Vec<String>,
}

/// Opens `path` (absolute inside the rootfs) confined to `rootfs`; `None` if it is absent.
pub fn open_in_root(rootfs: &Path, path: &str) -> std::io::Result<Option<File>> {
    let root = File::open(rootfs)?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC)
        .mode(Mode::empty())
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match openat2(&root, path, how) {
        Ok(fd) => Ok(Some(File::from(fd))),
        Err(nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn read_db(rootfs: &Path, file: &'static str) -> Result<Vec<Entry>, UserError> {
    let read = |source| UserError::Read { file, source };
    let Some(f) = open_in_root(rootfs, file).map_err(read)? else {
        return Ok(Vec::new());
    };
    if !f.metadata().map_err(read)?.is_file() {
        return Ok(Vec::new());
    }
    let mut text = String::new();
    f.take(MAX_DB).read_to_string(&mut text).map_err(read)?;
    // passwd: name:pw:uid:gid:...; group: name:pw:gid:members
    let is_group = file.ends_with("group");
    Ok(text
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 4 || line.starts_with('#') {
                return None;
            }
            let id = f[2].parse().ok()?;
            Some(Entry {
                name: f[0].to_string(),
                id,
                gid: if is_group { id } else { f[3].parse().ok()? },
                members: if is_group {
                    f[3].split(',')
                        .filter(|m| !m.is_empty())
                        .map(String::from)
                        .collect()
                } else {
                    Vec::new()
                },
            })
        })
        .collect())
}

/// A 32-bit id; 4294967295 is `(uid_t)-1` and refused with everything larger.
fn parse_id(s: &str) -> Option<Option<u32>> {
    if !s.bytes().all(|b| b.is_ascii_digit()) || s.is_empty() {
        return Some(None); // not numeric: a name
    }
    match s.parse::<u64>() {
        Ok(n) if n < u64::from(u32::MAX) => Some(Some(n as u32)),
        _ => None,
    }
}

/// Everything needed to pick the user of one container.
pub struct UserRequest<'a> {
    pub rootfs: &'a Path,
    pub image_user: Option<&'a str>,
    pub pod: Option<&'a PodSecurityContext>,
    pub container: Option<&'a SecurityContext>,
    pub pod_name: &'a str,
    pub container_name: &'a str,
}

/// Resolves the process user for `req`, enforcing `runAsNonRoot`.
pub fn resolve(req: &UserRequest<'_>) -> Result<User, UserError> {
    let run_as_user = req
        .container
        .and_then(|c| c.run_as_user)
        .or(req.pod.and_then(|p| p.run_as_user));
    let run_as_group = req
        .container
        .and_then(|c| c.run_as_group)
        .or(req.pod.and_then(|p| p.run_as_group));
    let non_root = req
        .container
        .and_then(|c| c.run_as_non_root)
        .or(req.pod.and_then(|p| p.run_as_non_root))
        .unwrap_or(false);
    let image_user = req
        .image_user
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .unwrap_or("");
    let pod = || req.pod_name.to_string();
    let container = || req.container_name.to_string();

    // The kubelet's verifyRunAsNonRoot, before anything is resolved.
    if non_root {
        match run_as_user {
            Some(0) => {
                return Err(UserError::NonRootRunAsUser {
                    pod: pod(),
                    container: container(),
                });
            }
            Some(_) => {}
            None => {
                let uid_part = image_user.split(':').next().unwrap_or("");
                match parse_id(uid_part) {
                    _ if uid_part.is_empty() => {
                        return Err(UserError::NonRootImage {
                            pod: pod(),
                            container: container(),
                        });
                    }
                    Some(Some(0)) => {
                        return Err(UserError::NonRootImage {
                            pod: pod(),
                            container: container(),
                        });
                    }
                    Some(None) => {
                        return Err(UserError::NonRootUnverifiable {
                            user: image_user.to_string(),
                            pod: pod(),
                            container: container(),
                        });
                    }
                    _ => {}
                }
            }
        }
    }

    let bad = |what, id: &str| UserError::BadId {
        user: image_user.to_string(),
        what,
        id: id.to_string(),
    };
    let passwd = read_db(req.rootfs, "/etc/passwd")?;
    let (uid, mut gid, name) = match run_as_user {
        Some(uid) => {
            let uid = u32::try_from(uid)
                .ok()
                .filter(|u| *u != u32::MAX)
                .ok_or_else(|| bad("runAsUser", &uid.to_string()))?;
            let entry = passwd.iter().find(|e| e.id == uid);
            (
                uid,
                entry.map_or(0, |e| e.gid),
                entry.map(|e| e.name.clone()),
            )
        }
        None if image_user.is_empty() => (0, 0, Some("root".to_string())),
        None => {
            let user_part = image_user.split(':').next().unwrap_or("");
            match parse_id(user_part).ok_or_else(|| bad("uid", user_part))? {
                Some(uid) => {
                    let entry = passwd.iter().find(|e| e.id == uid);
                    (
                        uid,
                        entry.map_or(0, |e| e.gid),
                        entry.map(|e| e.name.clone()),
                    )
                }
                None => {
                    let e = passwd.iter().find(|e| e.name == user_part).ok_or_else(|| {
                        UserError::UnknownUser {
                            user: image_user.to_string(),
                            name: user_part.to_string(),
                        }
                    })?;
                    (e.id, e.gid, Some(e.name.clone()))
                }
            }
        }
    };

    let groups = read_db(req.rootfs, "/etc/group")?;
    if run_as_user.is_none()
        && let Some((_, group_part)) = image_user.split_once(':')
    {
        gid = match parse_id(group_part).ok_or_else(|| bad("gid", group_part))? {
            Some(g) => g,
            None => groups
                .iter()
                .find(|g| g.name == group_part)
                .map(|g| g.id)
                .ok_or_else(|| UserError::UnknownGroup {
                    user: image_user.to_string(),
                    name: group_part.to_string(),
                })?,
        };
    }
    if let Some(g) = run_as_group {
        gid = u32::try_from(g)
            .ok()
            .filter(|g| *g != u32::MAX)
            .ok_or_else(|| bad("runAsGroup", &g.to_string()))?;
    }

    let mut additional: Vec<u32> = Vec::new();
    if let Some(name) = &name {
        additional.extend(
            groups
                .iter()
                .filter(|g| g.members.contains(name))
                .map(|g| g.id),
        );
    }
    if let Some(p) = req.pod {
        additional.extend(
            p.supplemental_groups
                .iter()
                .flatten()
                .filter_map(|g| u32::try_from(*g).ok()),
        );
        additional.extend(p.fs_group.and_then(|g| u32::try_from(g).ok()));
    }
    additional.retain(|g| *g != gid);
    additional.sort_unstable();
    additional.dedup();
    Ok(User {
        uid,
        gid,
        additional_gids: additional,
    })
}
