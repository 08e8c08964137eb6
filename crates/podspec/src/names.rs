//! Name grammars of the Kubernetes API: RFC 1123 labels and subdomains, qualified names
//! (label and annotation keys), label values, IANA service names (port names) and
//! environment variable names.
//!
//! Each `*_problems` function returns the Kubernetes messages for a bad value (empty when the
//! value is fine), worded as the API server words them so a user can compare with a real
//! cluster. The `suggest_*` helpers turn a bad name into the nearest valid one, for hints.

/// Longest RFC 1123 label (namespace names, container names, port names are shorter).
pub const DNS1123_LABEL_MAX: usize = 63;
/// Longest RFC 1123 subdomain (pod names).
pub const DNS1123_SUBDOMAIN_MAX: usize = 253;

const LABEL_FMT: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric \
     characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name', \
      or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const SUBDOMAIN_FMT: &str = "a lowercase RFC 1123 subdomain must consist of lower case \
     alphanumeric characters, '-' or '.', and must start and end with an alphanumeric \
     character (e.g. 'example.com', regex used for validation is \
     '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const QUALIFIED_FMT: &str = "name part must consist of alphanumeric characters, '-', '_' or \
     '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or \
     'my.name',  or '123-abc', regex used for validation is \
     '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_FMT: &str = "a valid label must be an empty string or consist of \
     alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric \
     character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is \
     '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

fn is_lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn label_shape(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| is_lower_alnum(c) || c == '-')
        && s.starts_with(is_lower_alnum)
        && s.ends_with(is_lower_alnum)
}

/// Whether `s` is an RFC 1123 label: at most 63 lowercase alphanumerics or '-', starting
/// and ending with an alphanumeric. Container names and namespace names are labels.
pub fn is_dns1123_label(s: &str) -> bool {
    s.len() <= DNS1123_LABEL_MAX && label_shape(s)
}

/// Whether `s` is an RFC 1123 subdomain: dot-separated labels, at most 253 characters.
/// Pod names are subdomains.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= DNS1123_SUBDOMAIN_MAX && s.split('.').all(label_shape)
}

/// The API server's messages for a value that is not an RFC 1123 label.
pub fn dns1123_label_problems(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > DNS1123_LABEL_MAX {
        out.push(format!(
            "must be no more than {DNS1123_LABEL_MAX} characters"
        ));
    }
    if !label_shape(s) {
        out.push(LABEL_FMT.to_string());
    }
    out
}

/// The API server's messages for a value that is not an RFC 1123 subdomain.
pub fn dns1123_subdomain_problems(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > DNS1123_SUBDOMAIN_MAX {
        out.push(format!(
            "must be no more than {DNS1123_SUBDOMAIN_MAX} characters"
        ));
    }
    if !s.split('.').all(label_shape) {
        out.push(SUBDOMAIN_FMT.to_string());
    }
    out
}

/// The nearest RFC 1123 subdomain to `s` (for a pod name): lowercased, every run of other
/// characters turned into one '-', dots kept between labels, trimmed to 253 characters.
/// `None` when `s` holds no letter or digit at all.
///
/// `suggest_name("Tesing_for_Image_pull")` is `Some("tesing-for-image-pull")`.
pub fn suggest_name(s: &str) -> Option<String> {
    let labels: Vec<String> = s
        .split('.')
        .filter_map(|l| suggest_label_part(l, 253))
        .collect();
    let mut out = labels.join(".");
    if out.is_empty() {
        return None;
    }
    out.truncate(DNS1123_SUBDOMAIN_MAX);
    let out = out.trim_end_matches(['-', '.']).to_string();
    Some(out)
}

/// The nearest RFC 1123 label to `s` (for container and namespace names): as
/// [`suggest_name`], with dots also turned into '-' and at most 63 characters.
pub fn suggest_label(s: &str) -> Option<String> {
    suggest_label_part(s, DNS1123_LABEL_MAX)
}

fn suggest_label_part(s: &str, max: usize) -> Option<String> {
    let mut out = String::new();
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if is_lower_alnum(c) {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.truncate(max);
    let out = out.trim_end_matches('-').to_string();
    (!out.is_empty()).then_some(out)
}

/// The API server's messages for a qualified name (`[prefix/]name`): label keys,
/// annotation keys, toleration keys.
pub fn qualified_name_problems(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if name.contains('/') {
        out.push(format!(
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and \
             must start and end with an alphanumeric character, with an optional DNS \
             subdomain prefix and '/' (e.g. 'example.com/MyName'); {s:?} has more than one '/'"
        ));
        return out;
    }
    if let Some(p) = prefix {
        if p.is_empty() {
            out.push("prefix part must be non-empty".to_string());
        } else {
            out.extend(
                dns1123_subdomain_problems(p)
                    .into_iter()
                    .map(|m| format!("prefix part {m}")),
            );
        }
    }
    if name.is_empty() {
        out.push("name part must be non-empty".to_string());
    } else {
        if name.len() > DNS1123_LABEL_MAX {
            out.push("name part must be no more than 63 characters".to_string());
        }
        if !label_value_shape(name) {
            out.push(QUALIFIED_FMT.to_string());
        }
    }
    out
}

fn label_value_shape(s: &str) -> bool {
    let inner = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    s.chars().all(inner)
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// The API server's messages for a label value (may be empty, at most 63 characters).
pub fn label_value_problems(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > DNS1123_LABEL_MAX {
        out.push("must be no more than 63 characters".to_string());
    }
    if !s.is_empty() && !label_value_shape(s) {
        out.push(LABEL_VALUE_FMT.to_string());
    }
    out
}

/// The API server's messages for a port name (IANA_SVC_NAME: at most 15 lowercase
/// alphanumerics or '-', at least one letter, no '--', no '-' at either end).
pub fn port_name_problems(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 15 {
        out.push("must be no more than 15 characters".to_string());
    }
    if !s.chars().all(|c| is_lower_alnum(c) || c == '-') {
        out.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into());
    }
    if s.contains("--") {
        out.push("must not contain consecutive hyphens".to_string());
    }
    if !s.chars().any(|c| c.is_ascii_lowercase()) {
        out.push("must contain at least one letter (a-z)".to_string());
    }
    if s.starts_with('-') || s.ends_with('-') {
        out.push("must not begin or end with a hyphen".to_string());
    }
    out
}

/// The API server's message for an environment variable name, if it is bad. Kubernetes 1.33
/// (RelaxedEnvironmentVariableValidation, on by default) takes any printable ASCII but '='.
pub fn env_var_name_problem(s: &str) -> Option<String> {
    let ok =
        !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic() || c == ' ') && !s.contains('=');
    (!ok).then(|| {
        "a valid environment variable name must consist only of printable ASCII characters \
         other than '='"
            .to_string()
    })
}

/// Edit distance between two short strings, for "did you mean" hints: insertions,
/// deletions, substitutions and swaps of two neighbours (`memroy`) each count one.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The candidate closest to `word`: equal ignoring case, or within a small edit distance
/// (one edit per four characters, at least one).
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    let limit = (word.len() / 4).max(1);
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = if c.eq_ignore_ascii_case(word) {
            0
        } else {
            edit_distance(&lower, &c.to_ascii_lowercase())
        };
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_their_suggestions() {
        assert!(is_dns1123_subdomain("testing-for-image-pull"));
        assert!(is_dns1123_subdomain("a.b-c"));
        assert!(!is_dns1123_subdomain("Tesing_for_Image_pull"));
        assert!(!is_dns1123_label("a.b"));
        assert_eq!(
            suggest_name("Tesing_for_Image_pull").as_deref(),
            Some("tesing-for-image-pull")
        );
        assert_eq!(suggest_name("My..App").as_deref(), Some("my.app"));
        assert_eq!(
            suggest_label("Neo4j.Server").as_deref(),
            Some("neo4j-server")
        );
        assert_eq!(suggest_name("___"), None);
        let long = "a".repeat(70);
        assert_eq!(suggest_label(&long).map(|s| s.len()), Some(63));
        assert!(
            dns1123_label_problems(&long)
                .iter()
                .any(|m| m.contains("63"))
        );
    }

    #[test]
    fn other_grammars() {
        assert!(qualified_name_problems("app.kubernetes.io/name").is_empty());
        assert!(!qualified_name_problems("a/b/c").is_empty());
        assert!(!qualified_name_problems("-x").is_empty());
        assert!(label_value_problems("").is_empty());
        assert!(!label_value_problems("a b").is_empty());
        assert!(port_name_problems("http").is_empty());
        assert!(!port_name_problems("8080").is_empty(), "needs a letter");
        assert!(!port_name_problems("a--b").is_empty());
        assert!(env_var_name_problem("MY_VAR").is_none());
        assert!(env_var_name_problem("A=B").is_some());
    }

    #[test]
    fn closest_prefers_case_then_small_edits() {
        let fields = ["imagePullPolicy", "image", "name"];
        assert_eq!(closest("imagepullpolicy", fields), Some("imagePullPolicy"));
        assert_eq!(closest("imagePulPolicy", fields), Some("imagePullPolicy"));
        assert_eq!(closest("colour", fields), None);
    }
}
