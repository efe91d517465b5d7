//! Sweeps: the values each swept key takes (`[sweep]` in the file, `--sweep` on the command line)
//! and their cartesian product. Each point is applied to the scenario like a `--set`.

use super::Problem;
use toml::Value;

/// Largest number of points a sweep may have (one axis, or all of them together): beyond it is a
/// typo (a step of 0.0001), not a study, and each point is a scenario held in memory.
pub const MAX_POINTS: usize = 10_000;

/// One swept key and its values, written as `--set` would take them.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<String>,
}

/// Axes that advance together: point i takes every axis's i-th value. A lone axis is a group of
/// one; `zip = true` in `[sweep]` makes all the file's axes one group (a weak-scaling sweep:
/// servers and load grow together).
#[derive(Clone, Debug, PartialEq)]
pub struct Group(pub Vec<Axis>);

impl Group {
    fn len(&self) -> usize {
        self.0.first().map_or(0, |axis| axis.values.len())
    }
}

/// The groups of a `[sweep]` table: `"servers.count" = [2, 4, 8]` or `servers.count = "2..64:*2"`
/// (dotted keys may also be written as nested tables), and `zip = true` to pair them up.
pub fn file_groups(sweep: &Value) -> Result<Vec<Group>, Vec<Problem>> {
    let Value::Table(table) = sweep else {
        return Err(vec![Problem::new(
            "sweep",
            "expected a table of KEY = [values] or KEY = \"start..end:step\"",
        )]);
    };
    let mut table = table.clone();
    let zip = match table.remove("zip") {
        None => false,
        Some(Value::Boolean(zip)) => zip,
        Some(_) => {
            return Err(vec![Problem::new(
                "sweep.zip",
                "expected true (the swept keys advance together) or false (every combination)",
            )]);
        }
    };
    let mut axes = Vec::new();
    let mut problems = Vec::new();
    collect_axes(&table, "", &mut axes, &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    if !zip {
        return Ok(axes.into_iter().map(|axis| Group(vec![axis])).collect());
    }
    let lengths: Vec<usize> = axes.iter().map(|axis| axis.values.len()).collect();
    if lengths.windows(2).any(|pair| pair[0] != pair[1]) {
        let described: Vec<String> = axes
            .iter()
            .map(|axis| format!("{} has {}", axis.key, axis.values.len()))
            .collect();
        return Err(vec![Problem::new(
            "sweep.zip",
            format!(
                "zipped keys need as many values each: {}",
                described.join(", ")
            ),
        )]);
    }
    Ok(vec![Group(axes)])
}

fn collect_axes(
    table: &toml::Table,
    prefix: &str,
    axes: &mut Vec<Axis>,
    problems: &mut Vec<Problem>,
) {
    for (name, value) in table {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let path = format!("sweep.{key}");
        let values = match value {
            Value::Table(inner) => {
                collect_axes(inner, &key, axes, problems);
                continue;
            }
            Value::Array(items) if !items.is_empty() => Ok(items.iter().map(literal).collect()),
            Value::Array(_) => Err(Problem::new(&path, "a swept key needs at least one value")),
            Value::String(range) => {
                parse_range(range).map_err(|message| Problem::new(&path, message))
            }
            _ => Err(Problem::new(
                &path,
                "expected a list of values ([2, 4, 8]) or a range (\"2..64:*2\", \"100..400:50\")",
            )),
        };
        match values {
            Ok(values) => axes.push(Axis { key, values }),
            Err(problem) => problems.push(problem),
        }
    }
}

/// A value as `--set` takes it: strings bare (it reads what does not parse as TOML as a string),
/// everything else as TOML.
fn literal(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// `--sweep KEY=V1,V2,...` or `--sweep KEY=START..END:STEP`.
pub fn flag_axis(flag: &str) -> Result<Axis, Problem> {
    let Some((key, values)) = flag.split_once('=') else {
        return Err(Problem::new(
            "",
            "expected KEY=V1,V2,... or KEY=START..END:STEP, e.g. --sweep servers.count=2,4,8",
        ));
    };
    let key = key.trim().to_string();
    let values = if values.contains("..") {
        parse_range(values).map_err(|message| Problem::new(&key, message))?
    } else {
        values.split(',').map(|v| v.trim().to_string()).collect()
    };
    if key.is_empty() || values.iter().any(String::is_empty) {
        return Err(Problem::new(&key, "empty key or value in the sweep"));
    }
    Ok(Axis { key, values })
}

/// `START..END:STEP` (adds STEP) or `START..END:*FACTOR` (multiplies), END included when reached.
fn parse_range(text: &str) -> Result<Vec<String>, String> {
    let usage = || {
        format!(
            "\"{text}\" is not a range: expected START..END:STEP (\"100..400:50\") or START..END:*FACTOR (\"2..64:*2\")"
        )
    };
    let (bounds, step) = text.split_once(':').ok_or_else(usage)?;
    let (start, end) = bounds.split_once("..").ok_or_else(usage)?;
    let number = |s: &str| s.trim().parse::<f64>().ok().filter(|v| v.is_finite());
    let (start, end) = (
        number(start).ok_or_else(usage)?,
        number(end).ok_or_else(usage)?,
    );
    let (factor, step) = match step.trim().strip_prefix('*') {
        Some(factor) => (true, number(factor).ok_or_else(usage)?),
        None => (false, number(step).ok_or_else(usage)?),
    };
    let grows = if factor {
        step > 1.0 && start > 0.0
    } else {
        step > 0.0
    };
    if !grows || end < start {
        return Err(format!(
            "\"{text}\": the range must grow from START to END (a positive step, a factor above 1)"
        ));
    }
    let integers = [start, end, step].iter().all(|v| v.fract() == 0.0);
    let mut values = Vec::new();
    let mut value = start;
    // A little slack so that 0.1..0.3:0.1 includes 0.3 despite rounding.
    while value <= end * (1.0 + 1e-9) + 1e-12 {
        if values.len() == MAX_POINTS {
            return Err(format!("\"{text}\" has more than {MAX_POINTS} values"));
        }
        values.push(if integers {
            format!("{value:.0}")
        } else {
            // Shortest text that reads back as the same float, without drift from repeated adds.
            format!("{}", (value * 1e9).round() / 1e9)
        });
        value = if factor { value * step } else { value + step };
    }
    Ok(values)
}

/// Every combination of the groups' values, the last group varying fastest; one empty point
/// when there is no group.
/// How many points the groups make, if it is at most [`MAX_POINTS`] (checked before they are
/// built: two axes of a thousand values are a million scenarios).
pub fn point_count(groups: &[Group]) -> Result<usize, Problem> {
    let count = groups
        .iter()
        .try_fold(1usize, |count, group| count.checked_mul(group.len()))
        .filter(|count| *count <= MAX_POINTS);
    count.ok_or_else(|| {
        let sizes: Vec<String> = groups.iter().map(|g| g.len().to_string()).collect();
        Problem::new(
            "sweep",
            format!(
                "the sweep has {} points; at most {MAX_POINTS} are run",
                sizes.join(" x ")
            ),
        )
    })
}

pub fn cartesian(groups: &[Group]) -> Vec<Vec<(String, String)>> {
    let mut points = vec![Vec::new()];
    for group in groups {
        points = points
            .into_iter()
            .flat_map(|point| {
                (0..group.len()).map(move |index| {
                    let mut next = point.clone();
                    for axis in &group.0 {
                        next.push((axis.key.clone(), axis.values[index].clone()));
                    }
                    next
                })
            })
            .collect();
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_add_or_multiply_and_include_the_end() {
        assert_eq!(
            parse_range("2..64:*2").unwrap(),
            ["2", "4", "8", "16", "32", "64"]
        );
        assert_eq!(
            parse_range("100..250:50").unwrap(),
            ["100", "150", "200", "250"]
        );
        assert_eq!(parse_range("0.1..0.3:0.1").unwrap(), ["0.1", "0.2", "0.3"]);
        assert!(parse_range("5..1:1").is_err());
        assert!(parse_range("1..5:0").is_err());
        assert!(parse_range("1..5:*1").is_err());
        assert!(parse_range("1..5").is_err());
        assert!(parse_range("0..1:0.000001").is_err(), "too many points");
    }

    #[test]
    fn flags_and_tables_give_axes_and_the_product_varies_the_last_fastest() {
        let servers = flag_axis("servers.count=2,4").unwrap();
        let table: Value = toml::from_str::<toml::Table>(
            "workload.sessions_per_second = \"100..200:100\"\n\"workload.service_time\" = [\"5ms\"]",
        )
        .map(Value::Table)
        .unwrap();
        let mut groups = file_groups(&table).unwrap();
        // Keys in the table's order (sorted), nested tables flattened to dotted keys.
        assert_eq!(groups[0].0[0].key, "workload.sessions_per_second");
        assert_eq!(groups[0].0[0].values, ["100", "200"]);
        assert_eq!(groups[1].0[0].key, "workload.service_time");
        assert_eq!(groups[1].0[0].values, ["5ms"]);
        groups.push(Group(vec![servers]));
        let points = cartesian(&groups);
        assert_eq!(points.len(), 4);
        assert_eq!(points[1][2], ("servers.count".to_string(), "4".to_string()));
        assert_eq!(points[2][0].1, "200");
        assert_eq!(cartesian(&[]), vec![Vec::new()]);
        assert!(flag_axis("servers.count").is_err());

        let zipped: Value = toml::from_str::<toml::Table>(
            "zip = true\nservers.count = [2, 4]\nworkload.sessions_per_second = [100, 200]",
        )
        .map(Value::Table)
        .unwrap();
        let points = cartesian(&file_groups(&zipped).unwrap());
        assert_eq!(points.len(), 2, "zipped keys advance together");
        assert_eq!(points[1][0], ("servers.count".into(), "4".into()));
        assert_eq!(
            points[1][1],
            ("workload.sessions_per_second".into(), "200".into())
        );
        let uneven: Value = toml::from_str::<toml::Table>("zip = true\na = [1, 2]\nb = [1]")
            .map(Value::Table)
            .unwrap();
        assert!(file_groups(&uneven).is_err());
        assert!(flag_axis("servers.count=2,,4").is_err());
    }
}
