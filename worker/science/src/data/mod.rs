//! Data sets held in memory as f32 rows.

use std::ops::Range;

use vocabulary::{DataConfig, DataSet};

pub mod cifar;
pub mod csv;
pub mod error;
pub mod gaussian_mixture;
pub mod idx;
pub mod teacher_student;
pub mod transform;

pub use error::DataError;

/// A trial's training set and its test set (the population proxy).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainTest {
    pub train: Dataset,
    pub test: Dataset,
}

/// Builds the data set a configuration describes: generated from `seed`, or read from files;
/// then `subsample` and `standardize`. File contents never panic: malformed files are errors.
pub fn build(config: &DataConfig, seed: u64) -> Result<TrainTest, DataError> {
    let mut split = match config.dataset {
        DataSet::TeacherStudent => teacher_student::generate(config, seed),
        DataSet::GaussianMixture => gaussian_mixture::generate(config, seed),
        DataSet::Idx => idx::load(config)?,
        DataSet::Cifar10 => cifar::load(config)?,
        DataSet::Csv => csv::load_split(config, seed)?,
    };
    if let Some(limit) = config.subsample {
        split.train = transform::subsample(split.train, limit, seed);
    }
    if config.standardize {
        transform::standardize(&mut split);
    }
    debug_assert_eq!(split.train.dim, split.test.dim);
    debug_assert_eq!(split.train.inputs.len(), split.train.n * split.train.dim);
    Ok(split)
}

/// Labelled examples: `inputs` is `n × dim`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub inputs: Vec<f32>,
    pub labels: Vec<u32>,
    pub n: usize,
    pub dim: usize,
    pub classes: usize,
}

/// The share of positions where two label lists disagree: how much label noise changed.
#[cfg(test)]
pub(crate) fn share_of_changed_labels(clean: &[u32], noisy: &[u32]) -> f64 {
    let changed = clean.iter().zip(noisy).filter(|(a, b)| a != b).count();
    changed as f64 / clean.len().max(1) as f64
}

impl Dataset {
    /// A synthetic set whose labels are each replaced, with probability `config.label_noise`,
    /// by a class drawn uniformly.
    pub fn with_label_noise(
        inputs: Vec<f32>,
        mut labels: Vec<u32>,
        dim: usize,
        config: &DataConfig,
        label_noise: &mut impl rand::Rng,
    ) -> Self {
        for label in &mut labels {
            if label_noise.random::<f64>() < config.label_noise {
                *label = label_noise.random_range(0..config.classes as u32);
            }
        }
        Self {
            n: labels.len(),
            inputs,
            labels,
            dim,
            classes: config.classes,
        }
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn input(&self, index: usize) -> &[f32] {
        &self.inputs[index * self.dim..(index + 1) * self.dim]
    }

    /// The consecutive rows `examples`, as one row-major block.
    pub fn inputs_of(&self, examples: Range<usize>) -> &[f32] {
        &self.inputs[examples.start * self.dim..examples.end * self.dim]
    }

    /// mean_i ||x_i||², the input scale that enters the norm-based bounds.
    pub fn mean_input_norm_squared(&self) -> f64 {
        let total: f64 = self
            .inputs
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum();
        total / self.n as f64
    }
}
