//! CIFAR-10 binary batches: records of one label byte (0..9) and 3072 pixel bytes (1024 red,
//! 1024 green, 1024 blue, each a 32 × 32 image row by row). Pixels are scaled to [0, 1] and kept in
//! that channel-major order.

use vocabulary::DataConfig;

use crate::data::error::{DataError, is_gzip, read_file};
use crate::data::{Dataset, TrainTest};

pub const CLASSES: usize = 10;
pub const PIXELS: usize = 3 * 32 * 32;
pub const RECORD_BYTES: usize = 1 + PIXELS;

pub fn load(config: &DataConfig) -> Result<TrainTest, DataError> {
    Ok(TrainTest {
        train: load_files(&config.train_files)?,
        test: load_files(&config.test_files)?,
    })
}

/// The records of all `files`, in order, as one data set.
pub fn load_files(files: &[String]) -> Result<Dataset, DataError> {
    let mut data = Dataset {
        inputs: Vec::new(),
        labels: Vec::new(),
        n: 0,
        dim: PIXELS,
        classes: CLASSES,
    };
    for path in files {
        let bytes = read_file(path)?;
        parse_records(path, &bytes, &mut data)?;
    }
    Ok(data)
}

/// Appends the records in `bytes` (the contents of `path`) to `data`.
pub fn parse_records(path: &str, bytes: &[u8], data: &mut Dataset) -> Result<(), DataError> {
    if is_gzip(bytes) {
        return Err(DataError::Compressed { path: path.into() });
    }
    if bytes.is_empty() {
        return Err(DataError::Empty { path: path.into() });
    }
    let remainder = bytes.len() % RECORD_BYTES;
    if remainder != 0 {
        return Err(DataError::Truncated {
            path: path.into(),
            expected: (bytes.len() - remainder + RECORD_BYTES) as u64,
            found: bytes.len() as u64,
        });
    }
    let records = bytes.len() / RECORD_BYTES;
    // Labels first, so that a refused file leaves `data` as it was.
    for (example, record) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
        let label = record[0];
        if usize::from(label) >= CLASSES {
            return Err(DataError::LabelOutOfRange {
                path: path.into(),
                example,
                label: u64::from(label),
                classes: CLASSES,
            });
        }
    }
    data.inputs.reserve(records * PIXELS);
    data.labels.reserve(records);
    for record in bytes.chunks_exact(RECORD_BYTES) {
        data.labels.push(u32::from(record[0]));
        data.inputs
            .extend(record[1..].iter().map(|&byte| f32::from(byte) / 255.0));
    }
    data.n += records;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(label: u8, first_pixel: u8) -> Vec<u8> {
        let mut bytes = vec![label, first_pixel];
        bytes.extend((1..PIXELS).map(|pixel| (pixel % 256) as u8));
        bytes
    }

    #[test]
    fn records_parse_into_labels_and_scaled_pixels_across_files() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let first = dir.path().join("data_batch_1.bin");
        let second = dir.path().join("data_batch_2.bin");
        std::fs::write(&first, [record(3, 255), record(9, 0)].concat()).expect("writes");
        std::fs::write(&second, record(0, 51)).expect("writes");
        let files = vec![
            first.to_string_lossy().into_owned(),
            second.to_string_lossy().into_owned(),
        ];
        let data = load_files(&files).expect("loads");
        assert_eq!((data.n, data.dim, data.classes), (3, 3072, 10));
        assert_eq!(data.labels, vec![3, 9, 0]);
        assert_eq!(data.input(0)[0], 1.0);
        assert_eq!(data.input(1)[0], 0.0);
        assert_eq!(data.input(2)[0], 0.2);
        assert_eq!(data.input(2)[1024], (1024 % 256) as f32 / 255.0);
        assert_eq!(data.inputs.len(), 3 * 3072);
    }

    #[test]
    fn partial_records_and_bad_labels_are_refused() {
        let mut data = load_files(&[]).expect("no files, no examples");
        let mut bytes = record(1, 0);
        bytes.pop();
        let error = parse_records("batch.bin", &bytes, &mut data).unwrap_err();
        assert!(
            matches!(
                error,
                DataError::Truncated {
                    expected: 3073,
                    found: 3072,
                    ..
                }
            ),
            "{error}"
        );
        let bytes = [record(1, 0), record(10, 0)].concat();
        let error = parse_records("batch.bin", &bytes, &mut data).unwrap_err();
        assert!(
            matches!(
                error,
                DataError::LabelOutOfRange {
                    example: 1,
                    label: 10,
                    ..
                }
            ),
            "{error}"
        );
        assert_eq!(
            error.to_string(),
            "data file `batch.bin`: example 1 has label 10, outside 0..10"
        );
        assert!(matches!(
            parse_records("batch.bin", &[], &mut data),
            Err(DataError::Empty { .. })
        ));
    }
}
