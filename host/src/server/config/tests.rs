//! Whole configurations resolved as `serve` resolves them: a TOML file written to a
//! temporary directory, flags, and variables from a table of each test's own (the
//! process's environment is shared by every test running at once, so none is set).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::*;

/// `serve`'s arguments with only `--config FILE`, when given.
fn args(config: Option<&Path>) -> ServeArgs {
    ServeArgs {
        config: config.map(Path::to_path_buf),
        listen: None,
        data_dir: None,
        database: None,
        base_url: None,
        demo: false,
        demo_module: None,
    }
}

/// The configuration of `args` under `variables` (name and value).
fn resolve_with(args: &ServeArgs, variables: &[(&str, &str)]) -> Result<ServerConfig, ConfigError> {
    let lookup = |name: &str| {
        variables
            .iter()
            .find(|&&(variable, _)| variable == name)
            .map(|&(_, value)| value.to_owned())
    };
    ServerConfig::resolve_from(args, &lookup)
}

/// A configuration file of `text`, in a directory that lives as long as the answer.
fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("wasmhook.toml");
    std::fs::write(&path, text).expect("the file is written");
    (dir, path)
}

/// The configuration of the file `text` under `variables`.
fn resolve(text: &str, variables: &[(&str, &str)]) -> Result<ServerConfig, ConfigError> {
    let (_dir, path) = file(text);
    resolve_with(&args(Some(&path)), variables)
}

/// No variables set.
const NO_VARIABLES: &[(&str, &str)] = &[];

/// A section as its settings, for comparing whole sections.
fn settings(section: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(section).expect("a section serializes")
}

#[test]
fn the_default_listen_address_is_the_documented_one() {
    assert_eq!(
        DEFAULT_LISTEN.parse::<SocketAddr>().expect("an address"),
        DEFAULT_LISTEN_ADDRESS
    );
}

#[test]
fn without_file_flags_or_variables_everything_is_default() {
    let config = resolve_with(&args(None), &[]).expect("the defaults are valid");
    assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(config.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
    assert_eq!(config.base_url, None);
    assert_eq!(config.operator_token, None);
    assert_eq!(config.secrets_key, None);
    assert_eq!(config.demo, None);
    assert_eq!(settings(&config.limits), settings(&Limits::default()));
    assert_eq!(settings(&config.network), settings(&Network::default()));
    assert_eq!(
        settings(&config.connections),
        settings(&Connections::default())
    );
    assert_eq!(settings(&config.metrics), settings(&Metrics::default()));
}

#[test]
fn an_empty_file_is_the_defaults() {
    let config = resolve("", &[]).expect("an empty file is valid");
    assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(settings(&config.limits), settings(&Limits::default()));
    assert_eq!(settings(&config.metrics), settings(&Metrics::default()));
}

#[test]
fn each_section_is_read_into_its_fields_and_the_rest_keep_their_defaults() {
    let config = resolve(
        r#"
            listen = "127.0.0.1:9999"
            data_dir = "/srv/wasmhook"
            base_url = "https://hooks.example.com"

            [limits]
            runs_per_organization = 3
            max_memory_mb = 64
            memory_budget_mb = 2048

            [network]
            allow_private_addresses = true
            connect_timeout_ms = 1500
            requests_per_organization = 4
            test_clock_file = "/tmp/clock"

            [connections]
            idle_timeout_ms = 1234
            max_connections_per_peer = 7
            drain_delay_ms = 250

            [metrics]
            enabled = false
            listen = "127.0.0.1:9100"
            organization_labels = false
        "#,
        &[],
    )
    .expect("a valid file");
    assert_eq!(config.listen.to_string(), "127.0.0.1:9999");
    assert_eq!(config.data_dir, PathBuf::from("/srv/wasmhook"));
    assert_eq!(
        config.base_url.as_deref(),
        Some("https://hooks.example.com")
    );

    let (limits, defaults) = (&config.limits, Limits::default());
    assert_eq!(limits.runs_per_organization, 3);
    assert_eq!(limits.max_memory_mb, 64);
    assert_eq!(limits.memory_budget_mb, 2048);
    assert_eq!(
        limits.modules_per_organization,
        defaults.modules_per_organization
    );
    assert_eq!(limits.max_timeout_s, defaults.max_timeout_s);

    let (network, defaults) = (&config.network, Network::default());
    assert!(network.allow_private_addresses);
    assert!(!network.allow_http_webhooks);
    assert_eq!(network.connect_timeout_ms, 1500);
    assert_eq!(network.requests_per_organization, 4);
    assert_eq!(network.test_clock_file, Some(PathBuf::from("/tmp/clock")));
    assert_eq!(network.retry_delay_ms, defaults.retry_delay_ms);
    assert_eq!(
        network.first_byte_timeout_ms,
        defaults.first_byte_timeout_ms
    );

    let connections = &config.connections;
    assert_eq!(connections.idle_timeout_ms, 1234);
    assert_eq!(connections.max_connections_per_peer, 7);
    assert_eq!(connections.drain_delay_ms, 250);
    assert_eq!(
        connections.header_read_timeout_ms,
        DEFAULT_HEADER_READ_TIMEOUT_MS
    );
    assert_eq!(connections.max_connections, DEFAULT_MAX_CONNECTIONS);

    let metrics = &config.metrics;
    assert!(!metrics.enabled);
    assert_eq!(
        metrics.listen,
        Some("127.0.0.1:9100".parse::<SocketAddr>().expect("an address"))
    );
    assert!(!metrics.organization_labels);
}

#[test]
fn unknown_keys_and_sections_are_refused_naming_them() {
    for (text, unknown) in [
        ("colour = \"blue\"\n", "colour"),
        ("[limits]\nruns_per_org = 3\n", "runs_per_org"),
        ("[network]\nretry_delay = 5\n", "retry_delay"),
        ("[connections]\nidle_ms = 5\n", "idle_ms"),
        ("[metrics]\nport = 9100\n", "port"),
        ("[limit]\nruns_per_organization = 3\n", "limit"),
    ] {
        match resolve(text, &[]) {
            Err(ConfigError::File { source, .. }) => {
                assert!(
                    source.message().contains("unknown field"),
                    "{text}: {source}"
                );
                assert!(source.to_string().contains(unknown), "{text}: {source}");
            }
            other => panic!("{text}: refused as an invalid file, not {other:?}"),
        }
    }
}

#[test]
fn values_of_the_wrong_type_in_the_file_are_refused_naming_the_key() {
    for (text, key) in [
        (
            "[limits]\nruns_per_organization = \"many\"\n",
            "runs_per_organization",
        ),
        (
            "[network]\nallow_http_webhooks = \"yes\"\n",
            "allow_http_webhooks",
        ),
        ("[connections]\nmax_connections = -1\n", "max_connections"),
        ("[metrics]\nlisten = \"nowhere\"\n", "listen"),
        ("listen = 8080\n", "listen"),
    ] {
        match resolve(text, &[]) {
            Err(ConfigError::File { source, .. }) => {
                assert!(source.to_string().contains(key), "{text}: {source}");
            }
            other => panic!("{text}: refused as an invalid file, not {other:?}"),
        }
    }
}

#[test]
fn a_file_that_is_not_toml_or_not_there_is_refused() {
    assert!(matches!(
        resolve("[limits\n", &[]),
        Err(ConfigError::File { .. })
    ));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let missing = dir.path().join("missing.toml");
    match resolve_with(&args(Some(&missing)), &[]) {
        Err(ConfigError::Read { path, .. }) => assert_eq!(path, missing),
        other => panic!("refused as unreadable, not {other:?}"),
    }
}

#[test]
fn variables_override_the_file() {
    let config = resolve(
        r#"
            [limits]
            runs_per_organization = 3

            [network]
            allow_http_webhooks = false
            test_clock_file = "/tmp/clock"

            [metrics]
            enabled = true
        "#,
        &[
            ("WASMHOOK_RUNS_PER_ORGANIZATION", "5"),
            ("WASMHOOK_ALLOW_HTTP_WEBHOOKS", "yes"),
            // An empty text unsets an optional setting.
            ("WASMHOOK_TEST_CLOCK_FILE", ""),
            ("WASMHOOK_IDLE_TIMEOUT_MS", "777"),
            // The metrics section's variables have a prefix of their own.
            ("WASMHOOK_METRICS_ENABLED", "0"),
            ("WASMHOOK_METRICS_LISTEN", "127.0.0.1:9200"),
            // Without the prefix, it is no setting of the metrics section.
            ("WASMHOOK_ORGANIZATION_LABELS", "false"),
        ],
    )
    .expect("valid");
    assert_eq!(config.limits.runs_per_organization, 5);
    assert!(config.network.allow_http_webhooks);
    assert_eq!(config.network.test_clock_file, None);
    assert_eq!(config.connections.idle_timeout_ms, 777);
    assert!(!config.metrics.enabled);
    assert_eq!(
        config.metrics.listen,
        Some("127.0.0.1:9200".parse::<SocketAddr>().expect("an address"))
    );
    assert!(config.metrics.organization_labels);
}

#[test]
fn yes_or_no_variables_take_their_spellings() {
    for (text, meaning) in [
        ("1", true),
        ("true", true),
        ("yes", true),
        ("0", false),
        ("false", false),
        ("no", false),
        ("", false),
    ] {
        let config = resolve_with(&args(None), &[("WASMHOOK_ALLOW_PRIVATE_ADDRESSES", text)])
            .expect("a yes or no");
        assert_eq!(config.network.allow_private_addresses, meaning, "`{text}`");
    }
}

#[test]
fn flags_override_the_file() {
    let (_dir, path) = file(
        r#"
            listen = "127.0.0.1:9999"
            data_dir = "/srv/file"
            base_url = "https://file.example.com"
        "#,
    );
    let mut args = args(Some(&path));
    args.listen = Some("127.0.0.1:7777".parse().expect("an address"));
    args.data_dir = Some(PathBuf::from("/srv/flag"));
    args.base_url = Some("https://flag.example.com".into());
    let config = resolve_with(&args, &[]).expect("valid");
    assert_eq!(config.listen.to_string(), "127.0.0.1:7777");
    assert_eq!(config.data_dir, PathBuf::from("/srv/flag"));
    assert_eq!(config.base_url.as_deref(), Some("https://flag.example.com"));
}

#[test]
fn variables_of_the_wrong_kind_are_refused_naming_the_variable() {
    for (variable, text, expected) in [
        ("WASMHOOK_MAX_CONNECTIONS", "lots", "a non-negative integer"),
        ("WASMHOOK_RETRY_DELAY_MS", "-1", "a non-negative integer"),
        ("WASMHOOK_METRICS_ENABLED", "maybe", "true or false"),
        ("WASMHOOK_ALLOW_HTTP_WEBHOOKS", "TRUE", "true or false"),
    ] {
        match resolve_with(&args(None), &[(variable, text)]) {
            Err(ConfigError::VariableKind {
                variable: named,
                expected: said,
                text: read,
            }) => {
                assert_eq!(named, variable);
                assert_eq!(said, expected);
                assert_eq!(read, text);
            }
            other => panic!("{variable}={text}: refused by kind, not {other:?}"),
        }
    }
}

#[test]
fn a_variable_of_the_right_kind_but_a_bad_value_is_refused_naming_it() {
    match resolve_with(&args(None), &[("WASMHOOK_METRICS_LISTEN", "nowhere")]) {
        Err(ConfigError::VariableValue { variable, .. }) => {
            assert_eq!(variable, "WASMHOOK_METRICS_LISTEN");
        }
        other => panic!("refused by value, not {other:?}"),
    }
}

#[test]
fn a_guest_nice_value_above_19_is_refused_and_the_guest_settings_reach_the_runtime() {
    match resolve("", &[("WASMHOOK_GUEST_NICE", "20")]) {
        Err(ConfigError::TooLarge { key, maximum }) => {
            assert_eq!((key, maximum), ("guest_nice", 19));
        }
        other => panic!("refused as too large, not {other:?}"),
    }
    let config = resolve("[limits]\nguest_nice = 19\nguest_slice_us = 250\n", &[]).expect("valid");
    assert_eq!(config.limits.guest_nice(), 19);
    assert_eq!(
        config.limits.guest_slice(),
        std::time::Duration::from_micros(250)
    );
    let defaults = resolve("", &[]).expect("valid");
    assert_eq!(defaults.limits.guest_nice(), 10);
    assert_eq!(
        defaults.limits.guest_slice(),
        std::time::Duration::from_millis(1)
    );
}

#[test]
fn settings_below_their_least_are_refused_naming_the_setting() {
    for (text, variables, key, minimum) in [
        (
            "[limits]\nmax_memory_mb = 8\n",
            NO_VARIABLES,
            "max_memory_mb",
            16,
        ),
        (
            "[limits]\nmax_timeout_s = 0\n",
            NO_VARIABLES,
            "max_timeout_s",
            1,
        ),
        (
            "",
            &[("WASMHOOK_CONCURRENT_COMPILES", "0")][..],
            "concurrent_compiles",
            1,
        ),
        (
            "[limits]\nrefused_uploads_per_organization = 0\n",
            NO_VARIABLES,
            "refused_uploads_per_organization",
            1,
        ),
        (
            "[network]\nrequests_per_organization = 0\n",
            NO_VARIABLES,
            "requests_per_organization",
            1,
        ),
        (
            "",
            &[("WASMHOOK_WEBHOOK_POLL_INTERVAL_MS", "0")][..],
            "webhook_poll_interval_ms",
            1,
        ),
        (
            "[connections]\nidle_timeout_ms = 0\n",
            NO_VARIABLES,
            "idle_timeout_ms",
            1,
        ),
        (
            "",
            &[("WASMHOOK_MAX_CONNECTIONS_PER_PEER", "0")][..],
            "max_connections_per_peer",
            1,
        ),
        (
            "[limits]\nguest_slice_us = 50\n",
            NO_VARIABLES,
            "guest_slice_us",
            100,
        ),
    ] {
        match resolve(text, variables) {
            Err(ConfigError::TooSmall {
                key: named,
                minimum: least,
                ..
            }) => {
                assert_eq!(named, key, "{text} {variables:?}");
                assert_eq!(least, minimum, "{key}");
            }
            other => panic!("{key}: refused as too small, not {other:?}"),
        }
    }
    // Zero is a setting's value, not a refusal, where it means "the default rule".
    let config = resolve(
        "[limits]\nmemory_budget_mb = 0\n[connections]\ndrain_delay_ms = 0\n",
        &[],
    )
    .expect("valid");
    assert_eq!(config.limits.memory_budget_mb, 0);
    assert_eq!(config.connections.drain_delay_ms, 0);
}

#[test]
fn the_operator_token_is_long_enough_or_unset() {
    assert!(matches!(
        resolve_with(&args(None), &[(OPERATOR_TOKEN_VARIABLE, "short")]),
        Err(ConfigError::ShortOperatorToken)
    ));
    let token = "sixteen chars ok";
    let config = resolve_with(
        &args(None),
        &[(OPERATOR_TOKEN_VARIABLE, token), (SECRETS_KEY_VARIABLE, "")],
    )
    .expect("valid");
    assert_eq!(config.operator_token.as_deref(), Some(token));
    assert_eq!(config.secrets_key, None, "an empty key is no key");
    let config = resolve_with(&args(None), &[(OPERATOR_TOKEN_VARIABLE, "")]).expect("valid");
    assert_eq!(config.operator_token, None, "an empty token is no token");
}

#[test]
fn every_setting_has_its_variable() {
    assert_eq!(
        Section::Limits.variable("max_timeout_s"),
        "WASMHOOK_MAX_TIMEOUT_S"
    );
    assert_eq!(
        Section::Metrics.variable("enabled"),
        "WASMHOOK_METRICS_ENABLED"
    );
    for section in Section::ALL {
        let listed = section_settings(section);
        assert!(!listed.is_empty(), "{}", section.name());
        for setting in listed {
            assert_eq!(setting.variable, section.variable(&setting.key));
        }
    }
}

#[test]
fn the_database_is_sqlite_unless_a_postgres_url_is_given_and_the_flag_wins() {
    let config = resolve("", &[]).expect("valid");
    assert_eq!(config.database, DatabaseChoice::Sqlite);

    let config = resolve(
        "[database]\nurl = \"postgres://app:filepass@db.internal/wasmhook\"\npool_size = 4\n",
        &[],
    )
    .expect("valid");
    let DatabaseChoice::Postgres { url, pool_size } = &config.database else {
        panic!("PostgreSQL from the file: {:?}", config.database);
    };
    assert_eq!(url.to_string(), "postgres://app:***@db.internal/wasmhook");
    assert_eq!(*pool_size, 4);

    let variables = [
        (
            "WASMHOOK_DATABASE_URL",
            "postgres://app:envpass@env.internal/wasmhook",
        ),
        ("WASMHOOK_DATABASE_POOL_SIZE", "9"),
    ];
    let config = resolve_with(&args(None), &variables).expect("valid");
    let DatabaseChoice::Postgres { url, pool_size } = &config.database else {
        panic!("PostgreSQL from the environment: {:?}", config.database);
    };
    assert_eq!(url.to_string(), "postgres://app:***@env.internal/wasmhook");
    assert_eq!(*pool_size, 9);

    let mut flagged = args(None);
    flagged.database = Some("postgres://flag.internal/wasmhook".into());
    let config = resolve_with(&flagged, &variables).expect("valid");
    let DatabaseChoice::Postgres { url, .. } = &config.database else {
        panic!("PostgreSQL from the flag: {:?}", config.database);
    };
    assert_eq!(url.to_string(), "postgres://flag.internal/wasmhook");
}

#[test]
fn a_database_url_is_refused_by_type_and_its_password_is_never_printed() {
    for (url, what) in [
        ("mysql://root:hunter2@db/x", "another scheme"),
        ("postgres://root:hunter2@db/x?sslmode=require", "TLS"),
        (
            "postgres://root:hunter2@db/x?nonsense=1",
            "an unknown parameter",
        ),
    ] {
        let error = resolve_with(&args(None), &[("WASMHOOK_DATABASE_URL", url)]).expect_err(what);
        assert!(
            matches!(error, ConfigError::Database(_)),
            "{what}: {error:?}"
        );
        assert!(!error.to_string().contains("hunter2"), "{what}: {error}");
    }
    let error = resolve_with(
        &args(None),
        &[
            ("WASMHOOK_DATABASE_URL", "postgres://db/x"),
            ("WASMHOOK_DATABASE_POOL_SIZE", "0"),
        ],
    )
    .expect_err("an empty pool");
    assert!(
        matches!(
            error,
            ConfigError::TooSmall {
                key: "pool_size",
                ..
            }
        ),
        "{error:?}"
    );
    let config = resolve_with(
        &args(None),
        &[
            ("WASMHOOK_DATABASE_URL", "postgres://root:hunter2@db/x"),
            ("WASMHOOK_OPERATOR_TOKEN", "operator-token-never-printed"),
            ("WASMHOOK_SECRETS_KEY", &"ab".repeat(32)),
        ],
    )
    .expect("valid");
    let printed = format!("{config:?}");
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(
        !printed.contains("operator-token-never-printed"),
        "{printed}"
    );
    assert!(!printed.contains(&"ab".repeat(32)), "{printed}");
}
