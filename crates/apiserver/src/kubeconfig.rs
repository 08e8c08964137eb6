//! The kubeconfig the server writes for its clients: one cluster (the server's URL and CA),
//! one user (the bearer token) and one context named `hoist`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine;

/// The kubeconfig text.
pub fn render(url: &str, ca_pem: &str, token: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\n\
         kind: Config\n\
         clusters:\n\
         - name: hoist\n  \
           cluster:\n    \
             server: {url}\n    \
             certificate-authority-data: {ca}\n\
         users:\n\
         - name: hoist\n  \
           user:\n    \
             token: {token}\n\
         contexts:\n\
         - name: hoist\n  \
           context:\n    \
             cluster: hoist\n    \
             user: hoist\n    \
             namespace: default\n\
         current-context: hoist\n"
    )
}

/// Writes the kubeconfig with mode 0600 (it holds the token), replacing the old one whole.
pub fn write(path: &Path, url: &str, ca_pem: &str, token: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("yaml.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(render(url, ca_pem, token).as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_as_yaml_with_the_server_and_token() {
        let text = super::render("https://127.0.0.1:6443", "PEM", "tok");
        let v: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(
            v["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:6443"
        );
        assert_eq!(v["users"][0]["user"]["token"], "tok");
        assert_eq!(v["current-context"], "hoist");
    }
}
