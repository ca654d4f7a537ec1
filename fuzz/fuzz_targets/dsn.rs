//! `PGMAINT_DATABASE_URL` / `DATA_SOURCE_NAME` text: `Dsn::parse` and the
//! redaction used in its error messages must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgmaint_exporter::dsn::{self, Dsn};

fuzz_target!(|text: &str| {
    match Dsn::parse(text) {
        Ok(d) => {
            let _ = format!("{d:?} {d}");
            let _ = d.to_pg_config("postgres");
        }
        Err(e) => {
            let _ = e;
        }
    }
    let _ = dsn::redact(text, None);
});
