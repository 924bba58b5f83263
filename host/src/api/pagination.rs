//! Rossum's list shape: `{"pagination": {"total", "total_pages", "next", "previous"},
//! "results": [...]}`, with `page` (from 1) and `page_size` (20 by default, 100 at most).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::ApiError;
use crate::store::{Page, Window};

/// Rows per page unless asked.
pub const DEFAULT_PAGE_SIZE: u64 = 20;
/// The most rows a page may hold.
pub const MAX_PAGE_SIZE: u64 = 100;

/// The `page` and `page_size` query parameters.
#[derive(Debug, Clone, Deserialize)]
pub struct PageQuery {
    page: Option<String>,
    page_size: Option<String>,
    ordering: Option<String>,
}

/// A validated page request.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    page: u64,
    size: u64,
    order_by: &'static str,
    descending: bool,
}

impl PageQuery {
    /// Validates the parameters: positive integers, a size of at most [`MAX_PAGE_SIZE`].
    pub fn validate(&self) -> Result<PageRequest, ApiError> {
        let parse = |name: &str, text: &Option<String>, default: u64| match text {
            None => Ok(default),
            Some(text) => match text.parse::<u64>() {
                Ok(value) if value >= 1 => Ok(value),
                _ => Err(ApiError::BadRequest(format!(
                    "`{name}` must be a positive integer, not `{text}`"
                ))),
            },
        };
        let page = parse("page", &self.page, 1)?;
        let size = parse("page_size", &self.page_size, DEFAULT_PAGE_SIZE)?;
        if size > MAX_PAGE_SIZE {
            return Err(ApiError::BadRequest(format!(
                "`page_size` may be at most {MAX_PAGE_SIZE}"
            )));
        }
        Ok(PageRequest {
            page,
            size,
            order_by: "id",
            descending: false,
        })
    }

    /// Validates the parameters and `ordering` (a field of `allowed`, `-` first to reverse).
    pub fn validate_ordered(&self, allowed: &[&'static str]) -> Result<PageRequest, ApiError> {
        let mut request = self.validate()?;
        if let Some(ordering) = &self.ordering {
            let (descending, name) = match ordering.strip_prefix('-') {
                Some(name) => (true, name),
                None => (false, ordering.as_str()),
            };
            request.order_by = allowed
                .iter()
                .find(|column| **column == name)
                .copied()
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "ordering: `{ordering}` is not one of {} (with - to reverse)",
                        allowed.join(", ")
                    ))
                })?;
            request.descending = descending;
        }
        Ok(request)
    }

    /// The `ordering` parameter as sent.
    pub fn ordering(&self) -> Option<&str> {
        self.ordering.as_deref()
    }
}

impl PageRequest {
    /// The rows to fetch.
    pub fn window(&self) -> Window {
        Window {
            offset: (self.page - 1).saturating_mul(self.size),
            limit: self.size,
            order_by: self.order_by,
            descending: self.descending,
        }
    }
}

/// The list answer.
#[derive(Debug, Serialize)]
pub struct Paginated {
    pagination: Pagination,
    results: Vec<Value>,
}

#[derive(Debug, Serialize)]
struct Pagination {
    total: u64,
    total_pages: u64,
    next: Option<String>,
    previous: Option<String>,
}

impl Paginated {
    /// A page of results; `list_url` is the list's own URL (for next and previous).
    pub fn new<T>(
        page: &Page<T>,
        request: PageRequest,
        list_url: &str,
        render: impl Fn(&T) -> Value,
    ) -> Self {
        let total_pages = page.total.div_ceil(request.size).max(1);
        let ordering = match (request.order_by, request.descending) {
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

/// A list answer: validates the page request, fetches the page on the store's thread and
/// renders each row. Every resource's list handler is this with its own fetch and render.
pub async fn list_page<T, F>(
    state: &super::AppState,
    collection: &str,
    query: &PageQuery,
    orderings: &[&'static str],
    fetch: F,
    render: impl Fn(&T) -> Value,
) -> Result<axum::Json<Paginated>, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&rusqlite::Connection, Window) -> Result<Page<T>, crate::store::StoreError>
        + Send
        + 'static,
{
    let request = query.validate_ordered(orderings)?;
    let window = request.window();
    let page = state
        .store
        .run(move |connection| fetch(connection, window))
        .await?;
    Ok(axum::Json(Paginated::new(
        &page,
        request,
        &state.list_url(collection),
        render,
    )))
}
