//! `wasmhook new`: scaffolds an extension from a template that builds and passes
//! `wasmhook run` as generated.
//!
//! The templates live in `host/templates/<language>/` and are compiled into the binary, with
//! the project's WIT contract, so that an installed `wasmhook` needs nothing beside it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::{EXIT_COMPLETED, EXIT_USAGE};

/// The languages with a template.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Language {
    /// A component, with wit-bindgen.
    Rust,
    /// A component, with componentize-py.
    Python,
    /// A component, with componentize-js.
    Javascript,
}

/// `wasmhook new <language> <name>`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The template's language.
    language: Language,
    /// The extension's name: lower-case letters, digits and `-`, starting with a letter.
    name: String,
    /// Where to create the extension's directory [default: the current directory].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// The contract every template is built against.
const WIT: &str = include_str!("../../../wit/extension.wit");

/// componentize-py's version, as the examples pin it (examples/toolchains.sh).
const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// One file of a template: its path in the new directory, its text, whether it is run.
struct TemplateFile {
    path: &'static str,
    text: &'static str,
    executable: bool,
}

macro_rules! template {
    ($language:literal: $($path:literal $(as $executable:ident)?),* $(,)?) => {
        &[$(TemplateFile {
            path: $path,
            text: include_str!(concat!("../../templates/", $language, "/", $path)),
            executable: template!(@executable $($executable)?),
        }),*]
    };
    (@executable executable) => { true };
    (@executable) => { false };
}

const RUST: &[TemplateFile] =
    template!("rust": "Cargo.toml", "src/lib.rs", "build.sh" as executable, "README.md");
const PYTHON: &[TemplateFile] =
    template!("python": "app.py", "build.sh" as executable, "README.md");
const JAVASCRIPT: &[TemplateFile] =
    template!("javascript": "app.js", "package.json", "build.sh" as executable, "README.md");

/// Why an extension cannot be scaffolded.
#[derive(Debug, thiserror::Error)]
pub enum NewError {
    #[error(
        "`{0}` is not a valid name: use 1 to 64 lower-case letters, digits and `-`, \
         starting with a letter"
    )]
    InvalidName(String),
    #[error("{} already exists; choose another name or directory", .0.display())]
    Exists(PathBuf),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Runs `wasmhook new`.
pub fn new(args: &NewArgs) -> ExitCode {
    let parent = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    match scaffold(args.language, &args.name, &parent) {
        Ok(dir) => {
            eprintln!(
                "created {}: build it with `{}/build.sh`, then `wasmhook run` the module it prints",
                dir.display(),
                dir.display()
            );
            ExitCode::from(EXIT_COMPLETED)
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Creates `parent/name` from the template; returns its path. Writes nothing when the
/// name is invalid or the directory exists, and removes what it wrote when a write fails.
pub fn scaffold(language: Language, name: &str, parent: &Path) -> Result<PathBuf, NewError> {
    if !valid_name(name) {
        return Err(NewError::InvalidName(name.to_owned()));
    }
    let dir = parent.join(name);
    if dir.exists() {
        return Err(NewError::Exists(dir));
    }
    let files = match language {
        Language::Rust => RUST,
        Language::Python => PYTHON,
        Language::Javascript => JAVASCRIPT,
    };
    let language_name = match language {
        Language::Rust => "Rust",
        Language::Python => "Python",
        Language::Javascript => "JavaScript",
    };
    let crate_name = name.replace('-', "_");
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{crate}}", &crate_name)
            .replace("{{language}}", language_name)
            .replace("{{componentize_py}}", COMPONENTIZE_PY_VERSION)
    };
    let written = files
        .iter()
        .map(|file| (file.path, fill(file.text), file.executable))
        .chain(std::iter::once((
            "wit/extension.wit",
            WIT.to_owned(),
            false,
        )))
        .try_for_each(|(path, text, executable)| write(&dir.join(path), &text, executable));
    if let Err(error) = written {
        // Best effort: leave nothing half-made behind.
        let _ = std::fs::remove_dir_all(&dir);
        return Err(error);
    }
    Ok(dir)
}

fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|first| first.is_ascii_lowercase())
        && name.len() <= 64
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.ends_with('-')
}

fn write(path: &Path, text: &str, executable: bool) -> Result<(), NewError> {
    let error = |source| NewError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(error)?;
    }
    std::fs::write(path, text).map_err(error)?;
    if executable {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).map_err(error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_crate_and_package_names() {
        for good in ["a", "my-hook", "invoice2"] {
            assert!(valid_name(good), "{good}");
        }
        let long = "a".repeat(65);
        for bad in [
            "",
            "My",
            "1st",
            "-x",
            "x-",
            "a_b",
            "a b",
            "a/b",
            "..",
            long.as_str(),
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
