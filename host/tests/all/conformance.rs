//! Every conformance case against every example in every language (components and commands),
//! through the runtime and the same payload assembly a hook call uses. The same cases through
//! the server's test endpoint are in `languages.rs`.

use wasmhook::model::EventAction;
use wasmhook::runtime::Outcome;
use wasmhook_tests::conformance::{cases, cases_dir, json_equal, Case};
use wasmhook_tests::guests::EXAMPLES;

use super::support::{module, Call};

/// The languages every example must exist in (`examples/<language>/`).
pub const LANGUAGES: &[&str] = &[
    "rust",
    "python",
    "javascript",
    "c",
    "go",
    "zig",
    "assemblyscript",
];

/// Checks one report against a case; returns what differs.
fn check(case: &Case, report: &wasmhook::runtime::RunReport) -> Result<(), String> {
    match (case.expect.status.as_str(), &report.outcome) {
        ("success", Outcome::Completed { response }) => {
            let actual = serde_json::Value::Object(response.clone());
            let expected = case.expect.response.clone().unwrap_or_default();
            if !json_equal(&actual, &expected) {
                return Err(format!("response {actual}\n  expected {expected}"));
            }
        }
        ("failed", outcome) if !outcome.is_completed() => {
            let message = outcome.message();
            for needle in &case.expect.message_contains {
                if !message.contains(needle.as_str()) {
                    return Err(format!("message {message:?} lacks {needle:?}"));
                }
            }
        }
        (expected, outcome) => {
            return Err(format!(
                "expected {expected}, got {outcome:?} (output: {})",
                report.output
            ))
        }
    }
    for needle in &case.expect.output_contains {
        if !report.output.contains(needle.as_str()) {
            return Err(format!("output {:?} lacks {needle:?}", report.output));
        }
    }
    Ok(())
}

#[test]
fn every_language_has_both_examples() {
    for language in LANGUAGES {
        for extension in ["hello", "invoice-check"] {
            let form = EXAMPLES
                .iter()
                .find(|(name, form, _)| name == &extension && form.starts_with(language));
            assert!(form.is_some(), "no {extension} example in {language}");
        }
    }
    let from_disk: Vec<String> = std::fs::read_dir(cases_dir().join("../../examples"))
        .expect("the examples directory")
        .flatten()
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    for language in &from_disk {
        assert!(
            LANGUAGES.contains(&language.as_str()),
            "examples/{language} is not tested"
        );
    }
}

#[tokio::test]
async fn every_case_passes_for_every_example() {
    let cases = cases();
    assert!(
        cases.len() >= 6,
        "found only {} cases in {}",
        cases.len(),
        cases_dir().display()
    );
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut expected = 0;
    for (extension, form, path) in EXAMPLES {
        expected += cases
            .iter()
            .filter(|case| case.extension == *extension)
            .count();
        let module = module(path);
        for case in cases.iter().filter(|case| case.extension == *extension) {
            let call = Call {
                event: EventAction::new(&case.event, &case.action).expect("cases use known events"),
                settings: case.settings.clone(),
                secrets: case.secret_pairs(),
                body: case.body.clone(),
                limits: Default::default(),
            };
            let report = call.run(&module).await;
            checked += 1;
            if let Err(difference) = check(case, &report) {
                failures.push(format!(
                    "{extension} ({form}), case {}: {difference}",
                    case.name
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checked, expected);
    // Rust: hello 2 cases x 3 forms, invoice-check 4 x 2; six more languages, 2 + 4 each.
    assert_eq!(checked, 14 + 6 * 6);
}

/// The names of the files in `conformance/cases/`, where every test reads the cases.
fn vendored_files() -> Vec<String> {
    std::fs::read_dir(cases_dir())
        .unwrap_or_else(|error| {
            panic!(
                "the vendored cases are missing at {}: {error}",
                cases_dir().display()
            )
        })
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}

/// The cases are vendored in the repository (`conformance/cases/`): they must be there,
/// each file a case, each case of a known example.
#[test]
fn every_vendored_file_is_a_case_of_a_known_example() {
    let vendored = vendored_files();
    let cases = cases();
    assert!(
        !cases.is_empty(),
        "no conformance cases in {}",
        cases_dir().display()
    );
    assert_eq!(
        cases.len(),
        vendored.len(),
        "a file in {} is not a case: {vendored:?}",
        cases_dir().display()
    );
    for extension in ["hello", "invoice-check"] {
        assert!(
            cases.iter().any(|case| case.extension == extension),
            "no case of {extension}"
        );
    }
    assert!(
        cases
            .iter()
            .all(|case| ["hello", "invoice-check"].contains(&case.extension.as_str())),
        "a case of an unknown example"
    );
}

/// Where the shared design documents are checked out beside the project, the vendored copy
/// of the cases must not have drifted from them (file for file, both ways).
#[test]
fn the_vendored_cases_match_the_shared_ones_where_they_are_checked_out() {
    let vendored = vendored_files();
    let shared =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/cases");
    let Ok(entries) = std::fs::read_dir(&shared) else {
        eprintln!(
            "no shared cases beside the project at {}; the vendored copy is checked alone",
            shared.display()
        );
        return;
    };
    let mut theirs_names = Vec::new();
    for entry in entries.flatten() {
        let ours = cases_dir().join(entry.file_name());
        let theirs = std::fs::read(entry.path()).expect("a shared case is readable");
        let mine = std::fs::read(&ours)
            .unwrap_or_else(|_| panic!("{} is missing from conformance/cases", ours.display()));
        assert_eq!(
            mine,
            theirs,
            "{} differs from the shared case",
            ours.display()
        );
        theirs_names.push(entry.file_name().to_string_lossy().into_owned());
    }
    for name in &vendored {
        assert!(
            theirs_names.contains(name),
            "conformance/cases/{name} is not among the shared cases in {}",
            shared.display()
        );
    }
}
