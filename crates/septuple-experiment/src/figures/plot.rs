//! The plotting primitives: line plots with markers and overlaid histograms, written as SVG
//! with plotters' SVG backend (no system library, no font files).

use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Errors while drawing a figure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FigureError {
    /// Nothing finite to draw.
    #[error("figure '{title}' has no finite points to draw")]
    Empty {
        /// The figure's title.
        title: String,
    },
    /// The drawing backend failed (for example the file could not be written).
    #[error("figure '{title}' could not be drawn to {path}: {message}")]
    Draw {
        /// The figure's title.
        title: String,
        /// The target file.
        path: String,
        /// The backend's message.
        message: String,
    },
}

/// One curve of a [`LinePlot`].
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    /// The legend entry.
    pub label: String,
    /// The points, in drawing order.
    pub points: Vec<(f64, f64)>,
    /// Draw the points as dots instead of joining them.
    pub dots: bool,
}

impl Curve {
    /// A joined curve.
    pub fn line(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Curve {
            label: label.into(),
            points,
            dots: false,
        }
    }

    /// A curve drawn as dots.
    pub fn dots(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Curve {
            label: label.into(),
            points,
            dots: true,
        }
    }
}

/// A line plot: curves, optional marked points, axis labels.
#[derive(Clone, Debug, PartialEq)]
pub struct LinePlot {
    /// The title.
    pub title: String,
    /// Label of the x axis.
    pub x_label: String,
    /// Label of the y axis.
    pub y_label: String,
    /// The curves.
    pub curves: Vec<Curve>,
    /// Marked points (e.g. stationary points), drawn as crosses with their label.
    pub markers: Vec<(f64, f64, String)>,
}

/// Overlaid histograms over common bins, drawn as step outlines.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramPlot {
    /// The title.
    pub title: String,
    /// Label of the x axis.
    pub x_label: String,
    /// The bin edges (ascending, at least two).
    pub edges: Vec<f64>,
    /// (legend entry, count per bin) for each histogram.
    pub groups: Vec<(String, Vec<f64>)>,
    /// Vertical marks (e.g. gap positions), with their label.
    pub marks: Vec<(f64, String)>,
}

// Eight colours: a sweep's figures draw one series per architecture.
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
];

fn padded(lo: f64, hi: f64) -> (f64, f64) {
    if hi > lo {
        let p = 0.05 * (hi - lo);
        (lo - p, hi + p)
    } else {
        let p = 0.5 * lo.abs().max(1.0);
        (lo - p, hi + p)
    }
}

fn bounds<'a>(points: impl Iterator<Item = &'a (f64, f64)>) -> Option<(f64, f64, f64, f64)> {
    let mut b: Option<(f64, f64, f64, f64)> = None;
    for &(x, y) in points {
        if x.is_finite() && y.is_finite() {
            b = Some(match b {
                None => (x, x, y, y),
                Some((a, c, d, e)) => (a.min(x), c.max(x), d.min(y), e.max(y)),
            });
        }
    }
    b
}

fn draw_err(title: &str, path: &Path, e: impl std::fmt::Display) -> FigureError {
    FigureError::Draw {
        title: title.to_string(),
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;
type ErrFn<'e> = dyn Fn(&dyn std::fmt::Display) -> FigureError + 'e;

/// Title, axis labels and ranges of a chart.
struct Axes<'s> {
    title: &'s str,
    x_label: &'s str,
    y_label: &'s str,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
}

impl Axes<'_> {
    /// A white canvas with the caption, the axes and the mesh drawn.
    fn chart<'a, 'b>(
        self,
        root: &'a DrawingArea<SVGBackend<'b>, Shift>,
        err: &ErrFn<'_>,
    ) -> Result<Chart<'a, 'b>, FigureError> {
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(root)
            .caption(self.title, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(self.x, self.y)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc(self.x_label)
            .y_desc(self.y_label)
            .draw()
            .map_err(|e| err(&e))?;
        Ok(chart)
    }
}

/// Draw the legend at `position` and write the file.
fn finish<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    position: SeriesLabelPosition,
    err: &ErrFn<'_>,
) -> Result<(), FigureError> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(position)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

impl LinePlot {
    /// Write the plot as an SVG file (800 x 560 pixels). Non-finite points are skipped.
    pub fn write_svg(&self, path: &Path) -> Result<(), FigureError> {
        let marker_pts: Vec<(f64, f64)> = self.markers.iter().map(|m| (m.0, m.1)).collect();
        let (x0, x1, y0, y1) = bounds(
            self.curves
                .iter()
                .flat_map(|c| c.points.iter())
                .chain(marker_pts.iter()),
        )
        .ok_or_else(|| FigureError::Empty {
            title: self.title.clone(),
        })?;
        let (x0, x1) = padded(x0, x1);
        let (y0, y1) = padded(y0, y1);
        let err = |e: &dyn std::fmt::Display| draw_err(&self.title, path, e);
        let root = SVGBackend::new(path, (800, 560)).into_drawing_area();
        let axes = Axes {
            title: &self.title,
            x_label: &self.x_label,
            y_label: &self.y_label,
            x: x0..x1,
            y: y0..y1,
        };
        let mut chart = axes.chart(&root, &err)?;
        for (k, c) in self.curves.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            let pts: Vec<(f64, f64)> = c
                .points
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
            if c.dots {
                chart
                    .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))
                    .map_err(|e| err(&e))?
                    .label(c.label.as_str())
                    .legend(move |(x, y)| Circle::new((x + 10, y), 3, color.filled()));
            } else {
                chart
                    .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                    .map_err(|e| err(&e))?
                    .label(c.label.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
            }
        }
        self.draw_markers(&mut chart, (x0, x1), (y0, y1), &err)?;
        let corner = emptiest_corner(
            self.curves
                .iter()
                .flat_map(|c| c.points.iter().copied())
                .chain(marker_pts.iter().copied()),
            (x0, x1),
            (y0, y1),
        );
        finish(&mut chart, &root, corner, &err)
    }

    /// The finite markers as crosses with their labels; a label crowded by an earlier marker
    /// goes to the left of its cross. `xr` and `yr` are the ranges of the axes.
    fn draw_markers(
        &self,
        chart: &mut Chart<'_, '_>,
        xr: (f64, f64),
        yr: (f64, f64),
        err: &ErrFn<'_>,
    ) -> Result<(), FigureError> {
        let shown: Vec<&(f64, f64, String)> = self
            .markers
            .iter()
            .filter(|(x, y, _)| x.is_finite() && y.is_finite())
            .collect();
        for (k, (x, y, label)) in shown.iter().enumerate() {
            chart
                .draw_series(std::iter::once(Cross::new(
                    (*x, *y),
                    6,
                    BLACK.stroke_width(2),
                )))
                .map_err(|e| err(&e))?;
            // Two markers closer than a line of text: the later label goes to the left.
            let crowded = shown[..k].iter().any(|(u, v, _)| {
                (u - x).abs() <= 0.05 * (xr.1 - xr.0) && (v - y).abs() <= 0.04 * (yr.1 - yr.0)
            });
            let dx = if crowded {
                -8 - 7 * label.chars().count() as i32
            } else {
                6
            };
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at((*x, *y))
                        + Text::new(label.clone(), (dx, 2), ("sans-serif", 12)),
                ))
                .map_err(|e| err(&e))?;
        }
        Ok(())
    }
}

/// The corner of the plot area (x in `xr`, y in `yr`) where the legend covers the fewest
/// points: corners are the outer 35 % of the width by the outer 30 % of the height; ties go to
/// upper right, upper left, lower right, lower left in that order.
fn emptiest_corner(
    points: impl Iterator<Item = (f64, f64)>,
    xr: (f64, f64),
    yr: (f64, f64),
) -> SeriesLabelPosition {
    let (left, right) = (xr.0 + 0.35 * (xr.1 - xr.0), xr.1 - 0.35 * (xr.1 - xr.0));
    let (low, high) = (yr.0 + 0.3 * (yr.1 - yr.0), yr.1 - 0.3 * (yr.1 - yr.0));
    // upper right, upper left, lower right, lower left
    let mut counts = [0usize; 4];
    for (x, y) in points.filter(|(x, y)| x.is_finite() && y.is_finite()) {
        let upper = y >= high;
        let lower = y <= low;
        if x >= right {
            counts[0] += usize::from(upper);
            counts[2] += usize::from(lower);
        }
        if x <= left {
            counts[1] += usize::from(upper);
            counts[3] += usize::from(lower);
        }
    }
    let best = (0..4).min_by_key(|&k| (counts[k], k)).unwrap_or(0);
    match best {
        0 => SeriesLabelPosition::UpperRight,
        1 => SeriesLabelPosition::UpperLeft,
        2 => SeriesLabelPosition::LowerRight,
        _ => SeriesLabelPosition::LowerLeft,
    }
}

impl HistogramPlot {
    /// Write the histograms as an SVG file (800 x 560 pixels).
    pub fn write_svg(&self, path: &Path) -> Result<(), FigureError> {
        let empty = || FigureError::Empty {
            title: self.title.clone(),
        };
        if self.edges.len() < 2 || self.groups.is_empty() {
            return Err(empty());
        }
        let x0 = self.edges[0];
        let x1 = self.edges[self.edges.len() - 1];
        let ymax = self
            .groups
            .iter()
            .flat_map(|g| g.1.iter().copied())
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max);
        if !(x1 > x0) {
            return Err(empty());
        }
        let err = |e: &dyn std::fmt::Display| draw_err(&self.title, path, e);
        let root = SVGBackend::new(path, (800, 560)).into_drawing_area();
        let axes = Axes {
            title: &self.title,
            x_label: &self.x_label,
            y_label: "count",
            x: x0..x1,
            y: 0.0..(ymax * 1.1).max(1.0),
        };
        let mut chart = axes.chart(&root, &err)?;
        for (k, (label, counts)) in self.groups.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            let mut pts = vec![(x0, 0.0)];
            for (i, &c) in counts.iter().enumerate().take(self.edges.len() - 1) {
                pts.push((self.edges[i], c));
                pts.push((self.edges[i + 1], c));
            }
            pts.push((x1, 0.0));
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label(label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        for (k, (x, label)) in self.marks.iter().enumerate() {
            if x.is_finite() {
                let top = (ymax * 1.05).max(0.95);
                // Labels step down so that marks close together stay readable.
                let label_y = top * (1.0 - 0.06 * (k % 6) as f64);
                chart
                    .draw_series(LineSeries::new(
                        vec![(*x, 0.0), (*x, top)],
                        BLACK.stroke_width(1),
                    ))
                    .map_err(|e| err(&e))?;
                chart
                    .draw_series(std::iter::once(Text::new(
                        label.clone(),
                        (*x, label_y),
                        ("sans-serif", 12),
                    )))
                    .map_err(|e| err(&e))?;
            }
        }
        finish(&mut chart, &root, SeriesLabelPosition::UpperLeft, &err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legend_goes_to_the_emptiest_corner() {
        let rising = (0..20).map(|i| (i as f64, i as f64));
        assert!(matches!(
            emptiest_corner(rising, (0.0, 19.0), (0.0, 19.0)),
            SeriesLabelPosition::UpperLeft
        ));
        let falling = (0..20).map(|i| (i as f64, 19.0 - i as f64));
        assert!(matches!(
            emptiest_corner(falling, (0.0, 19.0), (0.0, 19.0)),
            SeriesLabelPosition::UpperRight
        ));
        let high = (0..20).map(|i| (i as f64, 10.0 + (i % 2) as f64 * 9.0));
        assert!(matches!(
            emptiest_corner(high, (0.0, 19.0), (0.0, 19.0)),
            SeriesLabelPosition::LowerRight
        ));
    }

    #[test]
    fn svg_files_are_written_and_hold_their_labels() {
        let dir = std::env::temp_dir().join(format!("septuple-fig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("line.svg");
        LinePlot {
            title: "bulk loss".into(),
            x_label: "ln epoch".into(),
            y_label: "ln U".into(),
            curves: vec![
                Curve::line("U", vec![(0.0, 1.0), (1.0, 0.5), (2.0, f64::NAN)]),
                Curve::dots("U_d", vec![(0.5, 0.7)]),
            ],
            markers: vec![(1.0, 0.5, "min".into())],
        }
        .write_svg(&p)
        .unwrap();
        let s = std::fs::read_to_string(&p).unwrap();
        assert!(
            s.starts_with("<svg")
                && s.contains("bulk loss")
                && s.contains("ln U")
                && s.contains("min")
        );
        let h = dir.join("hist.svg");
        HistogramPlot {
            title: "log lambda".into(),
            x_label: "ln lambda".into(),
            edges: vec![-1.0, 0.0, 1.0],
            groups: vec![("epoch 10".into(), vec![1.0, 2.0])],
            marks: vec![(-0.5, "gap".into())],
        }
        .write_svg(&h)
        .unwrap();
        assert!(std::fs::read_to_string(&h).unwrap().contains("epoch 10"));
        let e = LinePlot {
            title: "t".into(),
            x_label: String::new(),
            y_label: String::new(),
            curves: vec![Curve::line("a", vec![(f64::NAN, 1.0)])],
            markers: vec![],
        }
        .write_svg(&dir.join("e.svg"));
        assert!(matches!(e, Err(FigureError::Empty { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
