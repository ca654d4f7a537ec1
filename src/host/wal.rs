//! The WAL archive: segment files (compressed or not) and the newest
//! backup-history file, for the continuity check.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use regex::Regex;

use super::{fields, unix, BaseBackup, WalListing, WalSegment};

/// A WAL segment file name, possibly compressed.
pub(super) fn segment_name(name: &str) -> Option<(&str, bool)> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| Regex::new(r"^([0-9A-F]{24})(\.gz|\.zst|\.lz4|\.xz|\.bz2)?$").unwrap());
    let c = re.captures(name)?;
    Some((c.get(1)?.as_str(), c.get(2).is_some()))
}

/// `STOP TIME: 2026-11-25 19:20:31 UTC` → Unix time; only UTC/GMT are read.
pub fn history_stop_time(content: &str) -> Option<f64> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(r"(?m)^STOP TIME: ([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) (UTC|GMT)\s*$")
            .unwrap()
    });
    fields(&re.captures(content)?)
}

pub(super) async fn wal_archive(dir: &Path) -> Result<WalListing, String> {
    static HISTORY: OnceLock<Regex> = OnceLock::new();
    let history = HISTORY.get_or_init(|| Regex::new(r"^([0-9A-F]{24})\.[0-9A-F]{8}\.backup$").unwrap());
    let mut rd = tokio::fs::read_dir(dir)
        .await
        .map_err(|e| format!("cannot read WAL archive {}: {e}", dir.display()))?;
    let mut segments = Vec::new();
    let mut newest_history: Option<(String, PathBuf, SystemTime)> = None;
    loop {
        let entry = match rd.next_entry().await {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(e) => return Err(format!("cannot read WAL archive {}: {e}", dir.display())),
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some((seg, compressed)) = segment_name(&name) {
            if let Ok(m) = entry.metadata().await {
                segments.push(WalSegment {
                    name: seg.to_string(),
                    size: m.len(),
                    mtime: unix(m.modified().unwrap_or(UNIX_EPOCH)),
                    compressed,
                });
            }
        } else if history.is_match(&name) && newest_history.as_ref().map_or(true, |(n, _, _)| name > *n) {
            let mtime = entry
                .metadata()
                .await
                .ok()
                .and_then(|m| m.modified().ok())
                .unwrap_or(UNIX_EPOCH);
            newest_history = Some((name, entry.path(), mtime));
        }
    }
    segments.sort_by(|a, b| a.name.cmp(&b.name));
    let newest_base_backup = match newest_history {
        None => None,
        Some((name, path, mtime)) => {
            let content = tokio::fs::read_to_string(&path).await.unwrap_or_default();
            Some(BaseBackup {
                start_segment: name[..24].to_string(),
                time: history_stop_time(&content).unwrap_or_else(|| unix(mtime)),
            })
        }
    };
    Ok(WalListing {
        segments,
        newest_base_backup,
    })
}
