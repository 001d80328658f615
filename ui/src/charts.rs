//! The dashboard's charts, drawn by plotters into SVG strings (no canvas, so they scale, print
//! and read in a screenshot). Each function takes plain numbers and labels; a chart that
//! cannot be drawn comes back empty rather than breaking the page.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

const FONT: &str = "sans-serif";
const INK: RGBColor = RGBColor(0x33, 0x33, 0x33);
const BAR: RGBColor = RGBColor(0x2f, 0x6f, 0xb3);
const BANDS: [RGBColor; 3] = [
    RGBColor(0x9e, 0xc5, 0xe8),
    RGBColor(0x4f, 0x8f, 0xcf),
    RGBColor(0x1d, 0x4f, 0x91),
];

type Drawn = Result<(), Box<dyn std::error::Error>>;

fn render(
    size: (u32, u32),
    draw: impl FnOnce(DrawingArea<SVGBackend, plotters::coord::Shift>) -> Drawn,
) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        if draw(root).is_err() {
            return String::new();
        }
    }
    svg
}

fn centered(size: u32) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font())
        .color(&INK)
        .pos(Pos::new(HPos::Center, VPos::Center))
}

/// Roughly how wide a caption renders: Latin letters and figures about half the font size
/// wide, CJK characters a full em.
fn text_width(text: &str, size: u32) -> f64 {
    text.chars()
        .map(|c| if c.is_ascii() { 0.56 } else { 1.0 })
        .sum::<f64>()
        * f64::from(size)
}

/// Bars stand on [i, i + 1): the mesh asks for labels every half unit, and only the centres
/// (i + 0.5) carry one.
fn centre_label(labels: &[String], x: f64) -> String {
    let i = (x - 0.5).round();
    if (x - 0.5 - i).abs() < 0.01 && i >= 0.0 {
        labels.get(i as usize).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}

/// Vertical bars, one per label, each captioned with its own text.
pub fn bars(labels: &[String], values: &[f64], captions: &[String]) -> String {
    let n = labels.len().max(1);
    let max = values.iter().copied().fold(0.0, f64::max).max(1.0) * 1.15;
    render((560, 260), |root| {
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(0)
            .build_cartesian_2d(0f64..n as f64, 0f64..max)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .disable_y_axis()
            .x_labels(n * 2 + 1)
            .x_label_formatter(&|x| centre_label(labels, *x))
            .x_label_style((FONT, 13).into_font().color(&INK))
            .draw()?;
        chart.draw_series(values.iter().enumerate().map(|(i, v)| {
            let x = i as f64;
            Rectangle::new([(x + 0.15, 0.0), (x + 0.85, *v)], BAR.filled())
        }))?;
        chart.draw_series(values.iter().zip(captions).enumerate().map(|(i, (v, c))| {
            Text::new(c.clone(), (i as f64 + 0.5, v + max * 0.05), centered(13))
        }))?;
        root.present()?;
        Ok(())
    })
}

/// The funnel: one centred bar per band, top to bottom, as wide as its share of `counts`.
pub fn funnel(labels: &[String], counts: &[u64], captions: &[String]) -> String {
    let max = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let rows = labels.len().max(1) as f64;
    render((560, 200), |root| {
        let mut chart = ChartBuilder::on(&root)
            .margin(6)
            .build_cartesian_2d(-1f64..1f64, 0f64..rows)?;
        for (i, ((label, n), caption)) in labels.iter().zip(counts).zip(captions).enumerate() {
            let y = rows - i as f64;
            // Even an empty band keeps a sliver, so the funnel's shape stays readable.
            let half = (*n as f64 / max).max(0.04) * 0.6;
            let color = BANDS[i % BANDS.len()];
            chart.draw_series([Rectangle::new(
                [(-half, y - 0.9), (half, y - 0.1)],
                color.filled(),
            )])?;
            let text = format!("{label}: {caption}");
            // Plot units are 274 px each (-1..1 over 548 px): a caption wider than its band
            // goes beside it in ink, so a small bottom band does not hide its own figures.
            let inside = text_width(&text, 13) + 12.0 <= 2.0 * half * 274.0;
            let (at, style) = if inside {
                // Dark bands carry white text; the light top band, ink.
                (0.0, centered(13).color(if i == 0 { &INK } else { &WHITE }))
            } else {
                (
                    half + 0.03,
                    centered(13).pos(Pos::new(HPos::Left, VPos::Center)),
                )
            };
            chart.draw_series([Text::new(text, (at, y - 0.5), style)])?;
        }
        root.present()?;
        Ok(())
    })
}

/// One line per series over the weeks (e.g. interactions of each rep).
pub fn lines(weeks: &[String], series: &[(String, Vec<u32>)]) -> String {
    let n = weeks.len().max(2);
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1) as f64
        * 1.1;
    render((560, 260), |root| {
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .margin_right(24)
            .x_label_area_size(28)
            .y_label_area_size(36)
            .build_cartesian_2d(0f64..(n - 1) as f64, 0f64..max)?;
        chart
            .configure_mesh()
            .x_labels(n)
            .x_label_formatter(&|x| weeks.get(x.round() as usize).cloned().unwrap_or_default())
            .y_label_formatter(&|y| format!("{y:.0}"))
            .label_style((FONT, 12).into_font().color(&INK))
            .light_line_style(RGBColor(0xee, 0xee, 0xee))
            .draw()?;
        for (i, (name, values)) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    values
                        .iter()
                        .enumerate()
                        .map(|(w, v)| (w as f64, f64::from(*v))),
                    color.stroke_width(2),
                ))?
                .label(name.clone())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 14, y)], color.stroke_width(2))
                });
        }
        if !series.is_empty() {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(RGBColor(0xcc, 0xcc, 0xcc))
                .label_font((FONT, 12).into_font().color(&INK))
                .position(SeriesLabelPosition::UpperLeft)
                .draw()?;
        }
        root.present()?;
        Ok(())
    })
}

/// Stacked bars over the weeks: one layer per series (e.g. interactions of each kind), with a
/// legend.
pub fn stacked(weeks: &[String], series: &[(String, Vec<u32>)]) -> String {
    let n = weeks.len().max(1);
    let totals: Vec<u32> = (0..n)
        .map(|w| {
            series
                .iter()
                .map(|(_, v)| v.get(w).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    let max = f64::from(totals.iter().copied().max().unwrap_or(0).max(1)) * 1.15;
    render((560, 280), |root| {
        // The legend beside the bars, not over them.
        let (plot, legend) = root.split_horizontally(400);
        let mut chart = ChartBuilder::on(&plot)
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(36)
            .build_cartesian_2d(0f64..n as f64, 0f64..max)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n * 2 + 1)
            .x_label_formatter(&|x| centre_label(weeks, *x))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .label_style((FONT, 12).into_font().color(&INK))
            .light_line_style(RGBColor(0xee, 0xee, 0xee))
            .draw()?;
        let mut base = vec![0f64; n];
        for (i, (name, values)) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart.draw_series((0..n).map(|w| {
                let v = f64::from(values.get(w).copied().unwrap_or(0));
                let bar = Rectangle::new(
                    [(w as f64 + 0.15, base[w]), (w as f64 + 0.85, base[w] + v)],
                    color.filled(),
                );
                base[w] += v;
                bar
            }))?;
            let y = 12 + 17 * i as i32;
            legend.draw(&Rectangle::new([(6, y - 5), (16, y + 5)], color.filled()))?;
            legend.draw(&Text::new(
                name.clone(),
                (22, y),
                TextStyle::from((FONT, 12).into_font())
                    .color(&INK)
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
        }
        root.present()?;
        Ok(())
    })
}

/// A 2 × 2 matrix: `cells` row by row (top-left, top-right, bottom-left, bottom-right), each
/// shaded by its count.
pub fn matrix(cells: &[(String, u64)]) -> String {
    let max = cells.iter().map(|c| c.1).max().unwrap_or(0).max(1) as f64;
    render((320, 260), |root| {
        let mut chart = ChartBuilder::on(&root)
            .margin(6)
            .build_cartesian_2d(0f64..2f64, 0f64..2f64)?;
        for (i, (label, n)) in cells.iter().take(4).enumerate() {
            let (col, row) = ((i % 2) as f64, 1.0 - (i / 2) as f64);
            let shade = 0.12 + 0.78 * (*n as f64 / max);
            chart.draw_series([Rectangle::new(
                [(col + 0.03, row + 0.03), (col + 0.97, row + 0.97)],
                BAR.mix(shade).filled(),
            )])?;
            let text = if shade > 0.5 { &WHITE } else { &INK };
            chart.draw_series([
                Text::new(
                    label.clone(),
                    (col + 0.5, row + 0.62),
                    centered(13).color(text),
                ),
                Text::new(
                    n.to_string(),
                    (col + 0.5, row + 0.35),
                    centered(20).color(text),
                ),
            ])?;
        }
        root.present()?;
        Ok(())
    })
}
