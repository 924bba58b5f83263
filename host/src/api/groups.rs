//! `/groups`: Rossum's user roles, which its client lists (`list_user_roles`) and gives
//! users by URL. wasmhook serves the two that stand for its roles (`model::group`).
//!
//! The list is a constant of two rows, so it is filtered, ordered and paged here rather
//! than by the store, in the same list shape as every other list.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorDetail, ValidationErrors};
use super::extract::{IdPath, ObjectId, Params};
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
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct GroupFilter {
    /// Only the group of this name (`admin`, `annotator`).
    name: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    page: PageQuery,
}

/// A group: Rossum's name of a role (`admin` is wasmhook's admin, `annotator` its member).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct GroupView {
    id: u64,
    url: String,
    name: &'static str,
}

/// A group's URL, as a user's `groups` lists it.
pub(super) fn group_url(state: &AppState, group: &Group) -> String {
    state.url("groups", group.id)
}

/// A group as Rossum's client reads it.
fn render(state: &AppState, group: &Group) -> GroupView {
    GroupView {
        id: group.id,
        url: group_url(state, group),
        name: group.name,
    }
}

/// `GET /groups`: the groups, for any authenticated caller.
#[utoipa::path(get, path = "/api/v1/groups", tag = "users",
    params(GroupFilter, PageQuery),
    responses(
        (status = 200, description = "The groups (ordering: id, name)", body = Paginated<GroupView>),
        (status = 400, description = "A parameter is not valid", body = ValidationErrors),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    Params(filter): Params<GroupFilter>,
) -> ApiResult<axum::Json<Paginated<GroupView>>> {
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
#[utoipa::path(get, path = "/api/v1/groups/{id}", tag = "users", params(IdPath),
    responses(
        (status = 200, description = "The group", body = GroupView),
        (status = 404, description = "No such group", body = ErrorDetail),
    ))]
pub(super) async fn show(
    State(state): State<AppState>,
    _caller: Caller,
    ObjectId(id): ObjectId,
) -> ApiResult<axum::Json<GroupView>> {
    let group = Group::by_id(id).ok_or(ApiError::NotFound)?;
    Ok(axum::Json(render(&state, &group)))
}
