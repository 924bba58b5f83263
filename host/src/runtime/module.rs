//! What a module is: its digest, its kind, and the checks that refuse what the host cannot run.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use wasmtime::component::types::ComponentItem;
use wasmtime::Engine;

/// The WIT interface the host implements for extensions, without its patch version.
const HOST_INTERFACE: &str = "wasmhook:extension/host@0.1.";
/// The WIT interface holding the shared types; it has no functions to provide.
const TYPES_INTERFACE: &str = "wasmhook:extension/types@0.1.";
/// WASI 0.2 packages the host links (with no preopens, sockets or environment).
const WASI_PACKAGES: &[&str] = &[
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:filesystem/",
    "wasi:http/",
    "wasi:io/",
    "wasi:random/",
    "wasi:sockets/",
];
/// The core-module namespace of WASI preview 1.
pub(crate) const WASI_PREVIEW1: &str = "wasi_snapshot_preview1";
/// What a component extension exports.
const HANDLE_EXPORT: &str = "handle";
/// What a command component exports, without its version.
const RUN_EXPORT: &str = "wasi:cli/run@0.2.";
/// What a core command exports.
const START_EXPORT: &str = "_start";

/// The sha256 of a module's bytes: its identity in caches and storage.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The digest of these bytes.
    pub fn of(bytes: &[u8]) -> Self {
        Digest(Sha256::digest(bytes).into())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// A digest given as text was not 64 hexadecimal digits.
#[derive(Debug, thiserror::Error)]
#[error("a sha256 digest is 64 hexadecimal digits")]
pub struct BadDigest;

impl FromStr for Digest {
    type Err = BadDigest;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| BadDigest)?;
        Ok(Digest(bytes))
    }
}

/// How the host calls a module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModuleKind {
    /// A component of the `wasmhook:extension/extension` world: `handle` is called.
    Component,
    /// A WASI command: the payload on stdin, the response on stdout.
    Command,
}

/// Which binary format a module is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// A component (component-model binary).
    Component,
    /// A core WebAssembly module.
    Core,
}

/// What the host learned about a module when it loaded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleInfo {
    /// sha256 of the module's bytes.
    pub digest: String,
    /// How the host calls it.
    pub kind: ModuleKind,
    /// Component or core module.
    pub encoding: Encoding,
    /// Names of its imports (interfaces for a component, `module::name` for a core module).
    pub imports: Vec<String>,
    /// Names of its exports, by which its [`ModuleKind`] was told (`handle`, `_start`, ...).
    pub exports: Vec<String>,
}

/// Why a module was refused. Each message names the problem so that its author can fix it.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes do not start with the WebAssembly header.
    #[error("not a WebAssembly module: the file does not start with the `\\0asm` header")]
    NotWasm,
    /// Larger than the installation accepts.
    #[error("the module is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// Its size in bytes.
        size: usize,
        /// The largest accepted, in bytes (64 MiB).
        limit: usize,
    },
    /// WebAssembly, but malformed or using features the host does not enable.
    #[error("not a valid WebAssembly {encoding}: {reason}")]
    Invalid {
        /// "component" or "module".
        encoding: &'static str,
        /// wasmtime's description of the problem.
        reason: String,
    },
    /// It imports something the host does not provide.
    #[error(
        "the module imports `{name}`, which the host does not provide \
         (it provides wasmhook:extension/host@0.1, WASI 0.2 and WASI preview 1)"
    )]
    UnsupportedImport {
        /// The import's name.
        name: String,
    },
    /// It has none of the exports that make it callable.
    #[error("the module {found} does not export {expected}")]
    MissingExport {
        /// What was looked for.
        expected: &'static str,
        /// What kind of module it is.
        found: &'static str,
    },
    /// Its shape is beyond what the host compiles (see `precheck`): refused before any
    /// compile, since compiling it would cost seconds and hundreds of megabytes.
    #[error("the module has {count} {what}, over the limit of {limit}; the host does not compile modules this large")]
    TooComplex {
        /// What was counted.
        what: &'static str,
        /// How many it has (counting stops at the first over the limit).
        count: u64,
        /// The most of them [`ModuleBounds`](super::precheck::ModuleBounds) allows.
        limit: u64,
    },
    /// Its imports or exports have the right names but the wrong types.
    #[error("the module does not match the host's interface: {reason}")]
    Mismatch {
        /// wasmtime's description of the mismatch.
        reason: String,
    },
}

/// Reads the header: is this WebAssembly, and a component or a core module?
pub(crate) fn encoding(bytes: &[u8]) -> Result<Encoding, LoadError> {
    let header = bytes.get(..8).ok_or(LoadError::NotWasm)?;
    if &header[..4] != b"\0asm" {
        return Err(LoadError::NotWasm);
    }
    // Bytes 6..8 are the layer: 0 for a core module, 1 for a component.
    match header[6..8] {
        [0, 0] => Ok(Encoding::Core),
        [1, 0] => Ok(Encoding::Component),
        _ => Err(LoadError::Invalid {
            encoding: "module",
            reason: format!("unknown binary version {:02x?}", &header[4..8]),
        }),
    }
}

/// Checks a component's imports and exports and says how it is called.
pub(crate) fn inspect_component(
    engine: &Engine,
    component: &wasmtime::component::Component,
) -> Result<(ModuleKind, Vec<String>, Vec<String>), LoadError> {
    let ty = component.component_type();
    let imports: Vec<String> = ty
        .imports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    let exports: Vec<(String, bool)> = ty
        .exports(engine)
        .map(|(name, item)| {
            (
                name.to_owned(),
                matches!(item.ty, ComponentItem::ComponentFunc(_)),
            )
        })
        .collect();
    if let Some(name) = imports.iter().find(|name| !component_import_provided(name)) {
        return Err(LoadError::UnsupportedImport { name: name.clone() });
    }
    let kind = if exports
        .iter()
        .any(|(name, func)| *func && name == HANDLE_EXPORT)
    {
        ModuleKind::Component
    } else if exports.iter().any(|(name, _)| name.starts_with(RUN_EXPORT)) {
        ModuleKind::Command
    } else {
        return Err(LoadError::MissingExport {
            expected:
                "`handle` (world wasmhook:extension/extension) or `wasi:cli/run` (a WASI command)",
            found: "is a component that",
        });
    };
    Ok((
        kind,
        imports,
        exports.into_iter().map(|(name, _)| name).collect(),
    ))
}

pub(crate) fn component_import_provided(name: &str) -> bool {
    name.starts_with(HOST_INTERFACE)
        || name.starts_with(TYPES_INTERFACE)
        || (WASI_PACKAGES
            .iter()
            .any(|package| name.starts_with(package))
            && name.contains("@0.2."))
}

/// Checks a core module's imports and exports: it must be a WASI preview 1 command.
pub(crate) fn inspect_core(
    module: &wasmtime::Module,
) -> Result<(Vec<String>, Vec<String>), LoadError> {
    let mut imports = Vec::new();
    for import in module.imports() {
        let name = format!("{}::{}", import.module(), import.name());
        if import.module() != WASI_PREVIEW1 {
            return Err(LoadError::UnsupportedImport { name });
        }
        imports.push(name);
    }
    let exports: Vec<String> = module.exports().map(|e| e.name().to_owned()).collect();
    if !exports.iter().any(|name| name == START_EXPORT) {
        return Err(LoadError::MissingExport {
            expected: "`_start` (a WASI command); a library module needs to be a component of world wasmhook:extension/extension",
            found: "is a core module that",
        });
    }
    Ok((imports, exports))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_round_trips_through_hex() -> Result<(), BadDigest> {
        let digest = Digest::of(b"abc");
        assert_eq!(
            digest.to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(digest.to_string().parse::<Digest>()?, digest);
        assert!("xyz".parse::<Digest>().is_err());
        Ok(())
    }

    #[test]
    fn header_decides_the_encoding() {
        assert!(matches!(encoding(b"\0asm\x01\0\0\0"), Ok(Encoding::Core)));
        assert!(matches!(
            encoding(b"\0asm\x0d\0\x01\0"),
            Ok(Encoding::Component)
        ));
        assert!(matches!(
            encoding(b"PK\x03\x04...."),
            Err(LoadError::NotWasm)
        ));
        assert!(matches!(encoding(b"\0as"), Err(LoadError::NotWasm)));
    }

    #[test]
    fn only_provided_interfaces_are_accepted() {
        assert!(component_import_provided("wasi:io/streams@0.2.6"));
        assert!(component_import_provided("wasmhook:extension/host@0.1.0"));
        assert!(component_import_provided(
            "wasi:http/outgoing-handler@0.2.0"
        ));
        assert!(!component_import_provided("wasi:keyvalue/store@0.2.0"));
        assert!(!component_import_provided("wasi:io/streams@0.3.0"));
        assert!(!component_import_provided("wasmhook:extension/host@0.2.0"));
    }
}
