//! SVG charts of a λ sweep, drawn with plotters' SVG backend (no fonts or bitmaps needed: the
//! viewer renders the text).
//!
//! - [`sweep_chart_svg`]: macro-F1 against λ, validation and test curves, the chosen λ marked
//!   (the paper's Figures 4–6, with medvec's choice on validation).
//! - [`sweep_bands_svg`]: the same over seeds, mean curves with mean ± sd bands;
//! - [`scatter_svg`]: both modalities in the PCA-2 plane before and after the shift (the
//!   paper's Figures 2–3), from [`ShiftScatter`].
//!
//! Colours are fixed (the constants below) so a script or a test can find each series.

use crate::error::{QueryError, Result};
use crate::repeat::{CurveBand, Spread};
use crate::training::{LambdaResult, ShiftScatter};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Validation curve and its points.
pub const VALIDATION_COLOR: RGBColor = RGBColor(0x1F, 0x77, 0xB4);
/// Test curve and its points.
pub const TEST_COLOR: RGBColor = RGBColor(0xFF, 0x7F, 0x0E);
/// The chosen-λ marker.
pub const CHOSEN_COLOR: RGBColor = RGBColor(0xD6, 0x27, 0x28);
/// Image points of the scatter.
pub const IMAGE_COLOR: RGBColor = RGBColor(0x2C, 0xA0, 0x2C);
/// Text points of the scatter.
pub const TEXT_COLOR: RGBColor = RGBColor(0x94, 0x67, 0xBD);

fn plot_err(e: impl std::fmt::Display) -> QueryError {
    QueryError::Invalid(format!("plot: {e}"))
}

/// `lo..hi` padded by 5% (or ±`min_pad` when flat).
fn padded(values: impl Iterator<Item = f64>, min_pad: f64) -> std::ops::Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let pad = ((hi - lo) * 0.05).max(min_pad);
    lo - pad..hi + pad
}

/// The metric-vs-λ chart as an SVG document: one line + points per curve (validation, and
/// test when measured), a vertical line and a ring at the chosen λ.
///
/// ```
/// use medvec_query::plot::sweep_chart_svg;
/// use medvec_query::training::LambdaResult;
/// let curve: Vec<LambdaResult> = [(-1.0, 0.7), (0.0, 0.8), (1.0, 0.75)]
///     .iter()
///     .map(|&(lambda, f1)| LambdaResult { lambda, val_macro_f1: f1, test_macro_f1: Some(f1 - 0.01), test_accuracy: None })
///     .collect();
/// let svg = sweep_chart_svg(&curve, 0.0).unwrap();
/// assert!(svg.starts_with("<svg") && svg.contains("polyline"));
/// ```
pub fn sweep_chart_svg(curve: &[LambdaResult], chosen: f32) -> Result<String> {
    if curve.is_empty() {
        return Err(QueryError::Invalid("plot: no λ in the sweep".into()));
    }
    let val = Series {
        points: curve
            .iter()
            .map(|c| (f64::from(c.lambda), c.val_macro_f1))
            .collect(),
        band: Vec::new(),
    };
    let test = Series {
        points: curve
            .iter()
            .filter_map(|c| Some((f64::from(c.lambda), c.test_macro_f1?)))
            .collect(),
        band: Vec::new(),
    };
    sweep_chart(&val, &test, chosen)
}

/// The chart of a sweep repeated over seeds: the mean curves, each with a shaded band of
/// mean ± one standard deviation over the seeds, and the chosen λ marked.
///
/// ```
/// use medvec_query::plot::sweep_bands_svg;
/// use medvec_query::repeat::{spread, CurveBand};
/// let bands: Vec<CurveBand> = [-1.0f32, 0.0, 1.0].iter().map(|&lambda| CurveBand {
///     lambda, val_macro_f1: spread(&[0.7, 0.72, 0.74], 0), test_macro_f1: Some(spread(&[0.68, 0.7, 0.75], 1)),
/// }).collect();
/// let svg = sweep_bands_svg(&bands, 0.0).unwrap();
/// assert!(svg.contains("polygon") && svg.contains("polyline"));
/// ```
pub fn sweep_bands_svg(bands: &[CurveBand], chosen: f32) -> Result<String> {
    if bands.is_empty() {
        return Err(QueryError::Invalid("plot: no λ in the sweep".into()));
    }
    let series = |pick: &dyn Fn(&CurveBand) -> Option<Spread>| Series {
        points: bands
            .iter()
            .filter_map(|b| Some((f64::from(b.lambda), pick(b)?.mean)))
            .collect(),
        band: bands
            .iter()
            .filter_map(|b| {
                let s = pick(b)?;
                Some((f64::from(b.lambda), s.mean - s.sd, s.mean + s.sd))
            })
            .collect(),
    };
    let val = series(&|b| Some(b.val_macro_f1));
    let test = series(&|b| b.test_macro_f1);
    sweep_chart(&val, &test, chosen)
}

/// One curve of the sweep chart, with its band (λ, low, high) when repeated over seeds.
struct Series {
    points: Vec<(f64, f64)>,
    band: Vec<(f64, f64, f64)>,
}

fn sweep_chart(val: &Series, test: &Series, chosen: f32) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let x = padded(val.points.iter().map(|p| p.0), 0.1);
        let band_ends = val.band.iter().chain(&test.band).flat_map(|b| [b.1, b.2]);
        let y = padded(
            val.points
                .iter()
                .chain(&test.points)
                .map(|p| p.1)
                .chain(band_ends),
            0.01,
        );
        let mut chart = ChartBuilder::on(&root)
            .caption("macro-F1 against the shift λ", ("sans-serif", 20))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(60)
            .build_cartesian_2d(x, y.clone())
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("λ")
            .y_desc("macro-F1")
            .draw()
            .map_err(plot_err)?;
        for (series, color, label) in [
            (val, VALIDATION_COLOR, "validation"),
            (test, TEST_COLOR, "test"),
        ] {
            let points = &series.points;
            if points.is_empty() {
                continue;
            }
            if !series.band.is_empty() {
                // mean ± sd: the upper edge left to right, then the lower edge back.
                let outline: Vec<(f64, f64)> = series
                    .band
                    .iter()
                    .map(|b| (b.0, b.2))
                    .chain(series.band.iter().rev().map(|b| (b.0, b.1)))
                    .collect();
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        outline,
                        color.mix(0.2).filled(),
                    )))
                    .map_err(plot_err)?;
            }
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(plot_err)?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(plot_err)?;
        }
        let c = f64::from(chosen);
        let at = val
            .points
            .iter()
            .find(|p| p.0 == c)
            .map_or(y.start, |p| p.1);
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(c, y.start), (c, y.end)],
                CHOSEN_COLOR.stroke_width(1),
            )))
            .map_err(plot_err)?
            .label(format!("chosen on validation: λ = {chosen}"))
            .legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], CHOSEN_COLOR.stroke_width(1))
            });
        chart
            .draw_series(std::iter::once(Circle::new(
                (c, at),
                7,
                CHOSEN_COLOR.stroke_width(2),
            )))
            .map_err(plot_err)?;
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// Two side-by-side panels, "before" (λ = 0) and "after" (the scatter's λ), with one point per
/// row and modality, on common axes so the movement is visible (example at
/// [`shift_scatter`](crate::training::shift_scatter)).
pub fn scatter_svg(scatter: &ShiftScatter, image_name: &str, text_name: &str) -> Result<String> {
    let all = scatter.before.iter().chain(&scatter.after).flatten();
    let x = padded(all.clone().map(|p| p[0]), 0.01);
    let y = padded(all.map(|p| p[1]), 0.01);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1100, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let panels = root.split_evenly((1, 2));
        let titles = [
            "before the shift (λ = 0)".to_string(),
            format!("after the shift (λ = {})", scatter.lambda),
        ];
        for ((area, points), title) in panels
            .iter()
            .zip([&scatter.before, &scatter.after])
            .zip(titles)
        {
            let names = [image_name, text_name];
            draw_panel(area, points, &names, &title, (x.clone(), y.clone()))?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

fn draw_panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    points: &[Vec<[f64; 2]>; 2],
    names: &[&str; 2],
    title: &str,
    (x, y): (std::ops::Range<f64>, std::ops::Range<f64>),
) -> Result<()> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(x, y)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("PC 1 (fitted on unshifted vectors)")
        .y_desc("PC 2")
        .draw()
        .map_err(plot_err)?;
    for (modality, color) in [(0, IMAGE_COLOR), (1, TEXT_COLOR)] {
        chart
            .draw_series(
                points[modality]
                    .iter()
                    .map(|p| Circle::new((p[0], p[1]), 2, color.mix(0.6).filled())),
            )
            .map_err(plot_err)?
            .label(names[modality])
            .legend(move |(x, y)| Rectangle::new([(x, y - 4), (x + 8, y + 4)], color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;
    Ok(())
}
