//! Uploads built to make the host compile for long: refused from their shape in
//! milliseconds, without the process growing, and an organization that keeps sending them
//! is slowed down while others upload as usual.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use wasmhook_tests::guests::HELLO;

use super::support::{field_message, Server, Tenant, OPERATOR_TOKEN};

/// A 400 KB core module of 100,000 empty functions: it compiled for 5 to 12 s and took
/// 640 to 820 MB before it was refused for lacking `_start`. This one even has `_start`.
fn bomb(functions: usize) -> Vec<u8> {
    let text = format!(
        r#"(module (func (export "_start")) {})"#,
        "(func)".repeat(functions)
    );
    wat::parse_str(text).expect("the bomb assembles")
}

/// Nothing of the tenant's refused uploads was stored.
fn assert_no_module_stored(acme: &Tenant) {
    let (_, modules) = acme.get("/modules");
    assert_eq!(modules["pagination"]["total"], 0, "{modules}");
}

#[test]
fn a_compile_bomb_is_refused_from_its_shape_in_milliseconds() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let bytes = bomb(100_000);
    assert!(bytes.len() < 1_000_000, "a small file: {}", bytes.len());

    let started = Instant::now();
    let (status, answer) = acme.upload_bytes(bytes.clone(), "bomb.wasm");
    let took = started.elapsed();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    // A module refused for its shape is an error of the upload's `file`.
    let message = field_message(&answer, "file").unwrap_or_default();
    assert!(
        message.contains("100000 functions") || message.contains("functions, over the limit"),
        "{answer}"
    );
    eprintln!(
        "a {}-byte module of 100,001 functions refused in {took:?}",
        bytes.len()
    );
    assert!(took < Duration::from_secs(1), "refused after {took:?}");
    assert_no_module_stored(&acme);
}

#[test]
fn compile_bombs_uploaded_at_once_are_all_refused_and_the_process_does_not_grow() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let acme = Tenant::new(&server, "acme");
    let bytes = bomb(100_000);
    let baseline = server.rss_kib();

    let statuses: Vec<StatusCode> = std::thread::scope(|scope| {
        let uploads: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| acme.upload_bytes(bytes.clone(), "bomb.wasm").0))
            .collect();
        uploads
            .into_iter()
            .map(|upload| upload.join().expect("the thread"))
            .collect()
    });
    assert!(
        statuses
            .iter()
            .all(|status| *status == StatusCode::BAD_REQUEST),
        "{statuses:?}"
    );
    let grew_mib = server.rss_kib().saturating_sub(baseline) / 1024;
    eprintln!("four compile bombs at once: RSS +{grew_mib} MiB");
    assert!(grew_mib < 64, "RSS grew by {grew_mib} MiB");
    assert_no_module_stored(&acme);
}

#[test]
fn refused_uploads_count_against_their_organization_only() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start_with(
        dir.path(),
        Some(OPERATOR_TOKEN),
        &[("WASMHOOK_REFUSED_UPLOADS_PER_ORGANIZATION", "5")],
        &[],
    );
    let mallory = Tenant::new(&server, "mallory");
    let acme = Tenant::new(&server, "acme");
    let garbage = b"\0asm\x01\0\0\0\x01\xff\xff\xff\xff\x0f".to_vec();
    for _ in 0..5 {
        let (status, answer) = mallory.upload_bytes(garbage.clone(), "broken.wasm");
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    }
    // The sixth is not even looked at, valid or not.
    let response = server
        .client
        .post(server.url("/modules?name=hello"))
        .bearer_auth(&mallory.token)
        .header("content-type", "application/wasm")
        .body(std::fs::read(HELLO).expect("hello was built"))
        .send()
        .expect("the server answers");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    let answer: serde_json::Value = response.json().expect("JSON");
    assert!(
        answer["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("refused")),
        "{answer}"
    );
    // Another organization uploads as usual.
    let (status, answer) = acme.upload_bytes(std::fs::read(HELLO).expect("hello"), "hello.wasm");
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}

#[test]
fn every_example_passes_the_precheck_with_room_to_spare() {
    use wasmhook::runtime::precheck::{precheck, ModuleBounds};
    let bounds = ModuleBounds::default();
    let foreground = wasmhook::modules::DEFAULT_FOREGROUND_COMPILE_BYTES as u64;
    for (extension, language, path) in wasmhook_tests::guests::EXAMPLES {
        let bytes = std::fs::read(path).expect("the example was built");
        let shape = precheck(&bytes, &bounds)
            .unwrap_or_else(|error| panic!("{extension} in {language} refused: {error}"));
        eprintln!(
            "{extension} ({language}): {} bytes, {} functions, {} bytes of code, largest \
             function {} bytes, {} nested, weight {}",
            bytes.len(),
            shape.functions,
            shape.code_bytes,
            shape.largest_function_bytes,
            shape.nested,
            shape.compile_weight()
        );
        // The largest real guest stays well inside every bound.
        assert!(
            shape.functions * 2 < bounds.max_functions,
            "{language}: {shape:?}"
        );
        assert!(
            shape.code_bytes * 2 < bounds.max_code_bytes,
            "{language}: {shape:?}"
        );
        assert!(shape.nested < bounds.max_nested, "{language}: {shape:?}");
        // Small Rust extensions compile while their upload waits; Go's runtime and the
        // interpreters do not.
        if language.starts_with("rust") {
            assert!(
                shape.compile_weight() <= foreground,
                "{language}: {shape:?}"
            );
        }
        if ["python", "javascript", "go"]
            .iter()
            .any(|heavy| language.starts_with(heavy))
        {
            assert!(shape.compile_weight() > foreground, "{language}: {shape:?}");
        }
    }
}
