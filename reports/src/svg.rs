//! Charts as inline SVG, drawn in Rust: no JavaScript, no charting library, nothing fetched.
//!
//! Four shapes cover what the reports plot, each a function from plain data to one
//! `<svg>` element:
//!
//! - [`bars`]: a horizontal bar per item, longest first as given, e.g. scenario durations.
//! - [`percentile_plot`]: values over a percentile axis that stretches the tail, so p50,
//!   p90, p99 and p99.9 are equally far apart (one "nine" each, as HdrHistogram plots
//!   do); one line per series, e.g. scenario durations, or per-agent latency percentiles
//!   read from an HDR histogram.
//! - [`line_chart`]: values over a linear x axis, one line per series, e.g. the target's
//!   RSS over time.
//! - [`timeline`]: events as markers over time, one row per lane, e.g. the requests each
//!   stub received.
//!
//! Values carry a [`Unit`] that formats axis ticks and hover titles (`250ms`, `1.5s`,
//! `12 MiB`). Colours are a [`Tone`] (a meaning: good, bad, …) or a series index into a
//! palette safe for colour-blind readers, and are written inline, so a chart reads the
//! same wherever it lands, printed included; a meaning is never carried by colour alone
//! (every mark has a `<title>`, every chart a legend).
//!
//! The output is for inline use in HTML: no XML declaration and no `xmlns` (the HTML
//! parser puts `<svg>` in the SVG namespace itself). Sizes are in a `viewBox`, so CSS
//! scales a chart to its container. Every label is cleaned and escaped; labels too long
//! for their column are cut with `…` and given whole in the hover title. Non-finite values
//! are skipped; empty input gives a small chart that says "no data". Nothing panics.

use std::fmt::Write as _;

use crate::text;

/// The width of every chart, in viewBox units (CSS pixels at 100%).
const WIDTH: f64 = 760.0;
/// The font size of labels; widths of text are estimated from it.
const FONT: f64 = 12.0;
/// An estimate of the average advance of a character at [`FONT`], for layout.
const CHAR_WIDTH: f64 = 6.6;
const TEXT: &str = "#1f2328";
const AXIS: &str = "#8c959f";
const GRID: &str = "#e4e8ec";
/// The most points a line of [`xy_plot`] draws a dot for; a denser line gets one, at its
/// highest point.
const MAX_DOTS: usize = 40;

/// Series colours, after Okabe and Ito's palette for colour-blind readers (yellow left
/// out: it does not read on white).
const PALETTE: [&str; 7] = [
    "#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000",
];

/// What a value measures, for its labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// `250µs`, `12ms`, `1.5s`, `2m 5s`.
    Seconds,
    /// `512 B`, `1.5 KiB`, `12 MiB`, `2 GiB`.
    Bytes,
    /// `3`, `2.5`.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "for plain counts (requests, tokens)")
    )]
    Count,
    /// `97.5%`.
    #[cfg_attr(not(test), expect(dead_code, reason = "for rates and ratios"))]
    Percent,
}

impl Unit {
    /// `v` in this unit, short and with trailing zeros trimmed.
    pub(crate) fn format(self, v: f64) -> String {
        if !v.is_finite() {
            return "?".to_owned();
        }
        match self {
            Unit::Seconds => {
                let a = v.abs();
                if a == 0.0 {
                    "0s".to_owned()
                } else if a < 1e-3 {
                    format!("{}µs", trim(v * 1e6, 1))
                } else if a < 1.0 {
                    format!("{}ms", trim(v * 1e3, 1))
                } else if a < 60.0 {
                    format!("{}s", trim(v, 3))
                } else {
                    let minutes = (v / 60.0).trunc();
                    format!("{}m {}s", trim(minutes, 0), trim(v - minutes * 60.0, 0))
                }
            }
            Unit::Bytes => {
                let mut v = v;
                for unit in ["B", "KiB", "MiB", "GiB"] {
                    if v.abs() < 1024.0 {
                        return format!("{} {unit}", trim(v, 1));
                    }
                    v /= 1024.0;
                }
                format!("{} TiB", trim(v, 1))
            }
            Unit::Count => trim(v, 2),
            Unit::Percent => format!("{}%", trim(v, 1)),
        }
    }
}

/// `v` with at most `decimals` decimals, trailing zeros (and a trailing dot) removed.
fn trim(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// A colour with a meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tone {
    /// Passed; a 2xx response.
    Good,
    /// Failed; a 5xx response.
    Bad,
    /// Could not run.
    Error,
    /// Flaky; a 4xx response.
    Warn,
    /// Skipped; a response without a status.
    Muted,
    /// Neutral; a 1xx or 3xx response.
    Info,
}

impl Tone {
    pub(crate) fn color(self) -> &'static str {
        match self {
            Tone::Good => "#1a7f37",
            Tone::Bad => "#cf222e",
            Tone::Error => "#8250df",
            Tone::Warn => "#bf8700",
            Tone::Muted => "#8c959f",
            Tone::Info => "#0969da",
        }
    }
}

/// One bar of [`bars`].
#[derive(Debug, Clone)]
pub(crate) struct Bar {
    pub label: String,
    pub value: f64,
    pub tone: Tone,
    /// The hover title; the label and the formatted value when empty.
    pub title: String,
    /// A link for the bar, e.g. `#s-3` to the scenario's details.
    pub href: Option<String>,
}

/// A line of [`percentile_plot`] or [`line_chart`]: `(x, y)` points in x order.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// One row of [`timeline`].
#[derive(Debug, Clone)]
pub(crate) struct Lane {
    pub label: String,
    pub marks: Vec<Mark>,
}

/// One event on a [`Lane`].
#[derive(Debug, Clone)]
pub(crate) struct Mark {
    /// When, in the timeline's unit, from its start.
    pub at: f64,
    pub tone: Tone,
    pub title: String,
}

/// A horizontal bar chart, bars in the order given, value labels at their ends, and a
/// legend of `legend` tones on top. Negative and non-finite values are drawn as zero.
pub(crate) fn bars(title: &str, items: &[Bar], unit: Unit, legend: &[(Tone, &str)]) -> String {
    if items.is_empty() {
        return no_data(title);
    }
    const LABEL: f64 = 270.0;
    const ROW: f64 = 20.0;
    const VALUE: f64 = 70.0;
    let top = legend_height(legend) + 4.0;
    let height = top + ROW * items.len() as f64 + 4.0;
    let max = items
        .iter()
        .map(|b| finite_or_zero(b.value))
        .fold(0.0, f64::max);
    let span = WIDTH - LABEL - VALUE;
    let mut svg = open(title, height);
    draw_legend(&mut svg, legend.iter().map(|&(t, l)| (t.color(), l)));
    for (i, bar) in items.iter().enumerate() {
        let y = top + ROW * i as f64;
        let value = finite_or_zero(bar.value).max(0.0);
        let w = if max > 0.0 { value / max * span } else { 0.0 };
        let formatted = unit.format(value);
        let hover = if bar.title.is_empty() {
            format!("{} — {formatted}", bar.label)
        } else {
            bar.title.clone()
        };
        if let Some(href) = &bar.href {
            let _ = write!(svg, r#"<a href="{}">"#, text::html(href));
        }
        let _ = write!(
            svg,
            r#"<g><title>{}</title><rect x="0" y="{y:.1}" width="{WIDTH}" height="{ROW}" fill="transparent"/>"#,
            text::html(&hover)
        );
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="{TEXT}">{}</text>"#,
            LABEL - 8.0,
            y + 14.0,
            text::html(&cut(&bar.label, ((LABEL - 12.0) / CHAR_WIDTH) as usize))
        );
        let _ = write!(
            svg,
            r#"<rect x="{LABEL}" y="{:.1}" width="{:.1}" height="14" rx="2" fill="{}"/>"#,
            y + 3.0,
            w.max(1.0),
            bar.tone.color()
        );
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" fill="{TEXT}">{}</text></g>"#,
            LABEL + w.max(1.0) + 5.0,
            y + 14.0,
            text::html(&formatted)
        );
        if bar.href.is_some() {
            svg.push_str("</a>");
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Values over percentiles: each series' points are `(percentile in 0..=100, value)`.
///
/// The x axis counts nines: p0 at 0, p90 at 1, p99 at 2, p99.9 at 3, …, as far as the
/// data goes (at least p99); p100 is drawn one step further and labelled `max`. The y
/// axis starts at zero.
pub(crate) fn percentile_plot(title: &str, series: &[Series], y: Unit) -> String {
    let points = series.iter().flat_map(|s| &s.points);
    let finite: Vec<f64> = points
        .clone()
        .filter(|(p, v)| p.is_finite() && v.is_finite())
        .map(|&(p, _)| p)
        .collect();
    let top = finite
        .iter()
        .filter(|&&p| p < 100.0)
        .map(|&p| (nines(p) - 1e-9).ceil())
        .fold(2.0, f64::max);
    let has_max = finite.iter().any(|&p| p >= 100.0);
    let end = if has_max { top + 1.0 } else { top };
    let place = |p: f64| if p >= 100.0 { end } else { nines(p).min(top) };

    let mut ticks: Vec<(f64, String)> = vec![(0.0, "p0".into()), (nines(50.0), "p50".into())];
    for n in 1..=(top as u32) {
        ticks.push((f64::from(n), percentile_name(n)));
    }
    if has_max {
        ticks.push((end, "max".into()));
    }
    let axis = XAxis {
        max: end,
        ticks,
        place: &place,
        format_x: &|p| {
            if p >= 100.0 {
                "max".to_owned()
            } else {
                format!("p{}", trim(p, 4))
            }
        },
    };
    xy_plot(title, series, &axis, y)
}

/// Values over a linear x axis from zero, e.g. memory over time: each series' points are
/// `(x, y)` in `x` and `y` units.
pub(crate) fn line_chart(title: &str, series: &[Series], x: Unit, y: Unit) -> String {
    let max = series
        .iter()
        .flat_map(|s| &s.points)
        .filter(|(x, v)| x.is_finite() && v.is_finite())
        .map(|&(x, _)| x)
        .fold(0.0, f64::max);
    let (max, steps) = nice_ticks_in(x, max);
    let axis = XAxis {
        max,
        ticks: steps.into_iter().map(|t| (t, x.format(t))).collect(),
        place: &|v| v.clamp(0.0, max),
        format_x: &|v| x.format(v),
    };
    xy_plot(title, series, &axis, y)
}

/// Events over time, one row per lane in the order given, markers coloured by tone, and
/// a legend of `legend` tones on top. Times are in `unit` from the start (zero).
pub(crate) fn timeline(title: &str, lanes: &[Lane], unit: Unit, legend: &[(Tone, &str)]) -> String {
    if lanes.iter().all(|l| l.marks.is_empty()) {
        return no_data(title);
    }
    const LABEL: f64 = 150.0;
    const ROW: f64 = 22.0;
    const RIGHT: f64 = 16.0;
    let top = legend_height(legend) + 4.0;
    let axis_y = top + ROW * lanes.len() as f64;
    let height = axis_y + 28.0;
    let latest = lanes
        .iter()
        .flat_map(|l| &l.marks)
        .map(|m| finite_or_zero(m.at))
        .fold(0.0, f64::max);
    let (max, ticks) = nice_ticks_in(unit, latest);
    let span = WIDTH - LABEL - RIGHT;
    let x_of = |t: f64| LABEL + finite_or_zero(t).clamp(0.0, max) / max * span;

    let mut svg = open(title, height);
    draw_legend(&mut svg, legend.iter().map(|&(t, l)| (t.color(), l)));
    for t in &ticks {
        let x = x_of(*t);
        let _ = write!(
            svg,
            r#"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{axis_y:.1}" stroke="{GRID}"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="{TEXT}">{}</text>"#,
            axis_y + 16.0,
            text::html(&unit.format(*t))
        );
    }
    let _ = write!(
        svg,
        r#"<line x1="{LABEL}" y1="{axis_y:.1}" x2="{:.1}" y2="{axis_y:.1}" stroke="{AXIS}"/>"#,
        WIDTH - RIGHT
    );
    for (i, lane) in lanes.iter().enumerate() {
        let mid = top + ROW * i as f64 + ROW / 2.0;
        let _ = write!(
            svg,
            r#"<g><title>{}</title><text x="{:.1}" y="{:.1}" text-anchor="end" fill="{TEXT}">{}</text></g><line x1="{LABEL}" y1="{mid:.1}" x2="{:.1}" y2="{mid:.1}" stroke="{GRID}" stroke-dasharray="2 3"/>"#,
            text::html(&lane.label),
            LABEL - 8.0,
            mid + 4.0,
            text::html(&cut(&lane.label, ((LABEL - 12.0) / CHAR_WIDTH) as usize)),
            WIDTH - RIGHT
        );
        for mark in &lane.marks {
            let _ = write!(
                svg,
                r##"<circle cx="{:.1}" cy="{mid:.1}" r="5" fill="{}" stroke="#fff"><title>{}</title></circle>"##,
                x_of(mark.at),
                mark.tone.color(),
                text::html(&mark.title)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// How an [`xy_plot`] lays out x: the axis end, the ticks, where a value goes on the axis
/// (in axis units, `0..=max`), and how a value reads in a hover title.
struct XAxis<'a> {
    max: f64,
    ticks: Vec<(f64, String)>,
    place: &'a dyn Fn(f64) -> f64,
    format_x: &'a dyn Fn(f64) -> String,
}

/// Lines with dots over `axis`, the y axis from zero to a round number past the largest
/// value, a legend of series on top.
fn xy_plot(title: &str, series: &[Series], axis: &XAxis<'_>, y: Unit) -> String {
    let finite = |&&(a, b): &&(f64, f64)| a.is_finite() && b.is_finite();
    if series.iter().all(|s| !s.points.iter().any(|p| finite(&p))) {
        return no_data(title);
    }
    const LEFT: f64 = 64.0;
    const RIGHT: f64 = 24.0;
    const PLOT_HEIGHT: f64 = 200.0;
    let labels: Vec<(&str, &str)> = series
        .iter()
        .enumerate()
        .map(|(i, s)| (PALETTE[i % PALETTE.len()], s.label.as_str()))
        .collect();
    let top = legend_height_of(labels.iter().map(|&(_, l)| l)) + 8.0;
    let bottom = top + PLOT_HEIGHT;
    let height = bottom + 30.0;
    let highest = series
        .iter()
        .flat_map(|s| s.points.iter().filter(finite))
        .map(|&(_, v)| v)
        .fold(0.0, f64::max);
    let (y_max, y_ticks) = nice_ticks_in(y, highest);
    let span = WIDTH - LEFT - RIGHT;
    let x_max = if axis.max > 0.0 { axis.max } else { 1.0 };
    let px = |x: f64| LEFT + (axis.place)(x) / x_max * span;
    let px_axis = |a: f64| LEFT + a / x_max * span;
    let py = |v: f64| bottom - v.clamp(0.0, y_max) / y_max * PLOT_HEIGHT;

    let mut svg = open(title, height);
    draw_legend(&mut svg, labels.iter().copied());
    for t in &y_ticks {
        let yy = py(*t);
        let _ = write!(
            svg,
            r#"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="{GRID}"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="{TEXT}">{}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            text::html(&y.format(*t))
        );
    }
    for (a, label) in &axis.ticks {
        let x = px_axis(*a);
        let _ = write!(
            svg,
            r#"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="{GRID}"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="{TEXT}">{}</text>"#,
            bottom + 18.0,
            text::html(label)
        );
    }
    let _ = write!(
        svg,
        r#"<path d="M{LEFT} {top:.1}V{bottom:.1}H{:.1}" fill="none" stroke="{AXIS}"/>"#,
        WIDTH - RIGHT
    );
    for (i, s) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let points: Vec<(f64, f64)> = s.points.iter().filter(finite).copied().collect();
        if points.len() > 1 {
            let path: Vec<String> = points
                .iter()
                .map(|&(x, v)| format!("{:.1},{:.1}", px(x), py(v)))
                .collect();
            let _ = write!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
                path.join(" ")
            );
        }
        // A dense series (RSS sampled over time) is a line: a dot at each point would
        // smear it. Its highest point keeps a dot, so the peak still has a hover title.
        let dots: Vec<(f64, f64)> = if points.len() > MAX_DOTS {
            points
                .iter()
                .copied()
                .reduce(|a, b| if b.1 > a.1 { b } else { a })
                .into_iter()
                .collect()
        } else {
            points
        };
        for (x, v) in dots {
            let _ = write!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{color}"><title>{}</title></circle>"#,
                px(x),
                py(v),
                text::html(&format!(
                    "{} {}: {}",
                    s.label,
                    (axis.format_x)(x),
                    y.format(v)
                ))
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// How many nines `p` has: `-log10(1 - p/100)`; p90 → 1, p99 → 2. At most 6.
fn nines(p: f64) -> f64 {
    let rest = (1.0 - p.clamp(0.0, 100.0) / 100.0).max(1e-6);
    -rest.log10()
}

/// `p90`, `p99`, `p99.9`, … for 1, 2, 3, … nines.
fn percentile_name(nines: u32) -> String {
    match nines {
        0 => "p0".to_owned(),
        1 => "p90".to_owned(),
        n => format!(
            "p99{}{}",
            if n > 2 { "." } else { "" },
            "9".repeat(n as usize - 2)
        ),
    }
}

/// A round axis end at or past `max` (1 when `max` is not positive) and ticks from zero
/// to it, about five, at steps of 1, 2, 2.5 or 5 times a power of ten.
fn nice_ticks(max: f64) -> (f64, Vec<f64>) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let raw = max / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * magnitude);
    let n = (max / step - 1e-9).ceil().max(1.0);
    let end = n * step;
    let ticks = (0..=n as usize).map(|i| i as f64 * step).collect();
    (end, ticks)
}

/// [`nice_ticks`] in `unit`'s terms: bytes step in round KiB, MiB, GiB.
fn nice_ticks_in(unit: Unit, max: f64) -> (f64, Vec<f64>) {
    let scale = match unit {
        Unit::Bytes if max.is_finite() => {
            let mut scale = 1.0;
            while max / scale >= 1024.0 && scale < 1024f64.powi(4) {
                scale *= 1024.0;
            }
            scale
        }
        _ => 1.0,
    };
    let (end, ticks) = nice_ticks(max / scale);
    (end * scale, ticks.into_iter().map(|t| t * scale).collect())
}

fn finite_or_zero(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
}

/// `s` on one line, cut to `max` characters with `…` when longer.
fn cut(s: &str, max: usize) -> String {
    let s = text::one_line(s);
    if s.chars().count() <= max {
        return s;
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The opening `<svg>` tag, `height` tall, with `title` as its accessible name.
fn open(title: &str, height: f64) -> String {
    format!(
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {height:.0}" width="{WIDTH}" height="{height:.0}" role="img" aria-label="{}" font-family="system-ui, -apple-system, 'Segoe UI', sans-serif" font-size="{FONT}"><title>{}</title>"#,
        text::html(title),
        text::html(title)
    )
}

fn no_data(title: &str) -> String {
    let mut svg = open(title, 40.0);
    let _ = write!(
        svg,
        r#"<text x="8" y="24" fill="{AXIS}">no data</text></svg>"#
    );
    svg
}

/// Where legend entries go: `(x, row)` for each, wrapping at the chart's width.
fn legend_layout<'a>(labels: impl Iterator<Item = &'a str>) -> Vec<(f64, usize, String)> {
    let mut x = 0.0;
    let mut row = 0;
    let mut out = Vec::new();
    for label in labels {
        let label = cut(label, 60);
        let w = 18.0 + label.chars().count() as f64 * CHAR_WIDTH + 16.0;
        if x > 0.0 && x + w > WIDTH {
            x = 0.0;
            row += 1;
        }
        out.push((x, row, label));
        x += w;
    }
    out
}

fn legend_height(legend: &[(Tone, &str)]) -> f64 {
    legend_height_of(legend.iter().map(|&(_, l)| l))
}

fn legend_height_of<'a>(labels: impl Iterator<Item = &'a str>) -> f64 {
    match legend_layout(labels).last() {
        None => 0.0,
        Some(&(_, row, _)) => 20.0 * (row + 1) as f64,
    }
}

/// Swatches and labels along the top, `(colour, label)` each.
fn draw_legend<'a>(svg: &mut String, entries: impl Iterator<Item = (&'a str, &'a str)>) {
    let (colors, labels): (Vec<&str>, Vec<&str>) = entries.unzip();
    for ((x, row, label), color) in legend_layout(labels.into_iter()).into_iter().zip(colors) {
        let y = 20.0 * row as f64;
        let _ = write!(
            svg,
            r#"<rect x="{:.1}" y="{:.1}" width="12" height="12" rx="2" fill="{color}"/><text x="{:.1}" y="{:.1}" fill="{TEXT}">{}</text>"#,
            x + 1.0,
            y + 3.0,
            x + 18.0,
            y + 13.0,
            text::html(&label)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_read_short() {
        assert_eq!(Unit::Seconds.format(0.0), "0s");
        assert_eq!(Unit::Seconds.format(0.00025), "250µs");
        assert_eq!(Unit::Seconds.format(0.25), "250ms");
        assert_eq!(Unit::Seconds.format(0.0125), "12.5ms");
        assert_eq!(Unit::Seconds.format(1.5), "1.5s");
        assert_eq!(Unit::Seconds.format(125.0), "2m 5s");
        assert_eq!(Unit::Bytes.format(512.0), "512 B");
        assert_eq!(Unit::Bytes.format(12.0 * 1024.0 * 1024.0), "12 MiB");
        assert_eq!(Unit::Count.format(2.5), "2.5");
        assert_eq!(Unit::Percent.format(97.5), "97.5%");
        assert_eq!(Unit::Seconds.format(f64::NAN), "?");
    }

    #[test]
    fn ticks_are_round_and_cover_the_max() {
        assert_eq!(nice_ticks(2.345), (2.5, vec![0.0, 0.5, 1.0, 1.5, 2.0, 2.5]));
        assert_eq!(
            nice_ticks(10.0),
            (10.0, vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0])
        );
        assert_eq!(nice_ticks(0.0).0, 1.0);
        assert_eq!(nice_ticks(f64::INFINITY).0, 1.0);
        let (end, ticks) = nice_ticks(0.0123);
        assert!(end >= 0.0123 && ticks.len() <= 7, "{end} {ticks:?}");
    }

    #[test]
    fn nines_spread_the_tail() {
        assert_eq!(nines(0.0), 0.0);
        assert!((nines(90.0) - 1.0).abs() < 1e-9);
        assert!((nines(99.9) - 3.0).abs() < 1e-9);
        assert!((nines(100.0) - 6.0).abs() < 1e-9);
        assert_eq!(percentile_name(1), "p90");
        assert_eq!(percentile_name(2), "p99");
        assert_eq!(percentile_name(4), "p99.99");
    }

    #[test]
    fn cut_marks_what_it_cuts() {
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut("a\nlonger label", 8), "a longe…");
    }

    #[test]
    fn percentile_plot_labels_the_tail_and_max() {
        let svg = percentile_plot(
            "durations",
            &[Series {
                label: "all <scenarios>".into(),
                points: vec![(50.0, 0.1), (99.9, 0.5), (100.0, 2.0), (f64::NAN, 1.0)],
            }],
            Unit::Seconds,
        );
        for label in [">p50<", ">p90<", ">p99<", ">p99.9<", ">max<", ">2s<"] {
            assert!(svg.contains(label), "{label} in {svg}");
        }
        assert!(svg.contains("all &lt;scenarios&gt; p99.9: 500ms"), "{svg}");
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
    }

    #[test]
    fn line_chart_and_empty_inputs_draw_something() {
        let rss = Series {
            label: "rss".into(),
            points: vec![(0.0, 1e6), (1.0, 3e6), (2.5, 2e6)],
        };
        let svg = line_chart("memory", &[rss], Unit::Seconds, Unit::Bytes);
        assert!(
            svg.contains("<polyline") && svg.contains(">3 MiB<"),
            "{svg}"
        );
        assert!(
            svg.contains(">1 MiB<") && svg.contains("rss 1s: 2.9 MiB"),
            "{svg}"
        );
        for svg in [
            line_chart("empty", &[], Unit::Seconds, Unit::Count),
            percentile_plot("empty", &[], Unit::Percent),
            bars("empty", &[], Unit::Seconds, &[]),
            timeline("empty", &[], Unit::Seconds, &[]),
        ] {
            assert!(svg.contains("no data"), "{svg}");
        }
    }

    #[test]
    fn a_dense_line_has_one_dot_at_its_peak() {
        let points: Vec<(f64, f64)> = (0..100)
            .map(|i| (f64::from(i), if i == 70 { 9e6 } else { 1e6 }))
            .collect();
        let svg = line_chart(
            "memory",
            &[Series {
                label: "rss".into(),
                points,
            }],
            Unit::Seconds,
            Unit::Bytes,
        );
        assert_eq!(svg.matches("<circle").count(), 1, "{svg}");
        assert!(svg.contains("<title>rss 1m 10s: 8.6 MiB</title>"), "{svg}");
    }

    #[test]
    fn bars_link_and_escape() {
        let svg = bars(
            "durations",
            &[
                Bar {
                    label: "<script>alert(1)</script>".into(),
                    value: 2.0,
                    tone: Tone::Bad,
                    title: String::new(),
                    href: Some("#s-0".into()),
                },
                Bar {
                    label: "zero".into(),
                    value: f64::NAN,
                    tone: Tone::Good,
                    title: "zero took nothing".into(),
                    href: None,
                },
            ],
            Unit::Seconds,
            &[(Tone::Bad, "failed"), (Tone::Good, "passed")],
        );
        assert!(!svg.contains("<script"), "{svg}");
        assert!(svg.contains(r##"<a href="#s-0">"##), "{svg}");
        assert!(svg.contains("<title>zero took nothing</title>"), "{svg}");
        assert!(svg.contains(">failed</text>"), "{svg}");
    }

    #[test]
    fn timeline_puts_marks_in_lanes() {
        let svg = timeline(
            "requests",
            &[
                Lane {
                    label: "llm".into(),
                    marks: vec![Mark {
                        at: 0.5,
                        tone: Tone::Good,
                        title: "200 json".into(),
                    }],
                },
                Lane {
                    label: "executor".into(),
                    marks: vec![Mark {
                        at: 1.2,
                        tone: Tone::Bad,
                        title: "503".into(),
                    }],
                },
            ],
            Unit::Seconds,
            &[],
        );
        assert_eq!(svg.matches("<circle").count(), 2, "{svg}");
        assert!(svg.contains(">llm</text>") && svg.contains(">executor</text>"));
    }
}
