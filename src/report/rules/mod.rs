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
