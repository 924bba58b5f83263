//! A guest that misbehaves on purpose, as `settings.behavior` says, so the host's limits
//! can be tested against a real module. It speaks the raw WIT interface (no SDK) so that
//! it can also return responses the SDK would never produce.
//!
//! | behavior | what it does | what the host must report |
//! | --- | --- | --- |
//! | `loop` | spins forever | timeout |
//! | `spin` | spins for `settings.ms` milliseconds, then answers | completed |
//! | `grow_memory` | allocates 1 MiB blocks forever | memory limit exceeded |
//! | `hold_memory` | fills `settings.mb` MiB (default 64), holds it `settings.ms` ms (default 1000), answers | completed |
//! | `recurse` | recurses without end | failed: stack exhausted |
//! | `flood_stdout` | writes `settings.mb` MiB (default 100) to stdout | completed, output truncated |
//! | `panic` | panics | failed, with the panic text |
//! | `guest_error` | returns an error | failed, with the error |
//! | `invalid_json` / `not_object` / `huge_response` | returns a bad response | failed, naming it |
//! | `sleep` | sleeps `settings.ms` milliseconds | timeout when past the deadline |
//! | `sandbox` | tries files, environment, arguments | completed, reporting nothing there |
//! | `print_secret` | prints, logs and returns secret `api_key` | everything redacted |
//! | `remaining_time` | reports the host's remaining time | completed |
//! | `echo_token` | returns the minted API token (`{"token": ...}`) | completed |
//! | `echo` | returns `settings.operations` and what it saw of `annotation.content` and `updated_datapoints` | completed |

// The generated export glue is unsafe by nature.
#![allow(unsafe_code)]
// Printing to stdout is one of the things this guest is for.
#![allow(clippy::print_stdout)]

use std::io::Write;

use serde_json::{json, Value};

wit_bindgen::generate!({
    path: "../../../wit/extension.wit",
    world: "extension",
});

use wasmhook::extension::host::{log, remaining_time_ms};
use wasmhook::extension::types::Level;

struct Hostile;

impl Guest for Hostile {
    fn handle(request: Request) -> Result<String, String> {
        let settings: Value = serde_json::from_str(&request.settings).map_err(|e| e.to_string())?;
        let number =
            |key: &str, default: u64| settings.get(key).and_then(Value::as_u64).unwrap_or(default);
        let secret = || {
            request
                .secrets
                .iter()
                .find(|(name, _)| name == "api_key")
                .map(|(_, value)| value.clone())
                .unwrap_or_default()
        };
        match settings
            .get("behavior")
            .and_then(Value::as_str)
            .unwrap_or("")
        {
            "loop" => {
                let mut counter = 0u64;
                loop {
                    counter = std::hint::black_box(counter.wrapping_add(1));
                }
            }
            "spin" => {
                let until =
                    std::time::Instant::now() + std::time::Duration::from_millis(number("ms", 100));
                let mut counter = 0u64;
                while std::time::Instant::now() < until {
                    counter = std::hint::black_box(counter.wrapping_add(1));
                }
                Ok(json!({"spun": counter}).to_string())
            }
            "grow_memory" => {
                let mut blocks: Vec<Vec<u8>> = Vec::new();
                loop {
                    blocks.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&blocks);
                }
            }
            "hold_memory" => {
                let blocks: Vec<Vec<u8>> =
                    (0..number("mb", 64)).map(|_| vec![1u8; 1 << 20]).collect();
                std::hint::black_box(&blocks);
                std::thread::sleep(std::time::Duration::from_millis(number("ms", 1000)));
                Ok(json!({"held_mb": blocks.len()}).to_string())
            }
            "recurse" => Ok(json!({"depth": recurse(std::hint::black_box(1))}).to_string()),
            "flood_stdout" => {
                let chunk = vec![b'x'; 1 << 16];
                let mut stdout = std::io::stdout().lock();
                for _ in 0..number("mb", 100) * 16 {
                    stdout.write_all(&chunk).map_err(|e| e.to_string())?;
                }
                Ok("{}".into())
            }
            "panic" => panic!("the hostile guest panics on purpose"),
            "guest_error" => Err("the hostile guest refuses this call".into()),
            "invalid_json" => Ok("{this is not json".into()),
            "not_object" => Ok("[1, 2, 3]".into()),
            "huge_response" => Ok(json!({"filler": "y".repeat(10 << 20)}).to_string()),
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_millis(number("ms", 10_000)));
                Ok("{}".into())
            }
            "sandbox" => Ok(sandbox().to_string()),
            "print_secret" => {
                let secret = secret();
                println!("stdout says the secret is {secret}");
                eprintln!("stderr says the secret is {secret}");
                log(Level::Warning, &format!("log says the secret is {secret}"));
                Ok(
                    json!({"messages": [{"type": "info", "content": format!("secret {secret}")}]})
                        .to_string(),
                )
            }
            "error_with_secret" => Err(format!("cannot use key {}", secret())),
            "panic_with_secret" => panic!("cannot use key {}", secret()),
            "remaining_time" => Ok(json!({"remaining_ms": remaining_time_ms()}).to_string()),
            "echo_token" => Ok(json!({"token": request.authorization_token}).to_string()),
            "echo" => {
                let payload: Value =
                    serde_json::from_str(&request.payload).map_err(|e| e.to_string())?;
                Ok(json!({
                    "operations": settings.get("operations").cloned().unwrap_or(json!([])),
                    "messages": [{"type": "info", "content": "echo"}],
                    "seen": {
                        "updated_datapoints": payload.get("updated_datapoints"),
                        "content": payload.pointer("/annotation/content"),
                    },
                })
                .to_string())
            }
            other => Err(format!("unknown behavior `{other}`")),
        }
    }
}

#[allow(unconditional_recursion)] // on purpose: the host must stop it
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 64]);
    recurse(depth + 1) + frame[3]
}

/// What the sandbox lets the guest see: it should see nothing.
fn sandbox() -> Value {
    let files: Vec<Value> = ["/etc/passwd", "/", ".", "/tmp"]
        .iter()
        .map(|path| {
            let outcome = match std::fs::read_dir(path) {
                Ok(_) => "readable".to_string(),
                Err(error) => format!("denied: {error}"),
            };
            let file = match std::fs::File::open(path) {
                Ok(_) => "opened".to_string(),
                Err(error) => format!("denied: {error}"),
            };
            json!({"path": path, "read_dir": outcome, "open": file})
        })
        .collect();
    let written = std::fs::write("escape.txt", b"x").is_ok();
    json!({
        "files": files,
        "wrote_file": written,
        "env": std::env::vars().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "args": std::env::args().collect::<Vec<_>>(),
        "tcp": std::net::TcpStream::connect("127.0.0.1:1").is_ok(),
    })
}

export!(Hostile);
