//! Applying a hook's `operations` to `annotation.content`, so that a hook running after
//! another sees its changes, and collecting the ids it changed (`updated_datapoints`).
//!
//! The format is Rossum's bulk update of annotation data: `replace` (a datapoint's
//! content and its `hidden`, `options`, `validation_sources`), `add` (a row appended to a
//! multivalue) and `remove` (a child of a multivalue).

use std::collections::HashMap;

use serde_json::{Map, Value};

/// Operations applied at most, across the responses of the hooks before one: a hook
/// answers up to 1 MiB, tens of thousands of operations, and a hook runs after up to 500
/// others. Each costs the tree's depth, so the bound is on the rows they may add; a
/// document's table of thousands of rows, each cell replaced, is within it. Those beyond
/// are not applied (and the server says so in a warning).
pub const MAX_OPERATIONS: usize = 100_000;

/// The keys of a node that say where it is in the tree and what it is: an added row's
/// cells are datapoints with fresh ids, whatever a hook's `value` says of them, so no
/// operation can nest the tree deeper (each `add` of a multivalue cell into the last would,
/// a level each, until the recursive walks overflowed the stack).
const STRUCTURE: [&str; 3] = ["id", "category", "children"];

/// Applies `operations` (at most [`MAX_OPERATIONS`] of them) to a content tree (a list of
/// sections) and returns the ids of the datapoints changed, in order, each once.
/// Operations naming no node in the tree are skipped.
///
/// Each operation finds its node through an index of the tree's ids made once
/// ([`Index`]), so that its cost is the tree's depth, not its size: the operations come
/// from hooks, and a hostile one may send many against a large tree. A removed node is left
/// as a `null` in its parent's children until the end, so that the positions of its later
/// siblings stay true, and the `null`s are dropped then.
pub fn apply_operations(content: &mut Value, operations: &[Value]) -> Vec<u64> {
    let mut index = Index::of(content);
    let mut changed = Vec::new();
    let mut removed_any = false;
    for operation in operations.iter().take(MAX_OPERATIONS) {
        let Some(id) = operation.get("id").and_then(Value::as_u64) else {
            continue;
        };
        match operation.get("op").and_then(Value::as_str) {
            Some("replace") => {
                if let (Some(node), Some(value)) = (index.node(content, id), operation.get("value"))
                {
                    replace(node, value);
                    changed.push(id);
                }
            }
            Some("add") => {
                let Some(value) = operation.get("value") else {
                    continue;
                };
                let Some((entry, path)) = index.path(id) else {
                    continue;
                };
                let Some((position, added)) =
                    at(content, &path).and_then(|node| add_row(node, value, &mut index.next_id))
                else {
                    continue;
                };
                if let Some(row) = at(content, &path)
                    .and_then(children_mut)
                    .and_then(|rows| rows.get(position))
                {
                    index.add(row, Some(entry), position);
                }
                changed.push(id);
                changed.extend(added);
            }
            Some("remove") => {
                if let Some(parent) = remove(content, &mut index, id) {
                    removed_any = true;
                    changed.extend(parent);
                }
            }
            _ => {}
        }
    }
    if removed_any {
        drop_removed(content);
    }
    let mut seen = std::collections::HashSet::new();
    changed.retain(|id| seen.insert(*id));
    changed
}

/// Where each id of the tree is: every node an entry naming its parent's entry and its
/// position among the parent's children, so that a node's path is its entries walked up
/// (as long as the tree is deep) and the index as large as the tree, not its size times its
/// depth. An id names the first node of it in document order, as a search from the root
/// would find it.
struct Index {
    /// (parent entry, position); the root's parent is none.
    entries: Vec<(Option<usize>, usize)>,
    ids: HashMap<u64, usize>,
    /// The id an added node gets next: past every id the tree had, and every one added.
    next_id: u64,
}

impl Index {
    fn of(content: &Value) -> Self {
        let mut index = Index {
            entries: Vec::new(),
            ids: HashMap::new(),
            next_id: 1,
        };
        index.add(content, None, 0);
        index
    }

    /// Records `node`, child `position` of entry `parent`, and everything under it;
    /// walked with a stack of its own, whatever the tree's depth.
    fn add(&mut self, node: &Value, parent: Option<usize>, position: usize) {
        let mut stack = vec![(node, parent, position)];
        while let Some((node, parent, position)) = stack.pop() {
            let entry = self.entries.len();
            self.entries.push((parent, position));
            if let Some(id) = node.get("id").and_then(Value::as_u64) {
                self.next_id = self.next_id.max(id.saturating_add(1));
                self.ids.entry(id).or_insert(entry);
            }
            // Pushed last child first, so that the first child is recorded first.
            for (position, child) in children(node).iter().enumerate().rev() {
                stack.push((child, Some(entry), position));
            }
        }
    }

    /// Forgets the ids of `node` and everything under it, removed from the tree.
    fn forget(&mut self, node: &Value) {
        let mut stack = vec![node];
        while let Some(node) = stack.pop() {
            if let Some(id) = node.get("id").and_then(Value::as_u64) {
                self.ids.remove(&id);
            }
            stack.extend(children(node));
        }
    }

    /// The entry of `id`, and the positions to follow from the root to its node.
    fn path(&self, id: u64) -> Option<(usize, Vec<usize>)> {
        let entry = *self.ids.get(&id)?;
        let mut path = Vec::new();
        let mut at = entry;
        while let Some(&(Some(parent), position)) = self.entries.get(at) {
            path.push(position);
            at = parent;
        }
        path.reverse();
        Some((entry, path))
    }

    fn node<'v>(&self, content: &'v mut Value, id: u64) -> Option<&'v mut Value> {
        at(content, &self.path(id)?.1)
    }
}

/// The node at `path` under `root`.
fn at<'v>(root: &'v mut Value, path: &[usize]) -> Option<&'v mut Value> {
    path.iter().try_fold(root, |node, &position| {
        children_mut(node)?.get_mut(position)
    })
}

fn children(node: &Value) -> &[Value] {
    match node {
        Value::Array(items) => items,
        Value::Object(map) => map
            .get("children")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice),
        _ => &[],
    }
}

fn children_mut(node: &mut Value) -> Option<&mut Vec<Value>> {
    match node {
        Value::Array(items) => Some(items),
        Value::Object(map) => map.get_mut("children").and_then(Value::as_array_mut),
        _ => None,
    }
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

/// Appends a row to a multivalue: the row's position among its children, and the new ids
/// (tuple, then its cells); none when `multivalue` is none or `value` no row.
fn add_row(multivalue: &mut Value, value: &Value, next_id: &mut u64) -> Option<(usize, Vec<u64>)> {
    if multivalue.get("category").and_then(Value::as_str) != Some("multivalue") {
        return None;
    }
    let fresh = |next_id: &mut u64| {
        let id = *next_id;
        *next_id = next_id.saturating_add(1);
        id
    };
    let datapoint = |cell: &Value, id: u64| {
        let mut node = Map::new();
        node.insert("id".into(), id.into());
        node.insert("category".into(), "datapoint".into());
        if let Some(object) = cell.as_object() {
            node.extend(
                object
                    .iter()
                    .filter(|(key, _)| !STRUCTURE.contains(&key.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
        }
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
        _ => return None,
    };
    if let Some(children) = children_mut(multivalue) {
        children.push(row);
        Some((children.len() - 1, ids))
    } else if let Some(object) = multivalue.as_object_mut() {
        object.insert("children".into(), Value::Array(vec![row]));
        Some((0, ids))
    } else {
        None
    }
}

/// Removes a child of a multivalue, leaving a `null` in its place ([`drop_removed`]
/// takes it out); returns the multivalue's id (none when it has none), or none when
/// nothing was removed.
fn remove(content: &mut Value, index: &mut Index, id: u64) -> Option<Option<u64>> {
    let (_, path) = index.path(id)?;
    let (&position, parent_path) = path.split_last()?;
    let parent = at(content, parent_path)?;
    if parent.get("category").and_then(Value::as_str) != Some("multivalue") {
        return None;
    }
    let parent_id = parent.get("id").and_then(Value::as_u64);
    let slot = children_mut(parent)?.get_mut(position)?;
    let removed = std::mem::take(slot);
    index.forget(&removed);
    Some(parent_id)
}

/// Takes out the `null`s removals left among children, everywhere in the tree.
fn drop_removed(content: &mut Value) {
    let mut stack = vec![content];
    while let Some(node) = stack.pop() {
        if let Some(children) = children_mut(node) {
            children.retain(|child| !child.is_null());
            stack.extend(children.iter_mut());
        }
    }
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

    /// The depth of the deepest node.
    fn depth(node: &Value) -> usize {
        1 + children(node).iter().map(depth).max().unwrap_or(0)
    }

    #[test]
    fn an_added_cell_is_a_datapoint_whatever_it_says_so_operations_cannot_nest_the_tree() {
        // Each operation adds, to the last node added, a cell that says it is a multivalue:
        // were it one, the tree would be 20,000 levels deep, past any stack's walk.
        let mut tree = json!([{"id": 1, "category": "multivalue", "children": []}]);
        let operations: Vec<Value> = (1..=20_000u64)
            .map(|id| {
                json!({"op": "add", "id": id, "value": {
                    "category": "multivalue", "id": 5, "children": [{"id": 9}], "schema_id": "x"}})
            })
            .collect();
        let changed = apply_operations(&mut tree, &operations);
        assert_eq!(changed, [1, 2], "only the multivalue takes a row");
        assert_eq!(
            tree,
            json!([{"id": 1, "category": "multivalue", "children": [
                {"id": 2, "category": "datapoint", "schema_id": "x"}
            ]}])
        );
        assert_eq!(depth(&tree), 3);
    }

    #[test]
    fn operations_past_the_bound_are_not_applied() {
        let mut tree = json!([{"id": 1, "category": "multivalue", "children": []}]);
        let operation = json!({"op": "add", "id": 1, "value": {"schema_id": "row"}});
        let operations = vec![operation; MAX_OPERATIONS + 5];
        apply_operations(&mut tree, &operations);
        assert_eq!(children(&tree[0]).len(), MAX_OPERATIONS);
    }

    #[test]
    fn a_removal_leaves_its_later_siblings_reachable_and_no_trace() {
        let mut tree = json!([{"id": 1, "category": "multivalue", "children": [
            {"id": 2, "category": "datapoint", "content": {"value": "a"}},
            {"id": 3, "category": "tuple", "children": [{"id": 4, "category": "datapoint"}]},
            {"id": 5, "category": "datapoint", "content": {"value": "c"}}
        ]}]);
        let changed = apply_operations(
            &mut tree,
            &[
                json!({"op": "remove", "id": 2}),
                json!({"op": "replace", "id": 5, "value": {"content": {"value": "C"}}}),
                json!({"op": "remove", "id": 3}),
                // Under a removed row: nothing left to change.
                json!({"op": "replace", "id": 4, "value": {"content": {"value": "x"}}}),
                json!({"op": "add", "id": 1, "value": {"schema_id": "new"}}),
                json!({"op": "remove", "id": 2}),
            ],
        );
        assert_eq!(changed, [1, 5, 6]);
        assert_eq!(
            tree,
            json!([{"id": 1, "category": "multivalue", "children": [
                {"id": 5, "category": "datapoint", "content": {"value": "C"}},
                {"id": 6, "category": "datapoint", "schema_id": "new"}
            ]}])
        );
        // A multivalue without an id loses its row too, and leaves no trace.
        let mut tree = json!([{"category": "multivalue", "children": [{"id": 2}, {"id": 3}]}]);
        let changed = apply_operations(&mut tree, &[json!({"op": "remove", "id": 2})]);
        assert!(changed.is_empty());
        assert_eq!(
            tree,
            json!([{"category": "multivalue", "children": [{"id": 3}]}])
        );
    }
}
