//! Percent-encoding (RFC 3986 §2.1) for URLs and query strings, through the `percent-encoding`
//! crate. Decoding is strict where the crate is lenient: a `%` not followed by two hex digits is
//! refused instead of passed through, and so is a result that is not UTF-8, so a typo in a
//! credential or an appkey is an error rather than a silently different value.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`) is escaped.
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `s` with every byte outside the unreserved set written `%XX`.
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, NOT_UNRESERVED).to_string()
}

/// `s` with its `%XX` escapes decoded; `None` if an escape is malformed or the result is not UTF-8.
pub fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let hex_at = |i: usize| b.get(i).is_some_and(u8::is_ascii_hexdigit);
    let malformed = percent_signs(b).any(|i| !(hex_at(i + 1) && hex_at(i + 2)));
    if malformed {
        return None;
    }
    percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

/// [`decode`] for `application/x-www-form-urlencoded` text (query strings): `+` is a space.
pub fn decode_form(s: &str) -> Option<String> {
    if s.contains('+') {
        decode(&s.replace('+', " "))
    } else {
        decode(s)
    }
}

fn percent_signs(b: &[u8]) -> impl Iterator<Item = usize> + '_ {
    b.iter()
        .enumerate()
        .filter_map(|(i, &c)| (c == b'%').then_some(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_malformed_escapes() {
        assert_eq!(encode("_pub sub/é~"), "_pub%20sub%2F%C3%A9~");
        assert_eq!(
            decode("_pub%20sub%2F%C3%A9~").as_deref(),
            Some("_pub sub/é~")
        );
        assert_eq!(decode_form("a+b%2B").as_deref(), Some("a b+"));
        for bad in ["%zz", "%4", "x%", "%ff"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
