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
#[derive(Clone, Default)]
pub struct Redactor {
    /// Longest first, so that a secret containing another is replaced whole.
    needles: Vec<String>,
}

/// How many needles, never which: they are the secrets.
impl std::fmt::Debug for Redactor {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Redactor")
            .field("needles", &self.needles.len())
            .finish()
    }
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
            .filter(|value| value.as_ref().len() >= MIN_SECRET_LEN)
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
        // The longest start of any needle the text ends with, cut once: several forms of a
        // secret begin alike, and a longer one matching only its first characters must not
        // stop the cut of the one matching more.
        let cut = self
            .needles
            .iter()
            .filter_map(|needle| {
                (1..needle.len())
                    .rev()
                    .filter(|&len| needle.is_char_boundary(len))
                    .find(|&len| text.ends_with(&needle[..len]))
            })
            .max();
        if let Some(len) = cut {
            text.truncate(text.len() - len);
            text.push_str(REDACTED);
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
/// not redacted on their own: braces and short keys are in every such file. (Longer lines
/// that hide nothing, a PEM's header, are redacted too: that costs a log nothing.)
const MIN_LINE_LEN: usize = 16;

/// A secret as a guest may write it out without meaning to hide it: as it is; inside a
/// JSON string, as encoders escape it (serde_json and JavaScript: `"`, `\\`, control
/// characters; Python's `ensure_ascii`, the default: everything past ASCII, and DEL; Go:
/// `<`, `>`, `&` and the line separators too); inside Python's `repr` (printing a dict of
/// them) and a Rust `{:?}`; and, for a secret of several lines, each long line alone in
/// those forms. The payload a guest reads is JSON, so printing it, or a part of it,
/// writes every secret in it escaped.
fn written_forms(value: &str) -> Vec<String> {
    let mut forms = line_forms(value);
    if value.contains('\n') {
        for line in value
            .lines()
            .filter(|line| line.trim().len() >= MIN_LINE_LEN)
        {
            forms.extend(line_forms(line));
        }
    }
    forms
}

/// [`written_forms`] of one line (or a whole value), its lines not taken apart.
fn line_forms(value: &str) -> Vec<String> {
    let mut forms = vec![value.to_owned()];
    let unquoted = |text: &str| {
        text.strip_prefix(['"', '\''])
            .and_then(|text| text.strip_suffix(['"', '\'']))
            .map(str::to_owned)
    };
    if let Some(json) = serde_json::to_string(value)
        .ok()
        .and_then(|json| unquoted(&json))
    {
        let mut ascii = String::with_capacity(json.len());
        let mut go = String::with_capacity(json.len());
        for character in json.chars() {
            match character {
                '\x7f' => ascii.push_str("\\u007f"),
                character if character.is_ascii() => ascii.push(character),
                character => {
                    let mut units = [0u16; 2];
                    for unit in character.encode_utf16(&mut units) {
                        ascii.push_str(&format!("\\u{unit:04x}"));
                    }
                }
            }
            match character {
                '<' => go.push_str("\\u003c"),
                '>' => go.push_str("\\u003e"),
                '&' => go.push_str("\\u0026"),
                '\u{2028}' => go.push_str("\\u2028"),
                '\u{2029}' => go.push_str("\\u2029"),
                character => go.push(character),
            }
        }
        forms.extend([json, ascii, go]);
    }
    forms.push(python_repr(value));
    forms.extend(unquoted(&format!("{value:?}")));
    forms.sort();
    forms.dedup();
    forms
}

/// A string as Python's `repr` writes it, without its quotes: backslashes doubled, the
/// quote it is written in escaped, `\n`, `\r`, `\t`, other control characters as `\xNN`.
fn python_repr(value: &str) -> String {
    let quote = if value.contains('\'') && !value.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut repr = String::with_capacity(value.len());
    for character in value.chars() {
        match character {
            '\\' => repr.push_str("\\\\"),
            '\n' => repr.push_str("\\n"),
            '\r' => repr.push_str("\\r"),
            '\t' => repr.push_str("\\t"),
            character if character == quote => {
                repr.push('\\');
                repr.push(character);
            }
            character if character.is_ascii_control() => {
                repr.push_str(&format!("\\x{:02x}", u32::from(character)));
            }
            character => repr.push(character),
        }
    }
    repr
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
    fn replaces_a_secret_written_out_as_json_python_go_and_rust_write_it_and_its_lines() {
        let secret = "first line & <b> long\n\"quoted\" é\nshort\nlast\\line long enough";
        let redactor = Redactor::new([secret]);
        let payload = serde_json::json!({"secrets": {"key": secret}}).to_string();
        let forms = [
            // serde_json, and JavaScript's JSON.stringify alike.
            payload.clone(),
            // Python's json.dumps escapes what is past ASCII.
            payload.replace('é', "\\u00e9"),
            // Go's json.Marshal escapes <, > and & too.
            payload
                .replace('<', "\\u003c")
                .replace('>', "\\u003e")
                .replace('&', "\\u0026"),
            // Python's print of a dict: repr, single quotes, backslashes doubled.
            format!("{{'key': '{}'}}", python_repr(secret)),
            format!("{secret:?}"),
        ];
        for form in forms {
            let redacted = redactor.redact(&form);
            // "quoted" is on a line too short to be redacted alone: only the whole secret's
            // form removes it.
            assert!(!redacted.contains("quoted"), "{form} -> {redacted}");
        }
        // A long line of it alone, and the same line escaped.
        assert_eq!(
            redactor.redact("line: last\\line long enough"),
            format!("line: {REDACTED}")
        );
        assert_eq!(
            redactor.redact("\"last\\\\line long enough\""),
            format!("\"{REDACTED}\"")
        );
        // A short line of it alone is left.
        assert_eq!(redactor.redact("a short one"), "a short one");
    }

    #[test]
    fn a_secret_cut_at_the_end_is_removed_whichever_of_its_forms_matches_most() {
        // Its JSON form begins as it does and is longer: the cut must still be the
        // longest match of any form.
        let redactor = Redactor::new(["ab\"xyzab!!"]);
        assert_eq!(
            redactor.redact_truncated("key=ab\"xyzab"),
            "key=[redacted...]"
        );
    }

    #[test]
    fn a_short_value_adds_none_of_its_forms() {
        // "é" is short; its escaped form is not, and must not be redacted either.
        let redactor = Redactor::new(["é", "\t\t"]);
        assert!(redactor.is_empty());
        assert_eq!(redactor.redact("caf\\u00e9"), "caf\\u00e9");
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
