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

/// A value with its uncertainty, if it has one: `1.500000 ± 2.0000e-3`.
fn pm(v: f64, err: Option<f64>) -> String {
    match err {
        Some(e) => format!("{} ± {}", number(v), number(e)),
        None => number(v),
    }
}

/// [`pm`] and, if the estimate has one, how far it moves between half the steps and all of
/// them: `1.500000 ± 2.0000e-3 (half the steps: -1.0000e-4)`.
fn pmq(v: f64, err: Option<f64>, change: Option<f64>) -> String {
    match change {
        Some(c) => format!("{} (half the steps: {})", pm(v, err), number(-c)),
        None => pm(v, err),
    }
}

fn optional_pm(v: Option<f64>, err: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| pm(v, err))
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
    /// every log lambda); estimates as `value ± standard error`, the complexities of a
    /// matrix-free analysis as `value ± error bound`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        row(f, "neurons N", self.n_neurons)?;
        row(f, "samples (mean state)", self.n_samples)?;
        row(f, "method", self.method)?;
        if let Some(c) = &self.method_choice {
            row(
                f,
                "auto: estimated flops",
                format!(
                    "dense {} / structured {} / matrix-free {}",
                    number(c.dense.flops),
                    number(c.structured.flops),
                    number(c.matrix_free.flops)
                ),
            )?;
        }
        if let Some(m) = &self.matrix_free {
            row(
                f,
                "probes x Lanczos steps",
                format!(
                    "{} x {} (seed {}, {} exact; Krylov bound {}{})",
                    m.probes,
                    m.lanczos_steps,
                    m.seed,
                    m.exact_probes,
                    m.krylov_bound,
                    if m.reorthogonalised {
                        ""
                    } else {
                        "; not reorthogonalised"
                    }
                ),
            )?;
            row(
                f,
                "extreme eigenvalues: steps",
                format!(
                    "{} (largest {}, smallest {})",
                    m.extreme_steps,
                    if m.largest_converged {
                        "converged"
                    } else {
                        "NOT converged"
                    },
                    if m.smallest_converged {
                        "converged"
                    } else {
                        "NOT converged"
                    }
                ),
            )?;
            if m.exact_probes < m.probes {
                row(
                    f,
                    "error bars",
                    "the spread over probes; \"half the steps\" is how far the Gauss rules of half the steps move each value, an estimate of the quadrature bias the bars leave out (docs/theory.md, Estimators)",
                )?;
                if !self.quadrature_settled() {
                    row(
                        f,
                        "quadrature",
                        "NOT settled: halving the steps moves a trace by more than its error bar; raise --lanczos-steps or choose them with --quadrature-tol",
                    )?;
                }
                // Measured on a LeNet-5 (docs/performance.md): G had 2,768 unit eigenvalues
                // outside the deflated input subspace, which the Gauss rules never resolve.
                if self.n_dynamical_method.as_deref() == Some(crate::analyze::QUADRATURE_COUNT) {
                    row(
                        f,
                        "dynamical count",
                        "its Gauss rules cannot tell eigenvalues at 1 from ones near it: unit eigenvalues outside the deflated input subspace count as dynamical, and the moments of the dynamical log lambda inherit it",
                    )?;
                }
            }
        }
        row(
            f,
            "sum log lambda (Eq. 7.8)",
            pmq(
                self.sum_log_lambda,
                self.sum_log_lambda_stderr,
                self.sum_log_lambda_quadrature_change,
            ),
        )?;
        let n_dyn = match self.n_dynamical_stderr {
            Some(e) => format!("{} ± {}", self.n_dynamical, number(e)),
            None => self.n_dynamical.to_string(),
        };
        let n_dyn = match self.n_dynamical_method.as_deref() {
            Some(crate::analyze::STRUCTURAL_COUNT) => {
                format!("{n_dyn}, the structural rank of [A, A^T] (exact for generic weights)")
            }
            _ => n_dyn,
        };
        row(
            f,
            "dynamical eigenvalues",
            format!(
                "{n_dyn} (|log lambda| > {})",
                number(self.dynamical_tolerance)
            ),
        )?;
        if let Some(l) = &self.log_lambda {
            if let (Some(lo), Some(hi)) = (l.first(), l.last()) {
                row(
                    f,
                    "log lambda, smallest .. largest",
                    format!("{} .. {}", number(*lo), number(*hi)),
                )?;
            }
        }
        row(
            f,
            "mu_2 = Tr (log G)^2 (Eq. 9.5)",
            pmq(self.mu2, self.mu2_stderr, self.mu2_quadrature_change),
        )?;
        row(
            f,
            "mu_3 = Tr (log G)^3 (Eq. 9.6)",
            pmq(self.mu3, self.mu3_stderr, self.mu3_quadrature_change),
        )?;
        row(
            f,
            "mean of log lambda",
            pmq(self.mean, self.mean_stderr, self.mean_quadrature_change),
        )?;
        row(
            f,
            "variance of log lambda",
            pmq(
                self.variance,
                self.variance_stderr,
                self.variance_quadrature_change,
            ),
        )?;
        row(
            f,
            "skewness of log lambda",
            pmq(
                self.skewness,
                self.skewness_stderr,
                self.skewness_quadrature_change,
            ),
        )?;
        row(
            f,
            "C_20 (Eq. 10.5)",
            optional_pm(self.c20, self.c20_error_bound),
        )?;
        row(
            f,
            "C_(N-20) (Eq. 10.5)",
            optional_pm(self.c_all_but_20, self.c_all_but_20_error_bound),
        )?;
        row(f, "gap at log lambda", optional(self.gap_log_lambda))?;
        if let Some(t) = &self.thermo_estimate {
            row(f, "beta", number(t.beta))?;
            row(f, "m", number(t.mass))?;
            let e = |x: septuple_thermo::Estimate| pm(x.value, Some(x.stderr));
            row(
                f,
                "log det(I(1 - beta m) + beta G)",
                pmq(
                    t.log_det_i_plus_beta_g.value,
                    Some(t.log_det_i_plus_beta_g.stderr),
                    self.log_det_i_plus_beta_g_quadrature_change,
                ),
            )?;
            row(
                f,
                "Laplacian of F (Eq. 8.10)",
                pmq(
                    t.laplacian_f.value,
                    Some(t.laplacian_f.stderr),
                    self.laplacian_f_quadrature_change,
                ),
            )?;
            row(f, "log Z (Eq. 5.14)", e(t.log_z))?;
            row(f, "free energy F (Eq. 6.5)", e(t.free_energy))?;
            row(f, "energy U (Eq. 6.1)", e(t.energy))?;
            row(f, "entropy S (Eq. 7.1)", e(t.entropy))?;
        }
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
            method_choice: None,
            sum_log_lambda: 0.0,
            sum_log_lambda_stderr: None,
            sum_log_lambda_quadrature_change: None,
            n_dynamical: 2,
            n_dynamical_stderr: None,
            n_dynamical_quadrature_change: None,
            n_dynamical_method: None,
            dynamical_tolerance: 1e-8,
            log_lambda: Some(vec![-0.5, 0.0, 0.0, 0.0, 0.5]),
            traces: [0.0, 0.5, 0.0, 0.125],
            traces_stderr: None,
            mu2: 0.5,
            mu2_stderr: None,
            mu2_quadrature_change: None,
            mu3: 0.0,
            mu3_stderr: None,
            mu3_quadrature_change: None,
            mean: 0.0,
            mean_stderr: None,
            mean_quadrature_change: None,
            variance: 0.25,
            variance_stderr: None,
            variance_quadrature_change: None,
            skewness: 0.0,
            skewness_stderr: None,
            skewness_quadrature_change: None,
            c20: None,
            c20_error_bound: None,
            c_all_but_20: None,
            c_all_but_20_error_bound: None,
            gap_log_lambda: None,
            gap: None,
            log_det_i_plus_beta_g: None,
            log_det_i_plus_beta_g_stderr: None,
            log_det_i_plus_beta_g_quadrature_change: None,
            laplacian_f: None,
            laplacian_f_stderr: None,
            laplacian_f_quadrature_change: None,
            thermo: None,
            thermo_estimate: None,
            matrix_free: None,
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
        assert!(!text.contains('±'));
        let mut est = report();
        est.mu2_stderr = Some(0.01);
        est.log_lambda = None;
        let text = est.to_string();
        assert!(text.contains("0.500000 ± 0.010000"), "{text}");
        assert!(!text.contains("smallest .. largest"));
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
