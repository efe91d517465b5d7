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

/// "1 topology", "3 topologies".
pub fn count(n: impl std::fmt::Display + PartialEq<u64> + Copy, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Characters that change what a terminal or log shows rather than showing themselves.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a typo (at
/// most a third of the word's length, at least one edit), for "did you mean …?".
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let allowed = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|candidate| (edit_distance(word, candidate), candidate))
        .filter(|(distance, _)| *distance <= allowed && *distance < word.chars().count())
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Edit distance counting a swap of neighbours as one edit (optimal string alignment), by
/// characters; long inputs are cut short (a typo is in a short word).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().take(64).collect();
    // d[i][j]: distance between the first i characters of a and the first j of b.
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// " (did you mean `x`?)" when a candidate is close to `word`, else nothing: to follow the word
/// in a message.
pub fn suggestion<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    match closest(word, candidates) {
        Some(candidate) => format!(" (did you mean `{candidate}`?)"),
        None => String::new(),
    }
}

/// `text` safe inside XML or HTML, as element text or a quoted attribute: the five characters
/// they reserve as entities (`&#39;` for the apostrophe, which HTML 4 lacks as `&apos;`).
pub fn escape_markup(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses_are_suggested_and_strangers_are_not() {
        let keys = ["count", "workers", "queue_limit"];
        assert_eq!(closest("cuont", keys), Some("count"));
        assert_eq!(closest("worker", keys), Some("workers"));
        assert_eq!(closest("zebra", keys), None);
        assert_eq!(
            closest("b", ["a"]),
            None,
            "a one-letter name is no typo of another"
        );
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn control_characters_are_escaped_and_long_text_cut() {
        assert_eq!(printable("a\nb", 10), "a\\nb");
        assert_eq!(printable("x\u{1b}[31m", 10), "x\\u{1b}[31m");
        assert_eq!(printable("abcdef", 3), "abc…");
        assert_eq!(printable("\u{202e}evil", 10), "\\u{202e}evil");
        assert_eq!(printable("ünïcode ok", 20), "ünïcode ok");
    }
}
