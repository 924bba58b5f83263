//! Rossum's list shape: `{"pagination": {"total", "total_pages", "next", "previous"},
//! "results": [...]}`, with `page` (from 1) and `page_size` (20 by default, 100 at most:
//! a larger one is served as 100, as DRF's `max_page_size` does). An empty parameter is as
//! if absent (Rossum's client sends `ordering=` with every list).
//!
//! A page past the end is an empty page (200, `results: []`, `previous` pointing back),
//! whatever its number, up to `page=18446744073709551615`: its offset is computed with checked
//! arithmetic and capped at SQLite's largest integer, past every row. DRF answers 404
//! `{"detail": "Invalid page."}` there instead; Rossum's clients follow `next` and never
//! ask past the end, so they do not see the difference, and the empty page keeps every
//! well-formed page request a 200 (as it was before the cap).

use std::future::Future;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use crate::model::MAX_ID;
use crate::store::{Page, StoreError, Window};

/// Rows per page unless asked.
pub const DEFAULT_PAGE_SIZE: u64 = 20;
/// The most rows a page may hold.
pub const MAX_PAGE_SIZE: u64 = 100;

/// The `page` and `page_size` query parameters.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The page, from 1; a page past the end is an empty page.
    #[param(value_type = Option<u64>, minimum = 1)]
    page: Option<String>,
    /// Rows per page: 20 unless asked, 100 at most (a larger size is served as 100).
    #[param(value_type = Option<u64>, minimum = 1)]
    page_size: Option<String>,
    /// The field to order by, `-` first to reverse; each list names the fields it orders
    /// by (an empty value is as if absent).
    ordering: Option<String>,
}

/// A validated page request; `K` is the list's sort key in the store (`()` for a request
/// whose `ordering` was not read).
#[derive(Debug, Clone, Copy)]
pub struct PageRequest<K> {
    page: u64,
    size: u64,
    /// The `ordering` name as the links repeat it; `id` when none was asked.
    ordering: &'static str,
    order_by: K,
    descending: bool,
}

impl PageQuery {
    /// Validates the parameters: positive integers; a size above [`MAX_PAGE_SIZE`] is
    /// served as that. `ordering` is not read.
    pub fn validate(&self) -> Result<PageRequest<()>, ApiError> {
        let parse = |name: &str, text: &Option<String>, default: u64| match text.as_deref() {
            None | Some("") => Ok(default),
            Some(text) => match text.parse::<u64>() {
                Ok(value) if value >= 1 => Ok(value),
                _ => Err(ApiError::field(
                    name,
                    format!("must be a positive integer, not `{text}`"),
                )),
            },
        };
        let page = parse("page", &self.page, 1)?;
        let size = parse("page_size", &self.page_size, DEFAULT_PAGE_SIZE)?.min(MAX_PAGE_SIZE);
        Ok(PageRequest {
            page,
            size,
            ordering: "id",
            order_by: (),
            descending: false,
        })
    }

    /// Validates the parameters and `ordering`: one of the names of `allowed`, `-` first
    /// to reverse, mapped to the store's sort key it stands for; none asked is the key's
    /// default (by id).
    pub fn validate_ordered<K: Copy + Default>(
        &self,
        allowed: &[(&'static str, K)],
    ) -> Result<PageRequest<K>, ApiError> {
        let unordered = self.validate()?;
        let mut request = PageRequest {
            page: unordered.page,
            size: unordered.size,
            ordering: unordered.ordering,
            order_by: K::default(),
            descending: false,
        };
        if let Some(ordering) = self.ordering() {
            let (descending, name) = match ordering.strip_prefix('-') {
                Some(name) => (true, name),
                None => (false, ordering),
            };
            let (name, key) = allowed
                .iter()
                .find(|(candidate, _)| *candidate == name)
                .copied()
                .ok_or_else(|| {
                    let names: Vec<&str> = allowed.iter().map(|(known, _)| *known).collect();
                    ApiError::field(
                        "ordering",
                        format!(
                            "`{ordering}` is not one of {} (with - to reverse)",
                            names.join(", ")
                        ),
                    )
                })?;
            request.ordering = name;
            request.order_by = key;
            request.descending = descending;
        }
        Ok(request)
    }

    /// The `ordering` parameter as sent; none when empty.
    pub fn ordering(&self) -> Option<&str> {
        self.ordering
            .as_deref()
            .filter(|ordering| !ordering.is_empty())
    }
}

impl<K: Copy> PageRequest<K> {
    /// The rows to fetch, in the order asked. An offset beyond SQLite's integers (a page
    /// no list reaches) is capped at the largest one, which is past every row: an empty
    /// page.
    pub fn window(&self) -> Window<K> {
        let offset = self
            .page
            .checked_sub(1)
            .and_then(|before| before.checked_mul(self.size))
            .map_or(MAX_ID, |offset| offset.min(MAX_ID));
        Window {
            offset,
            limit: self.size,
            order_by: self.order_by,
            descending: self.descending,
        }
    }
}

/// The list answer, Rossum's shape: a page of `results` and where the others are.
#[derive(Debug, Serialize, ToSchema)]
pub struct Paginated<T> {
    /// Where this page is among the others.
    pagination: Pagination,
    /// This page's objects.
    results: Vec<T>,
}

/// Where a page is: the count of all the objects and the links to the pages beside it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Pagination {
    /// How many objects the list holds, all pages together.
    total: u64,
    /// How many pages (1 for an empty list).
    total_pages: u64,
    /// The next page's URL; null on the last page.
    next: Option<String>,
    /// The previous page's URL; null on the first page.
    previous: Option<String>,
}

impl<V> Paginated<V> {
    /// A page of results; `list_url` is the list's own URL (for next and previous, which
    /// repeat the request's `ordering`).
    pub fn new<T, K: Copy>(
        page: &Page<T>,
        request: PageRequest<K>,
        list_url: &str,
        render: impl Fn(&T) -> V,
    ) -> Self {
        let total_pages = page.total.div_ceil(request.size).max(1);
        let ordering = match (request.ordering, request.descending) {
            ("id", false) => String::new(),
            (column, descending) => {
                format!("&ordering={}{column}", if descending { "-" } else { "" })
            }
        };
        let link = |number: u64| {
            format!(
                "{list_url}?page={number}&page_size={}{ordering}",
                request.size
            )
        };
        Paginated {
            results: page.rows.iter().map(render).collect(),
            pagination: Pagination {
                total: page.total,
                total_pages,
                next: (request.page < total_pages).then(|| link(request.page + 1)),
                previous: (request.page > 1).then(|| link(request.page - 1)),
            },
        }
    }
}

/// A list answer: validates the page request (its `ordering` one of `orderings`), fetches
/// the page from the store with the window asked, and renders each row. Every resource's
/// plain list handler is this with its own fetch (a store list method) and render.
pub async fn list_page<T, V, K, Fetched>(
    state: &super::AppState,
    collection: &str,
    query: &PageQuery,
    orderings: &[(&'static str, K)],
    fetch: impl FnOnce(Window<K>) -> Fetched,
    render: impl Fn(&T) -> V,
) -> Result<axum::Json<Paginated<V>>, ApiError>
where
    K: Copy + Default,
    Fetched: Future<Output = Result<Page<T>, StoreError>>,
{
    let request = query.validate_ordered(orderings)?;
    let page = fetch(request.window()).await?;
    Ok(axum::Json(Paginated::new(
        &page,
        request,
        &state.list_url(collection),
        render,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(page: &str) -> Result<PageRequest<()>, ApiError> {
        PageQuery {
            page: Some(page.to_owned()),
            page_size: Some("100".to_owned()),
            ordering: None,
        }
        .validate()
    }

    #[test]
    fn an_absurd_page_is_past_every_row_not_an_overflow() -> Result<(), ApiError> {
        assert_eq!(request("1")?.window().offset, 0);
        assert_eq!(request("3")?.window().offset, 200);
        assert_eq!(request("9223372036854775807")?.window().offset, MAX_ID);
        assert_eq!(request("18446744073709551615")?.window().offset, MAX_ID);
        Ok(())
    }
}
