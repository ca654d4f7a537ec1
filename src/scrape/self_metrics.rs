//! The exporter's own families: `pg_up`, `pg_scrape_collector_*`, build and
//! server facts, scrape duration and connection counts.

use crate::metrics::Family;

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
