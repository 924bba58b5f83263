//! Loading modules: what is refused, with which reason, and the compiled-code cache.

use std::path::{Path, PathBuf};

use wasmhook::runtime::{
    Digest, Encoding, LoadError, ModuleKind, Runtime, RuntimeConfig, DEFAULT_FUNCTION_CACHE_BYTES,
};
use wasmhook_tests::guests::{
    HELLO, HELLO_COMMAND, HELLO_COMMAND_CORE, INVOICE_CHECK, OTHER_WORLD,
};

use super::support::{module, runtime, Call};

fn refuse(bytes: &[u8]) -> LoadError {
    match runtime().load(bytes) {
        Ok(module) => panic!("loaded what should be refused: {:?}", module.info()),
        Err(error) => error,
    }
}

#[test]
fn random_bytes_and_empty_files_are_not_webassembly() {
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert!(matches!(refuse(&noise), LoadError::NotWasm));
    assert!(matches!(refuse(b""), LoadError::NotWasm));
    assert!(refuse(b"hello")
        .to_string()
        .contains("not a WebAssembly module"));
}

#[test]
fn a_truncated_module_is_invalid_with_wasmtimes_reason() {
    let bytes = std::fs::read(HELLO).expect("hello is built");
    let error = refuse(&bytes[..bytes.len() / 2]);
    assert!(
        matches!(
            error,
            LoadError::Invalid {
                encoding: "component",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("not a valid WebAssembly component: "),
        "{error}"
    );
}

#[test]
fn a_component_of_another_world_is_refused_naming_the_missing_export() {
    let error = refuse(&std::fs::read(OTHER_WORLD).expect("other-world is built"));
    assert!(
        matches!(error, LoadError::MissingExport { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("`handle`"), "{error}");
}

#[test]
fn a_core_module_importing_what_the_host_lacks_is_refused_naming_it() {
    let bytes = wat::parse_str(
        r#"(module
             (import "env" "mystery" (func))
             (memory (export "memory") 1)
             (func (export "_start")))"#,
    )
    .expect("valid text");
    let error = refuse(&bytes);
    assert!(
        matches!(&error, LoadError::UnsupportedImport { name } if name == "env::mystery"),
        "{error:?}"
    );
}

#[test]
fn a_component_importing_an_unknown_interface_is_refused_naming_it() {
    let bytes = wat::parse_str(
        r#"(component
             (import "acme:vault/secrets@1.0.0" (instance
               (export "get" (func (param "key" string) (result string))))))"#,
    )
    .expect("valid text");
    let error = refuse(&bytes);
    assert!(
        matches!(&error, LoadError::UnsupportedImport { name } if name == "acme:vault/secrets@1.0.0"),
        "{error:?}"
    );
}

#[test]
fn a_core_module_without_start_is_not_a_command() {
    let bytes = wat::parse_str(r#"(module (func (export "run")))"#).expect("valid text");
    let error = refuse(&bytes);
    assert!(
        matches!(error, LoadError::MissingExport { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("`_start`"), "{error}");
}

#[test]
fn a_module_over_the_size_bound_is_refused_before_parsing() {
    let mut bytes = vec![0u8; 64 * 1024 * 1024 + 1];
    bytes[..8].copy_from_slice(b"\0asm\x01\0\0\0");
    assert!(matches!(refuse(&bytes), LoadError::TooLarge { .. }));
}

#[test]
fn modules_are_classified_by_how_they_are_called() {
    let cases = [
        (HELLO, ModuleKind::Component, Encoding::Component),
        (HELLO_COMMAND, ModuleKind::Command, Encoding::Component),
        (HELLO_COMMAND_CORE, ModuleKind::Command, Encoding::Core),
    ];
    for (path, kind, encoding) in cases {
        let info = module(path).info().clone();
        assert_eq!((info.kind, info.encoding), (kind, encoding), "{path}");
        let digest = Digest::of(&std::fs::read(path).expect("readable"));
        assert_eq!(info.digest, digest.to_string());
    }
    let info = module(HELLO).info().clone();
    assert!(
        info.imports
            .iter()
            .any(|i| i.starts_with("wasmhook:extension/host@0.1")),
        "{:?}",
        info.imports
    );
    assert!(info.exports.contains(&"handle".to_owned()));
}

/// A runtime that keeps its compiled code in `dir`.
fn cached_in(dir: &Path) -> RuntimeConfig {
    RuntimeConfig {
        cache_dir: Some(dir.to_owned()),
        max_instances: 4,
        ..RuntimeConfig::default()
    }
}

/// Compiles invoice-check with a first runtime keeping its compiled code in `dir` (where
/// nothing was compiled before), then drops that runtime: the module's bytes, its digest,
/// and the one artifact written, named after the digest.
fn compile_invoice_check_once(dir: &Path) -> (Vec<u8>, Digest, PathBuf) {
    let bytes = std::fs::read(INVOICE_CHECK).expect("built");
    let digest = Digest::of(&bytes);
    {
        let first = Runtime::new(cached_in(dir)).expect("starts");
        assert!(
            first.load_compiled(&digest).is_none(),
            "nothing compiled yet"
        );
        first.load(&bytes).expect("loads");
    }
    let artifacts: Vec<_> = std::fs::read_dir(dir)
        .expect("listable")
        .flatten()
        .collect();
    assert_eq!(artifacts.len(), 1, "one artifact, no temporary files left");
    let artifact = artifacts[0].path();
    assert!(artifact.to_string_lossy().contains(&digest.to_string()));
    (bytes, digest, artifact)
}

/// A new runtime (a restart) gets the module from its artifact, without its bytes.
#[tokio::test]
async fn compiled_code_survives_a_restart() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (_, digest, _) = compile_invoice_check_once(dir.path());
    let second = Runtime::new(cached_in(dir.path())).expect("starts");
    let module = second
        .load_compiled(&digest)
        .expect("loaded from the artifact");
    let report = Call::with_settings(serde_json::json!({}))
        .run_on(&second, &module)
        .await;
    assert!(
        !report.outcome.is_completed(),
        "no annotation: invoice-check must fail"
    );
    assert!(report.outcome.message().contains("annotation"));
}

/// A corrupt artifact is discarded, and loading from bytes compiles again. It is replaced
/// by a rename, never rewritten in place: a live runtime maps artifacts into memory, and
/// truncating a mapped file under it would crash it (see `runtime::cache`).
#[tokio::test]
async fn a_corrupt_artifact_is_discarded_and_the_module_compiled_again() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (bytes, digest, artifact) = compile_invoice_check_once(dir.path());
    let garbage = dir.path().join("garbage");
    std::fs::write(&garbage, b"garbage").expect("writable");
    std::fs::rename(&garbage, &artifact).expect("renamable");
    let third = Runtime::new(cached_in(dir.path())).expect("starts");
    assert!(third.load_compiled(&digest).is_none());
    assert!(third.load(&bytes).is_ok());
    assert!(std::fs::read(&artifact).expect("rewritten").len() > 1000);
}

/// A module compiled after another of its toolchain takes the code of the functions they
/// share from the per-function compile cache, and runs as the same module compiled without
/// it does. With the cache off (the default), the runtime has none.
#[tokio::test]
async fn a_module_reuses_the_code_of_functions_compiled_before_and_runs_the_same() {
    let small = |function_cache_bytes| RuntimeConfig {
        max_instances: 4,
        function_cache_bytes,
        ..RuntimeConfig::default()
    };
    assert_eq!(
        RuntimeConfig::default().function_cache_bytes,
        0,
        "off by default"
    );
    let cached = Runtime::new(small(DEFAULT_FUNCTION_CACHE_BYTES)).expect("starts");
    cached
        .load(&std::fs::read(INVOICE_CHECK).expect("built"))
        .expect("loads");
    let before = cached.function_cache_stats().expect("on");
    assert!(before.entries > 0, "{before:?}");
    let hello_bytes = std::fs::read(HELLO).expect("built");
    let hello = cached.load(&hello_bytes).expect("loads");
    let after = cached.function_cache_stats().expect("on");
    assert!(
        after.hits > before.hits,
        "hello shares functions with invoice-check: {before:?} then {after:?}"
    );

    let plain = Runtime::new(small(0)).expect("starts");
    assert_eq!(plain.function_cache_stats(), None);
    let plain_hello = plain.load(&hello_bytes).expect("loads");
    let call = Call::with_settings(serde_json::json!({"greeting": "Ahoj"}));
    let (from_cache, compiled) = (
        call.run_on(&cached, &hello).await,
        call.run_on(&plain, &plain_hello).await,
    );
    assert!(
        from_cache.outcome.is_completed(),
        "{:?}",
        from_cache.outcome
    );
    assert_eq!(
        format!("{:?}", from_cache.outcome),
        format!("{:?}", compiled.outcome),
        "the same answer with code from the cache"
    );
}
