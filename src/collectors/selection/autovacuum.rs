//! When autovacuum will act on one table: the trigger points of
//! `relation_needs_vacanalyze()` (PostgreSQL's
//! src/backend/postmaster/autovacuum.c) from the global settings and the
//! table's reloptions. Pure arithmetic, no I/O; `selection` feeds it rows.

/// The server-wide autovacuum settings (GUCs).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `autovacuum` and `track_counts` both on (PostgreSQL's AutoVacuumingActive()).
    pub active: bool,
    pub vacuum_threshold: f64,
    pub vacuum_scale_factor: f64,
    /// -1 disables insert-triggered vacuums.
    pub insert_threshold: f64,
    pub insert_scale_factor: f64,
    pub analyze_threshold: f64,
    pub analyze_scale_factor: f64,
    pub freeze_max_age: f64,
    /// `autovacuum_vacuum_max_threshold` (PostgreSQL 18+; -1 disables the cap).
    pub vacuum_max_threshold: Option<f64>,
    /// `autovacuum_multixact_freeze_max_age`.
    pub multixact_freeze_max_age: f64,
}

impl Default for Settings {
    /// PostgreSQL's defaults (for tests).
    fn default() -> Settings {
        Settings {
            active: true,
            vacuum_threshold: 50.0,
            vacuum_scale_factor: 0.2,
            insert_threshold: 1000.0,
            insert_scale_factor: 0.2,
            analyze_threshold: 50.0,
            analyze_scale_factor: 0.1,
            freeze_max_age: 200_000_000.0,
            vacuum_max_threshold: None,
            multixact_freeze_max_age: 400_000_000.0,
        }
    }
}

/// The autovacuum storage parameters set on one table (pg_class.reloptions).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RelOptions {
    pub enabled: Option<bool>,
    pub vacuum_threshold: Option<f64>,
    pub vacuum_scale_factor: Option<f64>,
    pub vacuum_max_threshold: Option<f64>,
    pub insert_threshold: Option<f64>,
    pub insert_scale_factor: Option<f64>,
    pub analyze_threshold: Option<f64>,
    pub analyze_scale_factor: Option<f64>,
    pub freeze_max_age: Option<f64>,
    pub multixact_freeze_max_age: Option<f64>,
}

impl RelOptions {
    /// Parses `{autovacuum_vacuum_threshold=10,fillfactor=90}`-style entries;
    /// other options and unparsable values are ignored (PostgreSQL validated
    /// them when they were set).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> RelOptions {
        let mut o = RelOptions::default();
        for e in entries {
            let Some((k, v)) = e.as_ref().split_once('=') else {
                continue;
            };
            let f = v.trim().parse::<f64>().ok();
            match k.trim() {
                "autovacuum_enabled" => o.enabled = parse_bool(v),
                "autovacuum_vacuum_threshold" => o.vacuum_threshold = f,
                "autovacuum_vacuum_scale_factor" => o.vacuum_scale_factor = f,
                "autovacuum_vacuum_max_threshold" => o.vacuum_max_threshold = f,
                "autovacuum_vacuum_insert_threshold" => o.insert_threshold = f,
                "autovacuum_vacuum_insert_scale_factor" => o.insert_scale_factor = f,
                "autovacuum_analyze_threshold" => o.analyze_threshold = f,
                "autovacuum_analyze_scale_factor" => o.analyze_scale_factor = f,
                "autovacuum_freeze_max_age" => o.freeze_max_age = f,
                "autovacuum_multixact_freeze_max_age" => o.multixact_freeze_max_age = f,
                _ => {}
            }
        }
        o
    }
}

/// PostgreSQL's parse_bool: true/false/yes/no/on/off/1/0 and unique prefixes,
/// case-insensitive.
fn parse_bool(v: &str) -> Option<bool> {
    let v = v.trim().to_ascii_lowercase();
    let prefix_of = |word: &str, min: usize| v.len() >= min && word.starts_with(v.as_str());
    if prefix_of("true", 1) || prefix_of("yes", 1) || prefix_of("on", 2) || v == "1" {
        Some(true)
    } else if prefix_of("false", 1) || prefix_of("no", 1) || prefix_of("off", 2) || v == "0" {
        Some(false)
    } else {
        None
    }
}

/// When autovacuum will act on one table.
#[derive(Debug, Clone, PartialEq)]
pub struct Autovacuum {
    /// Global autovacuum active and the table's `autovacuum_enabled` not false.
    pub enabled: bool,
    /// Dead tuples above this start a vacuum.
    pub vacuum_trigger: f64,
    /// Tuples inserted since the last vacuum above this start a vacuum (None: disabled).
    pub insert_trigger: Option<f64>,
    /// Tuples changed since the last analyze above this start an analyze.
    pub analyze_trigger: f64,
    /// relfrozenxid age at which an anti-wraparound vacuum of the heap is
    /// forced (its TOAST table may have a reloption of its own).
    pub freeze_max_age: f64,
    /// relminmxid age at which an anti-wraparound vacuum is forced: the
    /// setting, or a lower reloption. PostgreSQL lowers it further while the
    /// MultiXact member space is over half full
    /// (`pg_multixact_members_freeze_threshold`).
    pub multixact_freeze_max_age: f64,
}

impl Autovacuum {
    /// The trigger points of relation_needs_vacanalyze(). A reloption set to
    /// a negative value (only possible for the insert and max thresholds,
    /// where -1 means "disabled") is honoured, otherwise the GUC applies.
    /// `reltuples` < 0 (never vacuumed or analyzed) counts as 0. On
    /// PostgreSQL 18 the insert scale factor applies to the unfrozen part of
    /// the table only (`relallfrozen` / `relpages`).
    pub fn compute(
        g: &Settings,
        o: &RelOptions,
        reltuples: f64,
        relpages: f64,
        relallfrozen: Option<f64>,
    ) -> Autovacuum {
        let or = |opt: Option<f64>, global: f64| opt.filter(|v| *v >= 0.0).unwrap_or(global);
        let reltuples = reltuples.max(0.0);
        let unfrozen = match relallfrozen {
            Some(frozen) if relpages > 0.0 && frozen > 0.0 => 1.0 - frozen.min(relpages) / relpages,
            _ => 1.0,
        };

        let mut vacuum_trigger = or(o.vacuum_threshold, g.vacuum_threshold)
            + or(o.vacuum_scale_factor, g.vacuum_scale_factor) * reltuples;
        let max = o
            .vacuum_max_threshold
            .filter(|v| *v >= -1.0)
            .or(g.vacuum_max_threshold);
        if let Some(max) = max.filter(|m| *m >= 0.0) {
            vacuum_trigger = vacuum_trigger.min(max);
        }

        let insert_threshold = o
            .insert_threshold
            .filter(|v| *v >= -1.0)
            .unwrap_or(g.insert_threshold);
        let insert_trigger = (insert_threshold >= 0.0).then(|| {
            insert_threshold + or(o.insert_scale_factor, g.insert_scale_factor) * reltuples * unfrozen
        });

        Autovacuum {
            enabled: g.active && o.enabled.unwrap_or(true),
            vacuum_trigger,
            insert_trigger,
            analyze_trigger: or(o.analyze_threshold, g.analyze_threshold)
                + or(o.analyze_scale_factor, g.analyze_scale_factor) * reltuples,
            freeze_max_age: freeze_max_age(g, o),
            multixact_freeze_max_age: multixact_freeze_max_age(g, o),
        }
    }
}

/// relation_needs_vacanalyze()'s freeze_max_age: a reloption can only lower
/// the setting.
pub fn freeze_max_age(g: &Settings, o: &RelOptions) -> f64 {
    match o.freeze_max_age.filter(|v| *v >= 0.0) {
        Some(v) => v.min(g.freeze_max_age),
        None => g.freeze_max_age,
    }
}

/// relation_needs_vacanalyze()'s multixact_freeze_max_age, before the
/// member-space lowering: a reloption can only lower the setting.
pub fn multixact_freeze_max_age(g: &Settings, o: &RelOptions) -> f64 {
    match o.multixact_freeze_max_age.filter(|v| *v >= 0.0) {
        Some(v) => v.min(g.multixact_freeze_max_age),
        None => g.multixact_freeze_max_age,
    }
}

/// Whether a table's XID (or MultiXact) age forces an anti-wraparound
/// vacuum: its heap's age past the heap's freeze max age, or its TOAST
/// table's past the TOAST table's (its own reloptions, else the heap's, as
/// do_autovacuum() does).
pub fn age_forces_vacuum(heap_age: f64, heap_max: f64, toast: Option<(f64, f64)>) -> bool {
    heap_age > heap_max || toast.is_some_and(|(age, max)| age > max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn av(o: &[&str], reltuples: f64) -> Autovacuum {
        Autovacuum::compute(&Settings::default(), &RelOptions::parse(o), reltuples, 0.0, None)
    }

    #[test]
    fn defaults_follow_the_gucs() {
        let a = av(&[], 1000.0);
        assert_eq!(a.vacuum_trigger, 50.0 + 0.2 * 1000.0);
        assert_eq!(a.insert_trigger, Some(1000.0 + 0.2 * 1000.0));
        assert_eq!(a.analyze_trigger, 50.0 + 0.1 * 1000.0);
        assert_eq!(a.freeze_max_age, 200_000_000.0);
        assert!(a.enabled);
    }

    #[test]
    fn never_analyzed_counts_as_empty() {
        let a = av(&[], -1.0);
        assert_eq!((a.vacuum_trigger, a.analyze_trigger), (50.0, 50.0));
        assert_eq!(a.insert_trigger, Some(1000.0));
    }

    #[test]
    fn reloptions_override_the_gucs() {
        let a = av(
            &[
                "fillfactor=90",
                "autovacuum_vacuum_threshold=10",
                "autovacuum_vacuum_scale_factor=0",
                "autovacuum_analyze_threshold=5",
                "autovacuum_analyze_scale_factor=0.5",
                "autovacuum_vacuum_insert_threshold=-1",
                "autovacuum_enabled=OFF",
            ],
            1000.0,
        );
        assert_eq!(a.vacuum_trigger, 10.0);
        assert_eq!(a.analyze_trigger, 505.0);
        assert_eq!(a.insert_trigger, None);
        assert!(!a.enabled);
    }

    #[test]
    fn freeze_max_age_reloption_can_only_lower_it() {
        assert_eq!(
            av(&["autovacuum_freeze_max_age=150000000"], 0.0).freeze_max_age,
            150e6
        );
        assert_eq!(
            av(&["autovacuum_freeze_max_age=900000000"], 0.0).freeze_max_age,
            200e6
        );
    }

    #[test]
    fn global_switch_and_insert_disable() {
        let g = Settings {
            active: false,
            insert_threshold: -1.0,
            ..Settings::default()
        };
        let a = Autovacuum::compute(&g, &RelOptions::default(), 10.0, 0.0, None);
        assert!(!a.enabled);
        assert_eq!(a.insert_trigger, None);
        // A table can switch insert vacuums back on for itself.
        let o = RelOptions::parse(&["autovacuum_vacuum_insert_threshold=100"]);
        assert_eq!(
            Autovacuum::compute(&g, &o, 10.0, 0.0, None).insert_trigger,
            Some(102.0)
        );
    }

    #[test]
    fn pg18_max_threshold_and_unfrozen_share() {
        let g = Settings {
            vacuum_max_threshold: Some(100_000_000.0),
            ..Settings::default()
        };
        let big = 1e10;
        let a = Autovacuum::compute(&g, &RelOptions::default(), big, 0.0, None);
        assert_eq!(a.vacuum_trigger, 100_000_000.0);
        // The table's own max threshold wins; -1 disables the cap.
        let o = RelOptions::parse(&["autovacuum_vacuum_max_threshold=500"]);
        assert_eq!(Autovacuum::compute(&g, &o, big, 0.0, None).vacuum_trigger, 500.0);
        let o = RelOptions::parse(&["autovacuum_vacuum_max_threshold=-1"]);
        assert_eq!(
            Autovacuum::compute(&g, &o, big, 0.0, None).vacuum_trigger,
            50.0 + 0.2 * big
        );
        // Three quarters all-frozen: the insert scale factor applies to a quarter.
        let a = Autovacuum::compute(&g, &RelOptions::default(), 1000.0, 100.0, Some(75.0));
        assert_eq!(a.insert_trigger, Some(1000.0 + 0.2 * 1000.0 * 0.25));
        let a = Autovacuum::compute(&g, &RelOptions::default(), 1000.0, 100.0, Some(500.0));
        assert_eq!(a.insert_trigger, Some(1000.0));
    }

    #[test]
    fn booleans_like_postgres() {
        for (v, b) in [
            ("on", true),
            ("t", true),
            ("YES", true),
            ("1", true),
            ("of", false),
            ("f", false),
        ] {
            assert_eq!(parse_bool(v), Some(b), "{v}");
        }
        assert_eq!(parse_bool("o"), None);
        assert_eq!(parse_bool("maybe"), None);
    }

    #[test]
    fn multixact_freeze_max_age_reloption_can_only_lower_it() {
        assert_eq!(av(&[], 0.0).multixact_freeze_max_age, 400e6);
        let low = av(&["autovacuum_multixact_freeze_max_age=10000"], 0.0);
        assert_eq!(low.multixact_freeze_max_age, 10_000.0);
        // A relminmxid age past it forces a vacuum (the same test as xids).
        assert!(age_forces_vacuum(12_000.0, low.multixact_freeze_max_age, None));
        let high = av(&["autovacuum_multixact_freeze_max_age=900000000"], 0.0);
        assert_eq!(high.multixact_freeze_max_age, 400e6);
    }

    #[test]
    fn a_toast_table_past_its_own_freeze_max_age_forces_a_vacuum() {
        // Heap freshly frozen, TOAST table old: that is a forced vacuum.
        assert!(age_forces_vacuum(10.0, 200e6, Some((250e6, 200e6))));
        // A TOAST table with a lower reloption of its own.
        let g = Settings::default();
        let toast_max = freeze_max_age(&g, &RelOptions::parse(&["autovacuum_freeze_max_age=100000"]));
        assert_eq!(toast_max, 100_000.0);
        assert!(age_forces_vacuum(10.0, 200e6, Some((150_000.0, toast_max))));
        assert!(!age_forces_vacuum(10.0, 200e6, Some((50_000.0, toast_max))));
        assert!(!age_forces_vacuum(10.0, 200e6, None));
        assert!(age_forces_vacuum(300e6, 200e6, None));
    }
}
