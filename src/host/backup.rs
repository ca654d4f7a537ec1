//! Backup directories: the files that match the globs, oldest first, and
//! the newest one to verify (`pg_restore.rs`; the scrape layer decides when).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use regex::Regex;

use super::{fields, unix, BackupFile, BackupListing, NewestBackup};
use crate::config::Config;

/// Shell globs (`*`, `?`, `[abc]`) on a file name, by the `glob` crate;
/// `PGMAINT_BACKUP_DIRS` is checked to compile at start-up, so a pattern that
/// does not compile here matches nothing.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    glob::Pattern::new(pattern).is_ok_and(|p| p.matches(name))
}

/// The `YYYYmmdd_HHMMSS` timestamp in a backup's name, read as UTC.
pub fn name_timestamp(name: &str) -> Option<f64> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(r"([0-9]{4})([0-9]{2})([0-9]{2})_([0-9]{2})([0-9]{2})([0-9]{2})").unwrap()
    });
    fields(&re.captures(name)?)
}

pub(super) async fn backup_dir(
    config: &Config,
    dir: &Path,
    globs: &[String],
) -> Result<BackupListing, String> {
    let mut rd = tokio::fs::read_dir(dir)
        .await
        .map_err(|e| format!("cannot read backup directory {}: {e}", dir.display()))?;
    // (file, path, is a directory dump, mtime)
    let mut found: Vec<(BackupFile, PathBuf, bool, SystemTime)> = Vec::new();
    loop {
        let entry = match rd.next_entry().await {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(e) => return Err(format!("cannot read backup directory {}: {e}", dir.display())),
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        if !globs.iter().any(|g| glob_match(g, &name)) {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = tokio::fs::metadata(&path).await else {
            continue;
        };
        let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
        // Still being written (pg_dump runs for minutes): not a backup yet,
        // neither for the counts and sizes nor for verification.
        if SystemTime::now().duration_since(mtime).unwrap_or_default() < config.backup_min_age {
            continue;
        }
        let (size, is_dir) = if meta.is_file() {
            (meta.len(), false)
        } else if meta.is_dir() && tokio::fs::metadata(path.join("toc.dat")).await.is_ok() {
            (dir_size(&path).await, true)
        } else {
            continue;
        };
        let time = name_timestamp(&name).unwrap_or_else(|| unix(mtime));
        found.push((BackupFile { name, size, time }, path, is_dir, mtime));
    }
    found.sort_by(|a, b| {
        a.0.time
            .total_cmp(&b.0.time)
            .then_with(|| a.0.name.cmp(&b.0.name))
    });
    let to_verify = match found.last() {
        Some((f, path, is_dir, mtime)) if config.backup_verify => Some(NewestBackup {
            path: path.clone(),
            size: f.size,
            mtime: *mtime,
            is_dir: *is_dir,
        }),
        _ => None,
    };
    Ok(BackupListing {
        files: found.into_iter().map(|f| f.0).collect(),
        to_verify,
        newest: None,
    })
}

async fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(mut rd) = tokio::fs::read_dir(dir).await {
        while let Ok(Some(e)) = rd.next_entry().await {
            if let Ok(m) = e.metadata().await {
                total += m.len();
            }
        }
    }
    total
}
