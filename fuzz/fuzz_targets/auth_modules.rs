//! `PGMAINT_CONFIG_FILE` (auth modules for /probe) and `/probe?target=`:
//! never a panic. The parser reads a file, so each input is written to one
//! per process first.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgmaint_exporter::probe;

fuzz_target!(|text: &str| {
    let path = std::env::temp_dir().join(format!("pgmaint-fuzz-auth-{}.yml", std::process::id()));
    if std::fs::write(&path, text).is_ok() {
        let _ = probe::load_config_file(&path.to_string_lossy());
    }
    let _ = probe::Target::parse(text);
});
