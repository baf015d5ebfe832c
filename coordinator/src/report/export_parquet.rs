//! The export as one Parquet file: the columns of the CSV export, each with a type, so pandas,
//! polars and DuckDB need no guessing.
//!
//! Identity columns are UTF8 strings and measurements DOUBLE. A parameter column takes the
//! narrowest type that holds every trial's value: BOOLEAN, INT64, DOUBLE, else UTF8 (lists and
//! mixed values as their JSON text, like the CSV). Every column is optional: a trial without a
//! result, or without a key another trial has, is null there.

use std::sync::Arc;

use parquet::basic::{Compression, LogicalType, Repetition, Type as PhysicalType};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::{SerializedColumnWriter, SerializedFileWriter};
use parquet::schema::types::Type;
use serde_json::Value;

use super::export::{IDENTITY_COLUMNS, tables_and_header};
use crate::store::{TrialRow, trial_row_numbers};

#[derive(Debug, thiserror::Error)]
pub enum ParquetExportError {
    #[error("cannot describe parquet column `{column}`: {source}")]
    Schema {
        column: String,
        source: ParquetError,
    },

    #[error("cannot write parquet column `{column}`: {source}")]
    Column {
        column: String,
        source: ParquetError,
    },

    #[error("cannot write the parquet file: {0}")]
    File(#[source] ParquetError),
}

/// The Parquet type of a column, and how a JSON value becomes a value of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ColumnKind {
    Text,
    Double,
    Integer,
    Boolean,
}

impl ColumnKind {
    /// The narrowest kind that holds every non-null value; a column of nulls only is text.
    fn of_parameter<'a>(values: impl Iterator<Item = Option<&'a Value>>) -> Self {
        let mut all_booleans = true;
        let mut all_integers = true;
        let mut all_numbers = true;
        let mut any_value = false;
        for value in values.flatten() {
            any_value |= !value.is_null();
            match value {
                Value::Null => {}
                Value::Bool(_) => {
                    all_integers = false;
                    all_numbers = false;
                }
                Value::Number(number) => {
                    all_booleans = false;
                    all_integers &= number.as_i64().is_some();
                }
                _ => {
                    all_booleans = false;
                    all_integers = false;
                    all_numbers = false;
                }
            }
        }
        if !any_value {
            ColumnKind::Text
        } else if all_booleans {
            ColumnKind::Boolean
        } else if all_integers {
            ColumnKind::Integer
        } else if all_numbers {
            ColumnKind::Double
        } else {
            ColumnKind::Text
        }
    }

    fn schema_field(self, name: &str) -> Result<Type, ParquetError> {
        let (physical, logical) = match self {
            ColumnKind::Text => (PhysicalType::BYTE_ARRAY, Some(LogicalType::String)),
            ColumnKind::Double => (PhysicalType::DOUBLE, None),
            ColumnKind::Integer => (PhysicalType::INT64, None),
            ColumnKind::Boolean => (PhysicalType::BOOLEAN, None),
        };
        Type::primitive_type_builder(name, physical)
            .with_repetition(Repetition::OPTIONAL)
            .with_logical_type(logical)
            .build()
    }
}

/// A nullable column's Parquet encoding: one definition level per trial (1 present, 0 null) and
/// the present values only.
struct LevelsAndValues<T> {
    definition_levels: Vec<i16>,
    values: Vec<T>,
}

impl<T> LevelsAndValues<T> {
    /// `convert` gives None for a null, and for a value the column's kind cannot hold, which
    /// [`ColumnKind::of_parameter`] rules out.
    fn collect<'a>(cells: &[Option<&'a Value>], convert: impl Fn(&'a Value) -> Option<T>) -> Self {
        let mut definition_levels = Vec::with_capacity(cells.len());
        let mut values = Vec::with_capacity(cells.len());
        for cell in cells {
            match cell.and_then(&convert) {
                Some(value) => {
                    definition_levels.push(1);
                    values.push(value);
                }
                None => definition_levels.push(0),
            }
        }
        Self {
            definition_levels,
            values,
        }
    }
}

/// The trials as a Parquet file (one row group, snappy-compressed), in memory: exports are a
/// few thousand rows at most.
pub fn to_parquet(rows: &[TrialRow]) -> Result<Vec<u8>, ParquetExportError> {
    let (tables, header) = tables_and_header(rows);
    tables_to_parquet("trial", &tables, &header, |name| {
        if IDENTITY_COLUMNS.contains(&name) {
            Some(ColumnKind::Text)
        } else if trial_row_numbers().contains(&name) {
            Some(ColumnKind::Double)
        } else {
            None
        }
    })
}

/// Rows of named values as a Parquet file of `header`'s columns; `kind_of` fixes a column's
/// type, else it is the narrowest that holds every value ([`ColumnKind::of_parameter`]).
pub(super) fn tables_to_parquet(
    schema_name: &str,
    tables: &[serde_json::Map<String, Value>],
    header: &[String],
    kind_of: impl Fn(&str) -> Option<ColumnKind>,
) -> Result<Vec<u8>, ParquetExportError> {
    let mut columns = Vec::with_capacity(header.len());
    for name in header {
        let cells: Vec<Option<&Value>> = tables.iter().map(|table| table.get(name)).collect();
        let kind = kind_of(name).unwrap_or_else(|| ColumnKind::of_parameter(cells.iter().copied()));
        let field = kind
            .schema_field(name)
            .map_err(|source| ParquetExportError::Schema {
                column: name.clone(),
                source,
            })?;
        columns.push((name, kind, cells, Arc::new(field)));
    }
    let schema = Type::group_type_builder(schema_name)
        .with_fields(columns.iter().map(|(.., field)| field.clone()).collect())
        .build()
        .map_err(ParquetExportError::File)?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();

    let mut bytes = Vec::new();
    let mut writer = SerializedFileWriter::new(&mut bytes, Arc::new(schema), Arc::new(properties))
        .map_err(ParquetExportError::File)?;
    let mut row_group = writer.next_row_group().map_err(ParquetExportError::File)?;
    for (name, kind, cells, _) in &columns {
        let column_error = |source| ParquetExportError::Column {
            column: (*name).clone(),
            source,
        };
        let mut column = row_group
            .next_column()
            .map_err(column_error)?
            .ok_or_else(|| {
                column_error(ParquetError::General("schema has fewer columns".into()))
            })?;
        write_column(&mut column, *kind, cells).map_err(column_error)?;
        column.close().map_err(column_error)?;
    }
    row_group.close().map_err(ParquetExportError::File)?;
    // Closing writes the footer (the schema and the row group's offsets); without it the file is
    // unreadable.
    writer.close().map_err(ParquetExportError::File)?;
    Ok(bytes)
}

fn write_column(
    column: &mut SerializedColumnWriter<'_>,
    kind: ColumnKind,
    cells: &[Option<&Value>],
) -> Result<(), ParquetError> {
    match kind {
        ColumnKind::Text => {
            let column_data = LevelsAndValues::collect(cells, |value| match value {
                Value::Null => None,
                Value::String(text) => Some(ByteArray::from(text.as_bytes())),
                other => Some(ByteArray::from(other.to_string().into_bytes())),
            });
            column.typed::<ByteArrayType>().write_batch(
                &column_data.values,
                Some(&column_data.definition_levels),
                None,
            )?;
        }
        ColumnKind::Double => {
            let column_data = LevelsAndValues::collect(cells, Value::as_f64);
            column.typed::<DoubleType>().write_batch(
                &column_data.values,
                Some(&column_data.definition_levels),
                None,
            )?;
        }
        ColumnKind::Integer => {
            let column_data = LevelsAndValues::collect(cells, Value::as_i64);
            column.typed::<Int64Type>().write_batch(
                &column_data.values,
                Some(&column_data.definition_levels),
                None,
            )?;
        }
        ColumnKind::Boolean => {
            let column_data = LevelsAndValues::collect(cells, Value::as_bool);
            column.typed::<BoolType>().write_batch(
                &column_data.values,
                Some(&column_data.definition_levels),
                None,
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Write;

    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;

    use super::*;
    use crate::report::export::tests::row;
    use crate::report::export::to_csv;

    fn read_back(bytes: &[u8]) -> SerializedFileReader<std::fs::File> {
        let mut file = tempfile::tempfile().expect("a temporary file");
        file.write_all(bytes).expect("written");
        SerializedFileReader::new(file).expect("a readable parquet file")
    }

    /// Each row as column name → value, through the crate's own record reader.
    fn rows_of(reader: &SerializedFileReader<std::fs::File>) -> Vec<BTreeMap<String, Field>> {
        reader
            .get_row_iter(None)
            .expect("a row iterator")
            .map(|row| {
                row.expect("a decodable row")
                    .into_columns()
                    .into_iter()
                    .collect()
            })
            .collect()
    }

    #[test]
    fn parquet_has_the_csv_columns_typed_with_nulls_where_values_are_missing() {
        let rows = [
            row(
                "a",
                Some(0.25),
                r#"{"seed":1,"model":{"width":8,"bias":true},"training":{"learning_rate":0.1},
                    "probe":{"radii":[0.1,0.2]},"data":{"name":"mnist"},"note":null}"#,
            ),
            row(
                "b",
                None,
                r#"{"seed":2,"model":{"width":16,"bias":false},"training":{"learning_rate":1},
                    "data":{"name":"cifar"},"note":null}"#,
            ),
        ];
        let bytes = to_parquet(&rows).expect("encoded");
        assert_eq!(&bytes[..4], b"PAR1");
        let reader = read_back(&bytes);
        assert_eq!(reader.metadata().file_metadata().num_rows(), 2);

        let schema = reader.metadata().file_metadata().schema_descr();
        let names: Vec<&str> = schema
            .columns()
            .iter()
            .map(|column| column.name())
            .collect();
        let csv = to_csv(&rows);
        let csv_header: Vec<&str> = csv.lines().next().expect("a header").split(',').collect();
        assert_eq!(
            names, csv_header,
            "the same columns in the same order as CSV"
        );

        let column_type = |name: &str| {
            let column = schema
                .columns()
                .iter()
                .find(|column| column.name() == name)
                .unwrap_or_else(|| panic!("column {name} in {names:?}"));
            (column.physical_type(), column.logical_type_ref().cloned())
        };
        let text = (PhysicalType::BYTE_ARRAY, Some(LogicalType::String));
        assert_eq!(column_type("trial_id"), text);
        assert_eq!(column_type("last_error"), text);
        assert_eq!(column_type("test_error"), (PhysicalType::DOUBLE, None));
        assert_eq!(column_type("width"), (PhysicalType::DOUBLE, None));
        assert_eq!(column_type("param.seed"), (PhysicalType::INT64, None));
        assert_eq!(
            column_type("param.model.width"),
            (PhysicalType::INT64, None)
        );
        assert_eq!(
            column_type("param.model.bias"),
            (PhysicalType::BOOLEAN, None)
        );
        assert_eq!(
            column_type("param.training.learning_rate"),
            (PhysicalType::DOUBLE, None),
            "0.1 and 1 together are doubles"
        );
        assert_eq!(
            column_type("param.probe.radii"),
            text,
            "a list is JSON text"
        );
        assert_eq!(column_type("param.data.name"), text);
        assert_eq!(column_type("param.note"), text, "only nulls: text");

        let values = rows_of(&reader);
        let [first, second] = values.as_slice() else {
            panic!("two rows: {values:?}");
        };
        assert_eq!(first["trial_id"], Field::Str("a".into()));
        assert_eq!(first["state"], Field::Str("done".into()));
        assert_eq!(first["outcome"], Field::Str("converged".into()));
        assert_eq!(first["worker_id"], Field::Null);
        assert_eq!(first["test_error"], Field::Double(0.25));
        assert_eq!(first["train_error"], Field::Null);
        assert_eq!(first["param.model.width"], Field::Long(8));
        assert_eq!(first["param.model.bias"], Field::Bool(true));
        assert_eq!(first["param.training.learning_rate"], Field::Double(0.1));
        assert_eq!(first["param.probe.radii"], Field::Str("[0.1,0.2]".into()));
        assert_eq!(first["param.note"], Field::Null);

        assert_eq!(second["trial_id"], Field::Str("b".into()));
        assert_eq!(second["outcome"], Field::Null);
        assert_eq!(
            second["last_error"],
            Field::Str("data file \"x.idx\" missing, attempt 1".into())
        );
        assert_eq!(second["test_error"], Field::Null);
        assert_eq!(second["param.model.width"], Field::Long(16));
        assert_eq!(second["param.model.bias"], Field::Bool(false));
        assert_eq!(second["param.training.learning_rate"], Field::Double(1.0));
        assert_eq!(
            second["param.probe.radii"],
            Field::Null,
            "a key only another trial has"
        );
        assert_eq!(second["param.data.name"], Field::Str("cifar".into()));
    }

    #[test]
    fn a_parameter_column_takes_the_narrowest_type_that_holds_every_value() {
        let kind = |values: &[Value]| ColumnKind::of_parameter(values.iter().map(Some));
        assert_eq!(kind(&[Value::Bool(true), Value::Null]), ColumnKind::Boolean);
        assert_eq!(kind(&[3.into(), (-4).into()]), ColumnKind::Integer);
        assert_eq!(kind(&[3.into(), 0.5.into()]), ColumnKind::Double);
        assert_eq!(
            kind(&[u64::MAX.into()]),
            ColumnKind::Double,
            "beyond INT64 is a double"
        );
        assert_eq!(kind(&[true.into(), 1.into()]), ColumnKind::Text);
        assert_eq!(kind(&["sgd".into(), 1.into()]), ColumnKind::Text);
        assert_eq!(kind(&[Value::Null]), ColumnKind::Text);
        assert_eq!(
            ColumnKind::of_parameter([None, None].into_iter()),
            ColumnKind::Text
        );
    }

    #[test]
    fn a_sweep_without_trials_is_a_readable_file_with_the_fixed_columns() {
        let reader = read_back(&to_parquet(&[]).expect("encoded"));
        assert_eq!(reader.metadata().file_metadata().num_rows(), 0);
        assert_eq!(
            reader
                .metadata()
                .file_metadata()
                .schema_descr()
                .num_columns(),
            IDENTITY_COLUMNS.len() + trial_row_numbers().len()
        );
    }
}
