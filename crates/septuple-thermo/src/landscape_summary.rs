//! The landscape of Eq. (9.3) at one beta over a range of log lambda, as one record: its phase
//! and stationary points, serialisable and printable as a table.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ThermoError;
use crate::landscape::{Landscape, Phase, StationaryKind, StationaryPoint};

/// Grid cells per range that [`Landscape::summary`] brackets stationary points on (as Fig. 1
/// does on [-8, 4]); each cell is searched by bisection, so the points are exact to rounding
/// whatever the cell count, which only has to separate neighbouring points.
pub const SUMMARY_CELLS: usize = 2000;

/// -DeltaF of Eq. (9.3) at one beta, gamma and N on the range [`from`, `to`] of log lambda.
///
/// [`from`]: LandscapeSummary::from
/// [`to`]: LandscapeSummary::to
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LandscapeSummary {
    /// The inverse temperature beta.
    pub beta: f64,
    /// The fraction gamma of small eigenvalues.
    pub gamma: f64,
    /// The number of neurons N.
    pub n: usize,
    /// The phase of Sec. 9 (what u = 0 is).
    pub phase: Phase,
    /// The lower end of the range of log lambda searched.
    pub from: f64,
    /// The upper end of the range of log lambda searched.
    pub to: f64,
    /// The stationary points in the range, ascending in log lambda.
    pub stationary_points: Vec<StationaryPoint>,
}

impl Landscape {
    /// This landscape's phase and its stationary points in `from <= log lambda <= to`
    /// ([`Landscape::stationary_points`] on [`SUMMARY_CELLS`] cells).
    ///
    /// Errors: a non-finite or empty range.
    pub fn summary(&self, from: f64, to: f64) -> Result<LandscapeSummary, ThermoError> {
        Ok(LandscapeSummary {
            beta: self.beta(),
            gamma: self.gamma(),
            n: self.n(),
            phase: self.phase(),
            from,
            to,
            stationary_points: self.stationary_points(from, to, SUMMARY_CELLS)?,
        })
    }
}

/// The lower-case name of a stationary point's kind: `maximum`, `minimum`, `inflection`.
pub fn kind_name(kind: StationaryKind) -> &'static str {
    match kind {
        StationaryKind::Maximum => "maximum",
        StationaryKind::Minimum => "minimum",
        StationaryKind::Inflection => "inflection",
    }
}

/// The lower-case name of a phase: `initial`, `intermediate`, `final`.
pub fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Initial => "initial",
        Phase::Intermediate => "intermediate",
        Phase::Final => "final",
    }
}

impl fmt::Display for LandscapeSummary {
    /// A header line (beta, gamma, N, phase, range), then one line per stationary point:
    /// kind, log lambda and -DeltaF.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "beta = {}, gamma = {}, N = {}: {} phase; stationary points in log lambda [{}, {}]:",
            self.beta,
            self.gamma,
            self.n,
            phase_name(self.phase),
            self.from,
            self.to
        )?;
        writeln!(f, "  {:<12} {:>14} {:>18}", "kind", "log lambda", "-DeltaF")?;
        if self.stationary_points.is_empty() {
            writeln!(f, "  (none)")?;
        }
        for p in &self.stationary_points {
            writeln!(
                f,
                "  {:<12} {:>14.6} {:>18.6}",
                kind_name(p.kind),
                p.log_lambda,
                p.value
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_holds_the_stationary_points_of_its_range() {
        // Below beta = 1/2, u = 0 is a maximum of -DeltaF (Sec. 9), where Eq. (9.3) gives
        // -DeltaF(0) = (N beta / 2) / (1 + beta)^2 = 106.75 / 1.5625 = 68.32.
        let l = Landscape::new(0.25, 1.0 / 3.0, 854).unwrap();
        let s = l.summary(-8.0, 4.0).unwrap();
        assert_eq!(s.phase, Phase::Initial);
        assert_eq!(
            s.stationary_points,
            l.stationary_points(-8.0, 4.0, 2000).unwrap()
        );
        let at_zero = s
            .stationary_points
            .iter()
            .find(|p| p.log_lambda.abs() < 1e-12)
            .unwrap();
        assert_eq!(at_zero.kind, StationaryKind::Maximum);
        // A few roundings of terms of size 1e2: relative 1e-12.
        approx::assert_relative_eq!(at_zero.value, 68.32, max_relative = 1e-12);
        let text = s.to_string();
        assert!(text.starts_with("beta = 0.25, gamma = 0.3333333333333333, N = 854: initial"));
        assert!(text.contains("maximum"));
        assert_eq!(text.lines().count(), 2 + s.stationary_points.len());
        assert!(l.summary(1.0, -1.0).is_err());
    }
}
