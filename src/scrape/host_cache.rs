//! Host collectors' results that outlive a scrape: backup verifications.
//!
//! The host executor (`host/`) lists directories and verifies a dump when
//! asked; this decides when a verification runs — off the scrape path, at
//! most one at a time per newest file (path + size + mtime, so a file still
//! being written is verified again once it changes) — and keeps its outcome
//! for the scrapes that follow.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::Scraper;
use crate::host::{HostResult, NewestBackup, Verification};

/// Verification outcomes, and the verifications running now.
#[derive(Default)]
pub(super) struct HostCache {
    verified: Mutex<HashMap<NewestBackup, Verification>>,
    running: Mutex<HashSet<NewestBackup>>,
}

impl Scraper {
    /// Fills in each listing's newest-backup verification from the cache,
    /// starting the missing ones in the background.
    pub(super) fn with_verifications(self: &Arc<Self>, results: &mut [HostResult]) {
        for r in results {
            if let HostResult::BackupDir(Ok(listing)) = r {
                if let Some(b) = &listing.to_verify {
                    listing.newest = self.verification(b);
                }
            }
        }
    }

    /// The cached verification of this exact file, or `None` after starting
    /// one in the background (unless one is running already).
    fn verification(self: &Arc<Self>, backup: &NewestBackup) -> Option<Verification> {
        if let Some(v) = self.host_cache.verified.lock().unwrap().get(backup) {
            return Some(v.clone());
        }
        if !self.host_cache.running.lock().unwrap().insert(backup.clone()) {
            return None;
        }
        let this = self.clone();
        let backup = backup.clone();
        tokio::spawn(async move {
            if let Some(v) = crate::host::verify_backup(&this.host, &this.config, &backup).await {
                let mut cache = this.host_cache.verified.lock().unwrap();
                // Only the newest file of each directory matters: drop
                // results for older versions of this path and for files in
                // the same directory.
                let parent = backup.path.parent().map(Path::to_path_buf);
                cache.retain(|k, _| k.path.parent().map(Path::to_path_buf) != parent);
                cache.insert(backup.clone(), v);
            }
            this.host_cache.running.lock().unwrap().remove(&backup);
        });
        None
    }
}
