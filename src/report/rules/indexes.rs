//! Index rules: invalid (`invalid_index`), duplicate (`duplicate_index`)
//! and never-scanned (`unused_index`) indexes, with only the commands
//! PostgreSQL accepts for that index (constraints, partitions, leftovers of
//! REINDEX CONCURRENTLY).

use super::super::findings::{index_object, Ctx, Draft, Row, Rule};
use super::super::text::{ev, literal, qualified, sql};
use super::super::thresholds as t;
use super::super::{Evidence, Severity};
use crate::collectors::indexes::{
    DUPLICATE, DUPLICATE_OF, FACTS, INVALID, READY, SCANS, STATS_RESET, SUPPORTS_FK, UNUSED,
};
use crate::collectors::sizes::INDEX_BYTES;

pub static RULES: &[Rule] = &[
    Rule {
        kind: "invalid_index",
        family: &INVALID,
        alert: "PostgresInvalidIndex",
        critical_alert: None,
        // Each kind of invalid index says why in its own words.
        why: "",
        check: invalid,
    },
    Rule {
        kind: "duplicate_index",
        family: &DUPLICATE,
        alert: "PostgresDuplicateIndex",
        critical_alert: None,
        why: "Same columns, operator classes, collations, order, expressions and predicate, and no \
              rule of its own the kept index lacks: it doubles the write and space cost and adds \
              nothing for queries.",
        check: duplicate,
    },
    Rule {
        kind: "unused_index",
        family: &UNUSED,
        alert: "PostgresUnusedIndex",
        critical_alert: None,
        // Said per case: a foreign key's index, a kept duplicate, or neither.
        why: "",
        check: unused,
    },
];

/// Said of every CONCURRENTLY command.
pub(crate) const CONCURRENTLY: &str =
    "CONCURRENTLY waits for every transaction open in the database when it starts: \
    end the long or idle-in-transaction sessions this report lists first, or it waits for them.";

/// What the `indexes` collector knows about an index beyond its verdicts
/// (`pgmaint_report_index_facts`), to suggest only commands PostgreSQL accepts.
#[derive(Default, Clone, Copy)]
struct IndexFacts<'a> {
    /// Backs a primary key, unique or exclusion constraint: DROP INDEX refuses.
    constraint: bool,
    /// A foreign key depends on it.
    referenced: bool,
    /// A partitioned index: DROP INDEX CONCURRENTLY refuses.
    partitioned: bool,
    /// The root partitioned index it is attached to ("" if none).
    attached_to: &'a str,
}

/// A failed `REINDEX CONCURRENTLY` leaves `<name>_ccnew[N]` (the new copy,
/// never finished) or `<name>_ccold[N]` (the old index, swapped out but not
/// dropped): `ChooseRelationName()` appends digits when the name is taken.
/// Returns the suffix kind and the name of the index it was made for.
fn reindex_leftover(name: &str) -> Option<(&'static str, &str)> {
    for kind in ["_ccnew", "_ccold"] {
        if let Some(pos) = name.rfind(kind) {
            let tail = &name[pos + kind.len()..];
            if pos > 0 && tail.chars().all(|c| c.is_ascii_digit()) {
                return Some((kind, &name[..pos]));
            }
        }
    }
    None
}

/// The command that drops an index that may be dropped on its own.
fn drop_index(name: &str, partitioned: bool) -> String {
    if partitioned {
        // DROP INDEX CONCURRENTLY refuses partitioned indexes.
        format!("SET lock_timeout = '5s'; DROP INDEX {name};")
    } else {
        format!("DROP INDEX CONCURRENTLY {name};")
    }
}

/// The alternative to REINDEX for an invalid index.
fn or_drop(name: &str, attached_to: &str) -> String {
    if attached_to.is_empty() {
        format!("Or drop it (DROP INDEX CONCURRENTLY {name};) and create it again.")
    } else {
        format!(
            "It is attached to the partitioned index {attached_to}, so it cannot be dropped on its own \
             (only with that index)."
        )
    }
}

/// Said of a DROP INDEX on a partitioned index.
const PARTITIONED_DROP: &str = "A partitioned index cannot be dropped CONCURRENTLY: DROP INDEX takes an \
    ACCESS EXCLUSIVE lock on the partitioned table and every partition for the (short) catalog change; \
    lock_timeout makes it give up rather than queue every query behind it. Run it when the tables are quiet.";

/// The facts about the index of `r` (none: an ordinary index).
fn facts_of<'a>(c: &Ctx<'a>, r: &Row) -> IndexFacts<'a> {
    c.find(&FACTS, r.labels)
        .map(|f| IndexFacts {
            constraint: f.l("constraint") == "1",
            referenced: f.l("referenced") == "1",
            partitioned: f.l("partitioned") == "1",
            attached_to: f.l("attached_to"),
        })
        .unwrap_or_default()
}

fn invalid(c: &Ctx, r: &Row) -> Option<Draft> {
    if r.value != 1.0 {
        return None;
    }
    let name = qualified(r.l("schemaname"), r.l("indexrelname"));
    let f = facts_of(c, r);
    let is_ready = c.get(&READY, r.labels).unwrap_or(1.0) == 1.0;
    let leftover = reindex_leftover(r.l("indexrelname"));
    let (title, why, fix, caution) = if f.partitioned {
        (
                "Invalid partitioned index".to_string(),
                "A partitioned index is invalid until every partition has an index attached to it \
                 (it was created with ON ONLY, or an attach is missing); queries on the partitions \
                 still use the partitions' own indexes.",
                vec![sql(format!(
                    "SELECT c.oid::regclass FROM pg_inherits p JOIN pg_class c ON c.oid = p.inhrelid \
                     WHERE p.inhparent = (SELECT indrelid FROM pg_index WHERE indexrelid = {idx}::regclass) \
                     AND NOT EXISTS (SELECT 1 FROM pg_inherits a JOIN pg_index x ON x.indexrelid = a.inhrelid \
                     WHERE a.inhparent = {idx}::regclass AND x.indrelid = c.oid);",
                    idx = literal(&name)
                ))],
                Some(format!(
                    "The query lists the partitions without an attached index: on each, CREATE INDEX \
                     CONCURRENTLY a matching index (on a partition that is itself partitioned: CREATE \
                     INDEX … ON ONLY it, and the same one level down), then ALTER INDEX {name} ATTACH \
                     PARTITION <that index>; the partitioned index becomes valid with the last attach."
                )),
            )
    } else if let Some(("_ccold", original)) = leftover {
        (
            format!("Invalid index left by REINDEX CONCURRENTLY of {original}"),
            "A _ccold index is the old copy a REINDEX CONCURRENTLY swapped out but could not drop: \
                 the rebuild itself succeeded. Queries do not use it; it only takes space.",
            vec![sql(format!("DROP INDEX CONCURRENTLY {name};"))],
            Some(format!(
                "Drop it (do not REINDEX it: that would rebuild an index nothing needs). {CONCURRENTLY}"
            )),
        )
    } else if let Some((_, original)) = leftover {
        let orig = qualified(r.l("schemaname"), original);
        (
            format!("Invalid index left by a failed REINDEX CONCURRENTLY of {original}"),
            "A _ccnew index is the new copy of a REINDEX CONCURRENTLY that failed or was cancelled: \
                 the original index is untouched and still in use. This copy only takes space (and, once \
                 ready, write time).",
            vec![
                sql(format!("DROP INDEX CONCURRENTLY {name};")),
                sql(t::LOCK_TIMEOUT.into()),
                sql(format!("REINDEX INDEX CONCURRENTLY {orig};")),
            ],
            Some(format!(
                "Drop the leftover, do not reindex it; then run the REINDEX again once its cause is \
                     gone (the server log of the failure says what it was). {CONCURRENTLY}"
            )),
        )
    } else if !is_ready {
        (
            "Invalid index, never finished".to_string(),
            "Its CREATE INDEX CONCURRENTLY failed or was cancelled in its first build \
                 (pg_index.indisready = false): writes do not maintain it and queries do not use it; \
                 it takes space and nothing enforces its rule (a UNIQUE one does not check for duplicates).",
            vec![
                sql(t::LOCK_TIMEOUT.into()),
                sql(format!("REINDEX INDEX CONCURRENTLY {name};")),
            ],
            Some(format!(
                "If it is UNIQUE and failed on duplicate keys, REINDEX fails the same way until they \
                     are removed. {} {CONCURRENTLY}",
                or_drop(&name, f.attached_to)
            )),
        )
    } else {
        (
            "Invalid index".to_string(),
            "Queries never use an invalid index, but every write still maintains it \
                 (pg_index.indisready = true).",
            vec![
                sql(t::LOCK_TIMEOUT.into()),
                sql(format!("REINDEX INDEX CONCURRENTLY {name};")),
            ],
            Some(format!(
                "Unless a CREATE INDEX CONCURRENTLY is building it right now. If the build failed on \
                     duplicate keys (UNIQUE), REINDEX fails the same way until they are removed. {} \
                     {CONCURRENTLY}",
                or_drop(&name, f.attached_to)
            )),
        )
    };
    let mut d = Draft::new(Severity::Warning, title, index_object(r));
    d.evidence = vec![
        ev("pg_index.indisvalid", 0.0, "flag"),
        ev("pg_index.indisready", if is_ready { 1.0 } else { 0.0 }, "flag"),
    ];
    d.why = Some(why);
    d.fix = fix;
    d.caution = caution;
    Some(d)
}

fn duplicate(c: &Ctx, r: &Row) -> Option<Draft> {
    if r.value != 1.0 {
        return None;
    }
    let name = qualified(r.l("schemaname"), r.l("indexrelname"));
    let keep = c.find(&DUPLICATE_OF, r.labels).map(|k| k.l("kept"));
    let keep_q = keep
        .map(|k| qualified(r.l("schemaname"), k))
        .unwrap_or_else(|| "the other index".into());
    let f = facts_of(c, r);
    let mut evidence = vec![];
    if let Some(s) = c.get(&INDEX_BYTES, r.labels) {
        evidence.push(ev("index size", s, "bytes"));
    }
    // Never a command that drops a constraint or what a foreign key
    // needs: the DBA decides that, knowing the application.
    let (fix, caution) = if f.constraint || f.referenced {
        (
            vec![],
            format!(
                "Keep {keep_q}. This one {}: DROP INDEX refuses, and dropping the constraint \
                     (ALTER TABLE … DROP CONSTRAINT) changes what the table enforces and fails if a \
                     foreign key depends on it. Nothing is suggested; decide with the application's \
                     owners.",
                if f.referenced {
                    "is what a foreign key depends on"
                } else {
                    "backs a constraint"
                }
            ),
        )
    } else if f.partitioned {
        (
            vec![sql(drop_index(&name, true))],
            format!("Keep {keep_q}. {PARTITIONED_DROP}"),
        )
    } else {
        (
            vec![sql(drop_index(&name, false))],
            format!("Keep {keep_q}. {CONCURRENTLY}"),
        )
    };
    let title = match keep {
        Some(k) => format!("Duplicate index: {k} does everything it does, keep {k}"),
        None => "Duplicate index: another index of the table does everything it does".into(),
    };
    let mut d = Draft::new(Severity::Warning, title, index_object(r));
    d.evidence = evidence;
    d.fix = fix;
    d.caution = Some(caution);
    Some(d)
}

fn unused(c: &Ctx, r: &Row) -> Option<Draft> {
    // Reported above already: invalid indexes are never scanned anyway.
    if r.value != 1.0 || c.get(&INVALID, r.labels) == Some(1.0) || c.get(&DUPLICATE, r.labels) == Some(1.0) {
        return None;
    }
    let name = qualified(r.l("schemaname"), r.l("indexrelname"));
    let f = facts_of(c, r);
    let fk = c.get(&SUPPORTS_FK, r.labels) == Some(1.0);
    // Duplicates of this index the report says to drop: after that, the
    // queries they served may use this one, so it is judged again later.
    let twins: Vec<&str> = c
        .rows(&DUPLICATE_OF)
        .filter(|d| {
            (d.l("datname"), d.l("schemaname"), d.l("relname"), d.l("kept"))
                == (
                    r.l("datname"),
                    r.l("schemaname"),
                    r.l("relname"),
                    r.l("indexrelname"),
                )
        })
        .map(|d| d.l("indexrelname"))
        .collect();
    let bytes_ = c.get(&INDEX_BYTES, r.labels);
    let since = c
        .rows(&STATS_RESET)
        .filter(|s| s.l("datname") == r.l("datname"))
        .last()
        .map(|s| s.value);
    let stats_old = since.is_none_or_old(c.now);
    let big = bytes_.is_some_and(|b| b > t::UNUSED_INDEX_MIN_BYTES);
    // Info level only from a size worth a DBA's time (a partitioned
    // index has no storage of its own: its size says nothing).
    // (Below this floor an index is never "big": no warning is hidden.)
    if !f.partitioned && bytes_.is_some_and(|b| b < t::UNUSED_INDEX_INFO_MIN_BYTES) {
        return None;
    }
    let mut evidence = vec![];
    if !f.partitioned {
        evidence.push(ev("index scans", c.get(&SCANS, r.labels).unwrap_or(0.0), "scans"));
    }
    if let Some(b) = bytes_ {
        evidence.push(ev("index size", b, "bytes"));
    }
    evidence.push(match since {
        Some(s) => ev("statistics reset", s, "unix_time"),
        None => Evidence {
            name: "statistics reset".into(),
            value: 0.0,
            unit: "unix_time",
            text: "never".into(),
        },
    });
    if fk {
        evidence.push(ev("supports a foreign key", 1.0, "flag"));
    }
    let recheck = "Scans are counted on this server only, since the statistics reset: an index used \
                       only on a replica, or by a monthly job, looks unused here.";
    let (severity, title, why, fix, caution) = if fk {
        (
            Severity::Info,
            "Index never scanned, but it supports a foreign key".to_string(),
            "Its leading columns are a foreign key's referencing columns: it is scanned only when \
                 referenced rows are deleted or their keys change. Without it each such delete or update \
                 scans this whole table while holding its locks.",
            vec![],
            format!(
                "Not offered for dropping. Drop it only if the referenced table never has rows \
                     deleted or keys updated. {recheck}"
            ),
        )
    } else if !twins.is_empty() {
        (
            Severity::Info,
            "Index never scanned; its duplicates are to be dropped first".to_string(),
            "Its duplicates are reported above with the command to drop them, keeping this one: \
                 the queries (if any) they served will use this one afterwards.",
            vec![],
            format!(
                "Drop {} first, as its finding says; then judge this index again once the \
                     statistics cover a normal week or month. Never drop every copy at once. {recheck}",
                twins
                    .iter()
                    .map(|t| qualified(r.l("schemaname"), t))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    } else {
        (
            if big && stats_old {
                Severity::Warning
            } else {
                Severity::Info
            },
            if f.partitioned {
                "Partitioned index never scanned on any partition".to_string()
            } else {
                "Index never scanned".to_string()
            },
            "An index no query uses still costs space and time on every write.",
            vec![sql(drop_index(&name, f.partitioned))],
            format!(
                "{recheck} Check the replicas and save its definition first: SELECT \
                     pg_get_indexdef({}::regclass); {}",
                literal(&name),
                if f.partitioned {
                    PARTITIONED_DROP
                } else {
                    CONCURRENTLY
                }
            ),
        )
    };
    let mut d = Draft::new(severity, title, index_object(r));
    d.evidence = evidence;
    d.why = Some(why);
    d.fix = fix;
    d.caution = Some(caution);
    Some(d)
}

/// "Never reset, or reset at least the threshold ago."
trait StatsAge {
    fn is_none_or_old(&self, now: f64) -> bool;
}

impl StatsAge for Option<f64> {
    fn is_none_or_old(&self, now: f64) -> bool {
        match self {
            None => true,
            Some(s) => now - s >= t::UNUSED_INDEX_MIN_STATS_AGE_SECONDS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reindex_concurrently_leftovers() {
        assert_eq!(
            reindex_leftover("orders_pkey_ccnew"),
            Some(("_ccnew", "orders_pkey"))
        );
        assert_eq!(
            reindex_leftover("orders_pkey_ccnew12"),
            Some(("_ccnew", "orders_pkey"))
        );
        assert_eq!(reindex_leftover("t_ccold1"), Some(("_ccold", "t")));
        assert_eq!(reindex_leftover("_ccnew"), None);
        assert_eq!(reindex_leftover("t_ccnew_x"), None);
        assert_eq!(reindex_leftover("orders_idx"), None);
    }
}
