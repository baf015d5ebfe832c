//! Synthetic classification: `classes` Gaussian clusters with identity covariance. The class
//! means are drawn once per seed from N(0, I/input_dim)·cluster_separation, so two means lie
//! about cluster_separation·√2 noise standard deviations apart whatever the dimension. Labels are
//! balanced (example i has class i mod classes before label noise); label noise replaces a label
//! by a uniformly random class, in the training and the test set alike, as for the
//! teacher-student task.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use vocabulary::DataConfig;

use crate::data::{Dataset, TrainTest};
use crate::rng::{Stream, stream};

pub fn generate(config: &DataConfig, seed: u64) -> TrainTest {
    let means = class_means(config, seed);
    let train = labelled_set(
        config,
        &means,
        config.train_size,
        &mut stream(seed, Stream::TrainInputs),
        &mut stream(seed, Stream::TrainLabelNoise),
    );
    let test = labelled_set(
        config,
        &means,
        config.test_size,
        &mut stream(seed, Stream::TestInputs),
        &mut stream(seed, Stream::TestLabelNoise),
    );
    TrainTest { train, test }
}

/// `classes × input_dim`, row-major; drawn from the seed's teacher stream.
pub fn class_means(config: &DataConfig, seed: u64) -> Vec<f32> {
    let scale = config.cluster_separation() / (config.input_dim as f64).sqrt();
    let mut rng = stream(seed, Stream::Teacher);
    (0..config.classes * config.input_dim)
        .map(|_| (rng.sample::<f64, _>(StandardNormal) * scale) as f32)
        .collect()
}

fn labelled_set(
    config: &DataConfig,
    means: &[f32],
    size: usize,
    input_rng: &mut ChaCha8Rng,
    label_noise: &mut ChaCha8Rng,
) -> Dataset {
    let dim = config.input_dim;
    let mut inputs = Vec::with_capacity(size * dim);
    let mut labels = Vec::with_capacity(size);
    for example in 0..size {
        let class = example % config.classes;
        let mean = &means[class * dim..(class + 1) * dim];
        for &centre in mean {
            let noise: f32 = input_rng.sample(StandardNormal);
            inputs.push(centre + noise);
        }
        labels.push(class as u32);
    }
    Dataset::with_label_noise(inputs, labels, dim, config, label_noise)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vocabulary::DataSet;

    fn config(separation: f64) -> DataConfig {
        let mut config = DataConfig::synthetic(DataSet::GaussianMixture, 10, 4, 400, 400);
        config.cluster_separation = Some(separation);
        config
    }

    /// Test accuracy of the classifier that picks the class with the nearest training mean.
    fn nearest_mean_accuracy(data: &TrainTest) -> f64 {
        let (dim, classes) = (data.train.dim, data.train.classes);
        let mut sums = vec![0.0f64; classes * dim];
        let mut counts = vec![0usize; classes];
        for row in 0..data.train.n {
            let class = data.train.labels[row] as usize;
            counts[class] += 1;
            for (sum, &value) in sums[class * dim..(class + 1) * dim]
                .iter_mut()
                .zip(data.train.input(row))
            {
                *sum += f64::from(value);
            }
        }
        let mut correct = 0;
        for row in 0..data.test.n {
            let input = data.test.input(row);
            let distance = |class: usize| -> f64 {
                input
                    .iter()
                    .zip(&sums[class * dim..(class + 1) * dim])
                    .map(|(&x, &sum)| {
                        let difference = f64::from(x) - sum / counts[class] as f64;
                        difference * difference
                    })
                    .sum()
            };
            let predicted = (0..classes)
                .min_by(|&a, &b| distance(a).total_cmp(&distance(b)))
                .unwrap_or(0);
            if predicted as u32 == data.test.labels[row] {
                correct += 1;
            }
        }
        correct as f64 / data.test.n as f64
    }

    #[test]
    fn well_separated_clusters_are_learnable_and_balanced() {
        let data = generate(&config(8.0), 1);
        assert_eq!(
            (data.train.n, data.train.dim, data.train.classes),
            (400, 10, 4)
        );
        for class in 0..4 {
            let count = data
                .train
                .labels
                .iter()
                .filter(|&&label| label == class)
                .count();
            assert_eq!(count, 100);
        }
        let accuracy = nearest_mean_accuracy(&data);
        assert!(accuracy > 0.9, "nearest-mean accuracy {accuracy}");
        // Without separation the clusters coincide: chance level.
        let accuracy = nearest_mean_accuracy(&generate(&config(0.0), 1));
        assert!(accuracy < 0.45, "nearest-mean accuracy {accuracy}");
    }

    #[test]
    fn the_data_is_determined_by_the_seed_and_the_test_set_by_its_own_stream() {
        assert_eq!(generate(&config(3.0), 5), generate(&config(3.0), 5));
        assert_ne!(
            generate(&config(3.0), 5).train,
            generate(&config(3.0), 6).train
        );
        let mut larger = config(3.0);
        larger.train_size = 800;
        assert_eq!(generate(&config(3.0), 5).test, generate(&larger, 5).test);

        let mut noisy = config(3.0);
        noisy.label_noise = 0.5;
        let clean = generate(&config(3.0), 5);
        let noisy = generate(&noisy, 5);
        assert_eq!(clean.train.inputs, noisy.train.inputs);
        let changed =
            crate::data::share_of_changed_labels(&clean.train.labels, &noisy.train.labels);
        // Half the labels are redrawn and a quarter of those keep their class: ≈ 3/8 change.
        assert!(
            (0.28..0.47).contains(&changed),
            "share of changed labels {changed}"
        );
    }
}
