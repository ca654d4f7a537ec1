//! Sequence rules: integer key columns near their type's limit
//! (`integer_key_exhaustion`) and sequences near their own limit
//! (`sequence_exhaustion`).

use super::super::findings::{table_object, Ctx, Draft, Row, Rule};
use super::super::text::{ev, qualified, sql};
use super::super::thresholds as t;
use super::super::{Object, Severity};
use crate::collectors::sequences::{COLUMN_USED, LAST_VALUE, MAX_VALUE, USED};
use crate::keywords::quote_ident;

pub static RULES: &[Rule] = &[
    Rule {
        kind: "integer_key_exhaustion",
        family: &COLUMN_USED,
        alert: "PostgresIntegerKeyNearExhaustion",
        critical_alert: Some("PostgresIntegerKeyExhaustionImminent"),
        why: "When the sequence passes the column type's limit, every INSERT into the table fails \
              with \"integer out of range\".",
        check: integer_key,
    },
    Rule {
        kind: "sequence_exhaustion",
        family: &USED,
        alert: "PostgresSequenceNearExhaustion",
        critical_alert: None,
        why: "At its limit nextval() fails (or, with CYCLE, starts handing out old values again).",
        check: sequence,
    },
];

/// The integer type whose limit `ratio` was measured against, from the
/// sequence's last value: the column family exports the ratio only.
fn integer_type(last_value: Option<f64>, ratio: f64) -> &'static str {
    let Some(last) = last_value.filter(|_| ratio > 0.0) else {
        return "integer";
    };
    let limit = last.abs() / ratio;
    let near = |max: f64| (limit - max).abs() <= max * 1e-6;
    if near(32767.0) || near(32768.0) {
        "smallint"
    } else if near(2147483647.0) || near(2147483648.0) {
        "integer"
    } else {
        "bigint"
    }
}

/// The schema and last value of the sequence feeding a column (the column
/// family names the sequence only): the one in the table's schema, else the
/// only one of that name in the database.
fn schema_of(c: &Ctx, db: &str, seq: &str, table_schema: &str) -> (String, Option<f64>) {
    let same: Vec<Row> = c
        .rows(&LAST_VALUE)
        .filter(|s| s.l("datname") == db && s.l("sequencename") == seq)
        .collect();
    let pick = same
        .iter()
        .find(|s| s.l("schemaname") == table_schema)
        .or_else(|| (same.len() == 1).then(|| &same[0]));
    match pick {
        Some(s) => (s.l("schemaname").to_string(), Some(s.value)),
        None => (table_schema.to_string(), None),
    }
}

/// A column past the warning share of its type, and its sequence's schema
/// and last value.
fn near_limit(c: &Ctx, r: &Row) -> Option<(String, Option<f64>)> {
    (r.value > t::INTEGER_KEY_WARNING_RATIO)
        .then(|| schema_of(c, r.l("datname"), r.l("sequencename"), r.l("schemaname")))
}

fn integer_key(c: &Ctx, r: &Row) -> Option<Draft> {
    let (seq_schema, last) = near_limit(c, r)?;
    let (schema, table, column, seq) = (
        r.l("schemaname"),
        r.l("relname"),
        r.l("attname"),
        r.l("sequencename"),
    );
    let typ = integer_type(last, r.value);
    let critical = r.value > t::INTEGER_KEY_CRITICAL_RATIO;
    let name = qualified(schema, table);
    let (fix, caution) = if typ == "bigint" {
        (
            vec![],
            "The column is bigint already: no wider integer type exists. Find out why the sequence \
                 advances this fast (a loop, huge CACHE, or deliberate gaps) before it runs out."
                .to_string(),
        )
    } else {
        (
            vec![
                sql(t::LOCK_TIMEOUT.into()),
                sql(format!(
                    "ALTER TABLE {name} ALTER COLUMN {} TYPE bigint;",
                    quote_ident(column)
                )),
                sql(format!(
                    "ALTER SEQUENCE {} AS bigint;",
                    qualified(&seq_schema, seq)
                )),
            ],
            format!(
                "ALTER COLUMN … TYPE bigint rewrites the whole table and its indexes under an ACCESS \
                     EXCLUSIVE lock: no reads or writes on {name} until it ends, and disk for a second copy. \
                     Columns of other tables that reference this one (foreign keys) need the same change. \
                     Without such a window: add a bigint column, fill it in batches, keep it in sync with a \
                     trigger, then swap the columns in one short transaction. ALTER SEQUENCE … AS bigint \
                     lifts the sequence's own {typ} limit (an identity column's sequence follows the \
                     column by itself)."
            ),
        )
    };
    let mut d = Draft::new(
        if critical {
            Severity::Critical
        } else {
            Severity::Warning
        },
        format!(
            "Column {} ({typ}) has used {:.1} % of its range",
            column,
            r.value * 100.0
        ),
        table_object(r),
    );
    d.evidence = vec![
        ev("share of the type's range used", r.value, "ratio"),
        ev("sequence last value", last.unwrap_or(0.0), "values"),
    ];
    d.fix = fix;
    d.caution = Some(caution);
    Some(d)
}

fn sequence(c: &Ctx, r: &Row) -> Option<Draft> {
    if r.value <= t::SEQUENCE_USED_RATIO {
        return None;
    }
    let (db, schema, seq) = (r.l("datname"), r.l("schemaname"), r.l("sequencename"));
    // Planned with its column (integer_key): one plan per sequence.
    let planned = c.rows(&COLUMN_USED).any(|col| {
        col.l("datname") == db
            && col.l("sequencename") == seq
            && near_limit(c, &col).is_some_and(|(s, _)| s == schema)
    });
    if planned {
        return None;
    }
    let name = qualified(schema, seq);
    let descending = c.get(&MAX_VALUE, r.labels).is_some_and(|m| m < 0.0);
    let mut d = Draft::new(
        Severity::Warning,
        format!("Sequence has used {:.1} % of its range", r.value * 100.0),
        Object {
            datname: Some(db.to_string()),
            schemaname: Some(schema.to_string()),
            relname: Some(seq.to_string()),
            ..Default::default()
        },
    );
    d.evidence = vec![
        ev("share of MINVALUE..MAXVALUE used", r.value, "ratio"),
        ev(
            "last value",
            r.value_of(&c.rows(&LAST_VALUE).collect::<Vec<_>>()),
            "values",
        ),
    ];
    d.fix = vec![sql(format!(
        "ALTER SEQUENCE {name} AS bigint {};",
        if descending { "NO MINVALUE" } else { "NO MAXVALUE" }
    ))];
    d.caution = Some(
        "This widens the sequence to bigint's range; instant, no table rewrite. If the limit is \
         deliberate (fixed-width numbers, CYCLE), decide with the application instead. A column \
         it feeds must be able to hold the larger values."
            .into(),
    );
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_type_from_last_value_and_ratio() {
        assert_eq!(
            integer_type(Some(2_100_000_000.0), 2_100_000_000.0 / 2147483647.0),
            "integer"
        );
        assert_eq!(integer_type(Some(-30000.0), 30000.0 / 32768.0), "smallint");
        assert_eq!(integer_type(Some(9e18), 9e18 / 9223372036854775807.0), "bigint");
        assert_eq!(integer_type(None, 0.9), "integer");
    }
}
