//! The conformance cases: one call each, and what must come of it.
//!
//! The cases are kept in `conformance/cases/` (copied from the project's shared design
//! documents); a test checks that the copy has not drifted from them when they are present.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

/// One case.
#[derive(Debug, Clone, Deserialize)]
pub struct Case {
    /// The file it came from (without extension).
    #[serde(skip)]
    pub name: String,
    /// `hello` or `invoice-check`.
    pub extension: String,
    /// e.g. `annotation_content`.
    pub event: String,
    /// e.g. `initialize`.
    pub action: String,
    /// The hook's settings.
    #[serde(default)]
    pub settings: Map<String, Value>,
    /// The hook's secrets.
    #[serde(default)]
    pub secrets: Map<String, Value>,
    /// The event's own keys.
    #[serde(default)]
    pub body: Map<String, Value>,
    /// What must come of it.
    pub expect: Expect,
}

/// What a case expects.
#[derive(Debug, Clone, Deserialize)]
pub struct Expect {
    /// `success` or `failed`.
    pub status: String,
    /// The response, compared as JSON values.
    #[serde(default)]
    pub response: Option<Value>,
    /// Texts the output must contain.
    #[serde(default)]
    pub output_contains: Vec<String>,
    /// Texts the failure message must contain.
    #[serde(default)]
    pub message_contains: Vec<String>,
}

impl Case {
    /// The secrets as name/value pairs.
    pub fn secret_pairs(&self) -> Vec<(String, String)> {
        self.secrets
            .iter()
            .map(|(name, value)| (name.clone(), value.as_str().unwrap_or_default().to_owned()))
            .collect()
    }
}

/// The directory of the project's copy of the cases.
pub fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/cases")
}

/// Every case, sorted by name.
pub fn cases() -> Vec<Case> {
    let dir = cases_dir();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()))
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    entries.sort();
    entries
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
            let mut case: Case = serde_json::from_str(&text)
                .unwrap_or_else(|error| panic!("{} is not a case: {error}", path.display()));
            case.name = path
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_default();
            case
        })
        .collect()
}

/// Whether two JSON values are equal, numbers by value (1 equals 1.0).
pub fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_equal(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, x)| y.get(key).is_some_and(|y| json_equal(x, y)))
        }
        (x, y) => x == y,
    }
}
