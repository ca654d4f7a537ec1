//! `PGMAINT_QUERIES_FILE` text and a query's SQL: `custom_queries::parse` and
//! `check_sql` must never panic. Accepted entries are leaked by design (they
//! live as long as the process), so run with `-detect_leaks=0`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgmaint_exporter::custom_queries;

fuzz_target!(|text: &str| {
    let _ = custom_queries::check_sql(text);
    let _ = custom_queries::parse(text);
});
