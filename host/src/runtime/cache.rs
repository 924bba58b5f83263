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
//!
//! Nothing here is kept for good: [`sweep`] removes the artifacts of modules the caller
//! no longer wants and what no tier of this process will load (another fingerprint's or a
//! retired tier's code, a crash's temporary file). Without it the directory only grows:
//! an upgrade changes the fingerprint, and uploading and deleting distinct modules would
//! leave a few megabytes of code behind for each.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

    /// The digest of the module an artifact of this directory's engine and tier holds, if
    /// `name` is such an artifact's.
    fn digest_of(&self, name: &str) -> Option<Digest> {
        let (digest, key) = name.strip_suffix(".cwasm")?.split_once('-')?;
        if key != self.key {
            return None;
        }
        digest.parse().ok()
    }
}

/// What a sweep of the artifact directory removed (`Runtime::sweep_artifacts`): for the
/// caller's log line, which is how an operator learns that disk was given back.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Files removed.
    pub files: usize,
    /// Their sizes, summed.
    pub bytes: u64,
}

/// Removes from the directory `tiers` share (a runtime's tiers keep their artifacts in one)
/// every artifact no tier of them would load, and each artifact of theirs whose module
/// `keep` does not want, with the temporary files of writes that never finished; but no
/// file younger than `fresh`, which may be a compile's under way. Files that are not
/// artifacts are left alone. A file that cannot be read or removed is skipped: the
/// directory is a cache, and the next sweep tries again.
pub(crate) fn sweep(
    tiers: &[&ArtifactDir],
    keep: &dyn Fn(&Digest) -> bool,
    fresh: Duration,
) -> Swept {
    let mut swept = Swept::default();
    let Some(dir) = tiers.first().map(|tier| &tier.dir) else {
        return swept;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return swept;
    };
    for entry in entries.filter_map(Result::ok) {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let unwanted = if name.starts_with('.') && name.ends_with(".tmp") {
            true
        } else if name.ends_with(".cwasm") {
            tiers
                .iter()
                .find_map(|tier| tier.digest_of(&name))
                .is_none_or(|digest| !keep(&digest))
        } else {
            false
        };
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        let young = metadata
            .modified()
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_none_or(|age| age < fresh);
        if unwanted && !young && metadata.is_file() && std::fs::remove_file(entry.path()).is_ok() {
            swept.files += 1;
            swept.bytes += metadata.len();
        }
    }
    swept
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

    #[test]
    fn a_sweep_keeps_both_tiers_code_of_wanted_modules_and_nothing_young() {
        let dir = std::env::temp_dir().join(format!("wasmhook-sweep-{}", std::process::id()));
        let open = |tier| ArtifactDir::open(&dir, "0123456789abcdef".into(), tier);
        let (Ok(quick), Ok(optimized)) = (
            open(CodeTier::Baseline),
            open(CodeTier::Cranelift(OptLevel::Speed)),
        ) else {
            panic!("the directory opens");
        };
        let (wanted, unwanted, young) = (Digest::of(b"a"), Digest::of(b"b"), Digest::of(b"c"));
        let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        for tier in [&quick, &optimized] {
            for digest in [&wanted, &unwanted, &young] {
                assert!(tier.write(digest, b"code").is_ok());
                if *digest != young {
                    let aged = std::fs::File::options()
                        .write(true)
                        .open(tier.path(digest))
                        .and_then(|file| file.set_modified(hour_ago));
                    assert!(aged.is_ok());
                }
            }
        }
        let keep = |digest: &Digest| *digest == wanted;
        let swept = sweep(&[&quick, &optimized], &keep, Duration::from_secs(60));
        assert_eq!(swept, Swept { files: 2, bytes: 8 });
        for tier in [&quick, &optimized] {
            assert!(tier.path(&wanted).exists());
            assert!(!tier.path(&unwanted).exists());
            assert!(tier.path(&young).exists(), "a compile's under way");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
