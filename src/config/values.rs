//! Value parsers shared by every setting: durations, counts, booleans,
//! regex lists, and the environment read as UTF-8. Each error names the
//! variable, the value and what is accepted.

use std::time::Duration;

use regex::Regex;

use crate::error::ConfigError;

/// The variables the exporter reads, as text. `std::env::vars()` panics on
/// a value that is not UTF-8; here such a value in one of ours
/// (`PGMAINT_*`, `DATA_SOURCE_NAME`) is an error naming it, and anyone
/// else's is skipped.
pub fn utf8_vars(
    vars: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for (k, v) in vars {
        let name = k.to_string_lossy();
        let ours = name.starts_with("PGMAINT_") || name == "DATA_SOURCE_NAME";
        match (k.to_str(), v.into_string()) {
            (Some(k), Ok(v)) => out.push((k.to_string(), v)),
            (_, Err(_)) | (None, _) if ours => {
                return Err(ConfigError::Env(format!(
                    "{name} is not valid UTF-8 (check the variable's bytes and the locale it was written in)"
                )))
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The longest duration any setting accepts: longer is a typo, and
/// `Instant + duration` must never overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);
/// PostgreSQL's limit for `statement_timeout` and `lock_timeout` (an int of ms).
pub const MAX_PG_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

/// `5s`, `250ms`, `2m`, `1h`, or a bare number of seconds, up to
/// `MAX_DURATION`; `None` for anything else (never a panic).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let secs = parse_seconds(s)?;
    if secs > MAX_DURATION.as_secs_f64() {
        return None;
    }
    Duration::try_from_secs_f64(secs).ok()
}

/// The number of seconds a duration's text says, however large.
pub(super) fn parse_seconds(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then_some(secs)
}

pub(super) fn duration(
    var: &'static str,
    v: &Option<String>,
    default: &str,
) -> Result<Duration, ConfigError> {
    duration_max(var, v, default, MAX_DURATION)
}

pub(super) fn duration_max(
    var: &'static str,
    v: &Option<String>,
    default: &str,
    max: Duration,
) -> Result<Duration, ConfigError> {
    let s = v.as_deref().unwrap_or(default);
    let invalid = |expected: String| ConfigError::Invalid {
        var,
        value: s.into(),
        expected,
    };
    match parse_seconds(s) {
        None => Err(invalid("a duration (e.g. 5s, 500ms, 2m, 1h)".into())),
        Some(secs) if secs > max.as_secs_f64() => {
            Err(invalid(format!("a duration up to {}", describe_max(max))))
        }
        Some(_) => parse_duration(s).ok_or_else(|| invalid("a duration (e.g. 5s, 500ms, 2m, 1h)".into())),
    }
}

/// How a maximum reads in an error: "366 days", or PostgreSQL's limit.
pub fn describe_max(max: Duration) -> String {
    if max == MAX_PG_TIMEOUT {
        "2147483647ms (24.8 days, PostgreSQL's limit)".into()
    } else {
        format!("{} days", max.as_secs() / 86400)
    }
}

pub(super) fn number(var: &'static str, v: &Option<String>, default: f64) -> Result<f64, ConfigError> {
    match v {
        None => Ok(default),
        Some(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && *n >= 0.0)
            .ok_or_else(|| ConfigError::Invalid {
                var,
                value: s.clone(),
                expected: "a number of seconds (e.g. 300)".into(),
            }),
    }
}

/// Upper bound of every count setting: far above any sane value, and small
/// enough for semaphores, pools and `Duration::from_secs` to take it.
pub const MAX_COUNT: usize = 1_000_000;

pub(super) fn count(
    var: &'static str,
    v: &Option<String>,
    default: usize,
    min: usize,
) -> Result<usize, ConfigError> {
    count_max(var, v, default, min, MAX_COUNT)
}

pub(super) fn count_max(
    var: &'static str,
    v: &Option<String>,
    default: usize,
    min: usize,
    max: usize,
) -> Result<usize, ConfigError> {
    let Some(s) = v else { return Ok(default) };
    let t = s.trim();
    let too_big = || ConfigError::Invalid {
        var,
        value: s.clone(),
        expected: format!("a whole number from {min} to {max}"),
    };
    match t.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        Ok(n) if n > max => Err(too_big()),
        Err(e) if *e.kind() == std::num::IntErrorKind::PosOverflow => Err(too_big()),
        _ => Err(ConfigError::Invalid {
            var,
            value: s.clone(),
            expected: format!("a whole number ≥ {min}"),
        }),
    }
}

/// Connections: far above any PostgreSQL's `max_connections` in practice,
/// and small enough for the pools' per-database bookkeeping.
pub(super) const MAX_PG_CONNECTIONS: usize = 10_000;

pub(super) fn boolean(var: &'static str, v: &Option<String>, default: bool) -> Result<bool, ConfigError> {
    match v.as_deref().map(str::trim) {
        None => Ok(default),
        Some("on" | "true" | "1" | "yes") => Ok(true),
        Some("off" | "false" | "0" | "no") => Ok(false),
        Some(other) => Err(ConfigError::Invalid {
            var,
            value: other.into(),
            expected: "on or off (also true/false, 1/0, yes/no)".into(),
        }),
    }
}

/// Comma-separated names or regexes, each matching the whole name.
pub(super) fn regexes(var: &'static str, v: &Option<String>) -> Result<Vec<Regex>, ConfigError> {
    let Some(s) = v else { return Ok(vec![]) };
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            Regex::new(&format!("^(?:{p})$")).map_err(|e| ConfigError::Invalid {
                var,
                value: p.into(),
                expected: format!(
                    "a name or regular expression ({})",
                    e.to_string()
                        .lines()
                        .last()
                        .unwrap_or("invalid")
                        .trim()
                        .trim_start_matches("error: ")
                ),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("banana"), None);
        assert_eq!(parse_duration("5 parsecs"), None);
        for huge in [
            "99999999999999999999",
            "100000000000000000h",
            "1e400",
            "367d",
            "9000h",
        ] {
            assert_eq!(parse_duration(huge), None, "{huge}");
        }
        assert_eq!(parse_duration("8784h"), Some(MAX_DURATION));
    }

    #[test]
    fn non_utf8_values_of_ours_are_errors() {
        use std::ffi::OsString;
        use std::os::unix::ffi::OsStringExt;
        let bad = || OsString::from_vec(b"a\xffb".to_vec());
        let e = utf8_vars([("PGMAINT_LOG_LEVEL".into(), bad())]).unwrap_err();
        assert!(
            e.to_string().contains("PGMAINT_LOG_LEVEL is not valid UTF-8"),
            "{e}"
        );
        assert!(utf8_vars([(OsString::from_vec(b"PGMAINT_\xff".to_vec()), "x".into())]).is_err());
        let ok = utf8_vars([("HOME".into(), bad()), ("PGMAINT_X".into(), "y".into())]).unwrap();
        assert_eq!(ok, [("PGMAINT_X".to_string(), "y".to_string())]);
    }
}
