//! `--set key=value`: edits the parsed scenario table before it is validated, so an override is
//! checked exactly like a value written in the file.

use super::Problem;
use toml::{Table, Value};

const MAX_KEY_DEPTH: usize = 16;

/// Parses the right-hand side as a TOML value where it parses (numbers, booleans, inline tables,
/// quoted strings) and as a bare string otherwise ("5ms", "sticky").
fn parse_value(text: &str) -> Value {
    let text = text.trim();
    toml::from_str::<Table>(&format!("value = {text}"))
        .ok()
        .and_then(|mut table| table.remove("value"))
        .unwrap_or_else(|| Value::String(text.to_string()))
}

/// Applies one `key=value` assignment and returns the canonical key path it wrote
/// (`topology[0].session_bytes` for `topology.stateful.session_bytes`).
pub fn apply(root: &mut Table, assignment: &str) -> Result<String, Problem> {
    let Some((key, value)) = assignment.split_once('=') else {
        return Err(Problem::new(
            "",
            "expected KEY=VALUE, e.g. --set servers.count=16",
        ));
    };
    // `fault[1].at` is `fault.1.at`, as key paths in messages write it.
    let parts: Vec<&str> = key
        .trim()
        .split('.')
        .flat_map(
            |part| match part.strip_suffix(']').and_then(|p| p.split_once('[')) {
                Some((name, index)) => vec![name, index],
                None => vec![part],
            },
        )
        .collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(Problem::new(
            key.trim(),
            "empty key segment in the dotted key",
        ));
    }
    // No scenario key is nearly this deep; a longer path would only build a tree deep enough to
    // overflow the stack when it is dropped.
    if parts.len() > MAX_KEY_DEPTH {
        return Err(Problem::new(
            "",
            format!(
                "the key has {} segments; scenario keys have at most {MAX_KEY_DEPTH}",
                parts.len()
            ),
        ));
    }
    let mut canonical = String::new();
    let mut table = root;
    let mut index = 0;
    while index < parts.len() {
        let part = parts[index];
        let last = index + 1 == parts.len();
        if !canonical.is_empty() {
            canonical.push('.');
        }
        canonical.push_str(part);
        if last {
            table.insert(part.to_string(), parse_value(value));
            return Ok(canonical);
        }
        let entry = table
            .entry(part.to_string())
            .or_insert_with(|| Value::Table(Table::new()));
        table = match entry {
            Value::Table(inner) => inner,
            Value::Array(elements) => {
                // An array of tables ([[topology]]) is addressed by an element's name or index.
                index += 1;
                let selector = parts[index];
                let position = elements
                    .iter()
                    .position(|e| e.get("name").and_then(Value::as_str) == Some(selector))
                    .or_else(|| {
                        selector
                            .parse::<usize>()
                            .ok()
                            .filter(|i| *i < elements.len())
                    })
                    .ok_or_else(|| {
                        let names: Vec<&str> = elements
                            .iter()
                            .filter_map(|e| e.get("name").and_then(Value::as_str))
                            .collect();
                        Problem::new(
                            canonical.clone(),
                            format!(
                                "no element named \"{selector}\"{} (names: {})",
                                crate::text::suggestion(selector, names.iter().copied()),
                                names.join(", ")
                            ),
                        )
                    })?;
                canonical.push_str(&format!("[{position}]"));
                if index + 1 == parts.len() {
                    return Err(Problem::new(
                        canonical,
                        "name a key inside the element, e.g. topology.NAME.session_bytes=4096",
                    ));
                }
                match &mut elements[position] {
                    Value::Table(inner) => inner,
                    _ => return Err(Problem::new(canonical, "is not a table")),
                }
            }
            _ => {
                return Err(Problem::new(
                    canonical,
                    "is a value, not a table, so it has no keys below it",
                ));
            }
        };
        index += 1;
    }
    unreachable!("the loop returns at the last segment")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn values_parse_as_toml_or_fall_back_to_strings() {
        let mut root = table("[servers]\ncount = 2\n");
        apply(&mut root, "servers.count=16").unwrap();
        apply(&mut root, "workload.service_time=5ms").unwrap();
        apply(
            &mut root,
            r#"workload.think_time={dist="exponential",mean="7s"}"#,
        )
        .unwrap();
        assert_eq!(root["servers"]["count"].as_integer(), Some(16));
        assert_eq!(root["workload"]["service_time"].as_str(), Some("5ms"));
        assert_eq!(
            root["workload"]["think_time"]["dist"].as_str(),
            Some("exponential")
        );
    }

    #[test]
    fn topologies_are_addressed_by_name_or_index() {
        let mut root = table("[[topology]]\nname = \"a\"\n[[topology]]\nname = \"b\"\n");
        assert_eq!(
            apply(&mut root, "topology.b.session_bytes=4096").unwrap(),
            "topology[1].session_bytes"
        );
        assert_eq!(
            apply(&mut root, "topology.0.state=none").unwrap(),
            "topology[0].state"
        );
        assert!(apply(&mut root, "topology.c.state=none").is_err());
        assert!(apply(&mut root, "topology.a").is_err());
    }

    #[test]
    fn malformed_assignments_are_errors() {
        let mut root = table("name = \"x\"\n");
        assert!(apply(&mut root, "servers.count").is_err());
        assert!(apply(&mut root, "name.inner=3").is_err());
        assert!(apply(&mut root, "a..b=3").is_err());
        let deep = format!("{}=1", vec!["a"; 100_000].join("."));
        assert!(apply(&mut root, &deep).is_err());
    }
}
