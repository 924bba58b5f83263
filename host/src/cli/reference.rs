//! The configuration reference of `wasmhook serve`: every flag, environment variable and
//! file setting with its default and what it is for, rendered at the end of `serve --help`
//! and as `docs/configuration.md`.
//!
//! Nothing here is written by hand: flags come from the command line's own definition
//! (clap), file settings from the sections' types (their keys, defaults and doc comments,
//! through their JSON schema), and each file setting's variable from the rule that reads
//! it (`Section::variable`). A test fails when the committed page differs from what this
//! renders, so the page cannot fall behind the code.

use clap::CommandFactory;

use crate::server::config::{section_settings, Section, ENVIRONMENT_ONLY};

/// The page's path from the workspace's root.
pub const PAGE: &str = "docs/configuration.md";

/// The part of `serve --help` after the flags: the file's sections and the variables that
/// have no flag.
pub fn serve_help() -> String {
    let mut text = String::from(
        "Settings are taken from flags, then WASMHOOK_* variables, then the --config file, \
         then defaults.\n\nThe --config file (TOML) takes listen, data_dir and base_url, and \
         these sections (each setting also its variable):\n",
    );
    for section in Section::ALL {
        text.push_str(&format!("\n[{}]\n", section.name()));
        for setting in section_settings(section) {
            text.push_str(&format!(
                "  {} = {}  ({})\n      {}\n",
                setting.key, setting.default, setting.variable, setting.about
            ));
        }
    }
    text.push_str("\nVariables without a flag:\n");
    for (variable, about) in ENVIRONMENT_ONLY {
        text.push_str(&format!("  {variable}\n      {about}\n"));
    }
    text.push_str(
        "  WASMHOOK_LOG\n      A whole log filter (`warn,wasmhook=debug`), instead of --log-level.\n",
    );
    text.push_str("\nTraces (OpenTelemetry):\n");
    for (variable, about) in super::telemetry::VARIABLES {
        text.push_str(&format!("  {variable}\n      {about}\n"));
    }
    text.push_str("\nThe whole reference: docs/configuration.md.\n");
    text
}

/// One flag of the command line, for the page.
struct Flag {
    long: String,
    variable: String,
    default: String,
    about: String,
}

/// The flags `serve` takes: its own and the global ones.
fn serve_flags() -> Vec<Flag> {
    let command = super::Cli::command();
    let serve = command
        .get_subcommands()
        .find(|command| command.get_name() == "serve");
    let globals = command.get_arguments().filter(|arg| arg.is_global_set());
    globals
        .chain(serve.into_iter().flat_map(clap::Command::get_arguments))
        .filter_map(|arg| {
            let long = arg.get_long()?;
            if long == "help" || long == "version" {
                return None;
            }
            let about = arg.get_help().map(ToString::to_string).unwrap_or_default();
            let defaults: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|value| value.to_string_lossy().into_owned())
                .collect();
            Some(Flag {
                long: format!("--{long}"),
                variable: arg
                    .get_env()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                default: defaults.join(", "),
                about: about.split_whitespace().collect::<Vec<_>>().join(" "),
            })
        })
        .collect()
}

/// A table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// `docs/configuration.md`.
pub fn markdown() -> String {
    let mut page = String::from(
        "# Configuration of `wasmhook serve`\n\n\
         Generated from the code by `host/src/cli/reference.rs` (the test \
         `configuration_page_is_current` fails when this page differs, and running it \
         with `UPDATE_DOCS=1` rewrites it). `wasmhook serve --help` shows the same.\n\n\
         A setting is taken from its flag, else its environment variable, else the file \
         named by `--config`, else its default.\n\n\
         ## Flags\n\n\
         | flag | variable | default | what it is for |\n| --- | --- | --- | --- |\n",
    );
    for flag in serve_flags() {
        page.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            flag.long,
            code_or_dash(&flag.variable),
            code_or_dash(&flag.default),
            cell(&flag.about)
        ));
    }
    page.push_str(
        "\n## The configuration file\n\n\
         TOML. At the top: `listen`, `data_dir` and `base_url` (as their flags). Then these \
         sections; each setting also has its variable.\n",
    );
    for section in Section::ALL {
        page.push_str(&format!(
            "\n### `[{}]`\n\n| setting | variable | default | what it is for |\n| --- | --- | --- | --- |\n",
            section.name()
        ));
        for setting in section_settings(section) {
            page.push_str(&format!(
                "| `{}` | `{}` | `{}` | {} |\n",
                setting.key,
                setting.variable,
                setting.default,
                cell(&setting.about)
            ));
        }
    }
    page.push_str(
        "\n## Variables without a flag\n\n| variable | what it is for |\n| --- | --- |\n",
    );
    for (variable, about) in ENVIRONMENT_ONLY {
        page.push_str(&format!("| `{variable}` | {} |\n", cell(about)));
    }
    page.push_str(
        "| `WASMHOOK_LOG` | A whole log filter in `tracing`'s syntax (`warn,wasmhook=debug`), \
         instead of `--log-level`. |\n",
    );
    page.push_str(
        "\n## Traces\n\nOpenTelemetry's own variables; the SDK reads the rest of the \
         specification's `OTEL_*` (batching, headers, timeouts) as well. See \
         [operations.md](operations.md).\n\n| variable | what it is for |\n| --- | --- |\n",
    );
    for (variable, about) in super::telemetry::VARIABLES {
        page.push_str(&format!("| `{variable}` | {} |\n", cell(about)));
    }
    page
}

fn code_or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        format!("`{}`", cell(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_page_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(PAGE);
        let rendered = markdown();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(&path, &rendered).expect("the page is writable");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == rendered,
            "{PAGE} differs from what the code says; run \
             `UPDATE_DOCS=1 cargo test -p wasmhook --lib configuration_page` and commit it"
        );
    }

    #[test]
    fn every_section_setting_has_a_doc_comment_and_a_variable() {
        for section in Section::ALL {
            let settings = section_settings(section);
            assert!(!settings.is_empty(), "[{}] has settings", section.name());
            for setting in settings {
                assert!(
                    !setting.about.is_empty(),
                    "[{}] {} has no doc comment",
                    section.name(),
                    setting.key
                );
                assert!(setting.variable.starts_with("WASMHOOK_"));
            }
        }
    }
}
