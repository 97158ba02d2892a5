//! The six SMERF scores of a map and their aggregation: per-bucket mean and std over images,
//! per-setup average and minimum over buckets (Kim et al. 2022, `eval.py`
//! `compute_valid_stats`, which drops images without the scored region).

use serde::{Deserialize, Serialize};

/// One of the six scores: AFL, MAFL or IoU on the primary or the secondary region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKey {
    /// AFL on the primary region.
    PrimaryAfl,
    /// AFL on the secondary region.
    SecondaryAfl,
    /// MAFL on the primary region.
    PrimaryMafl,
    /// MAFL on the secondary region.
    SecondaryMafl,
    /// IoU on the primary region.
    PrimaryIou,
    /// IoU on the secondary region.
    SecondaryIou,
}

impl MetricKey {
    /// The six scores in column order.
    pub const ALL: [MetricKey; 6] = [
        MetricKey::PrimaryAfl,
        MetricKey::SecondaryAfl,
        MetricKey::PrimaryMafl,
        MetricKey::SecondaryMafl,
        MetricKey::PrimaryIou,
        MetricKey::SecondaryIou,
    ];

    /// Column name, e.g. `primary_afl`.
    pub fn name(self) -> &'static str {
        match self {
            MetricKey::PrimaryAfl => "primary_afl",
            MetricKey::SecondaryAfl => "secondary_afl",
            MetricKey::PrimaryMafl => "primary_mafl",
            MetricKey::SecondaryMafl => "secondary_mafl",
            MetricKey::PrimaryIou => "primary_iou",
            MetricKey::SecondaryIou => "secondary_iou",
        }
    }
}

/// One value per [`MetricKey`].
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct PerMetric<T> {
    /// AFL on the primary region.
    pub primary_afl: T,
    /// AFL on the secondary region.
    pub secondary_afl: T,
    /// MAFL on the primary region.
    pub primary_mafl: T,
    /// MAFL on the secondary region.
    pub secondary_mafl: T,
    /// IoU on the primary region.
    pub primary_iou: T,
    /// IoU on the secondary region.
    pub secondary_iou: T,
}

impl<T> PerMetric<T> {
    /// Builds every field from its key.
    pub fn from_fn(mut f: impl FnMut(MetricKey) -> T) -> Self {
        PerMetric {
            primary_afl: f(MetricKey::PrimaryAfl),
            secondary_afl: f(MetricKey::SecondaryAfl),
            primary_mafl: f(MetricKey::PrimaryMafl),
            secondary_mafl: f(MetricKey::SecondaryMafl),
            primary_iou: f(MetricKey::PrimaryIou),
            secondary_iou: f(MetricKey::SecondaryIou),
        }
    }

    /// The field of `key`.
    pub fn get(&self, key: MetricKey) -> &T {
        match key {
            MetricKey::PrimaryAfl => &self.primary_afl,
            MetricKey::SecondaryAfl => &self.secondary_afl,
            MetricKey::PrimaryMafl => &self.primary_mafl,
            MetricKey::SecondaryMafl => &self.secondary_mafl,
            MetricKey::PrimaryIou => &self.primary_iou,
            MetricKey::SecondaryIou => &self.secondary_iou,
        }
    }
}

/// Mean and population standard deviation (`np.std`, ddof 0) of `n` values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    /// Number of values.
    pub n: usize,
    /// Their mean.
    pub mean: f64,
    /// Their population standard deviation.
    pub std: f64,
}

impl Stat {
    /// The statistics of `values`, `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Stat> {
        if values.is_empty() {
            return None;
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        Some(Stat { n: values.len(), mean, std: var.sqrt() })
    }
}

/// Average and minimum over buckets of the per-bucket means (Kim et al. 2022 report both).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketSummary {
    /// Buckets that have the region.
    pub buckets: usize,
    /// Average over those buckets of the per-bucket mean.
    pub average: f64,
    /// Minimum over those buckets of the per-bucket mean.
    pub minimum: f64,
    /// Name of the bucket with the minimum.
    pub minimum_bucket: String,
    /// Maximum over those buckets of the per-bucket mean.
    pub maximum: f64,
}

impl BucketSummary {
    /// Summary of `(bucket name, mean)` pairs, `None` when there are none.
    pub fn of(means: &[(&str, f64)]) -> Option<BucketSummary> {
        let (first_name, first) = *means.first()?;
        let mut summary = BucketSummary {
            buckets: means.len(),
            average: means.iter().map(|(_, m)| m).sum::<f64>() / means.len() as f64,
            minimum: first,
            minimum_bucket: first_name.to_string(),
            maximum: first,
        };
        for &(name, m) in &means[1..] {
            if m < summary.minimum {
                summary.minimum = m;
                summary.minimum_bucket = name.to_string();
            }
            summary.maximum = summary.maximum.max(m);
        }
        Some(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_is_population_std() {
        // values 1, 3: mean 2, deviations +-1, population variance 1.
        let s = Stat::of(&[1.0, 3.0]).unwrap();
        assert_eq!((s.n, s.mean, s.std), (2, 2.0, 1.0));
        assert!(Stat::of(&[]).is_none());
    }

    #[test]
    fn bucket_summary_tracks_the_worst_bucket() {
        let s = BucketSummary::of(&[("a", 0.6), ("b", 0.2), ("c", 0.7)]).unwrap();
        assert_eq!(
            (s.buckets, s.minimum_bucket.as_str(), s.minimum, s.maximum),
            (3, "b", 0.2, 0.7)
        );
        assert!((s.average - 0.5).abs() < 1e-12);
    }
}
