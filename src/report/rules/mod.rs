//! The report's rules, one file per kind of object: each holds a table of
//! [`Rule`]s that `findings::all` walks in the order of [`ALL`].

pub mod backup;
pub mod bloat;
pub mod indexes;
pub mod replication;
pub mod sequences;
pub mod sessions;
pub mod tables;
pub mod wal;
pub mod xid;

use super::findings::Rule;

/// Every rule table. The order does not matter for the report (`rank`
/// orders the findings); it is the order findings are produced in.
pub static ALL: &[&[Rule]] = &[
    tables::RULES,
    xid::RULES,
    indexes::RULES,
    bloat::RULES,
    sessions::RULES,
    backup::RULES,
    wal::RULES,
    replication::RULES,
    sequences::RULES,
];

#[cfg(test)]
mod tests {
    use super::ALL;
    use crate::report::ROOT_CAUSES;

    fn doc(name: &str) -> String {
        std::fs::read_to_string(format!("{}/docs/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    /// Every rule's kind is a row of docs/report.md's table (where a row
    /// may name two kinds, `a` / `b`), and every alert a finding links to
    /// has its runbook section.
    #[test]
    fn every_rule_is_documented_and_links_to_a_runbook_section() {
        let (report, runbook) = (doc("report.md"), doc("runbook.md"));
        let rows: Vec<&str> = report.lines().filter(|l| l.starts_with("| `")).collect();
        for rule in ALL.iter().flat_map(|t| t.iter()) {
            let kind = format!("`{}`", rule.kind);
            assert!(
                rows.iter()
                    .any(|r| r.split('|').nth(1).is_some_and(|c| c.contains(&kind))),
                "{kind} is not in docs/report.md's table of kinds"
            );
            for alert in [Some(rule.alert), rule.critical_alert].into_iter().flatten() {
                assert!(
                    runbook.lines().any(|l| l == format!("## {alert}")),
                    "{}: no runbook section ## {alert}",
                    rule.kind
                );
            }
            assert!(!rule.family.name.is_empty());
        }
    }

    /// The ranking's root causes are kinds some rule produces.
    #[test]
    fn root_causes_are_rule_kinds() {
        let kinds: Vec<&str> = ALL.iter().flat_map(|t| t.iter()).map(|r| r.kind).collect();
        for k in ROOT_CAUSES {
            assert!(kinds.contains(k), "{k}");
        }
    }
}
