//! invoice-check: validates an invoice annotation (see shared/conformance/README.md).
//!
//! Required fields must have a value, `amount_total` must be a number no greater than
//! `max_total`, and the currency code is trimmed and upper-cased.

use serde::Deserialize;
use serde_json::Value;
use wasmhook_sdk::{log, Call, Error, Extension, Response};

/// The hook's settings; every key is optional.
#[derive(Deserialize, Default)]
struct Settings {
    #[serde(default)]
    required: Vec<String>,
    max_total: Option<i64>,
    currency_field: Option<String>,
}

/// A datapoint of the annotation tree.
struct Datapoint<'a> {
    id: u64,
    schema_id: &'a str,
    value: Option<&'a str>,
}

/// The invoice-check extension.
#[derive(Debug)]
pub struct InvoiceCheck;

impl Extension for InvoiceCheck {
    fn handle(call: &Call) -> Result<Response, Error> {
        let settings: Settings = call.settings_as()?;
        let content = call
            .pointer("/annotation/content")
            .ok_or_else(|| Error::missing("annotation.content"))?;
        let mut datapoints = Vec::new();
        collect_datapoints(content, &mut datapoints)?;

        let mut response = Response::new();
        for schema_id in &settings.required {
            match datapoints.iter().find(|d| d.schema_id == schema_id) {
                None => response = response.error(format!("{schema_id} is required")),
                Some(d) if d.value.is_none_or(|v| v.trim().is_empty()) => {
                    response = response.error_at(d.id, format!("{schema_id} is required"));
                }
                Some(_) => {}
            }
        }
        if let Some(max_total) = settings.max_total {
            if let Some(total) = datapoints.iter().find(|d| d.schema_id == "amount_total") {
                let normalized: String = total
                    .value
                    .unwrap_or_default()
                    .chars()
                    .filter(|c| *c != ' ')
                    .map(|c| if c == ',' { '.' } else { c })
                    .collect();
                if !is_number(&normalized) {
                    response = response.error_at(total.id, "amount_total is not a number");
                } else if exceeds(&normalized, max_total) {
                    response =
                        response.warning_at(total.id, format!("amount_total exceeds {max_total}"));
                }
            }
        }
        if let Some(currency_field) = &settings.currency_field {
            for datapoint in datapoints.iter().filter(|d| d.schema_id == currency_field) {
                if let Some(value) = datapoint.value {
                    let normalized = value.trim().to_ascii_uppercase();
                    if normalized != value {
                        response = response.set_value(datapoint.id, normalized);
                    }
                }
            }
        }
        log::info(format!("checked {} datapoints", datapoints.len()));
        Ok(response)
    }
}

/// Walks the tree depth first, in order, collecting datapoints.
fn collect_datapoints<'a>(nodes: &'a Value, out: &mut Vec<Datapoint<'a>>) -> Result<(), Error> {
    let nodes = nodes
        .as_array()
        .ok_or_else(|| Error::new("annotation.content (or a node's children) is not a list"))?;
    for node in nodes {
        if let Some(children) = node.get("children") {
            collect_datapoints(children, out)?;
        } else if node.get("category").and_then(Value::as_str) == Some("datapoint") {
            out.push(Datapoint {
                id: node.get("id").and_then(Value::as_u64).unwrap_or(0),
                schema_id: node.get("schema_id").and_then(Value::as_str).unwrap_or(""),
                value: node.pointer("/content/value").and_then(Value::as_str),
            });
        }
    }
    Ok(())
}

/// `-?[0-9]+(\.[0-9]+)?`
fn is_number(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = match digits.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (digits, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    all_digits(int) && frac.is_none_or(all_digits)
}

/// Whether a number (as [`is_number`] accepts) is greater than `max`, exactly.
fn exceeds(number: &str, max: i64) -> bool {
    let (negative, magnitude) = match number.strip_prefix('-') {
        Some(magnitude) => (true, magnitude),
        None => (false, number),
    };
    let (int, frac) = magnitude.split_once('.').unwrap_or((magnitude, ""));
    let fractional = frac.bytes().any(|b| b != b'0');
    let int = int.trim_start_matches('0');
    let Ok(int) = (if int.is_empty() {
        Ok(0)
    } else {
        int.parse::<i128>()
    }) else {
        // More digits than an i128 holds: far beyond any i64 in either direction.
        return !negative;
    };
    let max = i128::from(max);
    if negative {
        // -(int + f) > max  <=>  int + f < -max  <=>  int < -max, for 0 <= f < 1.
        int < -max
    } else {
        int > max || (int == max && fractional)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_optional_minus_digits_and_optional_fraction() {
        for yes in ["0", "12500.50", "-3", "007.0"] {
            assert!(is_number(yes), "{yes}");
        }
        for no in ["", "1e3", "+5", "nan", "1.", ".5", "1.2.3", "-"] {
            assert!(!is_number(no), "{no}");
        }
    }

    #[test]
    fn compares_exactly() {
        assert!(exceeds("12500.50", 10000));
        assert!(!exceeds("10000", 10000));
        assert!(exceeds("10000.001", 10000));
        assert!(!exceeds("10000.000", 10000));
        assert!(exceeds("-5", -6));
        assert!(!exceeds("-6.5", -6));
        assert!(!exceeds("-6", -6));
        assert!(exceeds("9007199254740993", 9007199254740992));
        assert!(exceeds(&"9".repeat(50), i64::MAX));
    }
}

#[cfg(feature = "component")]
wasmhook_sdk::export!(InvoiceCheck);
