//! The collector framework: what a collector declares and the list that
//! registers them.
//!
//! A collector does no I/O. It says which queries it needs for a server
//! version (`source`), and turns their rows into samples (`map`). The
//! orchestrator (`scrape/`) owns connections, fan-out across databases,
//! deadlines, caches and the `pg_scrape_collector_*` metrics. A query marked
//! `optional` may fail (e.g. `pg_ls_waldir` without privilege) while the rest
//! of the collector still works. A new collector is one file (a directory
//! when it is large: `bloat/` keeps its SQL apart from its arithmetic) with
//! one `const META: Meta` saying what it is, plus one line in `ALL`; its name
//! matches the file, `PGMAINT_COLLECTORS` and the `collector` label.

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::types::ToSql;

use crate::config::Config;
use crate::error::CollectError;
use crate::metrics::{Family, Sink};
use crate::rows::{Row, Rows};

pub mod activity;
pub mod archiver;
pub mod backup;
pub mod bloat;
pub mod checkpointer;
mod choice;
pub mod database;
pub mod database_size;
pub mod indexes;
pub mod locks;
pub mod pitr;
pub mod replication;
pub mod selection;
pub mod sequences;
pub mod settings;
pub mod sizes;
pub mod statements;
pub mod tables;
pub mod vacuum_progress;
pub mod wal_archive;
pub mod wal_receiver;

pub use choice::{enabled, is_enabled};

/// Every collector, in output order.
pub const ALL: &[&dyn Collector] = &[
    &activity::Activity,
    &database::Database,
    &database_size::DatabaseSize,
    &settings::Settings,
    &vacuum_progress::VacuumProgress,
    &replication::Replication,
    &wal_receiver::WalReceiver,
    &archiver::Archiver,
    &locks::Locks,
    &checkpointer::Checkpointer,
    &tables::Tables,
    &indexes::Indexes,
    &sizes::Sizes,
    &bloat::Bloat,
    &sequences::Sequences,
    &statements::Statements,
    &pitr::Pitr,
    &backup::Backup,
    &wal_archive::WalArchive,
];

/// Looks a collector up by name.
pub fn by_name(name: &str) -> Option<&'static dyn Collector> {
    ALL.iter().copied().find(|c| c.name() == name)
}

/// The oldest PostgreSQL major version the exporter supports.
pub const MIN_SUPPORTED_MAJOR: i32 = 14;

/// What a collector needs for this server: `NotApplicable` below its minimum
/// version (checked here once, not in every collector), else its `source`.
pub fn plan(c: &dyn Collector, ctx: &Ctx) -> Source {
    if ctx.server.major() < c.min_major() {
        Source::NotApplicable
    } else {
        c.source(ctx)
    }
}

/// Where a collector runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Once per scrape, in the DSN's database (cluster-wide views).
    Cluster,
    /// Once per discovered database (`pg_stat_user_tables` and friends only
    /// show the database you are connected to).
    PerDatabase,
}

/// Facts about the server, read once per scrape before collectors run.
#[derive(Debug, Clone, Default)]
pub struct ServerInfo {
    /// `server_version_num`, e.g. 150004.
    pub version_num: i32,
    /// `server_version`, e.g. "15.4 (Debian 15.4-1)".
    pub version: String,
    pub in_recovery: bool,
    /// Member of pg_monitor or pg_read_all_stats (or superuser): sees every session.
    pub read_all_stats: bool,
    pub superuser: bool,
    /// `wal_segment_size` in bytes (what a complete archived segment measures).
    pub wal_segment_size: Option<u64>,
    /// The databases where a VACUUM showed in pg_stat_progress_vacuum, or an
    /// autovacuum worker in pg_stat_activity, when the scrape began (read
    /// once, cluster-wide, with these facts). `vacuum_progress` asks only
    /// those (issue 22). `None`: not known, every database is asked.
    pub vacuuming: Option<Vec<String>>,
}

impl ServerInfo {
    /// Major version: 15 for 150004.
    pub fn major(&self) -> i32 {
        self.version_num / 10000
    }
}

/// What a collector sees while planning and mapping.
pub struct Ctx<'a> {
    /// The database this run is for ("" never happens: cluster collectors get
    /// the DSN's database).
    pub datname: &'a str,
    pub server: &'a ServerInfo,
    pub config: &'a Config,
}

/// A query parameter, bound as `$n` (never formatted into SQL).
#[derive(Debug, Clone)]
pub enum Param {
    Int(i64),
    Float(f64),
    Text(String),
}

impl Param {
    pub fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Param::Int(v) => v,
            Param::Float(v) => v,
            Param::Text(v) => v,
        }
    }
}

/// One named query of a collector.
#[derive(Debug, Clone)]
pub struct Query {
    pub name: &'static str,
    pub sql: &'static str,
    pub params: Vec<Param>,
    /// May fail without failing the collector (its families are then absent).
    pub optional: bool,
}

impl Query {
    pub fn new(name: &'static str, sql: &'static str) -> Query {
        Query {
            name,
            sql,
            params: vec![],
            optional: false,
        }
    }
    pub fn optional(mut self) -> Query {
        self.optional = true;
        self
    }
    pub fn param(mut self, p: Param) -> Query {
        self.params.push(p);
        self
    }
}

/// What a collector needs for this server.
#[derive(Debug, Clone)]
pub enum Source {
    /// Run these queries (pipelined on one connection), then `map`.
    Sql(Vec<Query>),
    /// Does not apply (version, recovery state, …): skipped, not a failure.
    NotApplicable,
    /// Read files or run programs on the exporter's host (`host/` executes
    /// them); the results arrive in `Fetched::host`, in request order.
    Host(Vec<crate::host::HostRequest>),
}

/// One query's rows (shared), or its error message.
pub type QueryResult = Result<Arc<Rows>, String>;

/// The results of a collector's queries, by name. Rows are shared: a query
/// that several collectors ask for in the same database and scrape (e.g.
/// `selection`) runs once.
#[derive(Default)]
pub struct Fetched {
    pub results: Vec<(&'static str, QueryResult)>,
    /// Results of a `Source::Host` collector's requests, in request order.
    pub host: Vec<crate::host::HostResult>,
}

impl Fetched {
    /// Rows of a required query; its failure fails the collector.
    pub fn rows(&self, name: &'static str) -> Result<&Rows, CollectError> {
        match self.results.iter().find(|(n, _)| *n == name) {
            Some((_, Ok(rows))) => Ok(rows),
            Some((_, Err(e))) => Err(CollectError::Query {
                query: name,
                message: e.clone(),
            }),
            None => Err(CollectError::Missing(name)),
        }
    }

    /// Rows of an optional query, or `None` when it failed or was not run.
    pub fn optional(&self, name: &'static str) -> Option<&Rows> {
        self.results
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, r)| r.as_ref().ok())
            .map(|rows| &**rows)
    }
}

/// What a collector is, declared once as a `const` in its file: the facts
/// the landing page, `PGMAINT_COLLECTORS`, the docs tests and the scrape
/// planner read.
#[derive(Debug)]
pub struct Meta {
    /// Name used in `PGMAINT_COLLECTORS` and the `collector` label; matches the file.
    pub name: &'static str,
    /// One line for the landing page.
    pub description: &'static str,
    pub scope: Scope,
    /// Every family this collector can emit (docs and lint tests walk these).
    pub families: &'static [&'static Family],
    /// Oldest major version the collector applies to; older servers skip it
    /// without error (usually `MIN_SUPPORTED_MAJOR`).
    pub min_major: i32,
    /// Runs unless `PGMAINT_COLLECTORS` says otherwise (false: switched on by
    /// its own setting).
    pub default_enabled: bool,
}

/// Placeholder `Meta` of collectors defined at run time (custom queries),
/// which override `name()`, `description()`, `scope()` and `families()`
/// instead. Every collector in `ALL` declares its own (a unit test checks).
pub const RUNTIME_META: Meta = Meta {
    name: "",
    description: "",
    scope: Scope::PerDatabase,
    families: &[],
    min_major: MIN_SUPPORTED_MAJOR,
    default_enabled: true,
};

/// A collector: declarations plus a pure row → sample mapping.
pub trait Collector: Send + Sync {
    /// The collector's declared facts. The accessors below read it; a
    /// collector built at run time may override them instead.
    fn meta(&self) -> &'static Meta {
        &RUNTIME_META
    }
    /// Name used in `PGMAINT_COLLECTORS` and the `collector` label.
    fn name(&self) -> &'static str {
        self.meta().name
    }
    /// One line for the landing page.
    fn description(&self) -> &'static str {
        self.meta().description
    }
    fn scope(&self) -> Scope {
        self.meta().scope
    }
    fn default_enabled(&self) -> bool {
        self.meta().default_enabled
    }
    /// Every family this collector can emit (docs and lint tests walk these).
    fn families(&self) -> &'static [&'static Family] {
        self.meta().families
    }
    /// Oldest major version the collector applies to; older servers skip it
    /// without error.
    fn min_major(&self) -> i32 {
        self.meta().min_major
    }
    /// The queries for this server (already known to be ≥ `min_major`), or
    /// `NotApplicable`.
    fn source(&self, ctx: &Ctx) -> Source;
    /// Rows → samples.
    fn map(&self, ctx: &Ctx, input: &Fetched, out: &mut Sink) -> Result<(), CollectError>;
    /// How long a result may be reused (zero: every scrape). Slow, slowly
    /// changing data (sizes, bloat) is cached; the HELP text says so.
    fn cache_ttl(&self, _config: &Config) -> Duration {
        Duration::ZERO
    }
    /// statement_timeout of this collector's background refreshes (cached
    /// collectors only); `None`: `PGMAINT_BACKGROUND_STATEMENT_TIMEOUT`.
    fn statement_timeout(&self, _config: &Config) -> Option<Duration> {
        None
    }
    /// Text from outside the exporter (custom queries): each background run
    /// is wrapped in `BEGIN READ ONLY … ROLLBACK`, so nothing it does to the
    /// session (`set_config(…, false)`, a `SET` inside a function) outlives it.
    fn isolated(&self) -> bool {
        false
    }
}

/// Reads an optional numeric column as f64 whatever its SQL type
/// (int2/int4/int8/float4/float8/numeric-as-float8/oid).
pub fn num(row: Row<'_>, idx: usize) -> Result<Option<f64>, CollectError> {
    use tokio_postgres::types::Type;
    let ty = row.columns()[idx].type_();
    if *ty == Type::FLOAT8 {
        return Ok(row.try_get::<_, Option<f64>>(idx)?);
    }
    Ok(match ty.clone() {
        Type::INT2 => row.try_get::<_, Option<i16>>(idx)?.map(f64::from),
        Type::INT4 => row.try_get::<_, Option<i32>>(idx)?.map(f64::from),
        Type::INT8 => row.try_get::<_, Option<i64>>(idx)?.map(|v| v as f64),
        Type::FLOAT4 => row.try_get::<_, Option<f32>>(idx)?.map(f64::from),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(idx)?,
        Type::OID => row.try_get::<_, Option<u32>>(idx)?.map(f64::from),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(idx)?
            .map(|b| if b { 1.0 } else { 0.0 }),
        other => {
            return Err(CollectError::Other(format!(
                "column {} has type {other}, cast it to float8 in SQL",
                row.columns()[idx].name()
            )))
        }
    })
}

/// Reads a numeric column that is never NULL: a count, a NOT NULL column, or
/// a `coalesce(x, 0)` whose comment says why NULL means zero there. NULL is
/// an error (the collector fails, visibly), never a silent 0. Where NULL
/// means "unknown" (no privilege, not applicable, no data yet) read the
/// column with `num` and leave the sample out instead.
pub fn num_req(row: Row<'_>, idx: usize) -> Result<f64, CollectError> {
    num(row, idx)?.ok_or_else(|| CollectError::Other(format!("column {} is NULL", row.columns()[idx].name())))
}

/// Reads an optional text column without copying it; NULL becomes "".
pub fn text_ref(row: Row<'_>, idx: usize) -> Result<&str, CollectError> {
    Ok(row.try_get::<_, Option<&str>>(idx)?.unwrap_or_default())
}

/// Reads an optional text column; NULL becomes "".
pub fn text(row: Row<'_>, idx: usize) -> Result<String, CollectError> {
    Ok(row.try_get::<_, Option<String>>(idx)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collectors_are_skipped_below_their_minimum_version() {
        let config =
            Config::from_vars([("PGMAINT_DATABASE_URL".to_string(), "host=h dbname=d".to_string())]).unwrap();
        let plan_for = |version_num| {
            let server = ServerInfo {
                version_num,
                ..Default::default()
            };
            let ctx = Ctx {
                datname: "d",
                server: &server,
                config: &config,
            };
            ALL.iter()
                .map(|c| !matches!(plan(*c, &ctx), Source::NotApplicable))
                .collect::<Vec<bool>>()
        };
        assert!(
            plan_for(130012).iter().all(|sql| !sql),
            "PostgreSQL 13 is not supported"
        );
        assert!(
            plan_for(150004).iter().all(|sql| *sql),
            "every collector applies to 15"
        );
    }

    #[test]
    fn every_collector_declares_its_own_meta() {
        for c in ALL {
            let meta = c.meta();
            assert!(!meta.name.is_empty() && !meta.families.is_empty(), "{meta:?}");
            assert_eq!(by_name(meta.name).map(|c| c.meta().name), Some(meta.name));
        }
    }
}
