//! Applying a hook's `operations` to `annotation.content`, so that a hook running after
//! another sees its changes, and collecting the ids it changed (`updated_datapoints`).
//!
//! The format is Rossum's bulk update of annotation data: `replace` (a datapoint's
//! content and its `hidden`, `options`, `validation_sources`), `add` (a row appended to a
//! multivalue) and `remove` (a child of a multivalue).

use serde_json::{Map, Value};

/// Applies `operations` to a content tree (a list of sections) and returns the ids of the
/// datapoints changed, in order. Operations naming no node in the tree are skipped.
pub fn apply_operations(content: &mut Value, operations: &[Value]) -> Vec<u64> {
    let mut changed = Vec::new();
    for operation in operations {
        let Some(id) = operation.get("id").and_then(Value::as_u64) else {
            continue;
        };
        match operation.get("op").and_then(Value::as_str) {
            Some("replace") => {
                if let (Some(node), Some(value)) = (find(content, id), operation.get("value")) {
                    replace(node, value);
                    changed.push(id);
                }
            }
            Some("add") => {
                let mut next_id = max_id(content) + 1;
                if let (Some(node), Some(value)) = (find(content, id), operation.get("value")) {
                    let added = add_row(node, value, &mut next_id);
                    if !added.is_empty() {
                        changed.push(id);
                        changed.extend(added);
                    }
                }
            }
            Some("remove") => {
                if let Some(parent) = remove(content, id) {
                    changed.push(parent);
                }
            }
            _ => {}
        }
    }
    let mut seen = std::collections::HashSet::new();
    changed.retain(|id| seen.insert(*id));
    changed
}

fn children_mut(node: &mut Value) -> Option<&mut Vec<Value>> {
    match node {
        Value::Array(items) => Some(items),
        Value::Object(map) => map.get_mut("children").and_then(Value::as_array_mut),
        _ => None,
    }
}

fn find(node: &mut Value, id: u64) -> Option<&mut Value> {
    if node.get("id").and_then(Value::as_u64) == Some(id) {
        return Some(node);
    }
    children_mut(node)?
        .iter_mut()
        .find_map(|child| find(child, id))
}

fn max_id(node: &Value) -> u64 {
    let own = node.get("id").and_then(Value::as_u64).unwrap_or(0);
    let children = match node {
        Value::Array(items) => Some(items),
        Value::Object(map) => map.get("children").and_then(Value::as_array),
        _ => None,
    };
    children
        .into_iter()
        .flatten()
        .map(max_id)
        .fold(own, u64::max)
}

fn replace(node: &mut Value, value: &Value) {
    let Some(node) = node.as_object_mut() else {
        return;
    };
    if let Some(Value::Object(content)) = value.get("content") {
        let target = node
            .entry("content")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(target) = target.as_object_mut() {
            target.extend(content.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    for key in ["hidden", "options", "validation_sources"] {
        if let Some(attribute) = value.get(key) {
            node.insert(key.to_owned(), attribute.clone());
        }
    }
}

/// Appends a row to a multivalue; returns the new ids (tuple, then its cells).
fn add_row(multivalue: &mut Value, value: &Value, next_id: &mut u64) -> Vec<u64> {
    if multivalue.get("category").and_then(Value::as_str) != Some("multivalue") {
        return Vec::new();
    }
    let fresh = |next_id: &mut u64| {
        let id = *next_id;
        *next_id += 1;
        id
    };
    let datapoint = |cell: &Value, id: u64| {
        let mut node = Map::new();
        node.insert("id".into(), id.into());
        node.insert("category".into(), "datapoint".into());
        if let Some(object) = cell.as_object() {
            node.extend(object.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        node.insert("id".into(), id.into());
        Value::Object(node)
    };
    let mut ids = Vec::new();
    let row = match value {
        Value::Array(cells) => {
            let tuple_id = fresh(next_id);
            ids.push(tuple_id);
            let children: Vec<Value> = cells
                .iter()
                .map(|cell| {
                    let id = fresh(next_id);
                    ids.push(id);
                    datapoint(cell, id)
                })
                .collect();
            serde_json::json!({"id": tuple_id, "category": "tuple", "children": children})
        }
        Value::Object(_) => {
            let id = fresh(next_id);
            ids.push(id);
            datapoint(value, id)
        }
        _ => return Vec::new(),
    };
    if let Some(children) = children_mut(multivalue) {
        children.push(row);
        ids
    } else if let Some(object) = multivalue.as_object_mut() {
        object.insert("children".into(), Value::Array(vec![row]));
        ids
    } else {
        Vec::new()
    }
}

/// Removes a child of a multivalue; returns the multivalue's id.
fn remove(node: &mut Value, id: u64) -> Option<u64> {
    let is_multivalue = node.get("category").and_then(Value::as_str) == Some("multivalue");
    let own_id = node.get("id").and_then(Value::as_u64);
    let children = children_mut(node)?;
    if is_multivalue {
        if let Some(index) = children
            .iter()
            .position(|child| child.get("id").and_then(Value::as_u64) == Some(id))
        {
            children.remove(index);
            return own_id;
        }
    }
    children.iter_mut().find_map(|child| remove(child, id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn content() -> Value {
        json!([{
            "id": 1, "category": "section", "schema_id": "basic",
            "children": [
                {"id": 2, "category": "datapoint", "schema_id": "amount", "content": {"value": "10"}},
                {"id": 3, "category": "multivalue", "schema_id": "items", "children": [
                    {"id": 4, "category": "tuple", "children": [
                        {"id": 5, "category": "datapoint", "schema_id": "item", "content": {"value": "a"}}
                    ]}
                ]}
            ]
        }])
    }

    #[test]
    fn replace_add_and_remove_change_the_tree_and_report_ids() {
        let mut tree = content();
        let changed = apply_operations(
            &mut tree,
            &[
                json!({"op": "replace", "id": 2, "value": {"content": {"value": "12"}, "hidden": true}}),
                json!({"op": "add", "id": 3, "value": [{"schema_id": "item", "content": {"value": "b"}}]}),
                json!({"op": "remove", "id": 4}),
                json!({"op": "replace", "id": 99, "value": {"content": {"value": "x"}}}),
            ],
        );
        assert_eq!(changed, [2, 3, 6, 7]);
        assert_eq!(tree[0]["children"][0]["content"]["value"], "12");
        assert_eq!(tree[0]["children"][0]["hidden"], true);
        let rows = tree[0]["children"][1]["children"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["id"], 6);
        assert_eq!(rows[0]["children"][0]["content"]["value"], "b");
    }
}
