//! `PGMAINT_WEB_CONFIG_FILE` text: `WebConfig::parse` must answer Ok or an
//! error, never panic (file names in it point nowhere useful: /nonexistent).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgmaint_exporter::web::WebConfig;

fuzz_target!(|text: &str| {
    let _ = WebConfig::parse(std::path::Path::new("/nonexistent/web.yml"), text);
});
