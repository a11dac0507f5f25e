//! The benchmark report's chart of time ratios (sure ÷ its peer), drawn
//! with plotters as SVG: one horizontal bar per bench, a line at 1.0, each
//! bar green when it meets its limit and red otherwise.

use plotters::coord::types::RangedCoordf64;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

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

/// Width of the picture, in pixels.
const WIDTH: u32 = 780;
/// Room for the title and the key above the plot.
const TITLE: u32 = 56;
/// Height of one row.
const ROW: u32 = 26;
/// Room below the rows for the axis values.
const BOTTOM: u32 = 30;
/// Width of the labels' column left of the plot.
const LABELS: u32 = 320;
/// Room right of the plot for the value of a bar cut at the end of the axis.
const RIGHT: u32 = 70;
/// Space above and below a bar within its row.
const GAP: u32 = 5;
/// Fill of a bar that meets its limit.
const GREEN: RGBColor = RGBColor(0x2e, 0x7d, 0x32);
/// Fill of a bar that does not.
const RED: RGBColor = RGBColor(0xc6, 0x28, 0x28);
/// Grey of the grid and the axis text.
const GREY: RGBColor = RGBColor(0x55, 0x55, 0x55);
/// The axis never ends below this, so 1.0 is always well inside it.
const MIN_AXIS: f64 = 1.5;
/// Nor above this: longer bars are cut there (their value is still printed),
/// so one outlier does not squash every other bar.
const MAX_AXIS: f64 = 3.0;
/// Distance between grid lines, in ratio units.
const GRID_STEP: f64 = 0.5;
/// What the axis shows, and what the colours and ticks mean.
const AXIS: &str =
    "time ratio, lower is faster; green: meets its target (≤ 1 unless a dashed tick marks another)";

/// The chart's coordinates: ratio across, rows down.
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The chart as an SVG document, titled `title`.
pub fn chart(title: &str, bars: &[Bar]) -> String {
    let mut svg = String::new();
    if let Err(err) = draw(&mut svg, title, bars) {
        // Drawing into a string does not fail; say so in the picture if it did.
        svg = format!("<svg xmlns=\"http://www.w3.org/2000/svg\"><!-- {err} --></svg>\n");
    }
    if !svg.ends_with('\n') {
        svg.push('\n');
    }
    svg
}

/// The end of the ratio axis: a grid line past the longest bar or tick,
/// within [`MIN_AXIS`] and [`MAX_AXIS`].
fn axis_end(bars: &[Bar]) -> f64 {
    let largest = bars
        .iter()
        .flat_map(|bar| [bar.ratio, bar.limit])
        .filter(|value| value.is_finite())
        .fold(0.0_f64, f64::max);
    ((largest * 1.1).clamp(MIN_AXIS, MAX_AXIS) / GRID_STEP).ceil() * GRID_STEP
}

/// Draws the chart into `svg`.
fn draw(svg: &mut String, title: &str, bars: &[Bar]) -> Result<(), Box<dyn std::error::Error>> {
    let rows = u32::try_from(bars.len().max(1))?;
    let root =
        SVGBackend::with_string(svg, (WIDTH, TITLE + rows * ROW + BOTTOM)).into_drawing_area();
    root.fill(&WHITE)?;
    let axis_max = axis_end(bars);
    // Plotters' font sizes are points: 1.24 of them make a pixel of SVG text.
    let font = |size, colour: &RGBColor| ("sans-serif", size).into_font().color(colour);
    let centre = Pos::new(HPos::Center, VPos::Center);
    let middle = i32::try_from(WIDTH / 2)?;
    let bold = TextStyle::from(("sans-serif", 19).into_font().style(FontStyle::Bold));
    root.draw(&Text::new(title, (middle, 18), bold.pos(centre)))?;
    root.draw(&Text::new(AXIS, (middle, 38), font(15, &GREY).pos(centre)))?;
    // Rows go down from 0 at the top: row `i` spans `i..i + 1`.
    let mut chart = ChartBuilder::on(&root)
        .margin_top(TITLE)
        .margin_right(RIGHT)
        .x_label_area_size(BOTTOM)
        .y_label_area_size(LABELS)
        .build_cartesian_2d(0.0..axis_max, f64::from(rows)..0.0)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd))
        .axis_style(TRANSPARENT)
        .x_labels(((axis_max / GRID_STEP).round() as usize) + 1)
        .x_label_formatter(&|value| format!("{value:.1}"))
        .x_label_style(font(15, &GREY))
        // The labels are drawn with their bars, centred on them.
        .y_label_formatter(&|_| String::new())
        .draw()?;

    if bars.is_empty() {
        let note = "no sure bench with a peer has results yet";
        let at = i32::try_from(TITLE + ROW / 2)?;
        root.draw(&Text::new(note, (middle, at), font(15, &BLACK).pos(centre)))?;
    }
    for (row, bar) in bars.iter().enumerate() {
        draw_bar(&mut chart, row as f64, bar, axis_max)?;
    }

    // The line at 1.0, drawn last so that it is on top of the bars.
    let one = [(1.0, 0.0), (1.0, f64::from(rows))];
    chart.draw_series([PathElement::new(one, BLACK.stroke_width(2))])?;
    root.present()?;
    Ok(())
}

/// Draws one bar in the row spanning `row..row + 1`: its label, the bar, its
/// limit's tick and its value.
fn draw_bar(
    chart: &mut Chart,
    row: f64,
    bar: &Bar,
    axis_max: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    let fill = if bar.ratio <= bar.limit { GREEN } else { RED };
    let end = bar.ratio.clamp(0.0, axis_max);
    let mut rect = Rectangle::new([(0.0, row), (end, row + 1.0)], fill.filled());
    rect.set_margin(GAP, GAP, 0, 0);
    chart.draw_series([rect])?;
    let middle = |x: f64| EmptyElement::at((x, row + 0.5));
    let text =
        |pos| TextStyle::from(("sans-serif", 15).into_font()).pos(Pos::new(pos, VPos::Center));
    let label = Text::new(bar.label.clone(), (-8, 0), text(HPos::Right));
    chart.draw_series([middle(0.0) + label])?;
    // A dashed tick at the bar's limit, unless that is the 1.0 line.
    let tick = ((bar.limit - 1.0).abs() > 1e-9 && bar.limit <= axis_max).then_some(bar.limit);
    if let Some(limit) = tick {
        let half = i32::try_from(ROW / 2 - GAP + 3)?;
        let dashes = DashedPathElement::new([(0, -half), (0, half)], 3, 2, BLACK.stroke_width(2));
        chart.draw_series([middle(limit) + dashes])?;
    }
    // The value goes right of the bar, the 1.0 line and the tick, whichever
    // ends last, so that no line crosses it.
    let cut = if bar.ratio > axis_max { " ▸" } else { "" };
    let value = Text::new(
        format!("{}{cut}", format_ratio(bar.ratio)),
        (5, 0),
        text(HPos::Left),
    );
    chart.draw_series([middle(end.max(1.0).max(tick.unwrap_or(0.0))) + value])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// One bar per entry, colours by limit, escaped labels, and long bars cut
    /// at the end of the axis with their value still shown.
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
        assert!(svg.starts_with("<svg "), "{svg}");
        assert!(svg.ends_with("</svg>\n"), "{svg}");
        assert!(svg.contains("sure ÷ corosensei"), "{svg}");
        assert!(svg.contains("depth sure/8 &lt;&amp;&gt;"), "{svg}");
        let fill = |colour: RGBColor| {
            let (r, g, b) = colour.rgb();
            format!("fill=\"#{r:02X}{g:02X}{b:02X}\"")
        };
        assert_eq!(svg.matches(&fill(GREEN)).count(), 2, "{svg}");
        assert_eq!(svg.matches(&fill(RED)).count(), 1, "{svg}");
        let texts = texts(&svg);
        for text in [
            "7.25× ▸",
            "0.500×",
            "1.80×",
            "many sure/10000",
            "0.0",
            "1.0",
            "3.0",
        ] {
            assert!(texts.iter().any(|t| t == text), "no {text:?} in {texts:?}");
        }
        // The axis ends at its maximum.
        assert_eq!(axis_end(&bars), MAX_AXIS);
        // The cut bar is the longest, as long as the plot is wide.
        let widths: Vec<f64> = svg
            .split("<rect ")
            .filter(|rect| rect.contains(&fill(RED)))
            .filter_map(|rect| {
                rect.split("width=\"")
                    .nth(1)?
                    .split('"')
                    .next()?
                    .parse()
                    .ok()
            })
            .collect();
        let plot = f64::from(WIDTH - LABELS - RIGHT);
        assert!(widths.iter().all(|&w| (w - plot).abs() < 3.0), "{widths:?}");
        // The 1.0 line, and dashed ticks for the two limits other than 1.0.
        assert_eq!(black_verticals(&svg).len(), 3, "{svg}");
    }

    /// The text of each `<text>` element of `svg`, trimmed.
    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|text| {
                let body = text.split_once('>')?.1.split_once("</text>")?.0;
                Some(body.trim().to_owned())
            })
            .collect()
    }

    /// The distinct x positions of the black vertical lines of `svg`: the
    /// 1.0 line and the dashes of the ticks.
    fn black_verticals(svg: &str) -> BTreeSet<String> {
        svg.lines()
            .filter(|line| line.contains("stroke=\"#000000\""))
            .filter_map(|line| {
                let points = line.split("points=\"").nth(1)?.split('"').next()?;
                let xs: BTreeSet<_> = points
                    .split_whitespace()
                    .filter_map(|point| Some(point.split_once(',')?.0.to_owned()))
                    .collect();
                (xs.len() == 1).then(|| xs.into_iter().next()).flatten()
            })
            .collect()
    }

    /// The axis leaves room past the longest bar and tick, on grid lines.
    #[test]
    fn sizes_the_axis() {
        let bar = |ratio, limit| Bar {
            label: String::new(),
            ratio,
            limit,
        };
        assert_eq!(axis_end(&[]), MIN_AXIS);
        assert_eq!(axis_end(&[bar(0.9, 1.0)]), MIN_AXIS);
        assert_eq!(axis_end(&[bar(1.3, 2.0)]), 2.5);
        assert_eq!(axis_end(&[bar(f64::INFINITY, 1.0)]), MIN_AXIS);
    }

    /// An empty chart still is a picture, with a note instead of bars.
    #[test]
    fn draws_an_empty_chart() {
        let svg = chart("t", &[]);
        assert!(texts(&svg).iter().any(|t| t.starts_with("no sure bench")));
        assert!(!svg.contains(&format!("#{:02X}", GREEN.0)));
        assert_eq!(black_verticals(&svg).len(), 1, "{svg}");
    }
}
