//! The exporter's own families: `pg_up`, `pg_scrape_collector_*`, build and
//! server facts, scrape duration and connection counts; and the exposition
//! of a finished scrape (these families first, then every collector's).

use crate::collectors;
use crate::metrics::{encode_family, Exposition, Family, Section, Sink};

use super::{Scraper, Snapshot};

pub static UP: Family = Family::gauge(
    "pg_up",
    "1 if the exporter could connect to PostgreSQL and read server facts in this scrape, else 0.",
    &[],
);
pub static COLLECTOR_SUCCESS: Family = Family::gauge(
    "pg_scrape_collector_success",
    "1 if the collector succeeded for the database in this scrape (datname is empty for cluster-wide collectors).",
    &["collector", "datname"],
);
pub static COLLECTOR_DURATION: Family = Family::gauge(
    "pg_scrape_collector_duration_seconds",
    "Time the collector took in this scrape, including its queries (0 when served from cache).",
    &["collector", "datname"],
);
pub static COLLECTOR_AGE: Family = Family::gauge(
    "pg_scrape_collector_age_seconds",
    "Age of the data a per-database collector reported for the database: 0 when read in this scrape; the time since it was read when served from cache (cached collectors) or when the deadline left the database out of this scrape and its last good result is served (more databases than PGMAINT_MAX_CONNECTIONS can visit in PGMAINT_SCRAPE_TIMEOUT).",
    &["collector", "datname"],
);
pub static BUILD_INFO: Family = Family::gauge(
    "pgmaint_exporter_build_info",
    "Always 1; labels carry the exporter's version and git revision.",
    &["version", "revision"],
);
pub static SERVER_INFO: Family = Family::gauge(
    "pg_server_info",
    "Always 1; version is server_version of the watched PostgreSQL server.",
    &["version", "server_version_num"],
);
pub static POSTMASTER_START: Family = Family::gauge(
    "pg_postmaster_start_time_seconds",
    "Unix time the PostgreSQL server started (pg_postmaster_start_time()).",
    &[],
);
pub static ROLE_PRIVILEGE: Family = Family::gauge(
    "pgmaint_exporter_role_privilege",
    "1 if the exporter's role has the privilege (pg_has_role MEMBER, or superuser). Without pg_monitor/pg_read_all_stats other sessions' state is hidden, and the activity families that would come out low are left out.",
    &["privilege"],
);
pub static SCRAPE_DURATION: Family = Family::gauge(
    "pgmaint_exporter_scrape_duration_seconds",
    "Wall time of the last scrape, from request to encoded response.",
    &[],
);
pub static DATABASES: Family = Family::gauge(
    "pgmaint_exporter_databases",
    "Databases the per-database collectors ran in (after PGMAINT_INCLUDE/EXCLUDE_DATABASES).",
    &[],
);
pub static CONNECTIONS_OPEN: Family = Family::gauge(
    "pgmaint_exporter_connections_open",
    "Database connections the exporter holds open right now, across all databases.",
    &[],
);
pub static CONNECTIONS_MAX: Family = Family::gauge(
    "pgmaint_exporter_connections_max",
    "The cap on open database connections (PGMAINT_MAX_CONNECTIONS).",
    &[],
);

/// The exporter's own families, in output order.
pub const SELF_FAMILIES: &[&Family] = &[
    &UP,
    &COLLECTOR_SUCCESS,
    &COLLECTOR_DURATION,
    &COLLECTOR_AGE,
    &BUILD_INFO,
    &SERVER_INFO,
    &POSTMASTER_START,
    &ROLE_PRIVILEGE,
    &SCRAPE_DURATION,
    &DATABASES,
    &CONNECTIONS_OPEN,
    &CONNECTIONS_MAX,
];

/// A finished scrape as Prometheus text: the exporter's own families
/// (encoded now), then each collector's families in `ALL` order, then the
/// custom queries', then `tail` (process-level families).
pub fn exposition(snap: &Snapshot, scraper: &Scraper, tail: String) -> Exposition {
    let config = scraper.config();
    let open_connections = scraper.pools().open_connections();
    let mut own = Sink::default();
    own.gauge(&UP, &[], if snap.up { 1.0 } else { 0.0 });
    for r in &snap.runs {
        own.gauge(
            &COLLECTOR_SUCCESS,
            &[r.collector, &r.datname],
            if r.success { 1.0 } else { 0.0 },
        );
        own.gauge(
            &COLLECTOR_DURATION,
            &[r.collector, &r.datname],
            r.duration.as_secs_f64(),
        );
        own.gauge_opt(
            &COLLECTOR_AGE,
            &[r.collector, &r.datname],
            r.age.map(|a| a.as_secs_f64()),
        );
    }
    own.gauge(
        &BUILD_INFO,
        &[env!("CARGO_PKG_VERSION"), env!("PGMAINT_REVISION")],
        1.0,
    );
    if let Some(s) = &snap.server {
        own.gauge(&SERVER_INFO, &[&s.version, &s.version_num.to_string()], 1.0);
    }
    own.gauge_opt(&POSTMASTER_START, &[], snap.postmaster_start);
    for (p, has) in &snap.privileges {
        own.gauge(&ROLE_PRIVILEGE, &[p], if *has { 1.0 } else { 0.0 });
    }
    own.gauge(&SCRAPE_DURATION, &[], snap.duration.as_secs_f64());
    if snap.up {
        own.gauge(&DATABASES, &[], snap.databases.len() as f64);
    }
    own.gauge(&CONNECTIONS_OPEN, &[], open_connections as f64);
    own.gauge(&CONNECTIONS_MAX, &[], config.max_connections as f64);
    let mut head = String::new();
    for f in SELF_FAMILIES {
        encode_family(&mut head, f, std::iter::once(own.get(f.name)));
    }
    let sections = collectors::ALL
        .iter()
        .chain(scraper.custom())
        .map(|c| Section {
            families: c.families(),
            sinks: snap
                .runs
                .iter()
                .filter(|r| r.collector == c.name())
                .map(|r| r.sink.clone())
                .collect(),
        })
        .collect();
    Exposition::new(head, sections, tail)
}
