//! Which collectors run: `PGMAINT_COLLECTORS` (its form checked by config)
//! resolved against `ALL`, whose entries know their names and defaults.

use super::{Collector, ALL};
use crate::config::Config;
use crate::error::ConfigError;

/// The enabled built-in collectors' names, in `ALL` order; an unknown name
/// in `PGMAINT_COLLECTORS` is a start-up error naming the setting.
pub fn enabled(config: &Config) -> Result<Vec<&'static str>, ConfigError> {
    let known: Vec<&'static str> = ALL.iter().map(|c| c.name()).collect();
    if let Some(bad) = config.collectors.names().find(|n| !known.contains(n)) {
        return Err(ConfigError::Invalid {
            var: "PGMAINT_COLLECTORS",
            value: bad.into(),
            expected: format!("a collector name: one of {}", known.join(", ")),
        });
    }
    Ok(ALL
        .iter()
        .filter(|c| is_enabled(config, **c))
        .map(|c| c.name())
        .collect())
}

/// Whether `c` runs under `config`.
pub fn is_enabled(config: &Config, c: &dyn Collector) -> bool {
    config.collectors.enables(c.name(), c.default_enabled())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let mut vars: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        vars.push(("PGMAINT_DATABASE_URL".into(), "postgresql://u:pw@h/db".into()));
        Config::from_vars(vars).unwrap()
    }

    fn names(pairs: &[(&str, &str)]) -> Result<Vec<&'static str>, String> {
        enabled(&config(pairs)).map_err(|e| e.to_string())
    }

    #[test]
    fn collector_lists() {
        assert_eq!(
            names(&[("PGMAINT_COLLECTORS", "locks,activity")]).unwrap(),
            ["activity", "locks"]
        );
        let minus = names(&[("PGMAINT_COLLECTORS", "-locks")]).unwrap();
        assert!(minus.contains(&"activity") && !minus.contains(&"locks"));
        assert!(names(&[]).unwrap().contains(&"activity"));
        let e = names(&[("PGMAINT_COLLECTORS", "activity,nope")]).unwrap_err();
        assert!(
            e.starts_with("PGMAINT_COLLECTORS: \"nope\" is not a collector name: one of activity,"),
            "{e}"
        );
        let e = names(&[("PGMAINT_COLLECTORS", "-nope")]).unwrap_err();
        assert!(
            e.starts_with("PGMAINT_COLLECTORS: \"nope\" is not a collector name"),
            "{e}"
        );
    }

    #[test]
    fn host_collectors_switch_on_when_told_where_to_look() {
        let on = names(&[("PGMAINT_BACKUP_DIRS", "/var/backups/pg")]).unwrap();
        assert!(on.contains(&"backup") && !on.contains(&"wal_archive"));
        let on = names(&[
            ("PGMAINT_WAL_ARCHIVE_DIR", "/archive"),
            ("PGMAINT_COLLECTORS", "-locks"),
        ])
        .unwrap();
        assert!(on.contains(&"wal_archive") && !on.contains(&"locks"));
        let on = names(&[
            ("PGMAINT_WAL_ARCHIVE_DIR", "/archive"),
            ("PGMAINT_COLLECTORS", "activity"),
        ])
        .unwrap();
        assert_eq!(on, ["activity"], "a plain list is exactly these");
    }
}
