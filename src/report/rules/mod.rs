//! The report's rules, one file per kind of object.

pub mod backup;
pub mod bloat;
pub mod indexes;
pub mod replication;
pub mod sequences;
pub mod sessions;
pub mod tables;
pub mod wal;
pub mod xid;
