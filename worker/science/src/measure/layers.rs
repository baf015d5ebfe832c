//! Per-layer weight norms at the trained point and their distances from the initialisation.

use rand_chacha::ChaCha8Rng;

use crate::measure::network_norms::weights_and_displacement;
use crate::measure::norms::{frobenius_norm, spectral_norm, two_one_norm};
use crate::measurements::LayerMeasurement;
use crate::model::mlp::Mlp;

pub fn measure_layers(
    mlp: &Mlp,
    parameters: &[f32],
    initial: &[f32],
    power_iterations: u32,
    rng: &mut ChaCha8Rng,
) -> Vec<LayerMeasurement> {
    let mut measurements = Vec::with_capacity(mlp.layers().len());
    for (index, layer) in mlp.layers().iter().enumerate() {
        let (weights, displacement) = weights_and_displacement(layer, parameters, initial);
        let (rows, cols) = (layer.fan_out, layer.fan_in);
        measurements.push(LayerMeasurement {
            layer: index as u32 + 1,
            fan_in: layer.fan_in as u32,
            fan_out: layer.fan_out as u32,
            spectral_norm: spectral_norm(&weights, rows, cols, power_iterations, rng),
            frobenius_norm: frobenius_norm(&weights),
            distance_from_init_spectral: spectral_norm(
                &displacement,
                rows,
                cols,
                power_iterations,
                rng,
            ),
            distance_from_init_frobenius: frobenius_norm(&displacement),
            distance_from_init_two_one: two_one_norm(&displacement, rows, cols),
            probe_max_displacement_spectral: f64::NAN,
            probe_max_displacement_frobenius: f64::NAN,
            probe_max_displacement_two_one: f64::NAN,
        });
    }
    measurements
}
