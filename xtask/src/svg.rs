//! A hand-written SVG horizontal bar chart of time ratios (sure ÷ corosensei),
//! for the benchmark report: one bar per bench, a vertical line at 1.0, each
//! bar green when it meets its limit and red otherwise.

use std::fmt::Write as _;

use crate::report::format_ratio;

/// One bar: a bench and its time ratio to its peer.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// The text left of the bar.
    pub label: String,
    /// The length of the bar.
    pub ratio: f64,
    /// The largest ratio that counts as good (green): 1.0 unless the bench
    /// has a looser target; marked with a dashed tick when it is not 1.0.
    pub limit: f64,
}

/// Total width of the picture, in pixels.
const WIDTH: f64 = 780.0;
/// Where the bars start (the labels are right-aligned just left of it).
const PLOT_LEFT: f64 = 330.0;
/// Where the longest bar the axis shows ends; past it is room for its value.
const PLOT_RIGHT: f64 = 700.0;
/// Where the first row starts, below the title.
const TOP: f64 = 56.0;
/// Height of one row.
const ROW: f64 = 26.0;
/// Height of a bar within its row.
const BAR: f64 = 16.0;
/// Room below the last row for the axis labels.
const BOTTOM: f64 = 40.0;
/// Fill of a bar that meets its limit.
const GREEN: &str = "#2e7d32";
/// Fill of a bar that does not.
const RED: &str = "#c62828";
/// The axis never ends below this, so 1.0 is always well inside it.
const MIN_AXIS: f64 = 1.5;
/// Nor above this: longer bars are cut there (their value is still printed),
/// so one outlier does not squash every other bar.
const MAX_AXIS: f64 = 3.0;
/// Distance between grid lines, in ratio units.
const GRID_STEP: f64 = 0.5;

/// The chart as an SVG document, titled `title`.
pub fn chart(title: &str, bars: &[Bar]) -> String {
    let rows = bars.len().max(1) as f64;
    let height = TOP + rows * ROW + BOTTOM;
    let largest = bars
        .iter()
        .flat_map(|bar| [bar.ratio, bar.limit])
        .filter(|value| value.is_finite())
        .fold(0.0_f64, f64::max);
    // Round the end of the axis up to a grid line.
    let axis_max = ((largest * 1.1).clamp(MIN_AXIS, MAX_AXIS) / GRID_STEP).ceil() * GRID_STEP;
    let x =
        |ratio: f64| PLOT_LEFT + (ratio.clamp(0.0, axis_max) / axis_max) * (PLOT_RIGHT - PLOT_LEFT);

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, "<title>{}</title>", escape(title));
    let _ = writeln!(
        svg,
        r#"<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="white"/>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="22" font-size="15" font-weight="bold" text-anchor="middle">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
    let _ = writeln!(
        svg,
        r##"<text x="{}" y="40" fill="#555" text-anchor="middle">time ratio, lower is faster; green: meets its target (≤ 1 unless a dashed tick marks another)</text>"##,
        WIDTH / 2.0
    );

    // Grid lines with their values below the last row.
    let plot_bottom = TOP + rows * ROW;
    let mut tick = 0.0;
    while tick <= axis_max + 1e-9 {
        let tx = x(tick);
        let _ = writeln!(
            svg,
            r##"<line x1="{tx:.1}" y1="{TOP}" x2="{tx:.1}" y2="{plot_bottom}" stroke="#ddd"/>"##
        );
        let _ = writeln!(
            svg,
            r##"<text x="{tx:.1}" y="{:.1}" text-anchor="middle" fill="#555">{tick:.1}</text>"##,
            plot_bottom + 16.0
        );
        tick += GRID_STEP;
    }

    if bars.is_empty() {
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">no sure bench with a corosensei peer has results yet</text>"#,
            WIDTH / 2.0,
            TOP + ROW * 0.65
        );
    }
    for (i, bar) in bars.iter().enumerate() {
        let row_top = TOP + i as f64 * ROW;
        let bar_top = row_top + (ROW - BAR) / 2.0;
        let text_y = row_top + ROW / 2.0 + 4.0;
        let fill = if bar.ratio <= bar.limit { GREEN } else { RED };
        let end = x(bar.ratio);
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{text_y:.1}" text-anchor="end">{}</text>"#,
            PLOT_LEFT - 8.0,
            escape(&bar.label)
        );
        let _ = writeln!(
            svg,
            r#"<rect x="{PLOT_LEFT}" y="{bar_top:.1}" width="{:.1}" height="{BAR}" fill="{fill}"/>"#,
            end - PLOT_LEFT
        );
        // A dashed tick at the bar's limit, unless that is the 1.0 line.
        let tick = ((bar.limit - 1.0).abs() > 1e-9 && bar.limit <= axis_max).then(|| x(bar.limit));
        if let Some(lx) = tick {
            let _ = writeln!(
                svg,
                r##"<line x1="{lx:.1}" y1="{:.1}" x2="{lx:.1}" y2="{:.1}" stroke="#222" stroke-width="2" stroke-dasharray="3,2"/>"##,
                bar_top - 3.0,
                bar_top + BAR + 3.0
            );
        }
        // The value goes right of the bar, the 1.0 line and the tick,
        // whichever ends last, so that no line crosses it.
        let label_x = end.max(x(1.0)).max(tick.unwrap_or(0.0)) + 5.0;
        let cut = if bar.ratio > axis_max { " ▸" } else { "" };
        let _ = writeln!(
            svg,
            r#"<text x="{label_x:.1}" y="{text_y:.1}">{}{cut}</text>"#,
            format_ratio(bar.ratio)
        );
    }

    // The line at 1.0, drawn last so that it is on top of the bars.
    let one = x(1.0);
    let _ = writeln!(
        svg,
        r##"<line x1="{one:.1}" y1="{:.1}" x2="{one:.1}" y2="{plot_bottom}" stroke="#000" stroke-width="1.5"/>"##,
        TOP - 4.0
    );
    svg.push_str("</svg>\n");
    svg
}

/// `text` with XML's special characters escaped, for element content and
/// attribute values alike.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One bar per entry, colours by limit, the 1.0 line, escaped labels, and
    /// long bars cut at the end of the axis with their value still shown.
    #[test]
    fn draws_bars() {
        let bars = [
            Bar {
                label: "depth sure/8 <&>".into(),
                ratio: 0.5,
                limit: 1.0,
            },
            Bar {
                label: "create sure/pooled".into(),
                ratio: 1.8,
                limit: 2.0,
            },
            Bar {
                label: "many sure/10000".into(),
                ratio: 7.25,
                limit: 1.1,
            },
        ];
        let svg = chart("sure ÷ corosensei", &bars);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.ends_with("</svg>\n"));
        assert!(svg.contains("depth sure/8 &lt;&amp;&gt;"));
        assert_eq!(svg.matches(&format!("fill=\"{GREEN}\"")).count(), 2);
        assert_eq!(svg.matches(&format!("fill=\"{RED}\"")).count(), 1);
        assert!(svg.contains(">7.25× ▸</text>"), "{svg}");
        assert!(svg.contains(">0.500×</text>"), "{svg}");
        // The axis ends at its maximum: the cut bar reaches the plot's right edge.
        assert!(svg.contains(&format!("width=\"{:.1}\"", PLOT_RIGHT - PLOT_LEFT)));
        // Dashed ticks for the two limits other than 1.0.
        assert_eq!(svg.matches("stroke-dasharray").count(), 2);
    }

    /// An empty chart still is a picture, with a note instead of bars.
    #[test]
    fn draws_an_empty_chart() {
        let svg = chart("t", &[]);
        assert!(svg.contains("no sure bench"));
        assert!(!svg.contains("<rect x=\"330\""));
    }
}
