//! Resource quantities (`100m`, `128Mi`, `1.5`, `2e3`) as the API server reads them.
//!
//! The grammar is apimachinery's: a signed decimal number, then one suffix: a binary SI
//! suffix (`Ki` .. `Ei`), a decimal SI suffix (`n`, `u`, `m`, `k`, `M` .. `E`) or a decimal
//! exponent (`e3`, `E-2`). The runtime needs CPU in millicores and memory in bytes, both
//! rounded up as the kubelet rounds them.

/// The message the API server gives for a quantity that does not parse.
pub const QUANTITY_FMT: &str = "quantities must match the regular expression \
     '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// A parsed quantity: `digits × 10^-frac × multiplier`, kept exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    negative: bool,
    digits: u128,
    frac: u32,
    binary_exp: u32,
    decimal_exp: i32,
}

impl Quantity {
    /// Parses `s`; the error is the API server's message.
    pub fn parse(s: &str) -> Result<Quantity, String> {
        let s = s.trim();
        let (negative, body) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let num_end = body
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(body.len());
        let (num, suffix) = body.split_at(num_end);
        let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
        if int_part.is_empty() && frac_part.is_empty() || frac_part.contains('.') {
            return Err(QUANTITY_FMT.into());
        }
        let all: String = format!("{int_part}{frac_part}");
        let digits: u128 = all.trim_start_matches('0').parse().unwrap_or(0);
        if all.trim_start_matches('0').len() > 38 {
            return Err("quantity is too large".into());
        }

        let (binary_exp, decimal_exp) = match suffix {
            "" => (0, 0),
            "Ki" => (10, 0),
            "Mi" => (20, 0),
            "Gi" => (30, 0),
            "Ti" => (40, 0),
            "Pi" => (50, 0),
            "Ei" => (60, 0),
            "n" => (0, -9),
            "u" => (0, -6),
            "m" => (0, -3),
            "k" => (0, 3),
            "M" => (0, 6),
            "G" => (0, 9),
            "T" => (0, 12),
            "P" => (0, 15),
            "E" => (0, 18),
            exp if exp.starts_with(['e', 'E']) => {
                let n: i32 = exp[1..].parse().map_err(|_| QUANTITY_FMT.to_string())?;
                if !(-60..=60).contains(&n) {
                    return Err("quantity exponent is out of range".into());
                }
                (0, n)
            }
            _ => return Err(QUANTITY_FMT.into()),
        };
        Ok(Quantity {
            negative,
            digits,
            frac: frac_part.len() as u32,
            binary_exp,
            decimal_exp,
        })
    }

    /// Whether the quantity is below zero.
    pub fn is_negative(&self) -> bool {
        self.negative && self.digits != 0
    }

    /// The value multiplied by `scale` and rounded up (away from zero), saturating at
    /// `i64::MAX`: `scale` 1 gives bytes, 1000 gives millicores.
    pub fn scaled_ceil(&self, scale: u128) -> i64 {
        let mut num = self.digits.saturating_mul(scale);
        num = num.saturating_mul(1u128 << self.binary_exp);
        let mut den: u128 = 1;
        let dexp = self.decimal_exp - self.frac as i32;
        if dexp >= 0 {
            num = num.saturating_mul(10u128.saturating_pow(dexp as u32));
        } else {
            den = 10u128.saturating_pow((-dexp) as u32);
        }
        let v = num.div_ceil(den).min(i64::MAX as u128) as i64;
        if self.negative { -v } else { v }
    }

    /// The value rounded up to a whole number (bytes for memory).
    pub fn value(&self) -> i64 {
        self.scaled_ceil(1)
    }

    /// The value in thousandths, rounded up (millicores for CPU).
    pub fn millis(&self) -> i64 {
        self.scaled_ceil(1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_suffixes_the_kubelet_reads() {
        assert_eq!(Quantity::parse("100m").unwrap().millis(), 100);
        assert_eq!(Quantity::parse("1.5").unwrap().millis(), 1500);
        assert_eq!(Quantity::parse("0.1").unwrap().millis(), 100);
        assert_eq!(Quantity::parse("128Mi").unwrap().value(), 128 << 20);
        assert_eq!(Quantity::parse("1G").unwrap().value(), 1_000_000_000);
        assert_eq!(Quantity::parse("2e3").unwrap().value(), 2000);
        assert_eq!(Quantity::parse("1.5Ki").unwrap().value(), 1536);
        assert_eq!(Quantity::parse("1n").unwrap().value(), 1, "rounds up");
        assert!(Quantity::parse("-1").unwrap().is_negative());
    }

    #[test]
    fn refuses_what_the_api_server_refuses() {
        for bad in ["", "abc", "1.2.3", "10 Mi", "1mi", "1KiB", "."] {
            assert!(Quantity::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
