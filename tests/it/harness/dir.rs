//! A test's own temporary directory (the `tempfile` crate underneath):
//! `pgmaint-<tag>-XXXXXX` under the system temp directory, open to the
//! cluster's OS user, removed on drop, with the file helpers tests need
//! (write with a mode, hand a file to the cluster's user, subdirectories).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A temporary directory, removed on drop even when a test took permissions
/// away from it or its entries.
pub struct Dir(tempfile::TempDir);

impl Dir {
    /// Mode 0755: the cluster's user (`pgmaint` when the tests run as root)
    /// can read what the test writes.
    pub fn new(tag: &str) -> Dir {
        Dir::with_mode(tag, 0o755)
    }

    /// With another mode, e.g. 0777 for a directory the server writes into.
    pub fn with_mode(tag: &str, mode: u32) -> Dir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("pgmaint-{tag}-"))
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        Dir(dir)
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// The directory's path as a string (for settings and SQL).
    pub fn path_str(&self) -> &str {
        self.path().to_str().unwrap()
    }

    /// The path of `name` in the directory (not created), as a string.
    pub fn file(&self, name: &str) -> String {
        self.path().join(name).to_str().unwrap().to_string()
    }

    /// Writes `name` with permissions `mode`; returns its path.
    pub fn write(&self, name: &str, text: &str, mode: u32) -> String {
        let path = self.file(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    /// Writes a file the cluster's user owns (PostgreSQL insists on that, and
    /// on mode 0600, for its key): chowned to `pgmaint` when running as root.
    pub fn write_for_postgres(&self, name: &str, text: &str, mode: u32) -> String {
        let path = self.write(name, text, mode);
        if super::is_root() {
            let chown = Command::new("chown").args(["pgmaint", &path]).status().unwrap();
            assert!(chown.success(), "chown pgmaint {path}");
        }
        path
    }

    /// A subdirectory `name`, created.
    pub fn sub(&self, name: &str) -> PathBuf {
        let p = self.path().join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        // Tests make entries unreadable (mode 000) on purpose: give the
        // permissions back so TempDir's removal can descend into them.
        let open = |p: &Path| {
            let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755));
        };
        open(self.path());
        if let Ok(entries) = std::fs::read_dir(self.path()) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    open(&e.path());
                }
            }
        }
    }
}
