//! The integration tests: one crate, one module per area, sharing `harness`
//! (a real PostgreSQL cluster, the real exporter binary, a parser for what it
//! serves). One binary to compile and link instead of one per file.
//!
//! Run one area by its module path: `scripts/test.sh -E 'test(/^activity::/)'`
//! (README.md).

mod harness;

mod activity;
mod alerts;
mod alerts_live;
mod archiver;
mod backup;
mod bloat;
mod cardinality;
mod checkpointer;
mod config;
mod container;
mod custom_queries;
mod dashboards;
mod database;
mod databases;
mod db_tls;
mod demo;
mod faults;
mod http;
mod indexes;
mod kubernetes;
mod lint;
mod load;
mod locks;
mod module_graph;
mod packaging;
mod probe;
mod probe_security;
mod replication;
mod report;
mod security;
mod sequences;
mod settings;
mod sizes;
mod standby;
mod statements;
mod tables;
mod vacuum_progress;
mod versions;
mod wal_archive;
mod web_config;
