//! `PGMAINT_COLLECTORS` as written: a plain list (exactly these), or
//! `+name`/`-name` changes to the defaults (e.g. `-bloat,+statements`).
//!
//! Config checks the form only; which names exist, and which are on by
//! default, the collectors know: `collectors::enabled` checks the names at
//! start and resolves the choice against `collectors::ALL`.

use crate::error::ConfigError;

/// Which collectors run, as the settings say it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CollectorChoice {
    /// A plain list: exactly these.
    Exactly(Vec<String>),
    /// The defaults, then these changes in order (`true`: on). Host
    /// collectors told where to look (`PGMAINT_BACKUP_DIRS`,
    /// `PGMAINT_WAL_ARCHIVE_DIR`) are switched on last.
    Changes(Vec<(bool, String)>),
}

impl CollectorChoice {
    /// Whether the collector `name`, on by default or not, runs.
    pub fn enables(&self, name: &str, on_by_default: bool) -> bool {
        match self {
            CollectorChoice::Exactly(names) => names.iter().any(|n| n == name),
            CollectorChoice::Changes(changes) => changes
                .iter()
                .rev()
                .find(|(_, n)| n == name)
                .map_or(on_by_default, |(on, _)| *on),
        }
    }

    /// Every name the setting mentions, in its order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        let (exactly, changes) = match self {
            CollectorChoice::Exactly(names) => (names.as_slice(), &[][..]),
            CollectorChoice::Changes(changes) => (&[][..], changes.as_slice()),
        };
        exactly
            .iter()
            .map(String::as_str)
            .chain(changes.iter().map(|(_, n)| n.as_str()))
    }

    /// Turns `name` off whatever the setting said (a `/probe` target has no
    /// host collectors).
    pub fn turn_off(&mut self, name: &str) {
        match self {
            CollectorChoice::Exactly(names) => names.retain(|n| n != name),
            CollectorChoice::Changes(changes) => changes.push((false, name.to_string())),
        }
    }

    /// Host collectors are on once told where to look, unless the setting
    /// is a plain list (exactly these).
    pub(super) fn switch_on_host(&mut self, name: &str) {
        if let CollectorChoice::Changes(changes) = self {
            changes.push((true, name.to_string()));
        }
    }
}

/// Parses `PGMAINT_COLLECTORS`: the form is checked here, the names by
/// `collectors::enabled`.
pub(super) fn parse_collectors(v: Option<&str>) -> Result<CollectorChoice, ConfigError> {
    let Some(s) = v.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(CollectorChoice::Changes(vec![]));
    };
    let items: Vec<&str> = s.split(',').map(str::trim).filter(|i| !i.is_empty()).collect();
    let signed = items.iter().filter(|i| i.starts_with(['+', '-'])).count();
    if signed == 0 {
        return Ok(CollectorChoice::Exactly(
            items.into_iter().map(String::from).collect(),
        ));
    }
    if signed != items.len() {
        return Err(ConfigError::Invalid {
            var: "PGMAINT_COLLECTORS",
            value: s.into(),
            expected: "either a plain list of collector names or only +name/-name changes to the defaults"
                .into(),
        });
    }
    Ok(CollectorChoice::Changes(
        items
            .into_iter()
            .map(|i| {
                let (sign, name) = i.split_at(1);
                (sign == "+", name.to_string())
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let c = parse_collectors(Some(" locks , activity ")).unwrap();
        assert_eq!(
            c,
            CollectorChoice::Exactly(vec!["locks".into(), "activity".into()])
        );
        assert!(c.enables("locks", false) && !c.enables("tables", true));
        let c = parse_collectors(Some("-locks,+statements,+locks,-bloat")).unwrap();
        assert!(c.enables("locks", false), "the last change wins");
        assert!(c.enables("statements", false) && !c.enables("bloat", true));
        assert!(c.enables("activity", true) && !c.enables("backup", false));
        assert_eq!(
            c.names().collect::<Vec<_>>(),
            ["locks", "statements", "locks", "bloat"]
        );
        let e = parse_collectors(Some("-locks,activity")).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("PGMAINT_COLLECTORS: \"-locks,activity\" is not either a plain list"));
        assert_eq!(
            parse_collectors(Some(" ")).unwrap(),
            CollectorChoice::Changes(vec![])
        );
    }

    #[test]
    fn turned_off() {
        let mut c = parse_collectors(Some("activity,backup")).unwrap();
        c.turn_off("backup");
        assert!(!c.enables("backup", false) && c.enables("activity", false));
        let mut c = parse_collectors(None).unwrap();
        c.switch_on_host("backup");
        assert!(c.enables("backup", false));
        c.turn_off("backup");
        assert!(!c.enables("backup", false));
    }
}
