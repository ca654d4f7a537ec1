//! Backup directories: the files that match the globs, oldest first, and the
//! newest one's verification (run in the background, see `pg_restore.rs`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use regex::Regex;
use tracing::{info, warn};

use super::pg_restore::verify;
use super::{fields, unix, BackupFile, BackupListing, HostState, Outcome, Verification, VerifyKey};
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
    state: &Arc<HostState>,
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
    let newest = match found.last() {
        Some((f, path, is_dir, mtime)) if config.backup_verify => {
            state.verification(config, (path.clone(), f.size, *mtime), *is_dir)
        }
        _ => None,
    };
    Ok(BackupListing {
        files: found.into_iter().map(|f| f.0).collect(),
        newest,
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

impl HostState {
    /// The cached verification of this exact file, or `None` after starting
    /// one in the background (unless one is running already).
    pub(super) fn verification(
        self: &Arc<Self>,
        config: &Config,
        key: VerifyKey,
        is_dir: bool,
    ) -> Option<Verification> {
        if let Some(v) = self.verified.lock().unwrap().get(&key) {
            return Some(v.clone());
        }
        if !self.running.lock().unwrap().insert(key.clone()) {
            return None;
        }
        let this = self.clone();
        let tools = self.tools(config).clone();
        let timeout = config.backup_verify_timeout;
        tokio::spawn(async move {
            let result = verify(&tools, &key.0, is_dir, timeout).await;
            if let Some(v) = result {
                let file = key.0.display().to_string();
                match &v.outcome {
                    Outcome::Verified => {
                        info!(file, format = v.format, toc_entries = ?v.toc_entries, "backup verified")
                    }
                    Outcome::Failed(why) => {
                        warn!(file, format = v.format, "backup failed verification: {why}")
                    }
                    Outcome::Unverifiable(why) => {
                        warn!(file, format = v.format, "backup cannot be verified here: {why}")
                    }
                }
                let mut cache = this.verified.lock().unwrap();
                // Only the newest file of each directory matters: drop
                // results for older versions of this path and for files in
                // the same directory.
                let parent = key.0.parent().map(Path::to_path_buf);
                cache.retain(|k, _| k.0.parent().map(Path::to_path_buf) != parent);
                cache.insert(key.clone(), v);
            }
            this.running.lock().unwrap().remove(&key);
        });
        None
    }
}
