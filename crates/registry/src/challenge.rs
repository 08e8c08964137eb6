//! `WWW-Authenticate` challenges (RFC 7235): a scheme followed by `name=value` parameters,
//! values quoted or bare, several challenges possibly in one header separated by commas.

use std::collections::BTreeMap;

/// One challenge: its scheme in lower case and its parameters by lower-case name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Parses one header value into its challenges; `None` when it is malformed.
pub(crate) fn parse(header: &str) -> Option<Vec<Challenge>> {
    let mut p = Parser {
        s: header.as_bytes(),
        i: 0,
    };
    let mut out: Vec<Challenge> = Vec::new();
    loop {
        p.skip(|c| c == b' ' || c == b'\t' || c == b',');
        if p.done() {
            break;
        }
        let word = p.token()?;
        p.skip_ws();
        if p.peek() == Some(b'=') {
            // A parameter of the current challenge.
            let current = out.last_mut()?;
            p.i += 1;
            p.skip_ws();
            let value = if p.peek() == Some(b'"') {
                p.quoted()?
            } else {
                p.token().unwrap_or_default()
            };
            current.params.insert(word.to_ascii_lowercase(), value);
        } else {
            out.push(Challenge {
                scheme: word.to_ascii_lowercase(),
                params: BTreeMap::new(),
            });
        }
        p.skip_ws();
        match p.peek() {
            None | Some(b',') => {}
            // After a scheme, a parameter name follows directly.
            Some(_) if out.last().is_some_and(|c| c.params.is_empty()) => {}
            Some(_) => return None,
        }
    }
    (!out.is_empty()).then_some(out)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip(&mut self, f: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
    }

    fn skip_ws(&mut self) {
        self.skip(|c| c == b' ' || c == b'\t');
    }

    fn token(&mut self) -> Option<String> {
        let start = self.i;
        self.skip(|c| c.is_ascii_graphic() && !b",=\"".contains(&c));
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn quoted(&mut self) -> Option<String> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some(String::from_utf8_lossy(&out).into_owned());
                }
                b'\\' => {
                    self.i += 1;
                    out.push(self.peek()?);
                    self.i += 1;
                }
                c => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(scheme: &str, params: &[(&str, &str)]) -> Challenge {
        Challenge {
            scheme: scheme.into(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn parses_challenges() {
        let hub = one(
            "bearer",
            &[
                ("realm", "https://auth.docker.io/token"),
                ("service", "registry.docker.io"),
                ("scope", "repository:library/busybox:pull"),
            ],
        );
        let cases: Vec<(&str, &str, Option<Vec<Challenge>>)> = vec![
            (
                "docker hub",
                concat!(
                    r#"Bearer realm="https://auth.docker.io/token","#,
                    r#"service="registry.docker.io",scope="repository:library/busybox:pull""#
                ),
                Some(vec![hub.clone()]),
            ),
            (
                "spaces and case",
                concat!(
                    r#"BEARER  Realm = "https://auth.docker.io/token" , "#,
                    r#"service=registry.docker.io, scope="repository:library/busybox:pull""#
                ),
                Some(vec![hub]),
            ),
            (
                "basic",
                r#"Basic realm="Registry Realm""#,
                Some(vec![one("basic", &[("realm", "Registry Realm")])]),
            ),
            (
                "two in one header",
                r#"Basic realm="a", Bearer realm="http://h/token",service="s""#,
                Some(vec![
                    one("basic", &[("realm", "a")]),
                    one("bearer", &[("realm", "http://h/token"), ("service", "s")]),
                ]),
            ),
            (
                "escaped quote",
                r#"Basic realm="say \"hi\"""#,
                Some(vec![one("basic", &[("realm", "say \"hi\"")])]),
            ),
            ("empty", "", None),
            ("parameter first", "realm=x", None),
            ("unterminated quote", r#"Bearer realm="x"#, None),
        ];
        for (name, header, want) in cases {
            assert_eq!(parse(header), want, "case {name}");
        }
    }
}
