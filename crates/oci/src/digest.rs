//! Content digests: `Digest` is a checked `algorithm:hex` string, `Digester` computes one
//! incrementally.
//!
//! Only the algorithms the OCI image spec registers are accepted (sha256 with 64 lowercase hex
//! digits, sha512 with 128), so a malformed digest from a user, a manifest or a registry header
//! is refused here, before it can name a file or a URL. Serde goes through the same parser.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Digest as _;

/// A digest algorithm hoist can verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    /// The name used in digest strings, e.g. `sha256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Number of hex digits in an encoded digest of this algorithm.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not a digest hoist accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("digest {input:?} has no algorithm: expected \"sha256:\" followed by 64 hex digits")]
    MissingAlgorithm { input: String },
    #[error("digest {input:?} uses algorithm {algorithm:?}: only sha256 and sha512 are supported")]
    UnsupportedAlgorithm { input: String, algorithm: String },
    #[error("digest {input:?} has {actual} hex digits: {algorithm} needs exactly {expected}")]
    BadLength {
        input: String,
        algorithm: Algorithm,
        expected: usize,
        actual: usize,
    },
    #[error(
        "digest {input:?} has {found:?} at position {position} of its hex part: only lowercase \
         hex digits 0-9 and a-f are allowed"
    )]
    BadHex {
        input: String,
        found: char,
        position: usize,
    },
}

/// A checked content digest such as `sha256:e3b0c442...`.
///
/// Ordering and hashing follow the full string, so digests sort by algorithm then hex.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    /// The full `algorithm:hex` form; the hex part starts after the algorithm and the colon.
    repr: String,
}

/// Keeps error messages readable when someone passes a whole document as a digest.
fn shown(input: &str) -> String {
    if input.len() <= 160 {
        return input.to_string();
    }
    let mut end = 160;
    while !input.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &input[..end])
}

impl Digest {
    /// Parses `algorithm:hex`, refusing unknown algorithms, wrong lengths and anything but
    /// lowercase hex.
    pub fn parse(input: &str) -> Result<Digest, DigestError> {
        let Some((algorithm, hex)) = input.split_once(':') else {
            return Err(DigestError::MissingAlgorithm {
                input: shown(input),
            });
        };
        let algorithm = match algorithm {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            "" => {
                return Err(DigestError::MissingAlgorithm {
                    input: shown(input),
                });
            }
            other => {
                return Err(DigestError::UnsupportedAlgorithm {
                    input: shown(input),
                    algorithm: shown(other),
                });
            }
        };
        if let Some((position, found)) = hex
            .chars()
            .enumerate()
            .find(|(_, c)| !matches!(c, '0'..='9' | 'a'..='f'))
        {
            return Err(DigestError::BadHex {
                input: shown(input),
                found,
                position,
            });
        }
        if hex.len() != algorithm.hex_len() {
            return Err(DigestError::BadLength {
                input: shown(input),
                algorithm,
                expected: algorithm.hex_len(),
                actual: hex.len(),
            });
        }
        Ok(Digest {
            algorithm,
            repr: input.to_string(),
        })
    }

    /// The sha256 digest of `data`.
    pub fn sha256_of(data: &[u8]) -> Digest {
        Digest::compute(Algorithm::Sha256, data)
    }

    /// The digest of `data` with the given algorithm.
    pub fn compute(algorithm: Algorithm, data: &[u8]) -> Digest {
        let mut digester = Digester::with_algorithm(algorithm);
        digester.update(data);
        digester.finish()
    }

    /// Whether `data` hashes to this digest (using this digest's algorithm).
    pub fn matches(&self, data: &[u8]) -> bool {
        Digest::compute(self.algorithm, data) == *self
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The hex part, without the algorithm; safe to use as a file name.
    pub fn hex(&self) -> &str {
        &self.repr[self.algorithm.as_str().len() + 1..]
    }

    /// The full `algorithm:hex` form.
    pub fn as_str(&self) -> &str {
        &self.repr
    }

    /// The first 12 hex digits, as docker shows image IDs.
    pub fn short(&self) -> &str {
        &self.hex()[..12]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repr)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.repr)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.repr)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[derive(Clone)]
enum State {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

/// Incremental digest computation; sha256 unless built with [`Digester::with_algorithm`].
///
/// Implements `std::io::Write` so it can sit at the end of `io::copy` or in a tee.
#[derive(Clone)]
pub struct Digester {
    state: State,
    written: u64,
}

impl Default for Digester {
    fn default() -> Self {
        Digester::new()
    }
}

impl fmt::Debug for Digester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Digester")
            .field("written", &self.written)
            .finish()
    }
}

impl Digester {
    /// A sha256 digester.
    pub fn new() -> Digester {
        Digester::with_algorithm(Algorithm::Sha256)
    }

    pub fn with_algorithm(algorithm: Algorithm) -> Digester {
        let state = match algorithm {
            Algorithm::Sha256 => State::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => State::Sha512(sha2::Sha512::new()),
        };
        Digester { state, written: 0 }
    }

    pub fn update(&mut self, data: &[u8]) {
        self.written += data.len() as u64;
        match &mut self.state {
            State::Sha256(h) => h.update(data),
            State::Sha512(h) => h.update(data),
        }
    }

    /// Bytes fed in so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn finish(self) -> Digest {
        let (algorithm, bytes): (Algorithm, Vec<u8>) = match self.state {
            State::Sha256(h) => (Algorithm::Sha256, h.finalize().to_vec()),
            State::Sha512(h) => (Algorithm::Sha512, h.finalize().to_vec()),
        };
        let mut repr = String::with_capacity(algorithm.as_str().len() + 1 + bytes.len() * 2);
        repr.push_str(algorithm.as_str());
        repr.push(':');
        for b in bytes {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            repr.push(HEX[usize::from(b >> 4)] as char);
            repr.push(HEX[usize::from(b & 0xf)] as char);
        }
        Digest { algorithm, repr }
    }
}

impl std::io::Write for Digester {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn accepts_known_algorithms() {
        let d = Digest::parse(EMPTY).unwrap();
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(d.hex(), &EMPTY[7..]);
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(d.short(), "e3b0c44298fc");
        let long = format!("sha512:{}", "ab".repeat(64));
        assert_eq!(Digest::parse(&long).unwrap().algorithm(), Algorithm::Sha512);
    }

    #[test]
    fn refuses_malformed_digests() {
        let upper = EMPTY.to_uppercase().replace("SHA256", "sha256");
        let cases: &[(&str, &str, &str)] = &[
            ("empty", "", "has no algorithm"),
            ("no colon", &EMPTY[7..], "has no algorithm"),
            ("empty algorithm", ":abc", "has no algorithm"),
            (
                "md5",
                "md5:d41d8cd98f00b204e9800998ecf8427e",
                "only sha256 and sha512",
            ),
            (
                "uppercase algorithm",
                "SHA256:abc",
                "only sha256 and sha512",
            ),
            ("short", "sha256:abc", "needs exactly 64"),
            ("long", &format!("{EMPTY}0"), "needs exactly 64"),
            ("uppercase hex", &upper, "lowercase hex"),
            (
                "path in hex",
                "sha256:../../etc/passwd",
                "'.' at position 0",
            ),
            (
                "sha512 short",
                &format!("sha512:{}", "a".repeat(64)),
                "needs exactly 128",
            ),
            (
                "trailing newline",
                &format!("{EMPTY}\n"),
                "'\\n' at position 64",
            ),
        ];
        for (name, input, want) in cases {
            let err = Digest::parse(input).expect_err(name).to_string();
            assert!(
                err.contains(want),
                "case {name}: {err:?} should contain {want:?}"
            );
        }
    }

    #[test]
    fn computes_known_values() {
        assert_eq!(Digest::sha256_of(b"").to_string(), EMPTY);
        let mut d = Digester::new();
        std::io::Write::write_all(&mut d, b"hello ").unwrap();
        d.update(b"world");
        assert_eq!(d.written(), 11);
        assert_eq!(
            d.finish().to_string(),
            "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        let d512 = Digest::compute(Algorithm::Sha512, b"");
        assert!(d512.hex().starts_with("cf83e1357eefb8bd"), "{d512}");
        assert!(d512.matches(b""));
        assert!(!d512.matches(b"x"));
    }

    #[test]
    fn serde_goes_through_the_parser() {
        let d: Digest = serde_json::from_str(&format!("\"{EMPTY}\"")).unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{EMPTY}\""));
        let err = serde_json::from_str::<Digest>("\"sha256:zz\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("lowercase hex"), "{err}");
    }
}
