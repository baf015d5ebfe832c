//! What happens to a data set after it is loaded: holding out a test set, subsampling the
//! training set, standardizing features. Random choices come from streams of the trial seed.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::data::error::DataError;
use crate::data::{Dataset, TrainTest};

/// Random streams of the data pipeline. They live in their own block of stream ids, far from
/// those of `science::rng`, so they never collide with another purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataStream {
    /// Which rows of a CSV training file are held out as the test set.
    HoldOut,
    /// Which training examples `subsample` keeps.
    Subsample,
}

pub fn data_stream(seed: u64, purpose: DataStream) -> ChaCha8Rng {
    const BLOCK: u64 = 0xDA7A << 32;
    let id = match purpose {
        DataStream::HoldOut => BLOCK | 1,
        DataStream::Subsample => BLOCK | 2,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(id);
    rng
}

/// The rows `indices` of `data`, in that order.
pub fn select(data: &Dataset, indices: &[usize]) -> Dataset {
    let mut inputs = Vec::with_capacity(indices.len() * data.dim);
    let mut labels = Vec::with_capacity(indices.len());
    for &index in indices {
        inputs.extend_from_slice(data.input(index));
        labels.push(data.labels[index]);
    }
    Dataset {
        inputs,
        labels,
        n: indices.len(),
        dim: data.dim,
        classes: data.classes,
    }
}

/// Shuffles the rows by the seed and holds out the last `test_size` of them as the test set.
/// `path` names the file in the error when too few rows are left for training.
pub fn hold_out(
    data: Dataset,
    test_size: usize,
    seed: u64,
    path: &str,
) -> Result<TrainTest, DataError> {
    if test_size >= data.n {
        return Err(DataError::TooFewExamples {
            path: path.into(),
            have: data.n,
            need: format!("more than data.test_size = {test_size}, so that training rows remain"),
        });
    }
    let mut order: Vec<usize> = (0..data.n).collect();
    order.shuffle(&mut data_stream(seed, DataStream::HoldOut));
    let (train_rows, test_rows) = order.split_at(data.n - test_size);
    Ok(TrainTest {
        train: select(&data, train_rows),
        test: select(&data, test_rows),
    })
}

/// At most `limit` examples of `data`, chosen by the seed and kept in their original order.
pub fn subsample(data: Dataset, limit: usize, seed: u64) -> Dataset {
    if limit >= data.n {
        return data;
    }
    let mut order: Vec<usize> = (0..data.n).collect();
    let (chosen, _) = order.partial_shuffle(&mut data_stream(seed, DataStream::Subsample), limit);
    let mut chosen = chosen.to_vec();
    chosen.sort_unstable();
    select(&data, &chosen)
}

/// Shifts and scales every feature by its mean and standard deviation on the training set, in
/// both sets. A feature that is constant on the training set is only shifted.
pub fn standardize(split: &mut TrainTest) {
    let train = &split.train;
    let dim = train.dim;
    let mut mean = vec![0.0f64; dim];
    for row in train.inputs.chunks_exact(dim) {
        for (sum, &value) in mean.iter_mut().zip(row) {
            *sum += f64::from(value);
        }
    }
    for sum in &mut mean {
        *sum /= train.n as f64;
    }
    let mut variance = vec![0.0f64; dim];
    for row in train.inputs.chunks_exact(dim) {
        for ((sum, &value), &centre) in variance.iter_mut().zip(row).zip(&mean) {
            let deviation = f64::from(value) - centre;
            *sum += deviation * deviation;
        }
    }
    let scale: Vec<f64> = variance
        .iter()
        .map(|&sum| {
            let deviation = (sum / train.n as f64).sqrt();
            if deviation > 1e-12 {
                1.0 / deviation
            } else {
                1.0
            }
        })
        .collect();
    for data in [&mut split.train, &mut split.test] {
        for row in data.inputs.chunks_exact_mut(dim) {
            for ((value, &centre), &factor) in row.iter_mut().zip(&mean).zip(&scale) {
                *value = ((f64::from(*value) - centre) * factor) as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(n: usize, dim: usize) -> Dataset {
        Dataset {
            inputs: (0..n * dim)
                .map(|index| {
                    (index % dim) as f32 * 3.0 + (index / dim) as f32 * (index % dim) as f32
                })
                .collect(),
            labels: (0..n as u32).map(|row| row % 2).collect(),
            n,
            dim,
            classes: 2,
        }
    }

    #[test]
    fn standardizing_gives_the_training_features_mean_0_and_std_1() {
        let mut split = TrainTest {
            train: ramp(50, 4),
            test: ramp(7, 4),
        };
        let test_before = split.test.clone();
        standardize(&mut split);
        let train = &split.train;
        for feature in 0..4 {
            let values: Vec<f64> = (0..train.n)
                .map(|row| f64::from(train.input(row)[feature]))
                .collect();
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            let variance =
                values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / values.len() as f64;
            assert!(mean.abs() < 1e-5, "feature {feature}: mean {mean}");
            // Feature 0 is constant (0) on the training set: shifted only, so it stays 0.
            let expected = if feature == 0 { 0.0 } else { 1.0 };
            assert!(
                (variance - expected).abs() < 1e-4,
                "feature {feature}: variance {variance}"
            );
        }
        // The test set is transformed with the training statistics, not its own.
        assert_ne!(split.test, test_before);
        let test_mean: f64 = (0..7)
            .map(|row| f64::from(split.test.input(row)[1]))
            .sum::<f64>()
            / 7.0;
        assert!(test_mean < -0.5, "test mean {test_mean}");
    }

    #[test]
    fn subsampling_is_determined_by_the_seed() {
        let data = ramp(100, 3);
        let first = subsample(data.clone(), 10, 4);
        assert_eq!(first.n, 10);
        assert_eq!(first.inputs.len(), 30);
        assert_eq!(first, subsample(data.clone(), 10, 4));
        assert_ne!(first, subsample(data.clone(), 10, 5));
        assert_eq!(subsample(data.clone(), 100, 4), data);
        assert_eq!(subsample(data.clone(), 1000, 4), data);
        // Chosen rows are distinct rows of the original, in their original order.
        let rows: Vec<f32> = (0..10).map(|row| first.input(row)[1]).collect();
        assert!(rows.windows(2).all(|pair| pair[0] < pair[1]), "{rows:?}");
    }
}
