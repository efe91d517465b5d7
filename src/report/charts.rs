//! The report's charts, drawn by plotters into SVG text: no system library, no font file (the
//! SVG names a generic font family and the browser draws the text).
//!
//! Each function takes plain series, so a chart is tested without a results folder. A topology
//! keeps its colour in every chart: its index in summary.csv picks it from [`PALETTE`].

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, ValueFormatter};
use plotters::prelude::*;
use std::ops::Range;

/// A linear axis whose ticks are given, not chosen: the tail axis' p50, p90, p99, ... and a bar
/// chart's categories.
#[derive(Clone, Debug)]
struct KeyAxis {
    range: Range<f64>,
    keys: Vec<f64>,
}

impl Ranged for KeyAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let share = (value - self.range.start) / (self.range.end - self.range.start);
        limit.0 + (share * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.keys.clone()
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

/// Tableau 10: distinguishable, and readable by most colour-blind readers.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(78, 121, 167),
    RGBColor(242, 142, 43),
    RGBColor(225, 87, 89),
    RGBColor(118, 183, 178),
    RGBColor(89, 161, 79),
    RGBColor(237, 201, 72),
    RGBColor(176, 122, 161),
    RGBColor(255, 157, 167),
    RGBColor(156, 117, 95),
    RGBColor(186, 176, 172),
];

/// A colour that is the same for the same index in every chart.
pub fn colour(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

const WIDTH: u32 = 900;
const HEIGHT: u32 = 420;
const PANEL_HEIGHT: u32 = 230;
const FONT: &str = "sans-serif";

#[derive(Debug, thiserror::Error)]
#[error("cannot draw the chart \"{chart}\": {message}")]
pub struct ChartError {
    chart: String,
    message: String,
}

/// One line of a chart: its legend name, its colour index and its (x, y) points.
#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    pub colour: usize,
    pub points: Vec<(f64, f64)>,
}

/// One point of a sweep series: the swept value's position, the mean and its 95% half-width.
#[derive(Clone, Copy, Debug)]
pub struct Band {
    pub x: f64,
    pub mean: f64,
    pub half_width: f64,
}

/// A sweep series: a line with a 95% band and, where the `[slo]` breaks, its knee.
#[derive(Clone, Debug)]
pub struct SweepSeries {
    pub name: String,
    pub colour: usize,
    pub points: Vec<Band>,
    pub knee: Option<f64>,
}

/// The horizontal axis of a sweep: numbers, or names drawn at positions 0, 1, 2, ...
#[derive(Clone, Debug)]
pub enum SweepAxis {
    Numeric,
    Named(Vec<String>),
}

/// One panel of a timeline: a title, the vertical axis' label and its lines.
#[derive(Clone, Debug)]
pub struct Panel {
    pub title: String,
    pub y_label: String,
    pub lines: Vec<Series>,
}

/// One stack of a bar chart: a cause, its colour, and its height in each bar.
#[derive(Clone, Debug)]
pub struct Stack {
    pub name: String,
    pub colour: RGBColor,
    pub values: Vec<f64>,
}

/// Draws into an SVG string and turns plotters' errors into a [`ChartError`] naming the chart.
fn svg(
    chart: &str,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, plotters::coord::Shift>) -> DrawResult,
) -> Result<String, ChartError> {
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
        let drawn = root
            .fill(&WHITE)
            .map_err(|e| e.to_string())
            .and_then(|()| draw(&root))
            .and_then(|()| root.present().map_err(|e| e.to_string()));
        drawn.map_err(|message| ChartError {
            chart: chart.to_string(),
            message,
        })?;
    }
    Ok(text)
}

type DrawResult = Result<(), String>;

fn failed<E: std::fmt::Display>(error: E) -> String {
    error.to_string()
}

/// The vertical position of percentile `p` on a tail axis: each "nine" is one unit (p90 at 1,
/// p99 at 2, p99.9 at 3), so the tail is as wide as the body.
pub fn tail_position(percentile: f64) -> f64 {
    -(1.0 - percentile / 100.0).log10()
}

/// The percentile at a tail position, as a label: `p50`, `p99.9`.
fn tail_label(position: f64) -> String {
    let percentile = 100.0 * (1.0 - 10f64.powf(-position));
    let text = format!("{percentile:.2}");
    format!("p{}", text.trim_end_matches('0').trim_end_matches('.'))
}

/// Latency against percentile from p50 to p99.99, one line per topology; latency on a log axis.
/// `series` hold (percentile, latency ms) points.
pub fn latency_cdf(series: &[Series]) -> Result<String, ChartError> {
    let lines: Vec<Series> = series
        .iter()
        .map(|s| Series {
            points: s
                .points
                .iter()
                .filter(|(p, ms)| (50.0..=99.99).contains(p) && *ms > 0.0 && ms.is_finite())
                .map(|&(p, ms)| (ms, tail_position(p)))
                .collect(),
            ..s.clone()
        })
        .collect();
    let (low, high) = extent(lines.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
    let x_range = (low * 0.8).max(1e-3)..(high * 1.25).max(low * 2.0).max(2e-3);
    let key_points = vec![tail_position(50.0), 1.0, 2.0, 3.0, 4.0];
    svg("latency distribution", (WIDTH, HEIGHT), |root| {
        let mut chart = framed(root, "Latency distribution (tail)")
            .build_cartesian_2d(
                x_range.log_scale(),
                KeyAxis {
                    range: tail_position(50.0)..4.0,
                    keys: key_points,
                },
            )
            .map_err(failed)?;
        chart
            .configure_mesh()
            .x_desc("latency (ms, log scale)")
            .y_desc("percentile")
            .x_label_formatter(&|ms| short_number(*ms))
            .y_label_formatter(&|position| tail_label(*position))
            .label_style((FONT, 14))
            .max_light_lines(2)
            .draw()
            .map_err(failed)?;
        for line in &lines {
            let colour = colour(line.colour);
            chart
                .draw_series(LineSeries::new(line.points.clone(), colour.stroke_width(2)))
                .map_err(failed)?
                .label(line.name.clone())
                .legend(line_key(colour));
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })
}

/// A timeline of one topology: panels stacked over a shared time axis, each fault's window
/// (start to recovery) shaded in every panel.
pub fn timeline(
    title: &str,
    panels: &[Panel],
    windows: &[(f64, f64)],
    time: Range<f64>,
) -> Result<String, ChartError> {
    let height = PANEL_HEIGHT * panels.len().max(1) as u32 + 40;
    svg(title, (WIDTH, height), |root| {
        let root = root.titled(title, (FONT, 20)).map_err(failed)?;
        let areas = root.split_evenly((panels.len().max(1), 1));
        for (panel, area) in panels.iter().zip(&areas) {
            draw_panel(panel, area, windows, time.clone())?;
        }
        Ok(())
    })
}

fn draw_panel(
    panel: &Panel,
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    windows: &[(f64, f64)],
    time: Range<f64>,
) -> DrawResult {
    let (_, high) = extent(
        panel
            .lines
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1)),
    );
    let top = if high > 0.0 { high * 1.1 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FONT, 16))
        .margin(8)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(time.clone(), 0.0..top)
        .map_err(failed)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc(panel.y_label.as_str())
        .x_label_formatter(&|s| short_number(*s))
        .y_label_formatter(&|v| short_number(*v))
        .label_style((FONT, 13))
        .max_light_lines(2)
        .draw()
        .map_err(failed)?;
    let shade = RGBColor(120, 120, 120).mix(0.18);
    chart
        .draw_series(windows.iter().map(|&(start, end)| {
            Rectangle::new(
                [(start.max(time.start), 0.0), (end.min(time.end), top)],
                shade.filled(),
            )
        }))
        .map_err(failed)?;
    for line in &panel.lines {
        let colour = colour(line.colour);
        let points = line
            .points
            .iter()
            .copied()
            .filter(|(t, v)| time.contains(t) && v.is_finite());
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(failed)?
            .label(line.name.clone())
            .legend(line_key(colour));
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
}

/// One figure of a sweep against the swept key: a line per series with its 95% band, the knee
/// (the last point before the `[slo]` breaks) ringed and labelled.
pub fn sweep(
    title: &str,
    x_label: &str,
    y_label: &str,
    axis: &SweepAxis,
    series: &[SweepSeries],
) -> Result<String, ChartError> {
    let (x_low, x_high) = extent(series.iter().flat_map(|s| s.points.iter().map(|p| p.x)));
    let (_, y_high) = extent(
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.mean + p.half_width.max(0.0))),
    );
    let pad = ((x_high - x_low) * 0.05).max(0.5);
    let x_range = (x_low - pad)..(x_high + pad);
    let y_range = 0.0..(if y_high > 0.0 { y_high * 1.1 } else { 1.0 });
    svg(title, (WIDTH, HEIGHT), |root| {
        let mut chart = framed(root, title)
            .build_cartesian_2d(x_range, y_range)
            .map_err(failed)?;
        let names = match axis {
            SweepAxis::Named(names) => Some(names),
            SweepAxis::Numeric => None,
        };
        let x_format = |x: &f64| match names {
            Some(names) if x.fract() == 0.0 && *x >= 0.0 => {
                names.get(*x as usize).cloned().unwrap_or_default()
            }
            Some(_) => String::new(),
            None => short_number(*x),
        };
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .x_label_formatter(&x_format)
            .y_label_formatter(&|v| short_number(*v))
            .label_style((FONT, 14))
            .max_light_lines(2)
            .draw()
            .map_err(failed)?;
        for (index, line) in series.iter().enumerate() {
            let colour = colour(line.colour);
            let band: Vec<(f64, f64)> = line
                .points
                .iter()
                .filter(|p| p.half_width.is_finite())
                .map(|p| (p.x, p.mean + p.half_width))
                .chain(
                    line.points
                        .iter()
                        .rev()
                        .filter(|p| p.half_width.is_finite())
                        .map(|p| (p.x, (p.mean - p.half_width).max(0.0))),
                )
                .collect();
            if band.len() >= 4 {
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        band,
                        colour.mix(0.2).filled(),
                    )))
                    .map_err(failed)?;
            }
            let points: Vec<(f64, f64)> = line.points.iter().map(|p| (p.x, p.mean)).collect();
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)).point_size(3))
                .map_err(failed)?
                .label(line.name.clone())
                .legend(line_key(colour));
            if let Some(knee) = line.knee
                && let Some(&(x, y)) = points.iter().find(|(x, _)| *x == knee)
            {
                chart
                    .draw_series([EmptyElement::at((x, y))
                        + Circle::new((0, 0), 8, colour.stroke_width(2))
                        // Lines sharing a knee would print their labels on top of each other.
                        + Text::new("knee", (10, -18 - 16 * index as i32), (FONT, 14))])
                    .map_err(failed)?;
            }
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })
}

/// Stacked bars, one per category (a topology), one stack per cause.
pub fn stacked_bars(
    title: &str,
    y_label: &str,
    categories: &[String],
    stacks: &[Stack],
) -> Result<String, ChartError> {
    let totals: Vec<f64> = (0..categories.len())
        .map(|i| stacks.iter().map(|s| s.values[i].max(0.0)).sum())
        .collect();
    let (_, high) = extent(totals.iter().copied());
    let y_range = 0.0..(if high > 0.0 { high * 1.15 } else { 1.0 });
    let count = categories.len();
    svg(title, (WIDTH, HEIGHT), |root| {
        let mut chart = framed(root, title)
            .build_cartesian_2d(
                KeyAxis {
                    range: -0.5..count as f64 - 0.5,
                    keys: (0..count).map(|i| i as f64).collect(),
                },
                y_range,
            )
            .map_err(failed)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("topology")
            .y_desc(y_label)
            .x_label_formatter(&|x| category_label(categories, *x))
            .y_label_formatter(&|v| short_number(*v))
            .label_style((FONT, 14))
            .max_light_lines(2)
            .draw()
            .map_err(failed)?;
        let mut base = vec![0.0; count];
        for stack in stacks {
            let colour = stack.colour;
            let bars: Vec<Rectangle<(f64, f64)>> = (0..count)
                .filter(|&i| stack.values[i] > 0.0)
                .map(|i| {
                    let (x, bottom) = (i as f64, base[i]);
                    Rectangle::new(
                        [(x - 0.3, bottom), (x + 0.3, bottom + stack.values[i])],
                        colour.filled(),
                    )
                })
                .collect();
            for (i, value) in stack.values.iter().enumerate() {
                base[i] += value.max(0.0);
            }
            chart
                .draw_series(bars)
                .map_err(failed)?
                .label(stack.name.clone())
                .legend(box_key(colour));
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}

/// Bars of a figure per server, side by side per topology: (server, value) points per series.
pub fn server_bars(title: &str, y_label: &str, series: &[Series]) -> Result<String, ChartError> {
    let servers = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0 as usize + 1))
        .max()
        .unwrap_or(1);
    let (_, high) = extent(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
    let y_range = 0.0..(if high > 0.0 { high * 1.15 } else { 1.0 });
    let width = 0.8 / series.len().max(1) as f64;
    svg(title, (WIDTH, HEIGHT), |root| {
        let mut chart = framed(root, title)
            .build_cartesian_2d(-0.5..servers as f64 - 0.5, y_range)
            .map_err(failed)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("server")
            .y_desc(y_label)
            .x_label_formatter(&|x| {
                if x.fract() == 0.0 {
                    format!("{x:.0}")
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|v| short_number(*v))
            .label_style((FONT, 14))
            .max_light_lines(2)
            .draw()
            .map_err(failed)?;
        for (k, line) in series.iter().enumerate() {
            let colour = colour(line.colour);
            let offset = -0.4 + width * k as f64;
            chart
                .draw_series(line.points.iter().map(|&(server, value)| {
                    let left = server + offset;
                    Rectangle::new([(left, 0.0), (left + width * 0.9, value)], colour.filled())
                }))
                .map_err(failed)?
                .label(line.name.clone())
                .legend(box_key(colour));
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}

/// A chart's frame: its title above, room for the axes' labels.
fn framed<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
) -> ChartBuilder<'a, 'static, DB> {
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70);
    builder
}

/// A legend entry for a line.
fn line_key(colour: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(3))
}

/// A legend entry for a bar.
fn box_key(colour: RGBColor) -> impl Fn((i32, i32)) -> Rectangle<(i32, i32)> {
    move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled())
}

fn draw_legend<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> DrawResult
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(160, 160, 160))
        .draw()
        .map_err(failed)
}

fn category_label(categories: &[String], x: f64) -> String {
    if x.fract() == 0.0 && x >= 0.0 {
        categories.get(x as usize).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}

/// The smallest and largest finite value (0..1 for none).
fn extent(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (low, high) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if low.is_finite() {
        (low, high)
    } else {
        (0.0, 1.0)
    }
}

/// A tick label: at most 4 significant digits, thousands as `k`, millions as `M`.
pub fn short_number(value: f64) -> String {
    let magnitude = value.abs();
    let (scaled, suffix) = if magnitude >= 1e6 {
        (value / 1e6, "M")
    } else if magnitude >= 1e4 {
        (value / 1e3, "k")
    } else {
        (value, "")
    };
    let decimals = match scaled.abs() {
        m if m >= 100.0 || m == 0.0 => 0,
        m if m >= 10.0 => 1,
        m if m >= 1.0 => 2,
        m if m >= 0.01 => 3,
        _ => 4,
    };
    let text = format!("{scaled:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_axis_gives_each_nine_one_unit() {
        assert!((tail_position(99.0) - 2.0).abs() < 1e-12);
        assert_eq!(tail_label(tail_position(50.0)), "p50");
        assert_eq!(tail_label(3.0), "p99.9");
        assert_eq!(tail_label(4.0), "p99.99");
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(short_number(1200.0), "1200");
        assert_eq!(short_number(25_000.0), "25k");
        assert_eq!(short_number(0.5), "0.5");
        assert_eq!(short_number(3_500_000.0), "3.5M");
        assert_eq!(short_number(0.0), "0");
    }
}
