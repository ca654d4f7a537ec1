//! `PGMAINT_BACKUP_DIRS`: the directories the `backup` collector watches.

use crate::error::ConfigError;

/// Globs of a directory listed without any: design-style names and the
/// usual dump suffixes. Not `*.backup`: in a WAL archive that names
/// backup-history files.
pub const DEFAULT_GLOBS: &[&str] = &["backup_*", "*.dump", "*.sql", "*.tar"];

/// One entry of `PGMAINT_BACKUP_DIRS`.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupDir {
    pub dir: String,
    pub globs: Vec<String>,
}

/// `PGMAINT_BACKUP_DIRS`: entries separated by `;`, each a directory
/// optionally followed by `:` and comma-separated globs
/// (`/var/backups/pg:backup_*,*.dump;/mnt/nas/pg`).
pub(super) fn parse_backup_dirs(v: Option<&str>) -> Result<Vec<BackupDir>, ConfigError> {
    let Some(s) = v else { return Ok(vec![]) };
    let mut out: Vec<BackupDir> = Vec::new();
    for entry in s.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let (dir, globs) = match entry.split_once(':') {
            Some((d, g)) => (
                d.trim(),
                g.split(',')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(String::from)
                    .collect::<Vec<_>>(),
            ),
            None => (entry, vec![]),
        };
        let bad = |expected: &str| ConfigError::Invalid {
            var: "PGMAINT_BACKUP_DIRS",
            value: entry.into(),
            expected: expected.into(),
        };
        if !dir.starts_with('/') {
            return Err(bad(
                "an absolute directory, optionally followed by :glob,glob (entries separated by ;)",
            ));
        }
        if globs.iter().any(|g| g.contains('/')) {
            return Err(bad(
                "a directory followed by file-name globs without '/' (e.g. /backups:backup_*,*.dump)",
            ));
        }
        if globs.iter().any(|g| glob::Pattern::new(g).is_err()) {
            return Err(bad(
                "file-name globs made of text, `*`, `?` and `[...]` classes (an unclosed `[` or a `**` inside a name is not one)",
            ));
        }
        if out.iter().any(|d| d.dir == dir) {
            return Err(bad("a directory listed once"));
        }
        out.push(BackupDir {
            dir: dir.to_string(),
            globs: if globs.is_empty() {
                DEFAULT_GLOBS.iter().map(|g| g.to_string()).collect()
            } else {
                globs
            },
        });
    }
    Ok(out)
}
