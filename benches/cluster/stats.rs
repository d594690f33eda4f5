//! Medians, spreads and ratios of repeated measurements.

/// Repeated measurements of one figure, in its unit (seconds unless said otherwise).
#[derive(Debug, Clone, Default)]
pub struct Series(pub Vec<f64>);

impl Series {
    /// Adds one measurement.
    pub fn push(&mut self, v: f64) {
        self.0.push(v);
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    /// The median (the mean of the two middle values for an even count).
    pub fn median(&self) -> f64 {
        let v = self.sorted();
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    /// The `p`th percentile (nearest rank).
    pub fn percentile(&self, p: f64) -> f64 {
        let v = self.sorted();
        if v.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
        v[rank.clamp(1, v.len()) - 1]
    }

    /// The smallest and the largest.
    pub fn range(&self) -> (f64, f64) {
        let v = self.sorted();
        (
            v.first().copied().unwrap_or(f64::NAN),
            v.last().copied().unwrap_or(f64::NAN),
        )
    }

    /// Pairwise ratios `self[i] / base[i]` (runs made side by side).
    pub fn ratios(&self, base: &Series) -> Series {
        Series(self.0.iter().zip(&base.0).map(|(a, b)| a / b).collect())
    }

    /// The median and the range, formatted with `digits` decimals.
    pub fn show(&self, digits: usize) -> String {
        if self.0.is_empty() {
            return "–".into();
        }
        let (lo, hi) = self.range();
        if self.0.len() == 1 {
            return format!("{:.*}", digits, self.median());
        }
        format!(
            "{:.*} ({:.*}–{:.*})",
            digits,
            self.median(),
            digits,
            lo,
            digits,
            hi
        )
    }
}
