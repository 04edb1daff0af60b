//! Value parsers for the float options of every command: a NaN, an infinity or a value out
//! of range is refused by the argument parser, with the option's name, before any work.

fn parse(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number"))?;
    if !v.is_finite() {
        return Err(format!("'{s}' is not a finite number"));
    }
    Ok(v)
}

fn to_f32(v: f64, s: &str) -> Result<f32, String> {
    let f = v as f32;
    if !f.is_finite() {
        return Err(format!("'{s}' is too large"));
    }
    Ok(f)
}

/// A finite number > 0.
pub fn positive(s: &str) -> Result<f32, String> {
    let v = parse(s)?;
    if v <= 0.0 {
        return Err(format!("'{s}' must be greater than 0"));
    }
    let f = to_f32(v, s)?;
    if f == 0.0 {
        return Err(format!("'{s}' is too small"));
    }
    Ok(f)
}

/// A finite number >= 0.
pub fn non_negative(s: &str) -> Result<f32, String> {
    let v = parse(s)?;
    if v < 0.0 {
        return Err(format!("'{s}' must not be negative"));
    }
    to_f32(v, s)
}

/// A finite number in 0..=1.
pub fn unit(s: &str) -> Result<f32, String> {
    let v = parse(s)?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("'{s}' must be between 0 and 1"));
    }
    to_f32(v, s)
}

/// A finite number > 0, as f64.
pub fn positive_f64(s: &str) -> Result<f64, String> {
    let v = parse(s)?;
    if v <= 0.0 {
        return Err(format!("'{s}' must be greater than 0"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_and_out_of_range_values_are_refused() {
        for bad in ["nan", "NaN", "inf", "-inf", "1e999", "x", ""] {
            assert!(positive(bad).is_err(), "{bad}");
            assert!(non_negative(bad).is_err(), "{bad}");
            assert!(unit(bad).is_err(), "{bad}");
        }
        assert!(positive("0").is_err());
        assert!(positive("1e-300").is_err());
        assert!(non_negative("-1").is_err());
        assert!(unit("1.5").is_err());
        assert_eq!(positive("2.5"), Ok(2.5));
        assert_eq!(non_negative("0"), Ok(0.0));
        assert_eq!(unit("0.7"), Ok(0.7));
        assert_eq!(positive_f64("2"), Ok(2.0));
    }
}
