//! Why a data file could not be used. Every variant names the file; none is a panic.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("data file `{}` does not exist", path.display())]
    Missing { path: PathBuf },
    #[error("cannot read data file `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("data file `{}` is empty", path.display())]
    Empty { path: PathBuf },
    #[error("data file `{}` holds no examples", path.display())]
    NoExamples { path: PathBuf },
    #[error(
        "data file `{}` is gzip-compressed; decompress it first (gunzip)",
        path.display()
    )]
    Compressed { path: PathBuf },
    #[error(
        "data file `{}` has magic number {found:#010x}, expected {expected:#010x} ({what})",
        path.display()
    )]
    BadMagic {
        path: PathBuf,
        expected: u32,
        found: u32,
        what: &'static str,
    },
    #[error("data file `{}` has an invalid header: {reason}", path.display())]
    BadHeader { path: PathBuf, reason: String },
    #[error(
        "data file `{}` is truncated: {found} bytes, {expected} expected",
        path.display()
    )]
    Truncated {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error(
        "data file `{}` is longer than its header declares: {found} bytes, {expected} expected",
        path.display()
    )]
    TrailingData {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error(
        "`{}` holds {images} images but `{}` holds {labels} labels",
        images_path.display(),
        labels_path.display()
    )]
    CountMismatch {
        images_path: PathBuf,
        labels_path: PathBuf,
        images: u64,
        labels: u64,
    },
    #[error(
        "data file `{}` has {found} {what}, expected {expected}",
        path.display()
    )]
    DimensionMismatch {
        path: PathBuf,
        what: &'static str,
        expected: usize,
        found: usize,
    },
    #[error(
        "data file `{}`: example {example} has label {label}, outside 0..{classes}",
        path.display()
    )]
    LabelOutOfRange {
        path: PathBuf,
        example: usize,
        label: u64,
        classes: usize,
    },
    #[error("data file `{}` is not UTF-8 text", path.display())]
    NotText { path: PathBuf },
    #[error(
        "`{}` line {line}: label {value:?} is not a class id in 0..{classes}",
        path.display()
    )]
    CsvLabel {
        path: PathBuf,
        line: usize,
        value: String,
        classes: usize,
    },
    #[error(
        "`{}` line {line}, column {column}: {value:?} is not a finite number",
        path.display()
    )]
    CsvValue {
        path: PathBuf,
        line: usize,
        column: String,
        value: String,
    },
    #[error(
        "`{}` line {line}: {found} fields, expected {expected}",
        path.display()
    )]
    CsvFieldCount {
        path: PathBuf,
        line: usize,
        expected: usize,
        found: usize,
    },
    #[error("`{}`: label column {column} {reason}", path.display())]
    CsvLabelColumn {
        path: PathBuf,
        column: String,
        reason: String,
    },
    #[error("`{}` holds {have} examples, too few: {need}", path.display())]
    TooFewExamples {
        path: PathBuf,
        have: usize,
        need: String,
    },
}

/// Reads a whole data file; a missing file and an empty one get their own errors.
pub(crate) fn read_file(path: &str) -> Result<Vec<u8>, DataError> {
    let path_buf = PathBuf::from(path);
    match std::fs::read(&path_buf) {
        Ok(bytes) if bytes.is_empty() => Err(DataError::Empty { path: path_buf }),
        Ok(bytes) => Ok(bytes),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            Err(DataError::Missing { path: path_buf })
        }
        Err(source) => Err(DataError::Read {
            path: path_buf,
            source,
        }),
    }
}

/// Whether `bytes` start like a gzip stream.
pub(crate) fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}
