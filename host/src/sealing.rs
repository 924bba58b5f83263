//! Secrets at rest: sealed with AES-256-GCM (an AEAD) under the installation's key.
//!
//! The key comes from the configuration (64 hex characters) or is generated once into the
//! data directory with mode 0600. Each sealed value carries its own random 96-bit nonce, and
//! is bound to its organization through the associated data, so a sealed blob copied to
//! another organization's row does not open. `aes-gcm` (RustCrypto) is the kept, audited
//! implementation; nothing here is hand-rolled cryptography.
//!
//! A hook's secrets ([`HookSecrets`]) are sealed here, in one format, for whoever writes
//! them (the API, on save) and whoever reads them (the API for a signed invocation, the
//! dispatcher for a run).

use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

/// The key file inside the data directory.
pub const KEY_FILE: &str = "secrets.key";

const NONCE_BYTES: usize = 12;

/// Why sealing or opening failed.
#[derive(Debug, thiserror::Error)]
pub enum SealingError {
    /// The configured or stored key is not 32 bytes of hex.
    #[error("the secrets key must be 64 hex characters (32 bytes)")]
    BadKey,
    /// The key file could not be read or written.
    #[error("cannot use the secrets key file {path}: {source}")]
    KeyFile {
        /// The key file, or the directory made to hold it, as displayed.
        path: String,
        /// The I/O error that stopped the read, the write or the `mkdir`.
        source: std::io::Error,
    },
    /// No randomness for a key or a nonce.
    #[error("no randomness: {0}")]
    Random(String),
    /// The blob was not sealed with this key for this organization, or was altered.
    #[error("sealed secrets do not open with this installation's key")]
    Open,
}

/// Seals and opens secrets with the installation's key.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// The sealer for a configured key (hex), or the key stored in `data_dir`, generated
    /// there (mode 0600) on first use.
    pub fn open_or_create(data_dir: &Path, configured: Option<&str>) -> Result<Self, SealingError> {
        let key = match configured {
            Some(hex_key) => parse_key(hex_key)?,
            None => key_from_file(&data_dir.join(KEY_FILE))?,
        };
        Ok(Sealer {
            cipher: Aes256Gcm::new(&key.into()),
        })
    }

    /// Seals `plain` for `organization_id`: nonce, then ciphertext and tag.
    pub fn seal(&self, organization_id: u64, plain: &[u8]) -> Result<Vec<u8>, SealingError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|error| SealingError::Random(error.to_string()))?;
        let aad = associated_data(organization_id);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .map_err(|_| SealingError::Open)?;
        let mut out = Vec::with_capacity(NONCE_BYTES + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens what [`Sealer::seal`] made for the same organization.
    pub fn open(&self, organization_id: u64, sealed: &[u8]) -> Result<Vec<u8>, SealingError> {
        if sealed.len() < NONCE_BYTES {
            return Err(SealingError::Open);
        }
        let (nonce, body) = sealed.split_at(NONCE_BYTES);
        let aad = associated_data(organization_id);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: &aad,
                },
            )
            .map_err(|_| SealingError::Open)
    }
}

/// A hook's write-only values, opened: what is sealed in its row, so that the API (which
/// seals them when a hook is saved and opens them to check a signed invocation) and the
/// dispatcher (which opens them for a run) read and write one format. Sealed as JSON under
/// the hook's organization.
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HookSecrets {
    /// `secrets`, in the order written.
    pub secrets: Vec<(String, String)>,
    /// `config.secret` (signed invocations are checked with it).
    pub config_secret: Option<String>,
}

/// The keys only: a `{:?}` of a hook's secrets, in a log line or a failed assertion, shows
/// no value.
impl std::fmt::Debug for HookSecrets {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = self.secrets.iter().map(|(key, _)| key.as_str()).collect();
        formatter
            .debug_struct("HookSecrets")
            .field("secrets", &keys)
            .field(
                "config_secret",
                &self.config_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

impl HookSecrets {
    /// Opens what [`HookSecrets::seal`] made for `organization_id`; none sealed means none.
    pub fn open(
        sealer: &Sealer,
        organization_id: u64,
        sealed: Option<&[u8]>,
    ) -> Result<Self, SealingError> {
        match sealed {
            None => Ok(HookSecrets::default()),
            Some(sealed) => {
                let plain = sealer.open(organization_id, sealed)?;
                serde_json::from_slice(&plain).map_err(|_| SealingError::Open)
            }
        }
    }

    /// Seals these secrets for storage in a hook of `organization_id`; none when there are
    /// none.
    pub fn seal(
        &self,
        sealer: &Sealer,
        organization_id: u64,
    ) -> Result<Option<Vec<u8>>, SealingError> {
        if self.secrets.is_empty() && self.config_secret.is_none() {
            return Ok(None);
        }
        let plain = serde_json::to_vec(self).map_err(|_| SealingError::Open)?;
        sealer.seal(organization_id, &plain).map(Some)
    }

    /// What a duplicate of the hook keeps: `config.secret` always (it belongs to the
    /// config, which is copied), `secrets` only `with_secrets` (Rossum's `copy_secrets`).
    pub fn copied(&self, with_secrets: bool) -> HookSecrets {
        HookSecrets {
            secrets: if with_secrets {
                self.secrets.clone()
            } else {
                Vec::new()
            },
            config_secret: self.config_secret.clone(),
        }
    }

    /// The names of the secrets, in the order written (a hook's `secrets_keys`).
    pub fn keys(&self) -> Vec<String> {
        self.secrets.iter().map(|(key, _)| key.clone()).collect()
    }
}

fn associated_data(organization_id: u64) -> Vec<u8> {
    format!("wasmhook secrets v1, organization {organization_id}").into_bytes()
}

fn parse_key(hex_key: &str) -> Result<[u8; 32], SealingError> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(hex_key.trim(), &mut key).map_err(|_| SealingError::BadKey)?;
    Ok(key)
}

fn key_from_file(path: &Path) -> Result<[u8; 32], SealingError> {
    let file_error = |source| SealingError::KeyFile {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => return parse_key(&text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(file_error(error)),
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|error| SealingError::Random(error.to_string()))?;
    // Written whole under a temporary name, then renamed: a crash never leaves half a key.
    let temporary = path.with_extension("key.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&temporary).map_err(file_error)?;
    file.write_all(hex::encode(key).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(file_error)?;
    std::fs::rename(&temporary, path).map_err(file_error)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_printed_hook_secrets_and_invocation_show_no_value() {
        let secrets = HookSecrets {
            secrets: vec![("api_key".into(), "value-never-printed".into())],
            config_secret: Some("signing-never-printed".into()),
        };
        let invocation = crate::runtime::Invocation {
            payload: r#"{"secrets": {"api_key": "value-never-printed"}}"#.into(),
            secrets: secrets.secrets.clone(),
            authorization_token: Some("token-never-printed".into()),
            ..crate::runtime::Invocation::default()
        };
        let redactor = invocation.redactor();
        let printed = format!("{secrets:?} {invocation:?} {redactor:?}");
        assert!(printed.contains("api_key"), "{printed}");
        assert!(!printed.contains("never-printed"), "{printed}");
    }

    #[test]
    fn sealed_secrets_open_only_for_their_organization() -> Result<(), SealingError> {
        let dir = std::env::temp_dir().join(format!("wasmhook-sealing-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|source| SealingError::KeyFile {
            path: dir.display().to_string(),
            source,
        })?;
        let sealer = Sealer::open_or_create(&dir, None)?;
        let sealed = sealer.seal(1, b"hunter2")?;
        assert!(!sealed.windows(7).any(|window| window == b"hunter2"));
        assert_eq!(sealer.open(1, &sealed)?, b"hunter2");
        assert!(sealer.open(2, &sealed).is_err());
        // The same key comes back from the file.
        let again = Sealer::open_or_create(&dir, None)?;
        assert_eq!(again.open(1, &sealed)?, b"hunter2");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(KEY_FILE))
                .map(|metadata| metadata.permissions().mode() & 0o777)
                .unwrap_or_default();
            assert_eq!(mode, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    #[test]
    fn hook_secrets_seal_as_json_for_their_organization() -> Result<(), SealingError> {
        let sealer = Sealer {
            cipher: Aes256Gcm::new(&[7u8; 32].into()),
        };
        assert_eq!(HookSecrets::default().seal(&sealer, 1)?, None);
        assert_eq!(HookSecrets::open(&sealer, 1, None)?, HookSecrets::default());
        let secrets = HookSecrets {
            secrets: vec![("api_key".into(), "hunter2".into())],
            config_secret: Some("shared".into()),
        };
        let sealed = secrets.seal(&sealer, 1)?.ok_or(SealingError::Open)?;
        assert_eq!(
            HookSecrets::open(&sealer, 1, Some(sealed.as_slice()))?,
            secrets
        );
        assert!(HookSecrets::open(&sealer, 2, Some(sealed.as_slice())).is_err());
        // The format stays what stored rows hold: the JSON of the struct, sealed.
        let plain = sealer.open(1, &sealed)?;
        assert_eq!(
            plain,
            br#"{"secrets":[["api_key","hunter2"]],"config_secret":"shared"}"#
        );
        Ok(())
    }

    #[test]
    fn a_copy_keeps_the_config_secret_and_the_secrets_only_when_asked() {
        let secrets = HookSecrets {
            secrets: vec![("api_key".into(), "hunter2".into())],
            config_secret: Some("shared".into()),
        };
        assert_eq!(secrets.copied(true), secrets);
        let without = secrets.copied(false);
        assert!(without.secrets.is_empty());
        assert_eq!(without.config_secret.as_deref(), Some("shared"));
        assert_eq!(secrets.keys(), vec!["api_key".to_owned()]);
        assert!(without.keys().is_empty());
    }
}
