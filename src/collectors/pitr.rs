//! `pitr`: whether WAL archiving is configured at all, beside `archive_mode`
//! and `wal_level` (published by `settings`) and the archiver's progress
//! (`archiver`). The command text is never published: it may hold
//! credentials (`aws s3 cp … --profile`, passwords in URLs).
//! Source: current_setting('archive_command'/'archive_library').
//! Scope: cluster. PostgreSQL ≥ 14 (archive_library from 15).

use crate::collectors::{num_req, Collector, Ctx, Fetched, Meta, Query, Scope, Source, MIN_SUPPORTED_MAJOR};
use crate::error::CollectError;
use crate::metrics::{Family, Sink};

/// One row: 1 if archive_command or archive_library is set (archive_library
/// is missing before 15: `missing_ok`), else 0.
const SQL: &str = "SELECT (coalesce(current_setting('archive_command', true), '') NOT IN ('', '(disabled)')
        OR coalesce(current_setting('archive_library', true), '') <> '')::int4";

static CONFIGURED: Family = Family::gauge(
    "pg_archive_command_configured",
    "1 if archive_command or archive_library is set (current_setting), else 0. The command itself is never published.",
    &[],
);

static FAMILIES: &[&Family] = &[&CONFIGURED];

/// What `pitr` is, once (see `Meta`).
const META: Meta = Meta {
    name: "pitr",
    description: "Point-in-time recovery prerequisites: archive_command/archive_library set or not.",
    scope: Scope::Cluster,
    families: FAMILIES,
    min_major: MIN_SUPPORTED_MAJOR,
    default_enabled: true,
};

pub struct Pitr;

impl Collector for Pitr {
    fn meta(&self) -> &'static Meta {
        &META
    }
    fn source(&self, _ctx: &Ctx) -> Source {
        Source::Sql(vec![Query::new("pitr", SQL)])
    }
    fn map(&self, _ctx: &Ctx, input: &Fetched, out: &mut Sink) -> Result<(), CollectError> {
        for row in input.rows("pitr")? {
            out.gauge(&CONFIGURED, &[], num_req(row, 0)?);
        }
        Ok(())
    }
}
