//! Numeric CSV files: comma-separated plain numbers, one integer label column (class ids
//! 0..classes-1), every other column a feature. No quoting; blank lines are skipped; the first
//! line is a header unless `has_header = false`. Line numbers in errors count from 1, header
//! included.

use std::path::PathBuf;

use vocabulary::DataConfig;
use vocabulary::trial_config::LabelColumn;

use crate::data::error::{DataError, read_file};
use crate::data::{Dataset, TrainTest};

/// The training file and, when configured, the test file. Without a test file the caller holds
/// out rows of the training set.
pub fn load(config: &DataConfig) -> Result<(Dataset, Option<Dataset>), DataError> {
    let options = CsvOptions {
        has_header: config.has_header(),
        label_column: config.label_column.clone(),
        classes: config.classes,
    };
    let train_path = config.train_path.clone().unwrap_or_default();
    let train = load_file(&train_path, &options)?;
    if config.input_dim != 0 && config.input_dim != train.dim {
        return Err(DataError::DimensionMismatch {
            path: train_path.into(),
            what: "feature columns, which disagrees with data.input_dim",
            expected: config.input_dim,
            found: train.dim,
        });
    }
    let test = match &config.test_path {
        None => None,
        Some(path) => {
            let test = load_file(path, &options)?;
            if test.dim != train.dim {
                return Err(DataError::DimensionMismatch {
                    path: path.into(),
                    what: "feature columns compared with the training file",
                    expected: train.dim,
                    found: test.dim,
                });
            }
            Some(test)
        }
    };
    Ok((train, test))
}

/// How to read one CSV file.
#[derive(Debug, Clone)]
pub struct CsvOptions {
    pub has_header: bool,
    /// The last column when absent.
    pub label_column: Option<LabelColumn>,
    pub classes: usize,
}

pub fn load_file(path: &str, options: &CsvOptions) -> Result<Dataset, DataError> {
    let bytes = read_file(path)?;
    let text = String::from_utf8(bytes).map_err(|_| DataError::NotText { path: path.into() })?;
    parse(path, &text, options)
}

/// Parses the contents `text` of the CSV file `path`.
pub fn parse(path: &str, text: &str, options: &CsvOptions) -> Result<Dataset, DataError> {
    let path_buf = || PathBuf::from(path);
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty())
        .peekable();

    let header: Option<Vec<String>> = if options.has_header {
        lines.next().map(|(_, line)| {
            line.split(',')
                .map(|name| name.trim().to_string())
                .collect()
        })
    } else {
        None
    };
    let columns = match (&header, lines.peek()) {
        (Some(names), _) => names.len(),
        (None, Some((_, line))) => line.split(',').count(),
        (None, None) => 0,
    };
    if columns == 0 {
        return Err(DataError::NoExamples { path: path_buf() });
    }
    if columns < 2 {
        return Err(DataError::CsvLabelColumn {
            path: path_buf(),
            column: "(any)".to_string(),
            reason: "leaves no feature column: the file has only one column".to_string(),
        });
    }
    let label_index = match &options.label_column {
        None => columns - 1,
        Some(LabelColumn::Index(index)) => {
            if *index >= columns {
                return Err(DataError::CsvLabelColumn {
                    path: path_buf(),
                    column: index.to_string(),
                    reason: format!("is out of range: the file has {columns} columns (0-based)"),
                });
            }
            *index
        }
        Some(LabelColumn::Name(name)) => {
            let position = header
                .as_ref()
                .and_then(|names| names.iter().position(|candidate| candidate == name));
            match position {
                Some(position) => position,
                None => {
                    return Err(DataError::CsvLabelColumn {
                        path: path_buf(),
                        column: format!("{name:?}"),
                        reason: "is not in the header row".to_string(),
                    });
                }
            }
        }
    };
    let column_name = |column: usize| match &header {
        Some(names) => format!("{} ({:?})", column + 1, names[column]),
        None => (column + 1).to_string(),
    };

    let dim = columns - 1;
    let mut inputs = Vec::new();
    let mut labels = Vec::new();
    for (line_number, line) in lines {
        let mut fields = 0;
        for (column, field) in line.split(',').enumerate() {
            fields += 1;
            if fields > columns {
                continue;
            }
            let field = field.trim();
            if column == label_index {
                match field.parse::<u32>() {
                    Ok(label) if (label as usize) < options.classes => labels.push(label),
                    _ => {
                        return Err(DataError::CsvLabel {
                            path: path_buf(),
                            line: line_number,
                            value: field.to_string(),
                            classes: options.classes,
                        });
                    }
                }
            } else {
                match field.parse::<f32>() {
                    Ok(value) if value.is_finite() => inputs.push(value),
                    _ => {
                        return Err(DataError::CsvValue {
                            path: path_buf(),
                            line: line_number,
                            column: column_name(column),
                            value: field.to_string(),
                        });
                    }
                }
            }
        }
        if fields != columns {
            return Err(DataError::CsvFieldCount {
                path: path_buf(),
                line: line_number,
                expected: columns,
                found: fields,
            });
        }
    }
    if labels.is_empty() {
        return Err(DataError::NoExamples { path: path_buf() });
    }
    Ok(Dataset {
        n: labels.len(),
        inputs,
        labels,
        dim,
        classes: options.classes,
    })
}

/// The CSV configuration's data set: the training file, plus the test file or rows held out.
pub(crate) fn load_split(config: &DataConfig, seed: u64) -> Result<TrainTest, DataError> {
    let (train, test) = load(config)?;
    match test {
        Some(test) => Ok(TrainTest { train, test }),
        None => {
            let path = config.train_path.clone().unwrap_or_default();
            crate::data::transform::hold_out(train, config.test_size, seed, &path)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(classes: usize) -> CsvOptions {
        CsvOptions {
            has_header: true,
            label_column: None,
            classes,
        }
    }

    #[test]
    fn rows_parse_into_features_and_labels_with_the_label_column_anywhere() {
        let text = "x1, x2 ,label\n1.5,2,0\n\n-3,4e-1,2\r\n";
        let data = parse("a.csv", text, &options(3)).expect("parses");
        assert_eq!((data.n, data.dim, data.classes), (2, 2, 3));
        assert_eq!(data.inputs, vec![1.5, 2.0, -3.0, 0.4]);
        assert_eq!(data.labels, vec![0, 2]);

        let mut by_name = options(3);
        by_name.label_column = Some(LabelColumn::Name("label".into()));
        assert_eq!(parse("a.csv", text, &by_name).expect("parses"), data);

        let mut first = CsvOptions {
            has_header: false,
            label_column: Some(LabelColumn::Index(0)),
            classes: 2,
        };
        let data = parse("b.csv", "1,0.5,0.25\n0,1,2\n", &first).expect("parses");
        assert_eq!(data.labels, vec![1, 0]);
        assert_eq!(data.inputs, vec![0.5, 0.25, 1.0, 2.0]);
        first.label_column = Some(LabelColumn::Index(3));
        assert!(matches!(
            parse("b.csv", "1,0.5,0.25\n", &first),
            Err(DataError::CsvLabelColumn { .. })
        ));
    }

    #[test]
    fn bad_labels_values_and_field_counts_name_file_line_and_value() {
        let error = parse("a.csv", "x,y\n1,0\n2,5\n", &options(3)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "`a.csv` line 3: label \"5\" is not a class id in 0..3"
        );
        let error = parse("a.csv", "x,y\n1,0\n\n2,-1\n", &options(3)).unwrap_err();
        assert!(
            matches!(error, DataError::CsvLabel { line: 4, .. }),
            "{error}"
        );
        let error = parse("a.csv", "x,y\n1,0\n2,1.5\n", &options(3)).unwrap_err();
        assert!(
            matches!(error, DataError::CsvLabel { line: 3, .. }),
            "{error}"
        );

        let error = parse("a.csv", "x,y\n1,0\nabc,1\n", &options(3)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "`a.csv` line 3, column 1 (\"x\"): \"abc\" is not a finite number"
        );
        let error = parse("a.csv", "x,y\nNaN,0\n", &options(3)).unwrap_err();
        assert!(
            matches!(error, DataError::CsvValue { line: 2, .. }),
            "{error}"
        );

        let error = parse("a.csv", "x,y\n1,0\n1,2,0\n", &options(3)).unwrap_err();
        assert!(
            matches!(
                error,
                DataError::CsvFieldCount {
                    line: 3,
                    expected: 2,
                    found: 3,
                    ..
                }
            ),
            "{error}"
        );
        assert!(matches!(
            parse("a.csv", "x,y\n1\n", &options(3)),
            Err(DataError::CsvFieldCount { line: 2, .. })
        ));
        assert!(matches!(
            parse("a.csv", "x,y\n\n", &options(3)),
            Err(DataError::NoExamples { .. })
        ));
        let mut by_name = options(3);
        by_name.label_column = Some(LabelColumn::Name("class".into()));
        assert!(matches!(
            parse("a.csv", "x,y\n1,0\n", &by_name),
            Err(DataError::CsvLabelColumn { .. })
        ));
    }

    #[test]
    fn files_load_and_a_missing_test_file_holds_out_rows_by_the_seed() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let train = dir.path().join("train.csv");
        let rows: String = (0..20).map(|row| format!("{row},{}\n", row % 2)).collect();
        std::fs::write(&train, format!("x,label\n{rows}")).expect("writes");
        let mut config = DataConfig::synthetic(vocabulary::DataSet::Csv, 0, 2, 0, 5);
        config.train_path = Some(train.to_string_lossy().into_owned());
        let split = load_split(&config, 1).expect("loads");
        assert_eq!((split.train.n, split.test.n), (15, 5));
        let mut seen: Vec<f32> = split.train.inputs.clone();
        seen.extend(&split.test.inputs);
        seen.sort_by(f32::total_cmp);
        assert_eq!(seen, (0..20).map(|row| row as f32).collect::<Vec<_>>());
        for (input, label) in split.train.inputs.iter().zip(&split.train.labels) {
            assert_eq!(*input as u32 % 2, *label);
        }
        assert_eq!(load_split(&config, 1).expect("loads"), split);
        assert_ne!(load_split(&config, 2).expect("loads").test, split.test);

        config.test_size = 20;
        assert!(matches!(
            load_split(&config, 1),
            Err(DataError::TooFewExamples { have: 20, .. })
        ));

        let test = dir.path().join("test.csv");
        std::fs::write(&test, "x,z,label\n1,2,0\n").expect("writes");
        config.test_size = 0;
        config.test_path = Some(test.to_string_lossy().into_owned());
        assert!(matches!(
            load_split(&config, 1),
            Err(DataError::DimensionMismatch {
                expected: 1,
                found: 2,
                ..
            })
        ));
    }
}
