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
    Ok(walk(&edges, hook))
}

/// Depth-first from `start` along `edges`; the path back to it, if there is one. Walked
/// with a stack of its own rather than by recursion: a chain as long as an organization's
/// hooks would otherwise take a frame per hook off the thread's stack.
fn walk(edges: &HashMap<u64, Vec<u64>>, start: u64) -> Option<Vec<u64>> {
    let successors = |at: u64| edges.get(&at).map_or(&[][..], Vec::as_slice);
    let mut visited = HashSet::new();
    let mut path = vec![start];
    // Per hook on the path, its successors still to try.
    let mut pending = vec![successors(start).iter()];
    while let Some(next) = pending.last_mut() {
        match next.next() {
            Some(&hook) if hook == start => {
                path.push(hook);
                return Some(path);
            }
            Some(&hook) => {
                if visited.insert(hook) {
                    path.push(hook);
                    pending.push(successors(hook).iter());
                }
            }
            None => {
                pending.pop();
                path.pop();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hook `n` runs after hook `n + 1`, for `length` hooks: the longest chain an
    /// organization can build, one save at a time.
    fn chain(length: u64) -> HashMap<u64, Vec<u64>> {
        (1..length).map(|hook| (hook, vec![hook + 1])).collect()
    }

    #[test]
    fn a_cycle_is_found_at_the_end_of_a_chain_longer_than_any_stack_would_recurse() {
        let length = 1_000_000;
        let mut edges = chain(length);
        edges.insert(length, vec![1]);
        let cycle = walk(&edges, 1).expect("the cycle");
        assert_eq!(cycle.len(), usize::try_from(length).expect("fits") + 1);
        assert_eq!((cycle.first(), cycle.last()), (Some(&1), Some(&1)));
        let chain = chain(length);
        assert_eq!(walk(&chain, 1), None);
    }

    #[test]
    fn the_path_named_is_the_cycle_itself_not_the_dead_ends_tried_first() {
        // 1 -> 2 -> 3 (a dead end), 1 -> 4 -> 5 -> 1; 2 is reached again from 4.
        let edges = HashMap::from([(1, vec![2, 4]), (2, vec![3]), (4, vec![2, 5]), (5, vec![1])]);
        assert_eq!(walk(&edges, 1), Some(vec![1, 4, 5, 1]));
        assert_eq!(walk(&HashMap::new(), 1), None);
    }
}
