//! Text from a scenario file (names, keys, values, a CSV header) on its way to a terminal or a CI
//! log. A name with a newline and `::error …`, or an ANSI escape, would otherwise inject workflow
//! commands or rewrite the log; a 50 MB header line would become a 50 MB message.

use std::fmt::Write as _;

/// At most this many characters of one piece of user text in a message.
pub const MESSAGE_LIMIT: usize = 120;

/// `text` with every control character escaped (`\n`, `\u{1b}`, the bidirectional overrides
/// too) and cut to `limit` characters with an ellipsis.
pub fn printable(text: &str, limit: usize) -> String {
    let mut out = String::new();
    for (count, c) in text.chars().enumerate() {
        if count == limit {
            out.push('…');
            break;
        }
        if is_unsafe(c) {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// [`printable`] with the message limit.
pub fn shown(text: &str) -> String {
    printable(text, MESSAGE_LIMIT)
}

/// Characters that change what a terminal or log shows rather than showing themselves.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_long_text_cut() {
        assert_eq!(printable("a\nb", 10), "a\\nb");
        assert_eq!(printable("x\u{1b}[31m", 10), "x\\u{1b}[31m");
        assert_eq!(printable("abcdef", 3), "abc…");
        assert_eq!(printable("\u{202e}evil", 10), "\\u{202e}evil");
        assert_eq!(printable("ünïcode ok", 20), "ünïcode ok");
    }
}
