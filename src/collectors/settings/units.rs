//! pg_settings values in base units: the unit of a setting
//! (pg_settings.unit: 8kB, kB, MB, ms, s, min, …) to bytes and seconds,
//! booleans to 1/0, -1 ("disabled") kept as is. Pure functions, no I/O.

/// What a setting's family measures; its pg_settings.unit must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dim {
    /// A count, factor, age or boolean: no unit.
    Plain,
    Bytes,
    Seconds,
}

/// The dimension and factor to base units of a pg_settings.unit, e.g.
/// "8kB" → (Bytes, 8192), "min" → (Seconds, 60). None for units we do not know.
pub fn unit_scale(unit: &str) -> Option<(Dim, f64)> {
    if unit.is_empty() {
        return Some((Dim::Plain, 1.0));
    }
    // Block-sized units carry a multiplier: "8kB", "16MB".
    let split = unit.find(|c: char| !c.is_ascii_digit()).unwrap_or(unit.len());
    let (count, base) = unit.split_at(split);
    let count: f64 = if count.is_empty() {
        1.0
    } else {
        count.parse().ok()?
    };
    let (dim, factor) = match base {
        "B" => (Dim::Bytes, 1.0),
        "kB" => (Dim::Bytes, 1024.0),
        "MB" => (Dim::Bytes, 1024.0 * 1024.0),
        "GB" => (Dim::Bytes, 1024.0 * 1024.0 * 1024.0),
        "TB" => (Dim::Bytes, 1024.0 * 1024.0 * 1024.0 * 1024.0),
        "us" => (Dim::Seconds, 1e-6),
        "ms" => (Dim::Seconds, 1e-3),
        "s" => (Dim::Seconds, 1.0),
        "min" => (Dim::Seconds, 60.0),
        "h" => (Dim::Seconds, 3600.0),
        "d" => (Dim::Seconds, 86400.0),
        _ => return None,
    };
    Some((dim, count * factor))
}

/// A pg_settings value in base units for a family of dimension `want`.
/// Booleans and archive_mode become 1/0; -1 ("disabled") is kept as is.
pub fn convert(setting: &str, unit: &str, vartype: &str, want: Dim) -> Result<f64, String> {
    match vartype {
        "bool" | "enum" => {
            if want != Dim::Plain {
                return Err(format!("{vartype} value {setting:?} for a {want:?} family"));
            }
            match setting {
                "on" | "true" | "always" => Ok(1.0),
                "off" | "false" => Ok(0.0),
                other => Err(format!("{vartype} value {other:?} is not on/off/always")),
            }
        }
        "integer" | "real" => {
            let v: f64 = setting
                .trim()
                .parse()
                .map_err(|_| format!("{setting:?} is not a number"))?;
            let (dim, factor) = unit_scale(unit).ok_or_else(|| format!("unknown unit {unit:?}"))?;
            if dim != want {
                return Err(format!("unit {unit:?} does not give {want:?}"));
            }
            Ok(if v == -1.0 { v } else { v * factor })
        }
        other => Err(format!("vartype {other} has no numeric value")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_scale_to_bytes_and_seconds() {
        assert_eq!(unit_scale("8kB"), Some((Dim::Bytes, 8192.0)));
        assert_eq!(unit_scale("kB"), Some((Dim::Bytes, 1024.0)));
        assert_eq!(unit_scale("MB"), Some((Dim::Bytes, 1048576.0)));
        assert_eq!(unit_scale("16MB"), Some((Dim::Bytes, 16777216.0)));
        assert_eq!(unit_scale("B"), Some((Dim::Bytes, 1.0)));
        assert_eq!(unit_scale("ms"), Some((Dim::Seconds, 0.001)));
        assert_eq!(unit_scale("s"), Some((Dim::Seconds, 1.0)));
        assert_eq!(unit_scale("min"), Some((Dim::Seconds, 60.0)));
        assert_eq!(unit_scale(""), Some((Dim::Plain, 1.0)));
        assert_eq!(unit_scale("furlong"), None);
    }

    #[test]
    fn values_convert_to_base_units() {
        // shared_buffers = 128MB is 16384 blocks of 8kB.
        assert_eq!(convert("16384", "8kB", "integer", Dim::Bytes), Ok(134217728.0));
        assert_eq!(convert("4096", "kB", "integer", Dim::Bytes), Ok(4194304.0));
        assert_eq!(convert("1024", "MB", "integer", Dim::Bytes), Ok(1073741824.0));
        assert_eq!(convert("60", "s", "integer", Dim::Seconds), Ok(60.0));
        assert_eq!(convert("2", "ms", "real", Dim::Seconds), Ok(0.002));
        assert_eq!(convert("5", "min", "integer", Dim::Seconds), Ok(300.0));
        assert_eq!(convert("0.2", "", "real", Dim::Plain), Ok(0.2));
        assert_eq!(convert("200000000", "", "integer", Dim::Plain), Ok(200000000.0));
    }

    #[test]
    fn minus_one_means_disabled_and_is_not_scaled() {
        assert_eq!(convert("-1", "kB", "integer", Dim::Bytes), Ok(-1.0));
        assert_eq!(convert("-1", "ms", "real", Dim::Seconds), Ok(-1.0));
        assert_eq!(convert("-1", "", "integer", Dim::Plain), Ok(-1.0));
    }

    #[test]
    fn booleans_and_archive_mode_are_one_or_zero() {
        assert_eq!(convert("on", "", "bool", Dim::Plain), Ok(1.0));
        assert_eq!(convert("off", "", "bool", Dim::Plain), Ok(0.0));
        assert_eq!(convert("always", "", "enum", Dim::Plain), Ok(1.0));
        assert_eq!(convert("off", "", "enum", Dim::Plain), Ok(0.0));
        assert!(convert("replica", "", "enum", Dim::Plain).is_err());
    }

    #[test]
    fn a_unit_of_the_wrong_kind_is_an_error() {
        assert!(convert("60", "s", "integer", Dim::Bytes).is_err());
        assert!(convert("1024", "kB", "integer", Dim::Plain).is_err());
        assert!(convert("x", "kB", "integer", Dim::Bytes).is_err());
    }
}
