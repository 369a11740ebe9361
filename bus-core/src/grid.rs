//! What the management grids ask of a listing: a sort column (each listing
//! names its own, as an enum, so no caller text reaches the SQL), an order,
//! a search text, and a page by offset; the answer carries the total.

use serde::Serialize;

/// Ascending or descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    Asc,
    Desc,
}

impl Order {
    pub fn sql(self) -> &'static str {
        match self {
            Order::Asc => "ASC",
            Order::Desc => "DESC",
        }
    }
}

impl std::str::FromStr for Order {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "asc" => Ok(Order::Asc),
            "desc" => Ok(Order::Desc),
            other => Err(format!("order must be `asc` or `desc`, not `{other}`")),
        }
    }
}

/// One grid request over a listing sorted by `S`.
#[derive(Debug, Clone)]
pub struct GridQuery<S> {
    pub sort: S,
    pub order: Order,
    /// Rows whose searched columns contain this text (case-insensitive).
    pub search: Option<String>,
    pub offset: u64,
    pub limit: u32,
}

/// A page of rows with the number of rows the query matches in all.
#[derive(Debug, Clone, Serialize)]
pub struct GridPage<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub offset: u64,
    pub limit: u32,
}

/// A `LIKE` pattern matching `text` anywhere, with `%`, `_` and `\` taken
/// literally (use with `ESCAPE '\'`).
pub(crate) fn contains_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_text_is_literal() {
        assert_eq!(contains_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
        assert_eq!("desc".parse::<Order>(), Ok(Order::Desc));
        assert!("DESC".parse::<Order>().is_err(), "exactly as the API document lists them");
        assert!("up".parse::<Order>().unwrap_err().contains("asc"));
    }
}
