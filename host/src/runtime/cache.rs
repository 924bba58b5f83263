//! Compiled code on disk, keyed by (module digest, engine fingerprint, tier).
//!
//! The tier is the [`CodeTier`] (Winch, or Cranelift at a level): with tiered compilation
//! the quick and the optimizing engine write to the same directory, and code of one must
//! never be mapped by the other. The optimized tier's names carry no tier, as before tiers
//! existed, so that the artifacts of an installation upgraded stay valid.
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

use super::config::{CodeTier, OptLevel};
use super::module::Digest;

/// The directory of compiled artifacts for one engine configuration.
#[derive(Debug)]
pub(crate) struct ArtifactDir {
    dir: PathBuf,
    /// The engine's fingerprint, and the tier's name unless it is the optimized one.
    key: String,
}

impl ArtifactDir {
    /// Opens (creating if needed) the directory, for the artifacts of an engine of this
    /// fingerprint compiling at this tier.
    pub(crate) fn open(dir: &Path, fingerprint: String, tier: CodeTier) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(ArtifactDir {
            dir: dir.to_owned(),
            key: tier_key(fingerprint, tier),
        })
    }

    /// Where the artifact of this module lives (whether or not it exists).
    pub(crate) fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(format!("{digest}-{}.cwasm", self.key))
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

/// The part of an artifact's name after the digest.
fn tier_key(fingerprint: String, tier: CodeTier) -> String {
    match tier {
        CodeTier::Cranelift(OptLevel::Speed) => fingerprint,
        CodeTier::Cranelift(OptLevel::None) | CodeTier::Baseline => {
            format!("{fingerprint}-{}", tier.name())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tiers_of_one_engine_have_different_keys() {
        let dir = std::env::temp_dir().join(format!("wasmhook-cache-{}", std::process::id()));
        let quick = ArtifactDir::open(&dir, "0123456789abcdef".into(), CodeTier::Baseline);
        let optimized = ArtifactDir::open(
            &dir,
            "0123456789abcdef".into(),
            CodeTier::Cranelift(OptLevel::Speed),
        );
        let (Ok(quick), Ok(optimized)) = (quick, optimized) else {
            panic!("the directory opens");
        };
        let digest = Digest::of(b"(module)");
        assert_ne!(quick.path(&digest), optimized.path(&digest));
        assert_eq!(
            optimized.path(&digest),
            dir.join(format!("{digest}-0123456789abcdef.cwasm")),
            "the optimized tier keeps the names artifacts had before tiers"
        );
        let _ = std::fs::remove_dir(&dir);
    }
}
