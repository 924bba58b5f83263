//! Compiled code on disk, keyed by (module digest, engine fingerprint).
//!
//! An artifact is written once, after the module has been validated, through a temporary
//! file and a rename, so a crash never leaves a half-written artifact under its final name.
//! A restart loads it with `deserialize_file` (an mmap) instead of recompiling.
//!
//! Because artifacts are mapped, files in this directory must only ever be replaced by a
//! rename or removed, never rewritten in place: truncating a mapped file under a running
//! process makes its next access to that code fail with SIGBUS. The runtime itself only
//! renames and unlinks; operators cleaning the cache should delete files, not edit them.

use std::io;
use std::path::{Path, PathBuf};

use super::module::Digest;

/// The directory of compiled artifacts for one engine configuration.
#[derive(Debug)]
pub(crate) struct ArtifactDir {
    dir: PathBuf,
    fingerprint: String,
}

impl ArtifactDir {
    /// Opens (creating if needed) the directory.
    pub(crate) fn open(dir: &Path, fingerprint: String) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(ArtifactDir {
            dir: dir.to_owned(),
            fingerprint,
        })
    }

    /// Where the artifact of this module lives (whether or not it exists).
    pub(crate) fn path(&self, digest: &Digest) -> PathBuf {
        self.dir
            .join(format!("{digest}-{}.cwasm", self.fingerprint))
    }

    /// Writes an artifact atomically.
    pub(crate) fn write(&self, digest: &Digest, bytes: &[u8]) -> io::Result<()> {
        let temporary = self.dir.join(format!(
            ".{digest}-{}.{}.tmp",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let written = std::fs::write(&temporary, bytes)
            .and_then(|()| std::fs::rename(&temporary, self.path(digest)));
        if written.is_err() {
            // Best effort: a stray temporary file is harmless, only untidy.
            let _ = std::fs::remove_file(&temporary);
        }
        written
    }

    /// Removes an artifact that could not be loaded.
    pub(crate) fn discard(&self, digest: &Digest) {
        let _ = std::fs::remove_file(self.path(digest));
    }
}
