//! The rules for the text a request may set — names, code names, library
//! names, alias paths, cultures, GUIDs — each written twice in one place:
//! as the check the store and the registry apply, and as the JSON Schema
//! pattern the API document shows, so that a client or a fuzzer that
//! follows the document is never refused and one that does not is.
//!
//! Control characters are Unicode's `Cc` (`char::is_control`), whitespace
//! is Unicode's `White_Space` (`char::is_whitespace`); the patterns spell
//! both out as character classes, which every regex dialect reads alike.

/// No control character.
pub const NO_CONTROL: &str = r"^[^\u0000-\u001f\u007f-\u009f]*$";

/// Some character that is not whitespace, and no control character.
pub const NAME: &str = r"^[^\u0000-\u001f\u007f-\u009f]*[^\u0000-\u001f\u007f-\u009f \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000-\u001f\u007f-\u009f]*$";

/// No NUL character (a connector's configuration: any text).
pub const NO_NUL: &str = r"^[^\u0000]*$";

/// A connector's code name: letters, digits, `_`, `.`, `-`.
pub const CODE_NAME: &str = r"^[A-Za-z0-9_.-]+$";

/// A library in the connectors folder: runs of letters, digits, `_`, `+`,
/// `-`, joined by single dots (no path, no `..`).
pub const LIBRARY: &str = r"^[A-Za-z0-9_+-]+(\.[A-Za-z0-9_+-]+)*$";

/// `/Products/Apple iPad 2`: segments after `/`, each with a character that
/// is neither whitespace nor `.`; no control character.
pub const ALIAS_PATH: &str = r"^(/[^/\u0000-\u001f\u007f-\u009f]*[^/.\u0000-\u001f\u007f-\u009f \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^/\u0000-\u001f\u007f-\u009f]*)+$";

/// A culture code such as `en-US`.
pub const CULTURE: &str = r"^[A-Za-z0-9][A-Za-z0-9-]*$";

/// 8-4-4-4-12 hexadecimal digits.
pub const GUID: &str = r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$";

/// The longest name (a code name of an object, a document's name).
pub const MAX_NAME: usize = 200;
/// The longest alias path.
pub const MAX_ALIAS_PATH: usize = 450;
/// The longest culture code.
pub const MAX_CULTURE: usize = 10;

/// True when the text has no character other than whitespace.
pub fn is_blank(text: &str) -> bool {
    text.chars().all(char::is_whitespace)
}

/// True when the text holds a control character.
pub fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

/// [`NAME`] as a check.
pub fn is_name(text: &str) -> bool {
    !is_blank(text) && !has_control(text)
}

/// A character [`CODE_NAME`] allows.
pub fn is_code_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// [`CODE_NAME`] as a check.
pub fn is_code_name(text: &str) -> bool {
    !text.is_empty() && text.chars().all(is_code_name_char)
}

/// [`LIBRARY`] as a check.
pub fn is_library(text: &str) -> bool {
    text.split('.')
        .all(|run| !run.is_empty() && run.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-')))
}

/// [`ALIAS_PATH`] as a check.
pub fn is_alias_path(text: &str) -> bool {
    text.strip_prefix('/')
        .is_some_and(|rest| rest.split('/').all(|segment| segment.chars().any(|c| !c.is_whitespace() && c != '.')))
        && !has_control(text)
}

/// [`CULTURE`] as a check.
pub fn is_culture(text: &str) -> bool {
    text.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// [`GUID`] as a check.
pub fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_agree_with_their_patterns_on_the_edges() {
        // The patterns are read by clients' regex engines; here the checks
        // are held to the cases the patterns were written for.
        assert!(is_name("Apple iPad 2") && is_name(" x ") && !is_name(" \u{3000}") && !is_name("a\tb") && !is_name(""));
        assert!(!is_name("\u{85}x"), "U+0085 is a control character");
        assert!(is_code_name("Crm_2.b-c") && !is_code_name("a b") && !is_code_name(""));
        assert!(is_library("sample_connector") && is_library("libfoo-1.2.so"));
        assert!(
            !is_library("../x") && !is_library("a..b") && !is_library(".so") && !is_library("a/b") && !is_library("")
        );
        assert!(is_alias_path("/Products/Apple iPad 2") && is_alias_path("/a/...b"));
        for bad in ["", "/", "x", "/a/", "/a//b", "/.", "/a/..", "/ ", "/a/ . ", "/a\u{7}"] {
            assert!(!is_alias_path(bad), "{bad:?}");
        }
        assert!(is_culture("en-US") && !is_culture("-en") && !is_culture("en_US"));
        assert!(is_guid("0E4FFBA4-6A1F-4B11-9E79-2D3A5C2C64B1") && !is_guid("0e4ffba4"));
    }
}
