//! `/groups`: Rossum's user roles, which its client lists (`list_user_roles`) and gives
//! users by URL. wasmhook serves the two that stand for its roles (`model::group`).
//!
//! The list is a constant of two rows, so it is filtered, ordered and paged here rather
//! than by the store, in the same list shape as every other list.

use axum::extract::State;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::{ObjectId, Params};
use super::pagination::{PageQuery, Paginated};
use super::AppState;
use crate::model::group::{Group, GROUPS};
use crate::store::Page;

/// What the groups list may be ordered by (then by id).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum GroupOrder {
    /// By id, the default.
    #[default]
    Id,
    /// By name.
    Name,
}

/// The `ordering` values of the groups list.
const ORDERINGS: &[(&str, GroupOrder)] = &[("id", GroupOrder::Id), ("name", GroupOrder::Name)];

/// The query of the groups list: Rossum's `name` filter and the page.
#[derive(Debug, Deserialize)]
pub(super) struct GroupFilter {
    name: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

/// A group's URL, as a user's `groups` lists it.
pub(super) fn group_url(state: &AppState, group: &Group) -> String {
    state.url("groups", group.id)
}

/// A group as Rossum's client reads it.
fn render(state: &AppState, group: &Group) -> Value {
    json!({
        "id": group.id,
        "url": group_url(state, group),
        "name": group.name,
    })
}

/// `GET /groups`: the groups, for any authenticated caller.
pub(super) async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    Params(filter): Params<GroupFilter>,
) -> ApiResult<axum::Json<Paginated>> {
    let request = filter.page.validate_ordered(ORDERINGS)?;
    let window = request.window();
    let mut groups: Vec<Group> = GROUPS
        .iter()
        .filter(|group| filter.name.as_deref().is_none_or(|name| group.name == name))
        .copied()
        .collect();
    match window.order_by {
        GroupOrder::Id => groups.sort_by_key(|group| group.id),
        GroupOrder::Name => groups.sort_by_key(|group| group.name),
    }
    if window.descending {
        groups.reverse();
    }
    let total = u64::try_from(groups.len()).unwrap_or(u64::MAX);
    let rows: Vec<Group> = groups
        .into_iter()
        .skip(usize::try_from(window.offset).unwrap_or(usize::MAX))
        .take(usize::try_from(window.limit).unwrap_or(usize::MAX))
        .collect();
    let page = Page { rows, total };
    let list_url = state.list_url("groups");
    Ok(axum::Json(Paginated::new(
        &page,
        request,
        &list_url,
        |group| render(&state, group),
    )))
}

/// `GET /groups/{id}`: one group.
pub(super) async fn show(
    State(state): State<AppState>,
    _caller: Caller,
    ObjectId(id): ObjectId,
) -> ApiResult<axum::Json<Value>> {
    let group = Group::by_id(id).ok_or(ApiError::NotFound)?;
    Ok(axum::Json(render(&state, &group)))
}
