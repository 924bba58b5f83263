//! Replacing secret values with a marker wherever text leaves a call.
//!
//! Secrets and the minted token reach the guest, so a guest can print them, return them in
//! an error or panic with them. Every text the runtime hands back (output, messages) passes
//! through a [`Redactor`] first.

/// What a secret value is replaced with.
pub const REDACTED: &str = "[redacted...]";

/// Values shorter than this are not redacted: replacing every "a" or "1" in a log would
/// destroy it and hide nothing worth hiding.
const MIN_SECRET_LEN: usize = 4;

/// Replaces known secret values in text.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    /// Longest first, so that a secret containing another is replaced whole.
    needles: Vec<String>,
}

impl Redactor {
    /// A redactor for these values (secrets, tokens), each in every form a guest can
    /// print it in without meaning to hide it ([`written_forms`]); short or empty values
    /// are ignored.
    pub fn new<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut needles: Vec<String> = values
            .into_iter()
            .flat_map(|value| written_forms(value.as_ref()))
            .filter(|value| value.len() >= MIN_SECRET_LEN)
            .collect();
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        needles.dedup();
        Redactor { needles }
    }

    /// Whether there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// The text with every secret value replaced by [`REDACTED`].
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for needle in &self.needles {
            if text.contains(needle.as_str()) {
                text = text.replace(needle.as_str(), REDACTED);
            }
        }
        text
    }

    /// Like [`Redactor::redact`], for text that was cut at its end: a secret whose first part
    /// survived the cut is removed too.
    pub fn redact_truncated(&self, text: &str) -> String {
        let mut text = self.redact(text);
        for needle in &self.needles {
            let longest_prefix = (1..needle.len())
                .rev()
                .filter(|&len| needle.is_char_boundary(len))
                .find(|&len| text.ends_with(&needle[..len]));
            if let Some(len) = longest_prefix {
                text.truncate(text.len() - len);
                text.push_str(REDACTED);
            }
        }
        text
    }

    /// A JSON value with secret values redacted in every string (keys included). Strings
    /// are rewritten only where a secret occurs, so a document with none is not copied.
    pub fn redact_json(&self, mut value: serde_json::Value) -> serde_json::Value {
        if !self.is_empty() {
            self.redact_in_place(&mut value);
        }
        value
    }

    fn redact_in_place(&self, value: &mut serde_json::Value) {
        use serde_json::Value;
        match value {
            Value::String(text) => {
                if self.occurs_in(text) {
                    *text = self.redact(text);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.redact_in_place(item)),
            Value::Object(map) => {
                if map.keys().any(|key| self.occurs_in(key)) {
                    *map = std::mem::take(map)
                        .into_iter()
                        .map(|(key, value)| (self.redact(&key), value))
                        .collect();
                }
                map.values_mut().for_each(|item| self.redact_in_place(item));
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    fn occurs_in(&self, text: &str) -> bool {
        self.needles
            .iter()
            .any(|needle| text.contains(needle.as_str()))
    }
}

/// Lines of a multi-line secret (a PEM key, a service account's JSON) shorter than this are
/// not redacted on their own: `-----END-----`-like lines and braces are in every such file.
const MIN_LINE_LEN: usize = 16;

/// A secret as the guest may write it out: as it is; inside a JSON string, as every JSON
/// encoder escapes it (`"`, `\`, control characters), and as those that escape every
/// character past ASCII too (Python's `json.dumps` by default); inside a Rust `{:?}`; and,
/// for a secret of several lines, each long line alone. The payload a guest reads is JSON,
/// so printing it, or a part of it, writes the escaped form of every secret in it.
fn written_forms(value: &str) -> Vec<String> {
    let mut forms = vec![value.to_owned()];
    let quoted = |text: String| {
        text.strip_prefix('"')
            .and_then(|text| text.strip_suffix('"'))
            .map(str::to_owned)
    };
    if let Some(json) = serde_json::to_string(value).ok().and_then(quoted) {
        let ascii: String = json
            .chars()
            .flat_map(|character| {
                if character.is_ascii() {
                    vec![character.to_string()]
                } else {
                    let mut units = [0u16; 2];
                    character
                        .encode_utf16(&mut units)
                        .iter()
                        .map(|unit| format!("\\u{unit:04x}"))
                        .collect()
                }
            })
            .collect();
        forms.push(json);
        forms.push(ascii);
    }
    forms.extend(quoted(format!("{value:?}")));
    forms.extend(
        value
            .lines()
            .filter(|line| value.contains('\n') && line.trim().len() >= MIN_LINE_LEN)
            .map(str::to_owned),
    );
    forms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_every_occurrence_longest_first() {
        let redactor = Redactor::new(["s3cr3t", "s3cr3t-value"]);
        assert_eq!(
            redactor.redact("a s3cr3t-value and s3cr3t"),
            "a [redacted...] and [redacted...]"
        );
    }

    #[test]
    fn replaces_a_secret_written_out_as_json_python_and_rust_write_it_and_its_lines() {
        let secret =
            "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\n\"quoted\" and é\n-----END KEY-----";
        let redactor = Redactor::new([secret]);
        let payload = serde_json::json!({"secrets": {"key": secret}}).to_string();
        assert!(!redactor.redact(&payload).contains("MIIEvQ"), "{payload}");
        // Python's json.dumps escapes what is past ASCII.
        let python = payload.replace('é', "\\u00e9");
        assert!(!redactor.redact(&python).contains("MIIEvQ"), "{python}");
        let debug = format!("{secret:?}");
        assert_eq!(redactor.redact(&debug), format!("\"{REDACTED}\""));
        // One line of it alone.
        assert_eq!(
            redactor.redact("line: MIIEvQIBADANBgkqhkiG9w0B"),
            format!("line: {REDACTED}")
        );
        // A line of it shorter than a line worth hiding is left.
        assert_eq!(redactor.redact("} and ]"), "} and ]");
    }

    #[test]
    fn ignores_short_values() {
        let redactor = Redactor::new(["", "ab"]);
        assert!(redactor.is_empty());
        assert_eq!(redactor.redact("ab"), "ab");
    }

    #[test]
    fn removes_a_secret_cut_in_half_at_the_end() {
        let redactor = Redactor::new(["never-log-me"]);
        assert_eq!(
            redactor.redact_truncated("key=never-lo"),
            "key=[redacted...]"
        );
        assert_eq!(redactor.redact_truncated("nothing here"), "nothing here");
    }

    #[test]
    fn redacts_json_strings_and_keys() {
        let redactor = Redactor::new(["hunter22"]);
        let value = serde_json::json!({"a": ["x hunter22"], "hunter22": {"b": "hunter22"}, "c": 2});
        assert_eq!(
            redactor.redact_json(value),
            serde_json::json!({"a": ["x [redacted...]"], "[redacted...]": {"b": "[redacted...]"}, "c": 2})
        );
        let untouched = serde_json::json!({"a": ["nothing"], "b": null});
        assert_eq!(redactor.redact_json(untouched.clone()), untouched);
    }
}
