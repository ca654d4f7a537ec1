//! `X-Prometheus-Scrape-Timeout-Seconds`: any text gives a deadline no
//! longer than the configured one, never a panic.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use pgmaint_exporter::scrape::timeout_from_header;

fuzz_target!(|data: (u32, &str)| {
    let configured = Duration::from_millis(u64::from(data.0).max(1));
    let d = timeout_from_header(configured, data.1);
    assert!(d <= configured, "{:?} gave {d:?} over {configured:?}", data.1);
});
