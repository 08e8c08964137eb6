//! Kubernetes resource quantities (`64Mi`, `500m`, `0.5`, `1e3`) read as integers, the way
//! the kubelet turns them into cgroup limits: bytes for memory, millicores for CPU, both
//! rounded up as `Quantity.Value()` and `MilliValue()` round.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("quantity {0:?} is not a Kubernetes quantity (like 128Mi, 1G, 500m or 0.5)")]
pub struct QuantityError(pub String);

/// The quantity as a whole number of units, rounded up.
pub fn value(q: &str) -> Result<i64, QuantityError> {
    scaled(q, 1)
}

/// The quantity in thousandths, rounded up (millicores for CPU).
pub fn milli_value(q: &str) -> Result<i64, QuantityError> {
    scaled(q, 1000)
}

fn scaled(q: &str, scale: i128) -> Result<i64, QuantityError> {
    let err = || QuantityError(q.to_string());
    let s = q.trim();
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return Err(err());
    }
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    let digits = format!("{int_part}{frac_part}");
    if digits.len() > 30 {
        return Err(err());
    }
    let mantissa: i128 = digits.parse().map_err(|_| err())?;

    // num / den is the suffix's multiplier, with the fraction's digits in den.
    let mut num: i128 = scale;
    let mut den: i128 = 10i128.pow(frac_part.len() as u32);
    let binary = |p: u32| 1i128 << (10 * p);
    match suffix {
        "" => {}
        "Ki" => num *= binary(1),
        "Mi" => num *= binary(2),
        "Gi" => num *= binary(3),
        "Ti" => num *= binary(4),
        "Pi" => num *= binary(5),
        "Ei" => num *= binary(6),
        "n" => den *= 1_000_000_000,
        "u" => den *= 1_000_000,
        "m" => den *= 1_000,
        "k" => num *= 1_000,
        "M" => num *= 1_000_000,
        "G" => num *= 1_000_000_000,
        "T" => num *= 1_000_000_000_000,
        "P" => num *= 1_000_000_000_000_000,
        "E" => num *= 1_000_000_000_000_000_000,
        e if e.starts_with(['e', 'E']) => {
            let exp: i32 = e[1..].parse().map_err(|_| err())?;
            if exp.abs() > 18 {
                return Err(err());
            }
            if exp >= 0 {
                num *= 10i128.pow(exp as u32);
            } else {
                den *= 10i128.pow(exp.unsigned_abs());
            }
        }
        _ => return Err(err()),
    }
    let product = mantissa.checked_mul(num).ok_or_else(err)?;
    let rounded_up = (product + den - 1) / den;
    let v = i64::try_from(rounded_up).map_err(|_| err())?;
    Ok(if negative { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_and_cpu_forms() {
        assert_eq!(value("64Mi"), Ok(64 << 20));
        assert_eq!(value("1G"), Ok(1_000_000_000));
        assert_eq!(value("1.5Gi"), Ok(3 << 29));
        assert_eq!(value("128974848"), Ok(128_974_848));
        assert_eq!(value("129e6"), Ok(129_000_000));
        assert_eq!(milli_value("500m"), Ok(500));
        assert_eq!(milli_value("0.5"), Ok(500));
        assert_eq!(milli_value("2"), Ok(2000));
        assert_eq!(milli_value("1u"), Ok(1), "rounded up");
        assert!(value("12XB").is_err());
        assert!(value("").is_err());
        assert!(value("1.2.3").is_err());
    }
}
