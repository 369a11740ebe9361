//! The grid parameters every listing route takes (`sort`, `order`,
//! `search`, `offset` with `limit`), parsed into a [`GridQuery`].

use super::error::ApiError;
use bus_core::grid::{GridQuery, Order};
use std::str::FromStr;

/// The longest search text accepted.
pub const MAX_SEARCH: usize = 200;

/// The raw grid parameters of a request.
pub struct GridParams<'a> {
    pub sort: Option<&'a str>,
    pub order: Option<&'a str>,
    pub search: Option<&'a str>,
    pub offset: Option<u64>,
}

impl<'a> GridParams<'a> {
    /// The grid parameters of a request's query struct.
    pub fn new(
        sort: &'a Option<String>,
        order: &'a Option<String>,
        search: &'a Option<String>,
        offset: Option<u64>,
    ) -> Self {
        GridParams { sort: sort.as_deref(), order: order.as_deref(), search: search.as_deref(), offset }
    }

    /// True when the request asks for grid paging at all.
    pub fn given(&self) -> bool {
        self.sort.is_some() || self.order.is_some() || self.search.is_some() || self.offset.is_some()
    }

    /// The query, or a 400 naming the bad parameter.
    pub fn query<S: FromStr<Err = String> + Default>(&self, limit: u32) -> Result<GridQuery<S>, ApiError> {
        let sort = self.sort.map(S::from_str).transpose().map_err(ApiError::bad_request)?.unwrap_or_default();
        let order = self.order.map(Order::from_str).transpose().map_err(ApiError::bad_request)?.unwrap_or_default();
        let search = search_text(self.search)?;
        let offset = self.offset.unwrap_or(0);
        if offset > MAX_OFFSET {
            return Err(ApiError::bad_request(format!("offset must be at most {MAX_OFFSET}, not {offset}")));
        }
        Ok(GridQuery { sort, order, search, offset, limit })
    }
}

/// The largest `offset` (the database's integers are signed 64-bit).
pub const MAX_OFFSET: u64 = i64::MAX as u64;

/// A grid's search text as the listing applies it (trimmed; empty is no
/// filter), or a 400 when it is too long.
pub fn search_text(search: Option<&str>) -> Result<Option<String>, ApiError> {
    // Characters, as the document's `maxLength` counts them.
    if search.is_some_and(|s| s.chars().count() > MAX_SEARCH) {
        return Err(ApiError::bad_request(format!("search must be at most {MAX_SEARCH} characters")));
    }
    Ok(search.map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned))
}
