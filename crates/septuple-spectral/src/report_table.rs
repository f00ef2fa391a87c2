//! [`AnalysisReport`] as a readable two-column table (`Display`), for terminals; the JSON of
//! the report (serde) is the stable, complete form.

use std::fmt;

use crate::analyze::AnalysisReport;

/// A number for a table: six decimals in [1e-4, 1e7), else scientific notation.
pub(crate) fn number(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.is_finite() && (1e-4..1e7).contains(&v.abs()) {
        format!("{v:.6}")
    } else {
        format!("{v:.4e}")
    }
}

fn optional(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), number)
}

/// One row of a two-column table: the label padded to a fixed width, then the value.
pub(crate) fn row(
    f: &mut fmt::Formatter<'_>,
    label: &str,
    value: impl fmt::Display,
) -> fmt::Result {
    writeln!(f, "{label:<34} {value}")
}

impl fmt::Display for AnalysisReport {
    /// The report's scalars, one per line (the spectrum itself only by its ends; the JSON has
    /// every log lambda).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        row(f, "neurons N", self.n_neurons)?;
        row(f, "samples (mean state)", self.n_samples)?;
        row(f, "method", self.method)?;
        row(f, "sum log lambda (Eq. 7.8)", number(self.sum_log_lambda))?;
        row(
            f,
            "dynamical eigenvalues",
            format!(
                "{} (|log lambda| > {})",
                self.n_dynamical,
                number(self.dynamical_tolerance)
            ),
        )?;
        if let (Some(lo), Some(hi)) = (self.log_lambda.first(), self.log_lambda.last()) {
            row(
                f,
                "log lambda, smallest .. largest",
                format!("{} .. {}", number(*lo), number(*hi)),
            )?;
        }
        row(f, "mu_2 = Tr (log G)^2 (Eq. 9.5)", number(self.mu2))?;
        row(f, "mu_3 = Tr (log G)^3 (Eq. 9.6)", number(self.mu3))?;
        row(f, "mean of log lambda", number(self.mean))?;
        row(f, "variance of log lambda", number(self.variance))?;
        row(f, "skewness of log lambda", number(self.skewness))?;
        row(f, "C_20 (Eq. 10.5)", optional(self.c20))?;
        row(f, "C_(N-20) (Eq. 10.5)", optional(self.c_all_but_20))?;
        row(f, "gap at log lambda", optional(self.gap_log_lambda))?;
        if let Some(t) = &self.thermo {
            row(f, "beta", number(t.beta))?;
            row(f, "m", number(t.mass))?;
            row(
                f,
                "log det(I(1 - beta m) + beta G)",
                number(t.log_det_i_plus_beta_g),
            )?;
            row(f, "Laplacian of F (Eq. 8.10)", number(t.laplacian_f))?;
            row(f, "log Z (Eq. 5.14)", number(t.log_z))?;
            row(f, "log Z with mean (Eq. 5.11)", number(t.log_z_full))?;
            row(f, "free energy F (Eq. 6.5)", number(t.free_energy))?;
            row(f, "energy U (Eq. 6.1)", number(t.energy))?;
            row(f, "entropy S (Eq. 7.1)", number(t.entropy))?;
            row(
                f,
                "N_> / N_< (Eqs. 6.6, 8.12)",
                format!("{} / {}", t.n_greater, t.n_less),
            )?;
            row(f, "complexity C (Eq. 6.7)", number(t.complexity))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::Method;

    fn report() -> AnalysisReport {
        AnalysisReport {
            n_neurons: 5,
            n_samples: 3,
            method: Method::Dense,
            sum_log_lambda: 0.0,
            n_dynamical: 2,
            dynamical_tolerance: 1e-8,
            log_lambda: vec![-0.5, 0.0, 0.0, 0.0, 0.5],
            traces: [0.0, 0.5, 0.0, 0.125],
            mu2: 0.5,
            mu3: 0.0,
            mean: 0.0,
            variance: 0.25,
            skewness: 0.0,
            c20: None,
            c_all_but_20: None,
            gap_log_lambda: None,
            gap: None,
            log_det_i_plus_beta_g: None,
            laplacian_f: None,
            thermo: None,
        }
    }

    #[test]
    fn the_table_has_one_line_per_scalar() {
        let text = report().to_string();
        assert!(text.contains("neurons N"));
        assert!(text
            .lines()
            .any(|l| l.starts_with("method") && l.ends_with(" dense")));
        assert!(text.contains("2 (|log lambda| > 1.0000e-8)"));
        assert!(text.contains("-0.500000 .. 0.500000"));
        assert!(text
            .lines()
            .any(|l| l.starts_with("C_20") && l.ends_with(" -")));
        assert!(!text.contains("beta"));
    }

    #[test]
    fn numbers_switch_to_scientific_outside_a_readable_range() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(1.5), "1.500000");
        assert_eq!(number(-3.0e-13), "-3.0000e-13");
        assert_eq!(number(2.0e8), "2.0000e8");
        assert_eq!(number(f64::NAN), "NaN");
    }
}
