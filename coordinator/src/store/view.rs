//! The `trial_results` view, made from the measurement catalog at start-up: one row per trial with
//! every measurement as a column, on either database.
//!
//! It is derived data, so it lives here rather than in the migrations: each start drops and
//! re-creates it in one transaction, and a measurement added to the catalog is a column the next
//! time the coordinator opens the database.

use vocabulary::catalog::{self, Source};

/// The radii that have their own columns (`_1`, `_2`).
const RADII_IN_VIEW: u8 = 2;

/// `DROP` then `CREATE` of the view, the same SQL on SQLite and PostgreSQL.
pub fn statements() -> [String; 2] {
    [
        "DROP VIEW IF EXISTS trial_results".to_string(),
        create_view(),
    ]
}

fn create_view() -> String {
    let columns: Vec<String> = catalog::catalog()
        .iter()
        .map(|entry| select_expression(entry.column, entry.source))
        .collect();
    let radii: String = (0..RADII_IN_VIEW)
        .map(|index| {
            format!(
                "\nLEFT JOIN probe_radii p{n} ON p{n}.trial_id = t.id AND p{n}.radius_index = {index}",
                n = index + 1
            )
        })
        .collect();
    format!(
        "CREATE VIEW trial_results AS\nSELECT {}\nFROM trials t\nLEFT JOIN results r ON r.trial_id = t.id{radii}",
        columns.join(",\n       ")
    )
}

/// A view column's expression. Every name spliced here is a constant of the catalog, never input.
fn select_expression(column: &str, source: Source) -> String {
    match source {
        Source::Trial(stored) | Source::Result(stored) => {
            let table = if matches!(source, Source::Trial(_)) {
                "t"
            } else {
                "r"
            };
            if stored == column {
                format!("{table}.{stored}")
            } else {
                format!("{table}.{stored} AS {column}")
            }
        }
        Source::Radius {
            index,
            column: stored,
        } => {
            format!("p{}.{stored} AS {column}", index + 1)
        }
        Source::Bound(bound) => format!(
            "(SELECT b.gap_estimate FROM bounds b WHERE b.trial_id = t.id AND b.name = '{}') AS {column}",
            bound.name()
        ),
        Source::ProbeStatistic(statistic) => format!(
            "(SELECT s.value FROM probe_statistics s WHERE s.trial_id = t.id AND s.name = '{}') AS {column}",
            statistic.name()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_radius_column_has_its_join() {
        for entry in catalog::catalog() {
            if let Source::Radius { index, .. } = entry.source {
                assert!(index < RADII_IN_VIEW, "{}", entry.column);
            }
        }
        let sql = create_view();
        assert!(sql.contains("p2.stay_probability AS stay_probability_2"));
        assert!(sql.contains("t.id AS trial_id"));
    }
}
