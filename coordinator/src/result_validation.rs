//! What the coordinator checks of a reported result before storing any of it: every refusal is
//! `INVALID_ARGUMENT` naming the field and its value, a code a worker does not retry, and nothing
//! of the result is stored.

use proto::v1 as wire;
use tonic::Status;
use vocabulary::{BoundName, ProbeStatisticName, TrialConfig, Unit};

/// A result must say how the trial ended, and a trial that did not diverge must have finite
/// losses and errors; times are never negative or NaN. Nothing is stored otherwise.
pub fn validate_result(result: &wire::TrialResult) -> Result<(), Status> {
    if !matches!(
        result.outcome.as_str(),
        "converged" | "budget_exhausted" | "diverged"
    ) {
        return Err(Status::invalid_argument(format!(
            "`result.outcome` = {:?} is invalid: expected converged, budget_exhausted or diverged",
            shortened(&result.outcome)
        )));
    }
    if result.outcome != "diverged" {
        for (field, value) in [
            ("train_loss", result.train_loss),
            ("test_loss", result.test_loss),
            ("train_error", result.train_error),
            ("test_error", result.test_error),
        ] {
            if !value.is_finite() {
                return Err(Status::invalid_argument(format!(
                    "`result.{field}` = {value} is invalid: must be finite unless the trial diverged"
                )));
            }
        }
    }
    check_ranges(result)?;
    for (field, value) in [
        ("train_seconds", result.train_seconds),
        ("probe_seconds", result.probe_seconds),
        ("measure_seconds", result.measure_seconds),
    ] {
        if !(value.is_finite() && value >= 0.0) {
            return Err(Status::invalid_argument(format!(
                "`result.{field}` = {value} is invalid: must be a finite number ≥ 0"
            )));
        }
    }
    check_names(
        "result.bounds",
        result.bounds.iter().map(|bound| bound.name.as_str()),
        BoundName::from_name,
        BoundName::ALL,
    )?;
    check_names(
        "result.probe_statistics",
        result
            .probe_statistics
            .iter()
            .map(|statistic| statistic.name.as_str()),
        ProbeStatisticName::from_name,
        ProbeStatisticName::ALL,
    )?;
    if result.train_size == 0 {
        return Err(Status::invalid_argument(
            "`result.train_size` = 0 is invalid: must be at least 1",
        ));
    }
    if let Some(slice) = &result.landscape {
        validate_landscape(slice)?;
    }
    Ok(())
}

/// The result's lists must have the sizes its trial's configuration gives them: one layer entry
/// per dense layer (numbered from 1), one radius entry per configured radius, one exit step per
/// replicate. A list is empty where its phase did not run (a divergence, no probe). The error
/// names the field and both sizes.
pub fn check_against_config(result: &wire::TrialResult, params: &str) -> Result<(), String> {
    let config: TrialConfig = serde_json::from_str(params)
        .map_err(|error| format!("the stored configuration does not parse: {error}"))?;
    let depth = config.model.depth;
    if !(result.layers.is_empty() || result.layers.len() == depth) {
        return Err(format!(
            "`result.layers` has {} entries: a network of depth {depth} has {depth}",
            result.layers.len()
        ));
    }
    for (index, layer) in result.layers.iter().enumerate() {
        if layer.layer as usize != index + 1 {
            return Err(format!(
                "`result.layers[{index}].layer` = {}: expected {}",
                layer.layer,
                index + 1
            ));
        }
    }
    let radii = config.probe.radii.len();
    if !(result.radii.is_empty() || result.radii.len() == radii) {
        return Err(format!(
            "`result.radii` has {} entries: the probe has {radii} radii",
            result.radii.len()
        ));
    }
    let replicates = config.probe.replicates as usize;
    for (index, radius) in result.radii.iter().enumerate() {
        if radius.replicate_exit_steps.len() != replicates {
            return Err(format!(
                "`result.radii[{index}].replicate_exit_steps` has {} entries: the probe has {replicates} replicates",
                radius.replicate_exit_steps.len()
            ));
        }
    }
    Ok(())
}

/// Every finite value must be one its unit admits (a share in [0, 1], a loss, distance, norm,
/// capacity or time not negative); non-finite values mean "not measured" and are stored as NULL.
fn check_ranges(result: &wire::TrialResult) -> Result<(), Status> {
    let scalars = [
        ("train_loss", Unit::Loss, result.train_loss),
        ("test_loss", Unit::Loss, result.test_loss),
        ("train_error", Unit::Share, result.train_error),
        ("test_error", Unit::Share, result.test_error),
        ("vc_capacity", Unit::Capacity, result.vc_capacity),
        (
            "spectral_capacity",
            Unit::Capacity,
            result.spectral_capacity,
        ),
        (
            "mean_input_norm_squared",
            Unit::ParameterDistance,
            result.mean_input_norm_squared,
        ),
        ("stay_fraction", Unit::Share, result.stay_fraction),
        ("max_distance", Unit::ParameterDistance, result.max_distance),
        (
            "final_distance",
            Unit::ParameterDistance,
            result.final_distance,
        ),
        ("minimum_norm", Unit::ParameterDistance, result.minimum_norm),
        (
            "gradient_norm",
            Unit::ParameterDistance,
            result.gradient_norm,
        ),
    ];
    for (field, unit, value) in scalars {
        in_range(&format!("result.{field}"), unit, value)?;
    }
    for (index, layer) in result.layers.iter().enumerate() {
        if layer.fan_in == 0 || layer.fan_out == 0 {
            return Err(Status::invalid_argument(format!(
                "`result.layers[{index}]` is {} × {}: a layer has at least one input and one output",
                layer.fan_out, layer.fan_in
            )));
        }
        for (field, value) in [
            ("spectral_norm", layer.spectral_norm),
            ("frobenius_norm", layer.frobenius_norm),
            (
                "distance_from_init_spectral",
                layer.distance_from_init_spectral,
            ),
            (
                "distance_from_init_frobenius",
                layer.distance_from_init_frobenius,
            ),
            (
                "distance_from_init_two_one",
                layer.distance_from_init_two_one,
            ),
            (
                "probe_max_displacement_spectral",
                layer.probe_max_displacement_spectral,
            ),
            (
                "probe_max_displacement_frobenius",
                layer.probe_max_displacement_frobenius,
            ),
            (
                "probe_max_displacement_two_one",
                layer.probe_max_displacement_two_one,
            ),
        ] {
            in_range(
                &format!("result.layers[{index}].{field}"),
                Unit::ParameterDistance,
                value,
            )?;
        }
    }
    for (index, radius) in result.radii.iter().enumerate() {
        if !(radius.radius.is_finite() && radius.radius > 0.0) {
            return Err(Status::invalid_argument(format!(
                "`result.radii[{index}].radius` = {} is invalid: must be a finite number greater than 0",
                radius.radius
            )));
        }
        for (field, unit, value) in [
            ("stay_probability", Unit::Share, radius.stay_probability),
            ("mean_exit_step", Unit::Steps, radius.mean_exit_step),
            ("occupancy", Unit::Share, radius.occupancy),
            ("median_exit_step", Unit::Steps, radius.median_exit_step),
            ("mean_exits", Unit::Steps, radius.mean_exits),
            ("mean_reentries", Unit::Steps, radius.mean_reentries),
            (
                "predicted_stay_probability",
                Unit::Share,
                radius.predicted_stay_probability,
            ),
            (
                "stay_probability_bound",
                Unit::Share,
                radius.stay_probability_bound,
            ),
        ] {
            in_range(&format!("result.radii[{index}].{field}"), unit, value)?;
        }
    }
    for bound in &result.bounds {
        in_range(
            &format!("result.bounds[{}].capacity", shortened(&bound.name)),
            Unit::Capacity,
            bound.capacity,
        )?;
    }
    for statistic in &result.probe_statistics {
        if let Some(name) = ProbeStatisticName::from_name(&statistic.name) {
            in_range(
                &format!("result.probe_statistics[{name}]"),
                name.measurement().unit,
                statistic.value,
            )?;
        }
    }
    Ok(())
}

fn in_range(field: &str, unit: Unit, value: f64) -> Result<(), Status> {
    if value.is_finite() && !unit.admits(value) {
        let expected = match unit {
            Unit::Share => "a share between 0 and 1",
            _ => "not negative",
        };
        return Err(Status::invalid_argument(format!(
            "`{field}` = {value} is invalid: must be {expected}"
        )));
    }
    Ok(())
}

/// Each name must be a member of the catalog's set, and none twice.
fn check_names<'a, Name: Copy + Eq + std::hash::Hash + std::fmt::Display>(
    field: &str,
    names: impl Iterator<Item = &'a str>,
    parse: fn(&str) -> Option<Name>,
    all: &[Name],
) -> Result<(), Status> {
    let mut named = std::collections::HashSet::new();
    for text in names {
        let Some(name) = parse(text) else {
            let expected: Vec<String> = all.iter().map(ToString::to_string).collect();
            return Err(Status::invalid_argument(format!(
                "`{field}` names an unknown entry {:?}: expected one of {}",
                shortened(text),
                expected.join(", ")
            )));
        };
        if !named.insert(name) {
            return Err(Status::invalid_argument(format!(
                "`{field}` names \"{name}\" twice"
            )));
        }
    }
    Ok(())
}

/// A slice's losses must fill its grid exactly, and its plane and extent be ones a worker makes.
fn validate_landscape(slice: &wire::LandscapeSlice) -> Result<(), Status> {
    use proto::MAX_LANDSCAPE_GRID;
    if !matches!(slice.plane.as_str(), "pca" | "random") {
        return Err(Status::invalid_argument(format!(
            "`result.landscape.plane` = {:?} is invalid: expected pca or random",
            shortened(&slice.plane)
        )));
    }
    if !(2..=MAX_LANDSCAPE_GRID).contains(&slice.grid) {
        return Err(Status::invalid_argument(format!(
            "`result.landscape.grid` = {} is invalid: must be between 2 and {MAX_LANDSCAPE_GRID}",
            slice.grid
        )));
    }
    let expected = 4 * (slice.grid as usize).pow(2);
    if slice.losses.len() != expected {
        return Err(Status::invalid_argument(format!(
            "`result.landscape.losses` holds {} bytes: a grid of {} needs {expected} (one f32 per point)",
            slice.losses.len(),
            slice.grid
        )));
    }
    if !(slice.extent.is_finite() && slice.extent > 0.0) {
        return Err(Status::invalid_argument(format!(
            "`result.landscape.extent` = {} is invalid: must be a finite number greater than 0",
            slice.extent
        )));
    }
    Ok(())
}

/// At most this many characters of a client's text are echoed back in an error.
const ECHO_CHARS: usize = 64;

/// `text` cut to [`ECHO_CHARS`], marked where it was cut.
fn shortened(text: &str) -> String {
    match text.char_indices().nth(ECHO_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_result() -> wire::TrialResult {
        wire::TrialResult {
            outcome: "converged".to_string(),
            train_size: 100,
            ..Default::default()
        }
    }

    #[test]
    fn named_measurements_must_be_known_and_named_once() {
        assert!(validate_result(&valid_result()).is_ok());
        let statistic = |name: &str| wire::ProbeStatistic {
            name: name.to_string(),
            value: 1.0,
        };
        let unknown = wire::TrialResult {
            probe_statistics: vec![statistic("msd_diffusion"), statistic("vibes")],
            ..valid_result()
        };
        let error = validate_result(&unknown).expect_err("unknown statistic");
        assert_eq!(error.code(), tonic::Code::InvalidArgument);
        assert!(error.message().contains("\"vibes\""), "{}", error.message());
        let twice = wire::TrialResult {
            probe_statistics: vec![statistic("linear_barrier"), statistic("linear_barrier")],
            ..valid_result()
        };
        let error = validate_result(&twice).expect_err("a statistic twice");
        assert!(error.message().contains("twice"), "{}", error.message());
        let bound = wire::TrialResult {
            bounds: vec![wire::BoundMeasurement {
                name: "made_up".to_string(),
                capacity: 1.0,
            }],
            ..valid_result()
        };
        let error = validate_result(&bound).expect_err("unknown bound");
        assert!(
            error.message().contains("\"made_up\""),
            "{}",
            error.message()
        );
    }

    #[test]
    fn a_landscape_slice_must_fill_its_grid() {
        let slice = |grid: u32, bytes: usize, plane: &str, extent: f64| wire::TrialResult {
            landscape: Some(wire::LandscapeSlice {
                plane: plane.to_string(),
                grid,
                extent,
                losses: vec![0; bytes],
                trajectory: Vec::new(),
            }),
            ..valid_result()
        };
        assert!(validate_result(&slice(3, 36, "pca", 1.0)).is_ok());
        for (bad, field) in [
            (slice(3, 35, "pca", 1.0), "losses"),
            (slice(1, 4, "pca", 1.0), "grid"),
            (slice(500, 1_000_000, "pca", 1.0), "grid"),
            (slice(3, 36, "sideways", 1.0), "plane"),
            (slice(3, 36, "random", f64::NAN), "extent"),
        ] {
            let error = validate_result(&bad).expect_err(field);
            assert!(
                error
                    .message()
                    .contains(&format!("result.landscape.{field}")),
                "{}",
                error.message()
            );
        }
    }

    #[test]
    fn values_out_of_their_range_are_refused_by_field() {
        let negative_error = wire::TrialResult {
            train_error: -0.1,
            ..valid_result()
        };
        let error = validate_result(&negative_error).expect_err("negative error rate");
        assert_eq!(error.code(), tonic::Code::InvalidArgument);
        assert!(
            error.message().contains("`result.train_error` = -0.1"),
            "{}",
            error.message()
        );
        let share = wire::TrialResult {
            radii: vec![wire::RadiusMeasurement {
                radius: 0.5,
                stay_probability: 1.5,
                ..Default::default()
            }],
            ..valid_result()
        };
        let error = validate_result(&share).expect_err("a probability above 1");
        assert!(
            error.message().contains("result.radii[0].stay_probability"),
            "{}",
            error.message()
        );
        let statistic = wire::TrialResult {
            probe_statistics: vec![wire::ProbeStatistic {
                name: "basin_return_share".to_string(),
                value: 2.0,
            }],
            ..valid_result()
        };
        let error = validate_result(&statistic).expect_err("a share of 2");
        assert!(
            error.message().contains("basin_return_share"),
            "{}",
            error.message()
        );
        // Not measured is not out of range: NaN and infinite values pass to be stored as NULL.
        let unmeasured = wire::TrialResult {
            spectral_capacity: f64::INFINITY,
            stay_fraction: f64::NAN,
            ..valid_result()
        };
        assert!(validate_result(&unmeasured).is_ok());
    }

    #[test]
    fn echoed_input_is_cut_short() {
        let long = "x".repeat(10_000);
        let unknown = wire::TrialResult {
            bounds: vec![wire::BoundMeasurement {
                name: long,
                capacity: 1.0,
            }],
            ..valid_result()
        };
        let error = validate_result(&unknown).expect_err("unknown bound");
        assert!(error.message().len() < 1_000, "{}", error.message().len());
        assert!(error.message().contains("x…"), "{}", error.message());
    }
}
