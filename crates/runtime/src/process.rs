//! A container's process: its argv and environment from the pod spec and the image, by the
//! kubelet's and containerd's rules.
//!
//! - argv, the four cases: neither `command` nor `args` → image Entrypoint + Cmd;
//!   `command` only → `command`; `args` only → Entrypoint + `args`; both →
//!   `command` + `args`.
//! - env: a default `PATH`, `HOSTNAME`, then the image's env, then the container's,
//!   a later value replacing an earlier one of the same name in place.
//! - `$(VAR)` in the container's env values refers to the container's variables defined
//!   before it; in `command`/`args` to all of the container's variables. An unknown
//!   reference stays as written; `$$` is a literal `$`. The image's env is not part of the
//!   expansion, as with the kubelet, which never sees it.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Container, EnvVar};

/// containerd's default `PATH` for containers whose image sets none.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProcessError {
    #[error(
        "container {container:?} has no command: the pod sets no `command` and the image no \
         Entrypoint or Cmd; set `command` in the container"
    )]
    NoCommand { container: String },
    #[error(
        "container {container:?}: env {name:?} uses `valueFrom.{field}`, which hoist does not \
         support yet; set `value` instead"
    )]
    UnsupportedValueFrom {
        container: String,
        name: String,
        field: String,
    },
}

/// What the downward API may read for `fieldRef` env values.
#[derive(Debug, Clone, Default)]
pub struct PodFields {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub node_name: String,
}

/// Expands `$(VAR)` references in `input` with `lookup`, as Kubernetes' `expansion.Expand`.
pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let b = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut checkpoint = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            out.push_str(&input[checkpoint..i]);
            let rest = &input[i + 1..];
            let advance = match b[i + 1] {
                b'$' => {
                    out.push('$');
                    1
                }
                b'(' => match rest.find(')') {
                    Some(close) => {
                        let name = &rest[1..close];
                        match lookup(name) {
                            Some(v) => out.push_str(&v),
                            None => {
                                out.push_str("$(");
                                out.push_str(name);
                                out.push(')');
                            }
                        }
                        close + 1
                    }
                    None => {
                        out.push_str("$(");
                        1
                    }
                },
                _ => {
                    // `$` then a character that is not an operator: both are kept.
                    let ch = rest.chars().next().unwrap_or_default();
                    out.push('$');
                    out.push(ch);
                    ch.len_utf8()
                }
            };
            i += 1 + advance;
            checkpoint = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&input[checkpoint.min(input.len())..]);
    out
}

/// The container's own env as (name, value) after expansion, in order.
pub fn container_env(
    container: &Container,
    pod: &PodFields,
) -> Result<Vec<(String, String)>, ProcessError> {
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut defined: HashMap<String, String> = HashMap::new();
    for EnvVar {
        name,
        value,
        value_from,
    } in container.env.iter().flatten()
    {
        let value = match (value, value_from) {
            (_, Some(from)) => field_value(container, name, from, pod)?,
            (Some(v), None) => expand(v, |n| defined.get(n).cloned()),
            (None, None) => String::new(),
        };
        defined.insert(name.clone(), value.clone());
        vars.push((name.clone(), value));
    }
    Ok(vars)
}

fn field_value(
    container: &Container,
    name: &str,
    from: &k8s_openapi::api::core::v1::EnvVarSource,
    pod: &PodFields,
) -> Result<String, ProcessError> {
    let unsupported = |source: &str| ProcessError::UnsupportedValueFrom {
        container: container.name.clone(),
        name: name.to_string(),
        field: source.to_string(),
    };
    let Some(field) = &from.field_ref else {
        let source = if from.config_map_key_ref.is_some() {
            "configMapKeyRef"
        } else if from.secret_key_ref.is_some() {
            "secretKeyRef"
        } else {
            "resourceFieldRef"
        };
        return Err(unsupported(source));
    };
    Ok(match field.field_path.as_str() {
        "metadata.name" => pod.name.clone(),
        "metadata.namespace" => pod.namespace.clone(),
        "metadata.uid" => pod.uid.clone(),
        "spec.nodeName" => pod.node_name.clone(),
        // No pod network yet: the pod and host IPs are loopback's.
        "status.podIP" | "status.hostIP" => "127.0.0.1".to_string(),
        other => return Err(unsupported(&format!("fieldRef.fieldPath={other}"))),
    })
}

/// The process's environment: default PATH and HOSTNAME, image env, container env.
pub fn merged_env(hostname: &str, image_env: &[String], own: &[(String, String)]) -> Vec<String> {
    let mut env: Vec<String> = vec![DEFAULT_PATH.to_string(), format!("HOSTNAME={hostname}")];
    let mut set = |entry: String| {
        let key = entry.split('=').next().unwrap_or_default().to_string();
        match env
            .iter_mut()
            .find(|e| e.split('=').next() == Some(key.as_str()))
        {
            Some(slot) => *slot = entry,
            None => env.push(entry),
        }
    };
    for e in image_env {
        set(e.clone());
    }
    for (k, v) in own {
        set(format!("{k}={v}"));
    }
    env
}

/// The process's argv by the four cases, with `$(VAR)` expanded from the container's env.
pub fn argv(
    container: &Container,
    entrypoint: &[String],
    cmd: &[String],
    own_env: &[(String, String)],
) -> Result<Vec<String>, ProcessError> {
    let vars: HashMap<&str, &str> = own_env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let exp = |list: &Vec<String>| -> Vec<String> {
        list.iter()
            .map(|a| expand(a, |n| vars.get(n).map(|v| v.to_string())))
            .collect()
    };
    let command = container.command.as_ref().filter(|c| !c.is_empty());
    let args = container.args.as_ref().filter(|a| !a.is_empty());
    let argv: Vec<String> = match (command, args) {
        (None, None) => entrypoint.iter().chain(cmd).cloned().collect(),
        (Some(c), None) => exp(c),
        (None, Some(a)) => entrypoint.iter().cloned().chain(exp(a)).collect(),
        (Some(c), Some(a)) => exp(c).into_iter().chain(exp(a)).collect(),
    };
    if argv.is_empty() {
        return Err(ProcessError::NoCommand {
            container: container.name.clone(),
        });
    }
    Ok(argv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(n: &str) -> Option<String> {
        match n {
            "A" => Some("a".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expansion_follows_kubernetes() {
        assert_eq!(expand("x$(A)y", lookup), "xay");
        assert_eq!(expand("$(B)", lookup), "$(B)");
        assert_eq!(expand("$$(A)", lookup), "$(A)");
        assert_eq!(expand("$$$(A)", lookup), "$a");
        assert_eq!(expand("$(A", lookup), "$(A");
        assert_eq!(expand("$A", lookup), "$A");
        assert_eq!(expand("end$", lookup), "end$");
        assert_eq!(expand("$(EMPTY)-", lookup), "-");
        assert_eq!(expand("é$é$(A)", lookup), "é$éa");
    }

    fn container(command: Option<&[&str]>, args: Option<&[&str]>) -> Container {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        Container {
            name: "c".into(),
            command: command.map(v),
            args: args.map(v),
            ..Default::default()
        }
    }

    #[test]
    fn four_cases() {
        let ep = vec!["/ep".to_string()];
        let cmd = vec!["cmd".to_string()];
        let run = |c: Container| argv(&c, &ep, &cmd, &[]).unwrap();
        assert_eq!(run(container(None, None)), ["/ep", "cmd"]);
        assert_eq!(run(container(Some(&["/c"]), None)), ["/c"]);
        assert_eq!(run(container(None, Some(&["a"]))), ["/ep", "a"]);
        assert_eq!(run(container(Some(&["/c"]), Some(&["a"]))), ["/c", "a"]);
        let none = argv(&container(None, None), &[], &[], &[]);
        assert!(matches!(none, Err(ProcessError::NoCommand { .. })));
    }

    #[test]
    fn env_merges_in_place_and_expands_earlier_vars() {
        let mut c = container(Some(&["echo", "$(GREETING)"]), None);
        let var = |n: &str, v: &str| EnvVar {
            name: n.into(),
            value: Some(v.into()),
            value_from: None,
        };
        c.env = Some(vec![
            var("NAME", "hoist"),
            var("GREETING", "hi $(NAME) $(LATER)"),
            var("LATER", "x"),
            var("IMG", "from-pod"),
        ]);
        let own = container_env(&c, &PodFields::default()).unwrap();
        assert_eq!(own[1].1, "hi hoist $(LATER)");
        let env = merged_env("pod", &["IMG=from-image".into(), "KEEP=1".into()], &own);
        assert_eq!(env[2], "IMG=from-pod", "replaced in place");
        assert_eq!(env[3], "KEEP=1");
        assert!(env.contains(&"HOSTNAME=pod".to_string()));
        let args = argv(&c, &[], &[], &own).unwrap();
        assert_eq!(args, ["echo", "hi hoist $(LATER)"]);
    }
}
