//! The read side both stores share: the same SQL on SQLite and PostgreSQL (only the bind
//! parameter's spelling differs), decoded by the same code, fetched by one generic function.

use sqlx::{ColumnIndex, Database, Decode, Executor, IntoArguments, Pool, Row, Type};
use vocabulary::catalog::{self, Kind};

use super::{
    StoreError, StoredSlice, Summary, SweepCounts, TrialRecord, TrialRow, WidthSummary,
    reported_measurements, trial_row_numbers,
};

/// Every row of `sql`, with `key` bound to its one parameter, decoded by `decode`.
pub async fn fetch_decoded<'k, DB, T>(
    pool: &Pool<DB>,
    sql: &'k str,
    key: &'k str,
    decode: impl Fn(&DB::Row) -> Result<T, sqlx::Error>,
) -> Result<Vec<T>, StoreError>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    &'k str: sqlx::Encode<'k, DB> + Type<DB>,
{
    let rows = sqlx::query::<DB>(sql).bind(key).fetch_all(pool).await?;
    rows.iter()
        .map(|row| decode(row).map_err(StoreError::from))
        .collect()
}

/// Trial counts by state per sweep, oldest sweep first; `first` is the optional sweep name's bind
/// parameter and `first_as_text` the same typed as text (PostgreSQL needs the type for IS NULL).
pub fn sweep_counts_sql(first: &str, first_as_text: &str) -> String {
    format!(
        "SELECT s.name, s.trial_count, s.duplicate_reports,
                COUNT(t.id) FILTER (WHERE t.state = 'pending') AS pending,
                COUNT(t.id) FILTER (WHERE t.state = 'leased') AS leased,
                COUNT(t.id) FILTER (WHERE t.state = 'done') AS done,
                COUNT(t.id) FILTER (WHERE t.state = 'failed') AS failed,
                COUNT(r.trial_id) FILTER (WHERE r.outcome = 'diverged') AS diverged
         FROM sweeps s
         LEFT JOIN trials t ON t.sweep = s.name
         LEFT JOIN results r ON r.trial_id = t.id
         WHERE {first_as_text} IS NULL OR s.name = {first}
         GROUP BY s.name
         ORDER BY MIN(s.created_at_ms), s.name"
    )
}

/// One row of [`sweep_counts_sql`], from either backend.
pub fn decode_sweep_counts<'r, R>(row: &'r R) -> Result<SweepCounts, sqlx::Error>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let count =
        |name: &str| -> Result<u64, sqlx::Error> { Ok(row.try_get::<i64, _>(name)?.max(0) as u64) };
    Ok(SweepCounts {
        sweep: row.try_get("name")?,
        total: count("trial_count")?,
        pending: count("pending")?,
        leased: count("leased")?,
        done: count("done")?,
        failed: count("failed")?,
        diverged: count("diverged")?,
        duplicate_reports: count("duplicate_reports")?,
    })
}

/// One trial's state and history; `placeholder` is the trial id's bind parameter.
pub fn trial_record_sql(placeholder: &str) -> String {
    format!(
        "SELECT t.id, t.sweep, t.state, CAST(t.attempts AS BIGINT) AS attempts, t.worker_id,
                t.last_error, r.worker_id AS recorded_by,
                (SELECT COUNT(*) FROM trial_retries h WHERE h.trial_id = t.id) AS retries
         FROM trials t LEFT JOIN results r ON r.trial_id = t.id
         WHERE t.id = {placeholder}"
    )
}

/// One row of [`trial_record_sql`], from either backend.
pub fn decode_trial_record<'r, R>(row: &'r R) -> Result<TrialRecord, sqlx::Error>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(TrialRecord {
        id: row.try_get("id")?,
        sweep: row.try_get("sweep")?,
        state: row.try_get("state")?,
        attempts: row.try_get::<i64, _>("attempts")?.max(0) as u32,
        worker_id: row.try_get("worker_id")?,
        last_error: row.try_get("last_error")?,
        recorded_by: row.try_get("recorded_by")?,
        retries: row.try_get::<i64, _>("retries")?.max(0) as u32,
    })
}

/// The per-width report query over the `trial_results` view, the same on both backends;
/// `placeholder` is the sweep name's bind parameter (`?` or `$1`). Built only from the catalog's
/// constant column names, never from input.
pub fn width_summaries_sql(placeholder: &str) -> String {
    let mut sql = String::from(
        "SELECT width, COUNT(*) AS trials,
                COUNT(*) FILTER (WHERE state = 'done') AS done,
                COUNT(*) FILTER (WHERE state = 'failed') AS failed,
                COUNT(*) FILTER (WHERE outcome = 'diverged') AS diverged",
    );
    for name in reported_measurements() {
        // Diverged trials are counted, not averaged; integer columns are averaged as floats.
        let value =
            format!("(CASE WHEN outcome <> 'diverged' THEN CAST({name} AS DOUBLE PRECISION) END)");
        sql.push_str(&format!(
            ", COUNT({value}) AS {name}_count, AVG({value}) AS {name}_mean, AVG({value} * {value}) AS {name}_square"
        ));
    }
    sql.push_str(&format!(
        " FROM trial_results WHERE sweep = {placeholder} GROUP BY width ORDER BY width"
    ));
    sql
}

/// One row of [`width_summaries_sql`], from either backend.
pub fn decode_width_summary<'r, R>(row: &'r R) -> Result<WidthSummary, sqlx::Error>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    Option<f64>: Decode<'r, R::Database> + Type<R::Database>,
{
    let count =
        |name: &str| -> Result<u64, sqlx::Error> { Ok(row.try_get::<i64, _>(name)?.max(0) as u64) };
    let mut measurements = Vec::new();
    for name in reported_measurements() {
        let summary = Summary::from_moments(
            row.try_get::<i64, _>(format!("{name}_count").as_str())?,
            row.try_get::<Option<f64>, _>(format!("{name}_mean").as_str())?,
            row.try_get::<Option<f64>, _>(format!("{name}_square").as_str())?,
        );
        measurements.push((name.to_string(), summary));
    }
    Ok(WidthSummary {
        width: count("width")?,
        trials: count("trials")?,
        done: count("done")?,
        failed: count("failed")?,
        diverged: count("diverged")?,
        measurements,
    })
}

/// The rows of a sweep from the `trial_results` view, every number as a float (a boolean as 0 or
/// 1), in grid order; `placeholder` is the sweep name's bind parameter.
pub fn trial_rows_sql(placeholder: &str) -> String {
    let numbers: Vec<String> = catalog::catalog()
        .iter()
        .filter_map(|entry| {
            let name = entry.column;
            match entry.kind {
                Kind::Text => None,
                Kind::Number => Some(format!("CAST({name} AS DOUBLE PRECISION) AS {name}")),
                // A boolean on PostgreSQL, an integer on SQLite: both read as a truth value.
                Kind::Flag => Some(format!(
                    "CAST(CASE WHEN {name} THEN 1 WHEN NOT {name} THEN 0 END \
                     AS DOUBLE PRECISION) AS {name}"
                )),
            }
        })
        .collect();
    format!(
        "SELECT trial_id, state, outcome, worker_id, last_error, params, replicate_exit_steps_1,
                msd_curve, {}
         FROM trial_results WHERE sweep = {placeholder} ORDER BY ordinal",
        numbers.join(", ")
    )
}

/// One row of [`trial_rows_sql`], from either backend.
pub fn decode_trial_row<'r, R>(row: &'r R) -> Result<TrialRow, sqlx::Error>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    Option<f64>: Decode<'r, R::Database> + Type<R::Database>,
{
    let mut numbers = Vec::with_capacity(trial_row_numbers().len());
    for name in trial_row_numbers() {
        numbers.push(
            row.try_get::<Option<f64>, _>(*name)?
                .filter(|value| value.is_finite()),
        );
    }
    Ok(TrialRow {
        trial_id: row.try_get("trial_id")?,
        state: row.try_get("state")?,
        outcome: row.try_get("outcome")?,
        worker_id: row.try_get("worker_id")?,
        last_error: row.try_get("last_error")?,
        params: row.try_get("params")?,
        replicate_exit_steps_1: row.try_get("replicate_exit_steps_1")?,
        msd_curve: row.try_get("msd_curve")?,
        numbers,
    })
}

/// A sweep's landscape slices in grid order; `placeholder` is the sweep name's bind parameter.
pub fn landscape_slices_sql(placeholder: &str) -> String {
    format!(
        "SELECT l.trial_id, t.width, t.seed, l.plane, l.grid, l.extent, l.losses, l.trajectory,
                p.radius
         FROM landscape_slices l
         JOIN trials t ON t.id = l.trial_id
         LEFT JOIN probe_radii p ON p.trial_id = l.trial_id AND p.radius_index = 0
         WHERE t.sweep = {placeholder} ORDER BY t.ordinal"
    )
}

/// One row of [`landscape_slices_sql`], from either backend. A blob that is not whole f32 values
/// or trajectory text that is not the stored JSON is a decode error, not a panic.
pub fn decode_stored_slice<'r, R>(row: &'r R) -> Result<StoredSlice, sqlx::Error>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    f64: Decode<'r, R::Database> + Type<R::Database>,
    Option<f64>: Decode<'r, R::Database> + Type<R::Database>,
    Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
{
    let corrupt = |column: &str, reason: String| sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: reason.into(),
    };
    let bytes: Vec<u8> = row.try_get("losses")?;
    if !bytes.len().is_multiple_of(4) {
        return Err(corrupt(
            "losses",
            format!("{} bytes is not a whole number of f32 values", bytes.len()),
        ));
    }
    let losses: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
        .collect();
    let grid: i64 = row.try_get("grid")?;
    let grid = u32::try_from(grid)
        .ok()
        .filter(|&grid| (grid as usize).pow(2) == losses.len())
        .ok_or_else(|| {
            corrupt(
                "grid",
                format!("grid {grid} does not match {} losses", losses.len()),
            )
        })?;
    let text: String = row.try_get("trajectory")?;
    let points: Vec<(u32, u64, Option<f64>, Option<f64>)> =
        serde_json::from_str(&text).map_err(|error| corrupt("trajectory", error.to_string()))?;
    let width: i64 = row.try_get("width")?;
    let seed: i64 = row.try_get("seed")?;
    Ok(StoredSlice {
        trial_id: row.try_get("trial_id")?,
        width: width as u64,
        seed: seed as u64,
        plane: row.try_get("plane")?,
        grid,
        extent: row.try_get("extent")?,
        losses,
        trajectory: points
            .into_iter()
            .map(|(replicate, step, a, b)| {
                (
                    replicate,
                    step,
                    a.unwrap_or(f64::NAN),
                    b.unwrap_or(f64::NAN),
                )
            })
            .collect(),
        radius: row.try_get("radius")?,
    })
}
