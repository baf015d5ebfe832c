//! Every bound of `science.md` §4 that applies to the trained network, from the formulas in
//! [`bounds`](super::bounds), by the names of [`BoundName`].

use vocabulary::BoundName;

use crate::data::Dataset;
use crate::measure::bounds::{
    LayerNorms, ProbeExcursion, SampleStatistics, frobenius_capacity,
    golowich_rakhlin_shamir_capacity, neyshabur_2019_capacity, one_infinity_capacity,
    pac_bayes_flatness_capacity, path_norm_capacity, spectral_frobenius_pac_bayes_capacity,
    spectral_two_layer_capacity, stagnation_localized_capacity,
};
use crate::measure::flatness::{Flatness, SIGMA_GRID_SIZE};
use crate::measure::network_norms::{initial_image_frobenius, path_norm};
use crate::measure::probe::euclidean_distance;
use crate::model::mlp::Mlp;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BoundMeasurement {
    pub name: BoundName,
    /// C, such that the gap is of order sqrt(C / m); infinite when the margin γ is not positive.
    pub capacity: f64,
}

/// What the bounds are computed from, at the trained point.
pub struct TrainedPoint<'a> {
    pub mlp: &'a Mlp,
    pub parameters: &'a [f32],
    pub initial: &'a [f32],
    pub train: &'a Dataset,
    pub layers: &'a [LayerNorms],
    pub gamma: f64,
    pub delta: f64,
    /// W, the widest layer (inputs and outputs included), for the ln W of the spectral forms.
    pub max_width: f64,
    /// σ' of the PAC-Bayes flatness search and the noisy network's error there; None when it
    /// was skipped.
    pub flatness: Option<Flatness>,
    /// Per layer, what the probe saw; empty without a completed probe.
    pub probe_excursions: &'a [ProbeExcursion],
}

/// K̂ of the stagnation-localized bound. Counting distinct minima needs every seed's trial, which
/// one trial does not see: each trial assumes its own minimum is the only one.
const DISTINCT_MINIMA: f64 = 1.0;

/// The bounds in [`BoundName`] order; the 2-layer forms only for one hidden layer.
pub fn evaluate_bounds(point: &TrainedPoint) -> Vec<BoundMeasurement> {
    let sample: SampleStatistics = super::network_norms::sample_statistics(
        &point.train.inputs,
        point.train.dim,
        point.train.classes,
    );
    let (gamma, delta) = (point.gamma, point.delta);
    let mut bounds = Vec::with_capacity(BoundName::ALL.len());
    let mut push = |name: BoundName, capacity: f64| {
        bounds.push(BoundMeasurement { name, capacity });
    };
    if let [first, second] = point.layers {
        push(
            BoundName::Frobenius2Layer,
            frobenius_capacity(first, second, &sample, gamma, delta),
        );
        push(
            BoundName::OneInfinity2Layer,
            one_infinity_capacity(first, second, &sample, gamma, delta),
        );
        push(
            BoundName::Spectral2Layer,
            spectral_two_layer_capacity(
                first,
                second,
                &sample,
                point.mlp.parameter_count() as f64,
                gamma,
                delta,
            ),
        );
        let image = initial_image_frobenius(point.mlp, point.initial, &point.train.inputs);
        push(
            BoundName::Neyshabur2019TwoLayer,
            neyshabur_2019_capacity(first, second, &sample, image, gamma, delta),
        );
    }
    push(
        BoundName::SpectralFrobeniusPacBayes,
        spectral_frobenius_pac_bayes_capacity(point.layers, &sample, gamma, delta),
    );
    push(
        BoundName::GolowichRakhlinShamir,
        golowich_rakhlin_shamir_capacity(point.layers, &sample, gamma, delta),
    );
    push(
        BoundName::PathNorm,
        path_norm_capacity(path_norm(point.mlp, point.parameters), gamma),
    );
    if let Some(flatness) = point.flatness {
        let distance = euclidean_distance(point.parameters, point.initial);
        push(
            BoundName::PacBayesFlatness,
            pac_bayes_flatness_capacity(
                distance * distance,
                flatness,
                SIGMA_GRID_SIZE,
                point.train.len() as f64,
                delta,
            ),
        );
    }
    if !point.probe_excursions.is_empty() {
        push(
            BoundName::StagnationLocalizedSpectral,
            stagnation_localized_capacity(
                point.probe_excursions,
                &sample,
                point.max_width,
                DISTINCT_MINIMA,
                gamma,
                delta,
            ),
        );
    }
    bounds
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::bounds::golowich_rakhlin_shamir_capacity;
    use crate::measure::network_norms::layer_norms;
    use crate::rng::{Stream, stream};
    use vocabulary::Activation;

    fn dataset(dim: usize, n: usize) -> Dataset {
        Dataset {
            inputs: (0..n * dim)
                .map(|index| (index % 7) as f32 * 0.1 - 0.3)
                .collect(),
            labels: (0..n).map(|index| (index % 3) as u32).collect(),
            n,
            dim,
            classes: 3,
        }
    }

    #[test]
    fn two_layer_forms_only_for_one_hidden_layer_and_all_in_the_published_order() {
        for (depth, expected) in [(2, 7), (3, 3)] {
            let mlp = Mlp::new(4, 6, 3, depth, Activation::Relu, true);
            let mut rng = stream(3, Stream::Init);
            let initial = mlp.initialize(vocabulary::Init::He, &mut rng);
            let parameters: Vec<f32> = initial.iter().map(|w| w * 1.5 + 0.01).collect();
            let layers = layer_norms(&mlp, &parameters, &initial, 50, &mut rng);
            let train = dataset(4, 12);
            let point = TrainedPoint {
                mlp: &mlp,
                parameters: &parameters,
                initial: &initial,
                train: &train,
                layers: &layers,
                gamma: 0.5,
                delta: 0.01,
                max_width: 6.0,
                flatness: None,
                probe_excursions: &[],
            };
            let bounds = evaluate_bounds(&point);
            assert_eq!(bounds.len(), expected, "depth {depth}");
            let names: Vec<BoundName> = bounds.iter().map(|bound| bound.name).collect();
            let mut in_order: Vec<BoundName> = BoundName::ALL
                .iter()
                .copied()
                .filter(|name| names.contains(name))
                .collect();
            in_order.dedup();
            assert_eq!(names, in_order);
            assert!(
                bounds
                    .iter()
                    .all(|bound| bound.capacity.is_finite() && bound.capacity > 0.0)
            );
            // The suite passes its inputs through: the GRS entry is the formula on these norms.
            let sample = crate::measure::network_norms::sample_statistics(&train.inputs, 4, 3);
            let grs = bounds
                .iter()
                .find(|bound| bound.name == BoundName::GolowichRakhlinShamir)
                .expect("GRS for any depth");
            assert_eq!(
                grs.capacity,
                golowich_rakhlin_shamir_capacity(&layers, &sample, 0.5, 0.01)
            );
        }
    }
}
