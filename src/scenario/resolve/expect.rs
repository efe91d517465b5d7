//! `[[expect]]` and `[slo]`: assertions on summary.csv figures.

use super::Resolver;
use crate::metrics::{METRICS, metric_index};
use crate::scenario::schema::*;
use crate::scenario::*;
use crate::text::suggestion;

impl Resolver<'_> {
    pub(super) fn expectation(
        &mut self,
        file: &ExpectFile,
        path: &str,
        topologies: &[Topology],
    ) -> Expectation {
        self.expectation_at(file, &format!("{path}.metric"), path, topologies)
    }

    /// `metric_path`: where the metric's name was written (a key of `[slo]`, or `metric`).
    pub(super) fn expectation_at(
        &mut self,
        file: &ExpectFile,
        metric_path: &str,
        path: &str,
        topologies: &[Topology],
    ) -> Expectation {
        let every = file.topology == "*";
        if !every && !topologies.iter().any(|t| t.name == file.topology) {
            let names: Vec<&str> = topologies.iter().map(|t| t.name.as_str()).collect();
            self.problems.push(Problem::new(
                format!("{path}.topology"),
                format!(
                    "no topology is named \"{}\"{}: expected \"*\" or one of {}",
                    file.topology,
                    suggestion(&file.topology, names.iter().copied()),
                    names.join(", ")
                ),
            ));
        }
        if metric_index(&file.metric).is_none() {
            self.problems.push(Problem::new(
                metric_path.to_string(),
                format!(
                    "\"{}\" is not a summary.csv figure{}: expected one of {}",
                    file.metric,
                    suggestion(&file.metric, METRICS.iter().map(|m| m.name)),
                    METRICS
                        .iter()
                        .map(|m| m.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        for (key, bound) in [
            ("min", file.min),
            ("max", file.max),
            ("equals", file.equals),
        ] {
            if let Some(bound) = bound {
                self.check(
                    bound.is_finite(),
                    format!("{path}.{key}"),
                    if bound.is_nan() {
                        "must be a number, got NaN (a NaN bound never fails)".to_string()
                    } else {
                        format!("must be a finite number, got {bound}")
                    },
                );
            }
        }
        self.check(
            file.min.is_some() || file.max.is_some() || file.equals.is_some(),
            path.to_string(),
            "an expectation needs at least one of min, max or equals",
        );
        if let (Some(min), Some(max)) = (file.min, file.max) {
            self.check(
                min <= max,
                format!("{path}.max"),
                "max must be at least min",
            );
        }
        self.check(
            !file.confidence || file.min.is_some() || file.max.is_some(),
            format!("{path}.confidence"),
            "confidence applies to min and max (an interval cannot equal a value)",
        );
        Expectation {
            topology: (!every).then(|| file.topology.clone()),
            metric: file.metric.clone(),
            min: file.min,
            max: file.max,
            equals: file.equals,
            confidence: file.confidence,
        }
    }
}
