//! Synthetic classification: Gaussian inputs labelled by a random tanh teacher network, with
//! label noise. Test examples come from the same distribution, label noise included, so the
//! test risk estimates the population risk.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use vocabulary::{Activation, DataConfig, Init};

use crate::data::{Dataset, TrainTest};
use crate::model::mlp::{Mlp, Workspace};
use crate::rng::{Stream, stream};

/// Examples labelled per teacher forward pass.
const LABELLING_CHUNK: usize = 256;

/// The teacher-student training and test sets.
pub type TeacherStudent = TrainTest;

pub fn generate(config: &DataConfig, seed: u64) -> TeacherStudent {
    let teacher = Mlp::new(
        config.input_dim,
        config.teacher_width,
        config.classes,
        2,
        Activation::Tanh,
        false,
    );
    let teacher_parameters = teacher.initialize(Init::Lecun, &mut stream(seed, Stream::Teacher));
    let mut workspace = Workspace::new(
        &teacher,
        LABELLING_CHUNK.min(config.train_size.max(config.test_size)),
    );
    let train = labelled_set(
        config,
        config.train_size,
        &mut stream(seed, Stream::TrainInputs),
        &mut stream(seed, Stream::TrainLabelNoise),
        (&teacher, &teacher_parameters, &mut workspace),
    );
    let test = labelled_set(
        config,
        config.test_size,
        &mut stream(seed, Stream::TestInputs),
        &mut stream(seed, Stream::TestLabelNoise),
        (&teacher, &teacher_parameters, &mut workspace),
    );
    TeacherStudent { train, test }
}

fn labelled_set(
    config: &DataConfig,
    size: usize,
    input_rng: &mut ChaCha8Rng,
    label_noise: &mut ChaCha8Rng,
    (teacher, teacher_parameters, workspace): (&Mlp, &[f32], &mut Workspace),
) -> Dataset {
    let dim = config.input_dim;
    let inputs: Vec<f32> = (0..size * dim)
        .map(|_| input_rng.sample(StandardNormal))
        .collect();
    let mut labels = Vec::with_capacity(size);
    let chunk = workspace.capacity().max(1);
    let mut start = 0;
    while start < size {
        let end = (start + chunk).min(size);
        teacher.forward(
            teacher_parameters,
            &inputs[start * dim..end * dim],
            end - start,
            workspace,
        );
        for row in workspace.logits().chunks_exact(config.classes) {
            labels.push(argmax(row));
        }
        start = end;
    }
    Dataset::with_label_noise(inputs, labels, dim, config, label_noise)
}

fn argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (index, &value) in values.iter().enumerate() {
        if value > values[best] {
            best = index;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use vocabulary::DataSet;

    fn config(label_noise: f64) -> DataConfig {
        DataConfig {
            teacher_width: 7,
            label_noise,
            ..DataConfig::synthetic(DataSet::TeacherStudent, 5, 3, 300, 200)
        }
    }

    #[test]
    fn labels_follow_the_teacher_and_noise_replaces_about_the_requested_share() {
        let clean = generate(&config(0.0), 3);
        let noisy = generate(&config(0.5), 3);
        assert_eq!(clean.train.inputs, noisy.train.inputs);
        assert_eq!(clean.train.inputs.len(), 300 * 5);
        assert_eq!(clean.test.labels.len(), 200);
        // Every class occurs, so the task is not degenerate.
        for class in 0..3 {
            assert!(clean.train.labels.contains(&class));
        }
        // Half the labels are redrawn and a third of those keep their class: ≈ 1/3 change.
        let share = crate::data::share_of_changed_labels(&clean.train.labels, &noisy.train.labels);
        assert!(
            (0.22..0.45).contains(&share),
            "share of changed labels {share}"
        );
    }

    #[test]
    fn the_test_set_does_not_depend_on_the_train_set_size() {
        let mut larger = config(0.3);
        larger.train_size = 400;
        assert_eq!(generate(&config(0.3), 9).test, generate(&larger, 9).test);
        assert_ne!(
            generate(&config(0.0), 9).train.inputs,
            generate(&config(0.0), 10).train.inputs
        );
    }
}
