//! From the science library's measurements to the wire message.

use proto::v1 as wire;

use crate::science::TrialMeasurements;

pub fn to_wire(measurements: &TrialMeasurements) -> wire::TrialResult {
    wire::TrialResult {
        outcome: measurements.outcome.as_str().to_string(),
        diverged_phase: measurements
            .diverged_phase
            .map(|phase| phase.as_str().to_string())
            .unwrap_or_default(),
        train_loss: measurements.train_loss,
        test_loss: measurements.test_loss,
        train_error: measurements.train_error,
        test_error: measurements.test_error,
        steps: measurements.steps,
        reached_target: measurements.reached_target,
        parameter_count: measurements.parameter_count,
        margin_gamma: measurements.margin_gamma,
        vc_capacity: measurements.vc_capacity,
        spectral_capacity: measurements.spectral_capacity,
        mean_input_norm_squared: measurements.mean_input_norm_squared,
        train_size: measurements.train_size,
        test_size: measurements.test_size,
        noise_stream: measurements.noise_stream,
        stay_fraction: measurements.stay_fraction,
        max_distance: measurements.max_distance,
        final_distance: measurements.final_distance,
        minimum_norm: measurements.minimum_norm,
        hessian_top_eigenvalues: measurements.hessian_top_eigenvalues.clone(),
        hessian_lambda_min: measurements.hessian_lambda_min,
        hessian_trace: measurements.hessian_trace,
        stability_margin: measurements.stability_margin,
        probe_stability_margin: measurements.probe_stability_margin,
        training_stability_margin: measurements.training_stability_margin,
        train_seconds: measurements.train_seconds,
        probe_seconds: measurements.probe_seconds,
        measure_seconds: measurements.measure_seconds,
        layers: measurements
            .layers
            .iter()
            .map(|layer| wire::LayerMeasurement {
                layer: layer.layer,
                fan_in: layer.fan_in,
                fan_out: layer.fan_out,
                spectral_norm: layer.spectral_norm,
                frobenius_norm: layer.frobenius_norm,
                distance_from_init_spectral: layer.distance_from_init_spectral,
                distance_from_init_frobenius: layer.distance_from_init_frobenius,
                distance_from_init_two_one: layer.distance_from_init_two_one,
                probe_max_displacement_spectral: layer.probe_max_displacement_spectral,
                probe_max_displacement_frobenius: layer.probe_max_displacement_frobenius,
                probe_max_displacement_two_one: layer.probe_max_displacement_two_one,
            })
            .collect(),
        bounds: measurements
            .bounds
            .iter()
            .map(|bound| wire::BoundMeasurement {
                name: bound.name.to_string(),
                capacity: bound.capacity,
            })
            .collect(),
        polish_steps: measurements.polish_steps,
        gradient_norm: measurements.gradient_norm,
        probe_statistics: measurements
            .probe_statistics
            .iter()
            .map(|statistic| wire::ProbeStatistic {
                name: statistic.name.to_string(),
                value: statistic.value,
            })
            .collect(),
        radii: measurements
            .radii
            .iter()
            .map(|radius| wire::RadiusMeasurement {
                radius: radius.radius,
                stay_probability: radius.stay_probability,
                mean_exit_step: radius.mean_exit_step,
                median_exit_step: radius.median_exit_step,
                occupancy: radius.occupancy,
                replicate_exit_steps: radius.replicate_exit_steps.clone(),
                mean_exits: radius.mean_exits,
                mean_reentries: radius.mean_reentries,
                predicted_stay_probability: radius.predicted_stay_probability,
                stay_probability_bound: radius.stay_probability_bound,
            })
            .collect(),
        msd_curve: measurements
            .msd_curve
            .iter()
            .map(|point| wire::MsdPoint {
                step: point.step,
                msd: point.msd,
                msd_hessian_top: point.msd_hessian_top,
                predicted_msd: point.predicted_msd,
            })
            .collect(),
        landscape: measurements
            .landscape
            .as_ref()
            .map(|slice| wire::LandscapeSlice {
                plane: slice.plane.to_string(),
                grid: slice.grid,
                extent: slice.extent,
                losses: slice
                    .losses
                    .iter()
                    .flat_map(|loss| loss.to_le_bytes())
                    .collect(),
                trajectory: slice
                    .trajectory
                    .iter()
                    .map(|point| wire::LandscapePoint {
                        replicate: point.replicate,
                        step: point.step,
                        a: point.a,
                        b: point.b,
                    })
                    .collect(),
            }),
    }
}
