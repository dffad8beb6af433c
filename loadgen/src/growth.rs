//! The soak's arithmetic: how fast a resident size grows per chat after the warm-up (a
//! least-squares slope, and the first-to-last difference as a check on it), and whether a
//! series has levelled off (the last third's mean against the middle third's).

/// Least-squares slope of `y` over `x`; `None` with fewer than two points or no spread in `x`.
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// (last.y − first.y) ÷ (last.x − first.x); `None` without two points apart in `x`.
pub fn first_last(points: &[(f64, f64)]) -> Option<f64> {
    let (first, last) = (points.first()?, points.last()?);
    let dx = last.0 - first.0;
    (dx > 0.0).then(|| (last.1 - first.1) / dx)
}

/// The means of the middle and the last third of `values` (in order); `None` with fewer than
/// three values.
pub fn thirds(values: &[f64]) -> Option<(f64, f64)> {
    let n = values.len();
    if n < 3 {
        return None;
    }
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    let (a, b) = (n / 3, n - n / 3);
    Some((mean(&values[a..b]), mean(&values[b..])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slopes_and_thirds() {
        let line: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 3.0 * i as f64 + 7.0)).collect();
        assert!((slope(&line).unwrap() - 3.0).abs() < 1e-9);
        assert!((first_last(&line).unwrap() - 3.0).abs() < 1e-9);
        // Noise around a flat line: slope near zero, the first/last difference is just noise.
        let flat = [(0.0, 10.0), (1.0, 12.0), (2.0, 8.0), (3.0, 10.0)];
        assert!(slope(&flat).unwrap().abs() < 1.0);
        assert_eq!(slope(&[(1.0, 1.0)]), None);
        assert_eq!(slope(&[(1.0, 1.0), (1.0, 2.0)]), None);
        assert_eq!(first_last(&[(1.0, 1.0), (1.0, 2.0)]), None);
        // 9 values: the middle third is 3..6, the last 6..9.
        let v = [0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 4.0, 4.0];
        assert_eq!(thirds(&v), Some((2.0, 4.0)));
        assert_eq!(thirds(&[1.0, 2.0]), None);
    }
}
