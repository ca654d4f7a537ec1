//! On a standby: the commands that write move to `on_primary` (they fail on
//! a read-only server), and an unused index is judged on the primary.

use super::{Command, Finding};

/// Whether a suggested command writes (and so fails on a standby):
/// maintenance and DDL, two-phase commit, and the shell tools that run them.
/// `SET lock_timeout` only prepares such a command.
pub fn writes(c: &Command) -> bool {
    let first = c.text.split_whitespace().next().unwrap_or("");
    match c.kind {
        "sql" => {
            matches!(
                first.to_ascii_uppercase().as_str(),
                "VACUUM"
                    | "ANALYZE"
                    | "ALTER"
                    | "REINDEX"
                    | "DROP"
                    | "CREATE"
                    | "ROLLBACK"
                    | "COMMIT"
                    | "CLUSTER"
            ) || c.text.starts_with("SET lock_timeout")
        }
        _ => matches!(first, "pg_repack" | "vacuumdb" | "reindexdb"),
    }
}

/// Said on every finding of a standby that has commands for the primary.
pub const ON_PRIMARY: &str = "This server is a standby: it is read-only, so the commands that write \
    (under \"on the primary\") must run on the primary, where they replicate here. Find it with \
    SELECT sender_host, sender_port FROM pg_stat_wal_receiver;";

/// On a standby: moves the commands that write from `fix` to `on_primary`
/// and drops those of `fallback`. Index scans are counted per server, so an index unused on
/// the standby may well be used on the primary: no DROP is proposed for it.
pub(super) fn for_standby(f: &mut Finding) {
    let (read, write): (Vec<Command>, Vec<Command>) = f.fix.drain(..).partition(|c| !writes(c));
    f.fix = read;
    // The fallback's writes would fail here too; its caution still names it.
    f.fallback.retain(|c| !writes(c));
    let note = if f.kind == "unused_index" {
        "Scans are counted on this standby only: the primary's statistics decide whether the index is \
         unused there; check them before dropping anything."
            .to_string()
    } else if write.is_empty() {
        return;
    } else {
        f.on_primary = write;
        ON_PRIMARY.to_string()
    };
    f.caution = Some(match f.caution.take() {
        Some(c) => format!("{note} {c}"),
        None => note,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_recognised() {
        let c = |kind, text: &str| Command {
            kind,
            text: text.into(),
        };
        for w in [
            c("sql", "VACUUM (ANALYZE, VERBOSE) t;"),
            c("sql", "ALTER SEQUENCE s AS bigint;"),
            c("sql", "SET lock_timeout = '5s';"),
            c("sql", "ROLLBACK PREPARED 'x';"),
            c("shell", "pg_repack --dbname='d' --table='t' --no-order"),
            c("shell", "vacuumdb --dbname='d'"),
        ] {
            assert!(writes(&w), "{w:?}");
        }
        for r in [
            c(
                "sql",
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = 1;",
            ),
            c("sql", "SELECT pg_drop_replication_slot('s');"),
            c("shell", "pg_restore --list x > /dev/null"),
        ] {
            assert!(!writes(&r), "{r:?}");
        }
    }
}
