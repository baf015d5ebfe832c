//! Batched leases and results, shared by both stores: the Rust side of claiming trials for many
//! lease calls at once and of recording many results in one transaction, and the rows of the
//! multi-row INSERTs (one builder for both backends, so the column lists cannot drift apart).

use std::collections::{HashMap, HashSet};

use sqlx::query_builder::Separated;
use sqlx::{Database, Encode, QueryBuilder, Type};

use super::values::{eigenvalues_json, finite, gap_estimate, new_lease_id};
use crate::sweep::{PlannedTrial, SweepPlan};

use super::{LeaseRequest, LeasedTrial, RecordOutcome, ResultReport, StoreError};

/// The columns of `results` in the order [`result_inserts`] binds them.
pub const RESULT_COLUMNS: &str = "INSERT INTO results (trial_id, worker_id, outcome, diverged_phase, \
     train_loss, test_loss, train_error, test_error, loss_gap, error_gap, steps, reached_target, \
     parameter_count, train_size, margin_gamma, mean_input_norm_squared, vc_capacity, \
     spectral_capacity, vc_gap_estimate, spectral_gap_estimate, minimum_norm, stay_fraction, \
     max_distance, final_distance, train_seconds, probe_seconds, measure_seconds, recorded_at_ms, \
     hessian_lambda_max, hessian_lambda_min, hessian_trace, stability_margin, \
     hessian_top_eigenvalues, polish_steps, gradient_norm, msd_curve, probe_stability_margin, \
     training_stability_margin, test_size, noise_stream) ";

pub const LAYER_COLUMNS: &str = "INSERT INTO layer_measurements (trial_id, layer, fan_in, fan_out, \
     spectral_norm, frobenius_norm, distance_from_init_spectral, distance_from_init_frobenius, \
     distance_from_init_two_one, probe_max_displacement_spectral, \
     probe_max_displacement_frobenius, probe_max_displacement_two_one) ";

pub const RADIUS_COLUMNS: &str = "INSERT INTO probe_radii (trial_id, radius_index, radius, \
     stay_probability, mean_exit_step, occupancy, median_exit_step, replicate_exit_steps, \
     mean_exits, mean_reentries, predicted_stay_probability, stay_probability_bound) ";

pub const TRIAL_COLUMNS: &str = "INSERT INTO trials (id, sweep, ordinal, params, width, depth, \
     learning_rate, noise_sigma, probe_noise_sigma, batch_size, seed, updated_at_ms) ";

/// Rows per multi-row INSERT: 36 bound values per result row stays under SQLite's 32,766 and
/// PostgreSQL's 65,535 bound parameters.
///
/// The batched statements vary in their number of rows, so they are not kept as prepared
/// statements (`persistent(false)`): each size would otherwise occupy every connection's cache.
pub const ROWS_PER_INSERT: usize = 500;

/// A sweep's trials in grid order, expanded [`ROWS_PER_INSERT`] at a time.
pub fn trial_chunks(
    plan: &SweepPlan,
) -> impl Iterator<Item = Result<Vec<PlannedTrial>, StoreError>> + '_ {
    let count = plan.trial_count();
    (0..count).step_by(ROWS_PER_INSERT).map(move |start| {
        let end = (start + ROWS_PER_INSERT as u64).min(count);
        (start..end)
            .map(|ordinal| plan.trial_at(ordinal).map_err(StoreError::from))
            .collect()
    })
}

/// One row of `trials`.
pub fn push_trial_row<'a, DB>(
    row: &mut Separated<'_, 'a, DB, &'static str>,
    sweep: &'a str,
    trial: &'a PlannedTrial,
    now_ms: i64,
) where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    f64: Encode<'a, DB> + Type<DB>,
    &'a str: Encode<'a, DB> + Type<DB>,
{
    let config = &trial.config;
    row.push_bind(trial.id.as_str())
        .push_bind(sweep)
        .push_bind(trial.ordinal as i64)
        .push_bind(trial.config_json.as_str())
        .push_bind(config.model.width as i64)
        .push_bind(config.model.depth as i64)
        .push_bind(config.training.learning_rate)
        .push_bind(config.training.noise_sigma)
        .push_bind(config.probe.noise_sigma)
        .push_bind(config.training.batch_size as i64)
        .push_bind(config.seed as i64)
        .push_bind(now_ms);
}

/// The MSD curve as `{"step": [...], "msd": [...], "msd_hessian_top": [...],
/// "predicted_msd": [...]}`, non-finite values as null; None without a curve.
fn msd_curve_json(curve: &[proto::v1::MsdPoint]) -> Option<String> {
    if curve.is_empty() {
        return None;
    }
    let column = |value: fn(&proto::v1::MsdPoint) -> f64| -> Vec<Option<f64>> {
        curve.iter().map(|point| finite(value(point))).collect()
    };
    let steps: Vec<u64> = curve.iter().map(|point| point.step).collect();
    Some(
        serde_json::json!({
            "step": steps,
            "msd": column(|point| point.msd),
            "msd_hessian_top": column(|point| point.msd_hessian_top),
            "predicted_msd": column(|point| point.predicted_msd),
        })
        .to_string(),
    )
}

/// One row of `layer_measurements`.
pub fn push_layer_row<'a, DB>(
    row: &mut Separated<'_, 'a, DB, &'static str>,
    layer: &'a proto::v1::LayerMeasurement,
) where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    Option<f64>: Encode<'a, DB> + Type<DB>,
    &'a str: Encode<'a, DB> + Type<DB>,
{
    row.push_bind(layer.layer as i64)
        .push_bind(layer.fan_in as i64)
        .push_bind(layer.fan_out as i64)
        .push_bind(finite(layer.spectral_norm))
        .push_bind(finite(layer.frobenius_norm))
        .push_bind(finite(layer.distance_from_init_spectral))
        .push_bind(finite(layer.distance_from_init_frobenius))
        .push_bind(finite(layer.distance_from_init_two_one))
        .push_bind(finite(layer.probe_max_displacement_spectral))
        .push_bind(finite(layer.probe_max_displacement_frobenius))
        .push_bind(finite(layer.probe_max_displacement_two_one));
}

/// One row of `probe_radii`.
pub fn push_radius_row<'a, DB>(
    row: &mut Separated<'_, 'a, DB, &'static str>,
    index: usize,
    radius: &'a proto::v1::RadiusMeasurement,
) where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    f64: Encode<'a, DB> + Type<DB>,
    Option<f64>: Encode<'a, DB> + Type<DB>,
    &'a str: Encode<'a, DB> + Type<DB>,
    Option<String>: Encode<'a, DB> + Type<DB>,
{
    row.push_bind(index as i64)
        .push_bind(radius.radius)
        .push_bind(finite(radius.stay_probability))
        .push_bind(finite(radius.mean_exit_step))
        .push_bind(finite(radius.occupancy))
        .push_bind(finite(radius.median_exit_step))
        .push_bind(exit_steps_json(&radius.replicate_exit_steps))
        .push_bind(finite(radius.mean_exits))
        .push_bind(finite(radius.mean_reentries))
        .push_bind(finite(radius.predicted_stay_probability))
        .push_bind(finite(radius.stay_probability_bound));
}

/// Per-replicate exit steps as a JSON array, 0 for a replicate that stayed; None without any.
fn exit_steps_json(steps: &[u64]) -> Option<String> {
    (!steps.is_empty()).then(|| {
        let items: Vec<String> = steps.iter().map(u64::to_string).collect();
        format!("[{}]", items.join(","))
    })
}

pub const BOUND_COLUMNS: &str = "INSERT INTO bounds (trial_id, name, capacity, gap_estimate) ";

/// One row of `bounds`.
pub fn push_bound_row<'a, DB>(
    row: &mut Separated<'_, 'a, DB, &'static str>,
    bound: &'a proto::v1::BoundMeasurement,
    train_size: u64,
) where
    DB: Database,
    Option<f64>: Encode<'a, DB> + Type<DB>,
    &'a str: Encode<'a, DB> + Type<DB>,
{
    row.push_bind(bound.name.as_str())
        .push_bind(finite(bound.capacity))
        .push_bind(gap_estimate(bound.capacity, train_size));
}

pub const PROBE_STATISTIC_COLUMNS: &str = "INSERT INTO probe_statistics (trial_id, name, value) ";

pub const LANDSCAPE_COLUMNS: &str =
    "INSERT INTO landscape_slices (trial_id, plane, grid, extent, losses, trajectory) ";

/// The slice's projected snapshots as JSON `[[replicate, step, a, b], ...]`.
fn trajectory_json(points: &[proto::v1::LandscapePoint]) -> String {
    let rows: Vec<(u32, u64, Option<f64>, Option<f64>)> = points
        .iter()
        .map(|point| {
            (
                point.replicate,
                point.step,
                finite(point.a),
                finite(point.b),
            )
        })
        .collect();
    serde_json::to_string(&rows).unwrap_or_else(|_| "[]".to_string())
}

/// The INSERTs of the candidates' results, each `ON CONFLICT DO NOTHING RETURNING trial_id`, so
/// running them names the results stored now.
pub fn result_inserts<'a, DB>(
    candidates: &[&'a ResultReport],
    now_ms: i64,
) -> Vec<QueryBuilder<'a, DB>>
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    bool: Encode<'a, DB> + Type<DB>,
    f64: Encode<'a, DB> + Type<DB>,
    Option<f64>: Encode<'a, DB> + Type<DB>,
    Option<i64>: Encode<'a, DB> + Type<DB>,
    &'a str: Encode<'a, DB> + Type<DB>,
    Option<&'a str>: Encode<'a, DB> + Type<DB>,
    Option<String>: Encode<'a, DB> + Type<DB>,
{
    candidates
        .chunks(ROWS_PER_INSERT)
        .map(|chunk| {
            let mut insert = QueryBuilder::<DB>::new(RESULT_COLUMNS);
            // One row of `results` per report.
            insert.push_values(chunk, |mut row, report| {
                let result = &report.result;
                let train_size = result.train_size;
                row.push_bind(report.lease.trial_id.as_str())
                    .push_bind(report.worker_id.as_str())
                    .push_bind(result.outcome.as_str())
                    .push_bind(
                        (!result.diverged_phase.is_empty())
                            .then_some(result.diverged_phase.as_str()),
                    )
                    .push_bind(finite(result.train_loss))
                    .push_bind(finite(result.test_loss))
                    .push_bind(finite(result.train_error))
                    .push_bind(finite(result.test_error))
                    .push_bind(finite(result.test_loss - result.train_loss))
                    .push_bind(finite(result.test_error - result.train_error))
                    .push_bind(result.steps as i64)
                    .push_bind(result.reached_target)
                    .push_bind(result.parameter_count as i64)
                    .push_bind(train_size as i64)
                    .push_bind(finite(result.margin_gamma))
                    .push_bind(finite(result.mean_input_norm_squared))
                    .push_bind(finite(result.vc_capacity))
                    .push_bind(finite(result.spectral_capacity))
                    .push_bind(gap_estimate(result.vc_capacity, train_size))
                    .push_bind(gap_estimate(result.spectral_capacity, train_size))
                    .push_bind(finite(result.minimum_norm))
                    .push_bind(finite(result.stay_fraction))
                    .push_bind(finite(result.max_distance))
                    .push_bind(finite(result.final_distance))
                    .push_bind(result.train_seconds)
                    .push_bind(result.probe_seconds)
                    .push_bind(result.measure_seconds)
                    .push_bind(now_ms)
                    .push_bind(
                        result
                            .hessian_top_eigenvalues
                            .first()
                            .copied()
                            .and_then(finite),
                    )
                    .push_bind(finite(result.hessian_lambda_min))
                    .push_bind(finite(result.hessian_trace))
                    .push_bind(finite(result.stability_margin))
                    .push_bind(eigenvalues_json(&result.hessian_top_eigenvalues))
                    .push_bind(result.polish_steps as i64)
                    .push_bind(finite(result.gradient_norm))
                    .push_bind(msd_curve_json(&result.msd_curve))
                    .push_bind(finite(result.probe_stability_margin))
                    .push_bind(finite(result.training_stability_margin))
                    .push_bind((result.test_size > 0).then_some(result.test_size as i64))
                    .push_bind((result.noise_stream > 0).then_some(i64::from(result.noise_stream)));
            });
            insert.push(" ON CONFLICT (trial_id) DO NOTHING RETURNING trial_id");
            insert
        })
        .collect()
}

/// Multi-row INSERTs under `columns` of one kind of row under each recorded result (`rows`
/// picks them from the result), at most [`ROWS_PER_INSERT`] rows each; every row starts with its
/// trial's id and `push_row` binds the rest.
fn inserts_under<'a, DB, Row, Rows>(
    recorded: &[&'a ResultReport],
    columns: &'static str,
    rows: impl Fn(&'a proto::v1::TrialResult) -> Rows,
    mut push_row: impl FnMut(&mut Separated<'_, 'a, DB, &'static str>, Row),
) -> Vec<QueryBuilder<'a, DB>>
where
    DB: Database,
    &'a str: Encode<'a, DB> + Type<DB>,
    Rows: Iterator<Item = Row>,
    Row: Copy,
{
    let rows: Vec<(&'a str, Row)> = recorded
        .iter()
        .flat_map(|report| {
            let trial_id = report.lease.trial_id.as_str();
            rows(&report.result).map(move |row| (trial_id, row))
        })
        .collect();
    rows.chunks(ROWS_PER_INSERT)
        .map(|chunk| {
            let mut insert = QueryBuilder::<DB>::new(columns);
            insert.push_values(chunk.iter().copied(), |mut row, (trial_id, item)| {
                row.push_bind(trial_id);
                push_row(&mut row, item);
            });
            insert
        })
        .collect()
}

/// The INSERTs of the rows under each newly recorded result (per-layer norms, per-radius
/// statistics, bounds, probe statistics, the landscape slice), multi-row and the same SQL on both
/// backends, for the caller to run in its transaction.
pub fn measurement_inserts<'a, DB>(recorded: &[&'a ResultReport]) -> Vec<QueryBuilder<'a, DB>>
where
    DB: Database,
    &'a [u8]: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
    f64: Encode<'a, DB> + Type<DB>,
    Option<f64>: Encode<'a, DB> + Type<DB>,
    &'a str: Encode<'a, DB> + Type<DB>,
    Option<String>: Encode<'a, DB> + Type<DB>,
{
    let mut inserts = inserts_under(
        recorded,
        LAYER_COLUMNS,
        |result| result.layers.iter(),
        push_layer_row,
    );
    inserts.extend(inserts_under(
        recorded,
        RADIUS_COLUMNS,
        |result| result.radii.iter().enumerate(),
        |row, (index, radius)| push_radius_row(row, index, radius),
    ));
    inserts.extend(inserts_under(
        recorded,
        BOUND_COLUMNS,
        |result| {
            let train_size = result.train_size;
            result.bounds.iter().map(move |bound| (train_size, bound))
        },
        |row, (train_size, bound)| push_bound_row(row, bound, train_size),
    ));
    inserts.extend(inserts_under(
        recorded,
        PROBE_STATISTIC_COLUMNS,
        |result| result.probe_statistics.iter(),
        |row, statistic| {
            row.push_bind(statistic.name.as_str())
                .push_bind(finite(statistic.value));
        },
    ));
    inserts.extend(inserts_under(
        recorded,
        LANDSCAPE_COLUMNS,
        |result| result.landscape.iter(),
        |row, slice| {
            row.push_bind(slice.plane.as_str())
                .push_bind(i64::from(slice.grid))
                .push_bind(slice.extent)
                .push_bind(slice.losses.as_slice())
                .push_bind(trajectory_json(&slice.trajectory));
        },
    ));
    inserts
}

/// A pending trial chosen for a batch of lease calls, and the call it goes to.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub trial_id: String,
    pub request: usize,
    pub lease_id: String,
    pub worker_id: String,
}

/// Deals pending trials (in lease order) to the lease calls of a batch in arrival order, each up
/// to its `max_trials`; every call gets its own lease id.
pub fn assign(pending: Vec<String>, requests: &[LeaseRequest]) -> Vec<Assignment> {
    let mut pending = pending.into_iter();
    let mut assignments = Vec::new();
    for (index, request) in requests.iter().enumerate() {
        let lease_id = new_lease_id();
        for trial_id in pending.by_ref().take(request.max_trials as usize) {
            assignments.push(Assignment {
                trial_id,
                request: index,
                lease_id: lease_id.clone(),
                worker_id: request.worker_id.clone(),
            });
        }
    }
    assignments
}

/// Total trials a batch of lease calls asks for.
pub fn wanted(requests: &[LeaseRequest]) -> i64 {
    requests
        .iter()
        .map(|request| i64::from(request.max_trials))
        .sum()
}

/// A claimed row as the lease UPDATE returns it, before it is handed to its call.
pub struct ClaimedRow {
    pub order: i64,
    pub trial: LeasedTrial,
}

/// Hands claimed rows back to the calls they were assigned to, each call's trials in grid order.
pub fn leases_per_request(
    claimed: Vec<ClaimedRow>,
    assignments: &[Assignment],
    request_count: usize,
) -> Vec<Vec<LeasedTrial>> {
    let request_of: HashMap<&str, usize> = assignments
        .iter()
        .map(|assignment| (assignment.trial_id.as_str(), assignment.request))
        .collect();
    let mut per_request: Vec<Vec<ClaimedRow>> = (0..request_count).map(|_| Vec::new()).collect();
    for row in claimed {
        if let Some(&request) = request_of.get(row.trial.trial_id.as_str()) {
            per_request[request].push(row);
        }
    }
    per_request
        .into_iter()
        .map(|mut rows| {
            // RETURNING gives rows in no promised order.
            rows.sort_by(|a, b| (&a.trial.sweep, a.order).cmp(&(&b.trial.sweep, b.order)));
            rows.into_iter().map(|row| row.trial).collect()
        })
        .collect()
}

/// What a report is checked against: the trial's sweep, its configuration and, while the trial
/// is leased, who holds it under which lease.
#[derive(Debug, Clone)]
pub struct TrialHolder {
    pub sweep: String,
    pub lease_id: Option<String>,
    pub worker_id: Option<String>,
    /// The trial's configuration, canonical JSON.
    pub params: String,
}

/// `SELECT id, sweep, lease_id (while leased), worker_id, params`.
pub type HolderRow = (String, String, Option<String>, Option<String>, String);

impl TrialHolder {
    /// From a [`HolderRow`], keyed by trial id.
    pub fn from_row((trial_id, sweep, lease_id, worker_id, params): HolderRow) -> (String, Self) {
        (
            trial_id,
            Self {
                sweep,
                lease_id,
                worker_id,
                params,
            },
        )
    }
}

/// How a batch of reports splits before anything is written: reports refused alone (unknown
/// trial, one leased to someone else, or a result whose shape its configuration contradicts), the first report of each other trial (a candidate to
/// record), and later reports of a trial that already has one in this batch (duplicates).
pub struct ReportTriage<'a> {
    pub outcomes: Vec<Option<Result<RecordOutcome, StoreError>>>,
    pub candidates: Vec<&'a ResultReport>,
    /// The trials the reports name, by id.
    pub holders: HashMap<String, TrialHolder>,
}

/// Sorts reports before anything is written. A report under a lease that has expired is still
/// taken while no other worker holds the trial (design.md: a late result is accepted if none is
/// recorded yet); once the trial is leased again the new holder's result is awaited instead.
pub fn triage<'a>(
    reports: &'a [ResultReport],
    holders: HashMap<String, TrialHolder>,
) -> ReportTriage<'a> {
    let mut seen = HashSet::new();
    let mut outcomes = Vec::with_capacity(reports.len());
    let mut candidates = Vec::new();
    for report in reports {
        let trial_id = report.lease.trial_id.as_str();
        let Some(holder) = holders.get(trial_id) else {
            outcomes.push(Some(Err(StoreError::UnknownTrial(trial_id.to_string()))));
            continue;
        };
        if let Some(held) = &holder.lease_id
            && *held != report.lease.lease_id
        {
            outcomes.push(Some(Err(StoreError::LeasedElsewhere {
                trial_id: trial_id.to_string(),
                worker_id: holder.worker_id.clone().unwrap_or_default(),
            })));
        } else if let Err(mismatch) =
            crate::result_validation::check_against_config(&report.result, &holder.params)
        {
            outcomes.push(Some(Err(StoreError::ResultMismatch {
                trial_id: trial_id.to_string(),
                mismatch,
            })));
        } else if seen.insert(trial_id) {
            outcomes.push(None);
            candidates.push(report);
        } else {
            outcomes.push(Some(Ok(RecordOutcome::Duplicate)));
        }
    }
    ReportTriage {
        outcomes,
        candidates,
        holders,
    }
}

impl<'a> ReportTriage<'a> {
    /// The candidates whose result the INSERT stored now.
    pub fn recorded(&self, inserted: &HashSet<String>) -> Vec<&'a ResultReport> {
        self.candidates
            .iter()
            .copied()
            .filter(|report| inserted.contains(&report.lease.trial_id))
            .collect()
    }

    /// Completes the outcomes once the INSERT has said which candidates it stored; returns them
    /// and the number of duplicates per sweep, to be counted.
    pub fn finish(
        self,
        reports: &[ResultReport],
        inserted: &HashSet<String>,
    ) -> (Vec<Result<RecordOutcome, StoreError>>, HashMap<String, i64>) {
        let mut duplicates: HashMap<String, i64> = HashMap::new();
        let mut first_seen = HashSet::new();
        let mut outcomes = Vec::with_capacity(reports.len());
        for (report, decided) in reports.iter().zip(self.outcomes) {
            let trial_id = report.lease.trial_id.as_str();
            let outcome = match decided {
                Some(outcome) => outcome,
                None if inserted.contains(trial_id) && first_seen.insert(trial_id) => {
                    Ok(RecordOutcome::Recorded)
                }
                None => Ok(RecordOutcome::Duplicate),
            };
            if matches!(outcome, Ok(RecordOutcome::Duplicate))
                && let Some(holder) = self.holders.get(trial_id)
            {
                *duplicates.entry(holder.sweep.clone()).or_default() += 1;
            }
            outcomes.push(outcome);
        }
        (outcomes, duplicates)
    }
}
