//! The `%` wildcard of subscription criteria: `%` stands for any run of 0..n
//! characters; everything else matches itself, ignoring ASCII case (as the
//! content store compares code names).

/// True when `value` matches `pattern`. Works on bytes: ASCII letters match
/// either case, every other byte (including each byte of a non-ASCII
/// character) only itself.
pub fn matches(pattern: &str, value: &str) -> bool {
    let (pattern, value) = (pattern.as_bytes(), value.as_bytes());
    if !pattern.contains(&b'%') {
        return pattern.eq_ignore_ascii_case(value);
    }
    // Greedy matching with backtracking to the last `%` (linear in practice).
    let (mut p, mut v) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while v < value.len() {
        if p < pattern.len() && pattern[p] == b'%' {
            star = Some((p, v));
            p += 1;
        } else if p < pattern.len() && pattern[p].eq_ignore_ascii_case(&value[v]) {
            p += 1;
            v += 1;
        } else if let Some((sp, sv)) = star {
            p = sp + 1;
            v = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'%')
}

/// A criterion that is absent or empty matches everything.
pub fn criterion_matches(criterion: Option<&str>, value: &str) -> bool {
    match criterion {
        None | Some("") => true,
        Some(c) => matches(c, value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_matches_any_run() {
        assert!(matches("en-%", "en-US"));
        assert!(matches("en-%", "en-"));
        assert!(!matches("en-%", "cs-CZ"));
        assert!(matches("poll.poll%", "poll.pollanswer"));
        assert!(matches("poll.poll%", "poll.poll"));
        assert!(matches("/Home/%", "/Home/News/Item"));
        assert!(!matches("/Home/%", "/Home"));
        assert!(matches("%", ""));
        assert!(matches("a%b%c", "aXXbYYc"));
        assert!(!matches("a%b%c", "aXXbYY"));
        assert!(matches("%admin%", "GlobalAdministrator"));
    }

    #[test]
    fn literal_patterns_ignore_case_only() {
        assert!(matches("cms.user", "CMS.User"));
        assert!(!matches("cms.user", "cms.users"));
        assert!(!matches("cms_user", "cms.user"));
    }

    #[test]
    fn empty_criterion_is_any() {
        assert!(criterion_matches(None, "x"));
        assert!(criterion_matches(Some(""), "x"));
        assert!(!criterion_matches(Some("y"), "x"));
    }
}
