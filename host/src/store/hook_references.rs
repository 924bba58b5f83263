//! The references a hook's save checks inside its transaction, against the hook's
//! organization: its queues, module, token owner (an active user) and run_after
//! predecessors, and that run_after makes no cycle (the refusal names the cycle's hooks).

use std::collections::{HashMap, HashSet};

use super::db::{params, Db, DbError};
use super::hooks::{SaveContext, SaveError};
use crate::model::hook::{HookDraft, HookError};

/// Refuses a draft whose references are not the organization's, or whose run_after makes
/// a cycle.
pub(super) fn check_references(
    db: &Db<'_>,
    draft: &HookDraft,
    context: &SaveContext,
) -> Result<(), SaveError> {
    let organization = context.organization_id;
    let owned = |table: &str, id: u64| -> Result<bool, DbError> {
        let found = db.query_opt(
            &format!("SELECT 1 FROM {table} WHERE id = ?1 AND organization_id = ?2"),
            params![id, organization],
            |_| Ok(()),
        )?;
        Ok(found.is_some())
    };
    for queue in &draft.spec.queues {
        if !owned("queues", *queue)? {
            return Err(
                HookError::new("queues", format!("no queue {queue} in this organization")).into(),
            );
        }
    }
    if let Some(module) = draft.spec.kind.module_id() {
        if !owned("modules", module)? {
            return Err(HookError::config(
                "module",
                format!("no module {module} in this organization"),
            )
            .into());
        }
    }
    if let Some(owner) = draft.spec.token_owner {
        let active = db.query_opt(
            "SELECT is_active FROM users WHERE id = ?1 AND organization_id = ?2",
            params![owner, organization],
            |row| row.get::<bool>(0),
        )?;
        match active {
            Some(true) => {}
            Some(false) => {
                return Err(
                    HookError::new("token_owner", format!("user {owner} is inactive")).into(),
                )
            }
            None => {
                return Err(HookError::new(
                    "token_owner",
                    format!(
                        "no user {owner} in this organization (the operator cannot own tokens)"
                    ),
                )
                .into())
            }
        }
    }
    for predecessor in &draft.spec.run_after {
        if Some(*predecessor) == context.hook_id {
            return Err(HookError::new("run_after", "a hook cannot run after itself").into());
        }
        if !owned("hooks", *predecessor)? {
            return Err(HookError::new(
                "run_after",
                format!("no hook {predecessor} in this organization"),
            )
            .into());
        }
    }
    if let Some(id) = context.hook_id {
        if let Some(cycle) = find_cycle(db, organization, id, &draft.spec.run_after)? {
            let names = hook_names(db, organization)?;
            let path: Vec<String> = cycle
                .iter()
                .map(|id| match names.get(id) {
                    Some(name) => format!("{id} ({name})"),
                    None => id.to_string(),
                })
                .collect();
            return Err(HookError::new(
                "run_after",
                format!(
                    "this makes a cycle: hook {} (each runs after the next)",
                    path.join(" -> ")
                ),
            )
            .into());
        }
    }
    Ok(())
}

fn hook_names(db: &Db<'_>, organization: u64) -> Result<HashMap<u64, String>, DbError> {
    let rows = db.query_map(
        "SELECT id, name FROM hooks WHERE organization_id = ?1",
        params![organization],
        |row| Ok((row.get::<u64>(0)?, row.get::<String>(1)?)),
    )?;
    Ok(rows.into_iter().collect())
}

/// A path `hook -> ... -> hook` along run_after if giving `hook` these predecessors makes a
/// cycle.
fn find_cycle(
    db: &Db<'_>,
    organization: u64,
    hook: u64,
    predecessors: &[u64],
) -> Result<Option<Vec<u64>>, DbError> {
    let mut edges: HashMap<u64, Vec<u64>> = HashMap::new();
    let stored = db.query_map(
        "SELECT r.hook_id, r.predecessor_id FROM hook_run_after r
         JOIN hooks h ON h.id = r.hook_id WHERE h.organization_id = ?1",
        params![organization],
        |row| Ok((row.get::<u64>(0)?, row.get::<u64>(1)?)),
    )?;
    for (from, to) in stored {
        if from != hook {
            edges.entry(from).or_default().push(to);
        }
    }
    edges.insert(hook, predecessors.to_vec());
    // Depth-first from the hook; a path back to it is the cycle.
    let mut visited = HashSet::new();
    let mut path = vec![hook];
    Ok(walk(&edges, hook, hook, &mut visited, &mut path).then_some(path))
}

fn walk(
    edges: &HashMap<u64, Vec<u64>>,
    start: u64,
    at: u64,
    visited: &mut HashSet<u64>,
    path: &mut Vec<u64>,
) -> bool {
    for next in edges.get(&at).into_iter().flatten() {
        path.push(*next);
        if *next == start {
            return true;
        }
        if visited.insert(*next) && walk(edges, start, *next, visited, path) {
            return true;
        }
        path.pop();
    }
    false
}
