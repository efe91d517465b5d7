//! Statistics over replications: means and Student-t confidence intervals.

/// The mean of `samples` and the half-width of its two-sided confidence interval at `level`
/// (0.95 for a 95% interval), from Student's t with n − 1 degrees of freedom. The half-width is
/// NaN with fewer than two samples: one run says nothing about its own variability.
pub fn mean_and_half_width(samples: &[f64], level: f64) -> (f64, f64) {
    let n = samples.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mean = samples.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return (mean, f64::NAN);
    }
    let variance = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let t = student_t_quantile(0.5 + level / 2.0, (n - 1) as f64);
    (mean, t * (variance / n as f64).sqrt())
}

/// How many leading observations of `series` to drop as warm-up, by MSER-5 (White, Cobb & Spratt,
/// "A comparison of five steady-state truncation heuristics for simulation", WSC 2000): average
/// the series in batches of 5, and choose the truncation d (at most half the batches) that
/// minimises the marginal standard error of what remains, sum((y − mean)²) / (n − d)².
pub fn mser5_truncation(series: &[f64]) -> usize {
    const BATCH: usize = 5;
    let batches: Vec<f64> = series
        .chunks_exact(BATCH)
        .map(|batch| batch.iter().sum::<f64>() / BATCH as f64)
        .collect();
    let n = batches.len();
    if n < 4 {
        return 0;
    }
    let mut best = (f64::INFINITY, 0);
    for d in 0..=n / 2 {
        let rest = &batches[d..];
        let mean = rest.iter().sum::<f64>() / rest.len() as f64;
        let squares: f64 = rest.iter().map(|y| (y - mean).powi(2)).sum();
        let statistic = squares / (rest.len() as f64).powi(2);
        if statistic < best.0 {
            best = (statistic, d);
        }
    }
    best.1 * BATCH
}

/// The `p` quantile of Student's t distribution with `df` degrees of freedom, for p in (0.5, 1).
/// Found by bisection on the distribution function, to about 1e-10 relative.
pub fn student_t_quantile(p: f64, df: f64) -> f64 {
    debug_assert!(p > 0.5 && p < 1.0 && df > 0.0);
    let mut high = 1.0;
    while student_t_cdf(high, df) < p {
        high *= 2.0;
    }
    let mut low = 0.0;
    for _ in 0..200 {
        let middle = 0.5 * (low + high);
        if student_t_cdf(middle, df) < p {
            low = middle;
        } else {
            high = middle;
        }
        if high - low <= 1e-12 * high {
            break;
        }
    }
    0.5 * (low + high)
}

/// P(T <= t) for Student's t with `df` degrees of freedom, t >= 0.
fn student_t_cdf(t: f64, df: f64) -> f64 {
    1.0 - 0.5 * regularized_incomplete_beta(df / (df + t * t), df / 2.0, 0.5)
}

/// I_x(a, b), by the continued fraction of Numerical Recipes (§6.4), evaluated with the modified
/// Lentz method; the symmetry I_x(a, b) = 1 − I_{1−x}(b, a) keeps it in its fast-converging range.
fn regularized_incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let log_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        log_front.exp() * beta_continued_fraction(x, a, b) / a
    } else {
        1.0 - log_front.exp() * beta_continued_fraction(1.0 - x, b, a) / b
    }
}

fn beta_continued_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let mut c = 1.0;
    let mut d = 1.0 - (a + b) * x / (a + 1.0);
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut fraction = d;
    for m in 1..500 {
        let m = f64::from(m);
        let even = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
        for coefficient in [
            even,
            -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0)),
        ] {
            d = 1.0 + coefficient * d;
            if d.abs() < TINY {
                d = TINY;
            }
            c = 1.0 + coefficient / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            fraction *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-15 {
            break;
        }
    }
    fraction
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9: about 15 significant digits).
pub fn ln_gamma(x: f64) -> f64 {
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 − x) = π / sin(πx).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let series = COEFFICIENTS[1..]
        .iter()
        .enumerate()
        .fold(COEFFICIENTS[0], |sum, (i, c)| {
            sum + c / (x + i as f64 + 1.0)
        });
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + series.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_published_tables() {
        // (p, df, value) from standard tables of Student's t.
        let table = [
            (0.975, 1.0, 12.706),
            (0.975, 2.0, 4.303),
            (0.975, 9.0, 2.262),
            (0.975, 30.0, 2.042),
            (0.975, 120.0, 1.980),
            (0.9995, 9.0, 4.781),
            (0.9995, 1.0, 636.62),
            (0.95, 5.0, 2.015),
        ];
        for (p, df, value) in table {
            let q = student_t_quantile(p, df);
            assert!(
                (q - value).abs() < 5e-4 * value,
                "t({p}, {df}) = {q}, table {value}"
            );
        }
        // Large df tends to the normal quantile 1.95996.
        assert!((student_t_quantile(0.975, 1e6) - 1.959_96).abs() < 1e-4);
    }

    #[test]
    fn mser5_cuts_an_initial_transient_and_nothing_from_a_stationary_series() {
        // 100 observations: the first 30 climb from 0 to the steady level 10, then noise.
        let noise = |i: usize| ((i * 7919) % 13) as f64 / 13.0 - 0.5;
        let with_transient: Vec<f64> = (0..100)
            .map(|i| if i < 30 { i as f64 / 3.0 } else { 10.0 } + noise(i))
            .collect();
        let cut = mser5_truncation(&with_transient);
        assert!((25..=35).contains(&cut), "cut {cut}");
        let stationary: Vec<f64> = (0..100).map(|i| 10.0 + noise(i)).collect();
        assert!(mser5_truncation(&stationary) <= 10);
        assert_eq!(mser5_truncation(&[1.0; 12]), 0, "too short to judge");
    }

    #[test]
    fn interval_of_known_samples() {
        let (mean, half) = mean_and_half_width(&[1.0, 2.0, 3.0, 4.0], 0.95);
        // s = 1.29099, s/sqrt(4) = 0.645497, t(0.975, 3) = 3.18245.
        assert!((mean - 2.5).abs() < 1e-12);
        assert!((half - 3.182_446 * 0.645_497).abs() < 1e-4, "{half}");
        assert!(mean_and_half_width(&[7.0], 0.95).1.is_nan());
        assert!(mean_and_half_width(&[], 0.95).0.is_nan());
    }
}
