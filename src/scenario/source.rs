//! Turning key paths back into places a user can find: `file:line:column`, or the `--set` flag.

use super::Problem;
use crate::text::{MESSAGE_LIMIT, printable, shown};
use std::fmt;
use toml::de::{DeTable, DeValue};

/// Where a problem was written. Orders by file position, then `--set` flags.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Location {
    File {
        file: String,
        line: usize,
        column: usize,
    },
    /// Introduced by `--set <assignment>`.
    Set(String),
    /// Introduced by a sweep point's `<assignment>` (from `[sweep]` or `--sweep`).
    Sweep(String),
    /// A command-line flag as a whole (`--sweep servers.count=1..1000:1`).
    Flag(String),
}

/// One located problem in a scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub location: Location,
    /// The dotted key path (`servers.count`, `topology[1].store.read`); empty for syntax errors.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every part may carry the file's own text (a key, a value, a name): escaped and cut
        // short, so that a hostile file cannot write control sequences or megabytes to a log.
        match &self.location {
            Location::File { file, line, column } => {
                write!(f, "{}:{line}:{column}: ", shown(file))?
            }
            Location::Set(assignment) => write!(f, "--set {}: ", printable(assignment, 80))?,
            Location::Sweep(assignment) => {
                write!(f, "sweep point {}: ", printable(assignment, 80))?
            }
            Location::Flag(flag) => write!(f, "{}: ", printable(flag, 80))?,
        }
        if !self.key.is_empty() {
            write!(f, "`{}`: ", shown(&self.key))?;
        }
        write!(f, "{}", printable(&self.message, MESSAGE_LIMIT * 20))
    }
}

/// The scenario text and its name, for locating key paths.
pub struct SourceMap<'a> {
    origin: &'a str,
    text: &'a str,
}

/// One step of a key path.
#[derive(Debug, PartialEq)]
enum Segment<'p> {
    Key(&'p str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = match part.find('[') {
            Some(open) => (&part[..open], &part[open..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        while let Some(close) = rest.find(']') {
            if let Ok(index) = rest[1..close].parse() {
                out.push(Segment::Index(index));
            }
            rest = &rest[close + 1..];
        }
    }
    out
}

impl<'a> SourceMap<'a> {
    pub fn new(origin: &'a str, text: &'a str) -> SourceMap<'a> {
        SourceMap { origin, text }
    }

    fn file_location(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Location::File {
            file: self.origin.to_string(),
            line,
            column,
        }
    }

    /// A problem at a byte offset of the text, with no key.
    pub fn at_offset(&self, offset: usize, message: String) -> Diagnostic {
        Diagnostic {
            location: self.file_location(offset),
            key: String::new(),
            message,
        }
    }

    pub fn syntax_error(&self, error: &toml::de::Error) -> Diagnostic {
        Diagnostic {
            location: self.file_location(error.span().map_or(0, |span| span.start)),
            key: String::new(),
            message: format!("invalid TOML: {}", error.message().trim_end()),
        }
    }

    pub fn set_error(&self, assignment: &str, problem: Problem) -> Diagnostic {
        Self::assignment_error(Location::Set(assignment.to_string()), problem)
    }

    pub fn assignment_error(location: Location, problem: Problem) -> Diagnostic {
        Diagnostic {
            location,
            key: problem.path,
            message: problem.message,
        }
    }

    /// Attributes a problem to the `--set` flag or sweep point that wrote its key (the last of
    /// `assigned` that set the key or a parent of it), or else to its place in the file.
    pub fn locate(&self, problem: Problem, assigned: &[(String, Location)]) -> Diagnostic {
        let from_flag = assigned.iter().rev().find(|(path, _)| {
            problem.path == *path
                || problem.path.starts_with(&format!("{path}."))
                || problem.path.starts_with(&format!("{path}["))
        });
        let (offset, in_file) = self.find(&problem.path);
        // A problem about a table the file never wrote, above a key a flag wrote (an unknown
        // section created by `--set nosuch.key=1`), is the flag's too.
        let created_by_flag = || {
            assigned.iter().rev().find(|(path, _)| {
                !in_file
                    && (path.starts_with(&format!("{}.", problem.path))
                        || path.starts_with(&format!("{}[", problem.path)))
            })
        };
        let location = match from_flag.or_else(created_by_flag) {
            Some((_, location)) => location.clone(),
            None => self.file_location(offset),
        };
        Diagnostic {
            location,
            key: problem.path,
            message: problem.message,
        }
    }

    /// Byte offset of the deepest part of `path` present in the text (the start for none).
    #[cfg(test)]
    fn offset_of(&self, path: &str) -> usize {
        self.find(path).0
    }

    /// Byte offset of the deepest part of `path` present in the text (the start for none), and
    /// whether all of it is.
    fn find(&self, path: &str) -> (usize, bool) {
        let Ok(root) = DeTable::parse(self.text) else {
            return (0, false);
        };
        let mut best = 0;
        let mut table: Option<&DeTable> = Some(root.get_ref());
        let mut value: Option<&DeValue> = None;
        for segment in segments(path) {
            match segment {
                Segment::Key(key) => {
                    let current = table.or(match value {
                        Some(DeValue::Table(t)) => Some(t),
                        _ => None,
                    });
                    let Some(current) = current else {
                        return (best, false);
                    };
                    let Some((found_key, found_value)) =
                        current.iter().find(|(k, _)| k.get_ref().as_ref() == key)
                    else {
                        return (best, false);
                    };
                    best = found_key.span().start;
                    table = None;
                    value = Some(found_value.get_ref());
                }
                Segment::Index(index) => {
                    let Some(DeValue::Array(array)) = value else {
                        return (best, false);
                    };
                    let Some(element) = array.get(index) else {
                        return (best, false);
                    };
                    best = element.span().start;
                    table = None;
                    value = Some(element.get_ref());
                }
            }
        }
        (best, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_split_into_keys_and_indices() {
        assert_eq!(
            segments("topology[1].store.read"),
            vec![
                Segment::Key("topology"),
                Segment::Index(1),
                Segment::Key("store"),
                Segment::Key("read")
            ]
        );
    }

    #[test]
    fn locates_nested_keys_and_array_elements() {
        let text = "name = \"x\"\n[servers]\ncount = 0\n\n[[topology]]\nname = \"a\"\n\n[[topology]]\nname = \"b\"\nstate = \"server\"\n";
        let map = SourceMap::new("f.toml", text);
        let at = |path: &str| match map.file_location(map.offset_of(path)) {
            Location::File { line, column, .. } => (line, column),
            Location::Set(_) | Location::Sweep(_) | Location::Flag(_) => unreachable!(),
        };
        assert_eq!(at("servers.count"), (3, 1));
        assert_eq!(at("topology[1].state"), (10, 1));
        assert_eq!(
            at("topology[1].missing"),
            (8, 1).max(at("topology[1].missing"))
        );
        assert_eq!(at("nothing.here"), (1, 1));
    }
}
