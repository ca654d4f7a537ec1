//! Running collectors: their queries pipelined on one connection, rows
//! shared between collectors that ask for the same query, host collectors
//! (files, programs) within the deadline, and errors worded for the log.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::{join_all, BoxFuture, FutureExt, Shared};
use tracing::{debug, warn};

use super::cache::Cached;
use super::{Run, Scraper};
use crate::collectors::{self, Collector, Ctx, Fetched, Query, QueryResult};
use crate::error::{CollectError, ConnError};
use crate::metrics::Sink;
use crate::pool::Lease;

/// A query's rows, awaitable by every collector that asked for it.
type SharedQuery<'a> = Shared<BoxFuture<'a, QueryResult>>;

impl Scraper {
    /// Runs collectors' queries pipelined on one connection and maps the rows.
    ///
    /// Each query holds a handle on the lease until its rows are in: the
    /// connection goes back to its pool (and its place among the busy ones
    /// to the next database) as soon as the last query is done, while the
    /// rows are still being mapped, unless the caller keeps a handle too.
    pub(super) async fn execute(
        &self,
        lease: Arc<Lease>,
        ctx: &Ctx<'_>,
        todo: Vec<(&'static dyn Collector, Vec<Query>)>,
        deadline: Instant,
    ) -> Vec<Run> {
        let fresh = lease.conn.is_fresh();
        // One future per distinct query (same SQL, same parameters): a query
        // several collectors need runs once and its rows are shared.
        let mut unique: HashMap<(&'static str, String), SharedQuery<'_>> = HashMap::new();
        let mut planned = Vec::new();
        for (c, queries) in todo {
            let futs: Vec<SharedQuery<'_>> = queries
                .iter()
                .map(|q| {
                    let key = (q.sql, format!("{:?}", q.params));
                    let params = q.params.clone();
                    let sql = q.sql;
                    // Built-in SQL reads catalogs and statistics views, whose
                    // row types never change under a connection: on a
                    // connection that was leased before (it will likely be
                    // again) it is prepared once and kept, which saves the
                    // server a parse and analysis each time. On a fresh one it
                    // runs unnamed: Parse, Bind and Execute in one message,
                    // no Parse/Describe round trip for a statement that may
                    // run only once there (many databases, few connections:
                    // issue 22). Custom queries read user tables that ALTER
                    // TABLE may change ("cached plan must not change result
                    // type"): always unnamed.
                    let cache = !c.name().starts_with("custom:") && !fresh;
                    let qname = q.name;
                    let t0 = Instant::now();
                    unique
                        .entry(key)
                        .or_insert_with(|| {
                            let lease = lease.clone();
                            async move {
                                let rows = fetch(&lease.conn, sql, &params, cache).await;
                                drop(lease);
                                debug!(
                                    query = qname,
                                    ms = t0.elapsed().as_millis() as u64,
                                    rows = rows.as_ref().map(|r| r.len()).unwrap_or(0),
                                    "query done"
                                );
                                rows.map(Arc::new)
                            }
                            .boxed()
                            .shared()
                        })
                        .clone()
                })
                .collect();
            planned.push((c, queries, futs));
        }
        // The collectors hold their own handles: without this one, a query's
        // rows are freed as soon as the last collector using them has mapped
        // them, not when the whole database is done.
        drop(unique);
        drop(lease);
        let work = planned.into_iter().map(|(c, queries, futs)| async move {
            let started = Instant::now();
            let fetched = async {
                let rows = join_all(futs).await;
                let results = queries
                    .iter()
                    .zip(rows)
                    .map(|(q, r)| {
                        if let (true, Err(e)) = (q.optional, &r) {
                            debug!(collector = c.name(), query = q.name, error = %e, "optional query failed");
                        }
                        (q.name, r)
                    })
                    .collect();
                Fetched {
                    results,
                    ..Default::default()
                }
            };
            let outcome = match tokio::time::timeout_at(deadline.into(), fetched).await {
                Err(_) => Err(CollectError::Deadline),
                Ok(fetched) => {
                    match queries
                        .iter()
                        .filter(|q| !q.optional)
                        .find_map(|q| fetched.rows(q.name).err())
                    {
                        Some(e) => Err(e),
                        None => {
                            let t0 = Instant::now();
                            let mapped = map_rows(c, ctx, &fetched);
                            debug!(
                                collector = c.name(),
                                ms = t0.elapsed().as_millis() as u64,
                                "mapped"
                            );
                            mapped
                        }
                    }
                }
            };
            (c, started.elapsed(), outcome)
        });
        let mut runs = Vec::new();
        for (c, duration, outcome) in join_all(work).await {
            let run = self.finished(c, ctx.datname, duration, outcome);
            if !c.cache_ttl(&self.config).is_zero() {
                self.cache.lock().unwrap().insert(
                    (c.name(), ctx.datname.to_string()),
                    Cached {
                        at: Instant::now(),
                        success: run.success,
                        sink: run.sink.clone(),
                    },
                );
            }
            runs.push(run);
        }
        runs
    }

    /// A collector whose plan asks nothing of the database this time: mapped
    /// from the scrape's facts alone, with no connection.
    pub(super) fn map_only(&self, c: &'static dyn Collector, ctx: &Ctx<'_>) -> Run {
        let started = Instant::now();
        let outcome = map_rows(c, ctx, &Fetched::default());
        self.finished(c, ctx.datname, started.elapsed(), outcome)
            .with_age(Duration::ZERO)
    }

    /// Runs a host collector (files, programs) within the deadline.
    pub(super) async fn execute_host(
        self: &Arc<Self>,
        c: &'static dyn Collector,
        ctx: &Ctx<'_>,
        requests: Vec<crate::host::HostRequest>,
        deadline: Instant,
    ) -> Run {
        let started = Instant::now();
        let work = crate::host::execute(&self.host, &self.config, requests);
        let outcome = match tokio::time::timeout_at(deadline.into(), work).await {
            Err(_) => Err(CollectError::Deadline),
            Ok(mut host) => {
                self.with_verifications(&mut host);
                let fetched = Fetched {
                    host,
                    ..Default::default()
                };
                map_rows(c, ctx, &fetched)
            }
        };
        self.finished(c, ctx.datname, started.elapsed(), outcome)
    }

    /// A collector's outcome as its `Run`; a failure is logged.
    fn finished(
        &self,
        c: &'static dyn Collector,
        datname: &str,
        duration: Duration,
        outcome: Result<Sink, CollectError>,
    ) -> Run {
        match outcome {
            Ok(sink) => Run::new(c, &self.config, datname, true, duration, Arc::new(sink)),
            Err(e) => {
                warn!(collector = c.name(), datname = %datname, error = %e, "collector failed");
                Run::new(c, &self.config, datname, false, duration, Default::default())
            }
        }
    }
}

/// What a collector makes of its rows (or host results): its mapping, then
/// the sink's own checks.
fn map_rows(c: &dyn Collector, ctx: &Ctx<'_>, fetched: &Fetched) -> Result<Sink, CollectError> {
    let mut sink = Sink::default();
    c.map(ctx, fetched, &mut sink)
        .and_then(|_| sink.checked().map_err(CollectError::Other))
}

/// Runs one query and packs its rows as they arrive (`rows.rs`): no
/// `Vec<tokio_postgres::Row>` is ever held, and each row's read buffer is
/// reused as soon as it is copied. `cache`: a named statement kept on the
/// connection (`prepare_cached`); otherwise the unnamed statement, one
/// round trip with no separate prepare.
async fn fetch(
    client: &deadpool_postgres::ClientWrapper,
    sql: &str,
    params: &[collectors::Param],
    cache: bool,
) -> Result<crate::rows::Rows, String> {
    use futures::TryStreamExt;
    if !cache {
        let stream = client
            .query_typed_raw(sql, params.iter().map(typed))
            .await
            .map_err(|e| describe(&e))?;
        let mut stream = std::pin::pin!(stream);
        let mut rows: Option<crate::rows::RowsBuilder> = None;
        while let Some(row) = stream.try_next().await.map_err(|e| describe(&e))? {
            rows.get_or_insert_with(|| crate::rows::RowsBuilder::with_columns(row.columns()))
                .push(&row)
                .map_err(|e| e.to_string())?;
        }
        return Ok(rows.map(|r| r.finish()).unwrap_or_default());
    }
    let stmt = client.prepare_cached(sql).await.map_err(|e| describe(&e))?;
    let stream = client
        .query_raw(&stmt, params.iter().map(|p| p.as_sql()))
        .await
        .map_err(|e| describe(&e))?;
    let mut stream = std::pin::pin!(stream);
    let mut rows = crate::rows::RowsBuilder::new(&stmt);
    while let Some(row) = stream.try_next().await.map_err(|e| describe(&e))? {
        rows.push(&row).map_err(|e| e.to_string())?;
    }
    Ok(rows.finish())
}

/// A parameter with the type it is sent as (an unnamed statement names its
/// parameters' types; the server casts from them as it would from a literal).
fn typed(
    p: &collectors::Param,
) -> (
    &(dyn tokio_postgres::types::ToSql + Sync),
    tokio_postgres::types::Type,
) {
    use tokio_postgres::types::Type;
    let ty = match p {
        collectors::Param::Int(_) => Type::INT8,
        collectors::Param::Float(_) => Type::FLOAT8,
        collectors::Param::Text(_) => Type::TEXT,
    };
    (p.as_sql(), ty)
}

/// A database error with its SQLSTATE message (tokio-postgres' Display is terse).
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        ),
        // tokio-postgres' own words name only the kind ("error
        // communicating with the server"): add the cause.
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

/// A connection error with the server's own message and SQLSTATE
/// (tokio-postgres' Display says only "db error"), plus the cause when
/// PostgreSQL's words hide it.
pub(super) fn explain(e: &CollectError) -> String {
    match e {
        CollectError::Connection(c) => explain_conn(c),
        other => other.to_string(),
    }
}

pub(super) fn explain_conn(e: &ConnError) -> String {
    let ConnError::Connect { datname, source } = e else {
        return e.to_string();
    };
    let mut s = format!("cannot connect to database {datname:?}: {}", describe(source));
    if source.code() == Some(&tokio_postgres::error::SqlState::TOO_MANY_CONNECTIONS) {
        s.push_str(
            " (the server's max_connections is used up by other sessions: close some or raise \
             max_connections; the exporter retries every scrape)",
        );
    }
    s
}
