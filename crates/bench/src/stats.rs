//! Latency histograms: recorded per worker in microseconds, shipped as (value, count) pairs, merged, summarised
//! in milliseconds.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency recorded: 10 minutes, in µs. Larger values are clamped to it.
const HIGHEST_US: u64 = 600_000_000;

/// A new latency histogram: 1 µs to 10 min at 3 significant digits.
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_US, 3).expect("valid histogram bounds")
}

/// Records `us` (clamped into range).
pub(crate) fn record(h: &mut Histogram<u64>, us: u64) {
    h.saturating_record(us.clamp(1, HIGHEST_US));
}

/// A histogram as plain data: (bucket value in µs, count) for every non-empty bucket.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Recorded(pub Vec<(u64, u64)>);

impl Recorded {
    pub(crate) fn from_histogram(h: &Histogram<u64>) -> Self {
        Self(h.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect())
    }

    pub(crate) fn merge_into(&self, h: &mut Histogram<u64>) {
        for &(value, count) in &self.0 {
            let _ = h.record_n(value.clamp(1, HIGHEST_US), count);
        }
    }
}

/// The figures of one latency distribution, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl Summary {
    pub(crate) fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            min: ms(h.min()),
            mean: h.mean().round() / 1000.0,
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// The percentile spectrum of `h` for plotting: (percentile, ms) at log-spaced points up to the maximum.
pub(crate) fn spectrum(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut points = Vec::new();
    // Steps evenly spaced in log10(1/(1-q)) from q = 0 to q = 0.99999.
    let steps = 100;
    for i in 0..=steps {
        let x = 5.0 * i as f64 / steps as f64;
        let q = 1.0 - 10f64.powf(-x);
        points.push((q * 100.0, h.value_at_quantile(q) as f64 / 1000.0));
    }
    points.push((100.0, h.max() as f64 / 1000.0));
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_histograms_merge_to_the_same_figures() {
        let mut a = histogram();
        for us in [100, 200, 300, 5_000, 1_000_000] {
            record(&mut a, us);
        }
        let mut b = histogram();
        Recorded::from_histogram(&a).merge_into(&mut b);
        Recorded::from_histogram(&a).merge_into(&mut b);
        assert_eq!(b.len(), 10);
        assert_eq!(Summary::of(&a).p50, Summary::of(&b).p50);
        assert_eq!(Summary::of(&b).max, Summary::of(&a).max);
        assert!((Summary::of(&a).max - 1000.0).abs() < 1.0);
    }

    #[test]
    fn empty_histograms_summarise_to_zero() {
        assert_eq!(Summary::of(&histogram()), Summary::default());
        assert!(spectrum(&histogram()).is_empty());
    }
}
