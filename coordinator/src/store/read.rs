//! The read side both stores share: the same SQL text on SQLite and PostgreSQL (`$1` is a
//! numbered parameter to both; sqlx binds it by its number on SQLite), the fixed statements in
//! `sql/`, decoded by the same code, fetched by one generic function.

use sqlx::{ColumnIndex, Database, Decode, Executor, IntoArguments, Pool, Row, Type};
use vocabulary::catalog::{self, Kind};

use super::{StoreError, StoredSlice, SweepCounts, TrialRecord, TrialRow, trial_row_numbers};

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

/// Trial counts by state per sweep, oldest sweep first; `$1` is the optional sweep name.
pub const SWEEP_COUNTS: &str = include_str!("sql/sweep_counts.sql");

/// One row of [`SWEEP_COUNTS`], from either backend.
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

/// One trial's record by its id, `$1`.
pub const TRIAL_RECORD: &str = include_str!("sql/trial_record.sql");

/// One row of [`TRIAL_RECORD`], from either backend.
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

/// The rows of a sweep from the `trial_results` view, every number as a float (a boolean as 0 or
/// 1), in grid order; `$1` is the sweep's name.
pub fn trial_rows_sql() -> String {
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
         FROM trial_results WHERE sweep = $1 ORDER BY ordinal",
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

/// The vacuous bounds of a sweep, (trial id, bound name); `$1` is the sweep's name.
pub const VACUOUS_BOUNDS: &str = include_str!("sql/vacuous_bounds.sql");

/// One row of [`VACUOUS_BOUNDS`], from either backend.
pub fn decode_vacuous_bound<'r, R>(row: &'r R) -> Result<(String, String), sqlx::Error>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok((row.try_get("trial_id")?, row.try_get("name")?))
}

/// A sweep's trial rows with its vacuous bounds read as +∞: [`trial_rows_sql`], then
/// [`VACUOUS_BOUNDS`] folded in by [`mark_vacuous`].
pub async fn trial_rows<DB>(pool: &Pool<DB>, sweep: &str) -> Result<Vec<TrialRow>, StoreError>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'k> &'k str: sqlx::Encode<'k, DB> + Type<DB> + ColumnIndex<DB::Row>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> Option<String>: Decode<'r, DB> + Type<DB>,
    for<'r> Option<f64>: Decode<'r, DB> + Type<DB>,
{
    let sql = trial_rows_sql();
    let mut rows = fetch_decoded(pool, &sql, sweep, |row| decode_trial_row(row)).await?;
    let vacuous =
        fetch_decoded(pool, VACUOUS_BOUNDS, sweep, |row| decode_vacuous_bound(row)).await?;
    mark_vacuous(&mut rows, &vacuous);
    Ok(rows)
}

/// Reads each vacuous bound of `rows` as +∞, the value a rank statistic gives an infinite
/// capacity, where the view holds NULL.
pub fn mark_vacuous(rows: &mut [TrialRow], vacuous: &[(String, String)]) {
    let columns = trial_row_numbers();
    let index_of = |column: &str| columns.iter().position(|candidate| *candidate == column);
    let by_trial: std::collections::HashMap<String, usize> = rows
        .iter()
        .enumerate()
        .map(|(index, row)| (row.trial_id.clone(), index))
        .collect();
    for (trial_id, name) in vacuous {
        let Some(&row) = by_trial.get(trial_id) else {
            continue;
        };
        let vacuous_columns: Vec<&str> = match catalog::BoundName::from_name(name) {
            Some(bound) => vec![bound.measurement().column],
            None if name == "spectral" => vec!["spectral_capacity", "spectral_gap_estimate"],
            None => Vec::new(),
        };
        for column in vacuous_columns {
            if let Some(index) = index_of(column) {
                rows[row].numbers[index] = Some(f64::INFINITY);
            }
        }
    }
}

/// A sweep's landscape slices in grid order; `$1` is the sweep's name.
pub const LANDSCAPE_SLICES: &str = include_str!("sql/landscape_slices.sql");

/// One row of [`LANDSCAPE_SLICES`], from either backend. A blob that is not whole f32 values
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
