//! How findings say things: identifiers and literals quoted for SQL and the
//! shell, numbers, sizes and durations for people, evidence with its unit.

use super::RUNBOOK;
use super::{Command, Evidence};
use crate::keywords::quote_ident;

/// `"schema"."name"`, each part quoted only where PostgreSQL needs it.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}

/// A SQL string literal.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A shell word in single quotes.
pub(crate) fn shell_word(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

pub(crate) fn sql(text: String) -> Command {
    Command { kind: "sql", text }
}

pub(crate) fn shell(text: String) -> Command {
    Command { kind: "shell", text }
}

pub fn runbook(alert: &str) -> String {
    format!("{RUNBOOK}#{}", alert.to_lowercase())
}

/// `12,345`
pub fn count(v: f64) -> String {
    let s = format!("{}", v.round() as i64);
    let (sign, digits) = s.strip_prefix('-').map(|d| ("-", d)).unwrap_or(("", &s));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

/// `1.5 GiB`
pub fn bytes(v: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut x = v;
    let mut i = 0;
    while x.abs() >= 1024.0 && i < units.len() - 1 {
        x /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{} B", v as i64)
    } else {
        format!("{x:.1} {}", units[i])
    }
}

/// `3 d 4 h`, `12 min 5 s`, `45 s`
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    let (d, h, m, sec) = (s / 86400, s % 86400 / 3600, s % 3600 / 60, s % 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else if m > 0 {
        format!("{m} min {sec} s")
    } else {
        format!("{sec} s")
    }
}

pub(crate) fn ev(name: &str, value: f64, unit: &'static str) -> Evidence {
    let text = match unit {
        "bytes" => bytes(value),
        "seconds" => duration(value),
        "ratio" => format!("{:.1} %", value * 100.0),
        "unix_time" => super::html::utc(value),
        "flag" => (if value == 1.0 { "yes" } else { "no" }).to_string(),
        _ => format!("{} {unit}", count(value)),
    };
    Evidence {
        name: name.to_string(),
        value,
        unit,
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(
            qualified("public", "Meeting \"Rooms\""),
            "public.\"Meeting \"\"Rooms\"\"\""
        );
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(shell_word("a'b"), "'a'\\''b'");
    }

    #[test]
    fn numbers_for_people() {
        assert_eq!(count(1234567.0), "1,234,567");
        assert_eq!(count(-999.0), "-999");
        assert_eq!(bytes(1536.0 * 1024.0 * 1024.0), "1.5 GiB");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(duration(90061.0), "1 d 1 h");
        assert_eq!(duration(61.0), "1 min 1 s");
        assert_eq!(duration(3.4), "3 s");
    }
}
