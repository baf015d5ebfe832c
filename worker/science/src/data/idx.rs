//! MNIST-format IDX files (MNIST, Fashion-MNIST): an images file (magic 0x00000803: unsigned
//! bytes, 3 dimensions n × rows × cols) and a labels file (magic 0x00000801: unsigned bytes, n),
//! all sizes big-endian u32. Pixels are scaled to [0, 1].

use std::path::PathBuf;

use vocabulary::DataConfig;

use crate::data::error::{DataError, is_gzip, read_file};
use crate::data::{Dataset, TrainTest};

pub const IMAGES_MAGIC: u32 = 0x0000_0803;
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// Classes when the configuration does not say (MNIST and Fashion-MNIST have 10).
pub const DEFAULT_CLASSES: usize = 10;

/// Loads the four files named by the configuration.
pub fn load(config: &DataConfig) -> Result<TrainTest, DataError> {
    let classes = if config.classes == 0 {
        DEFAULT_CLASSES
    } else {
        config.classes
    };
    let path = |value: &Option<String>| value.clone().unwrap_or_default();
    let train = load_pair(
        &path(&config.train_images),
        &path(&config.train_labels),
        classes,
    )?;
    let test = load_pair(
        &path(&config.test_images),
        &path(&config.test_labels),
        classes,
    )?;
    if test.dim != train.dim {
        return Err(DataError::DimensionMismatch {
            path: path(&config.test_images).into(),
            what: "pixels per image (rows × cols) compared with the training images",
            expected: train.dim,
            found: test.dim,
        });
    }
    if config.input_dim != 0 && config.input_dim != train.dim {
        return Err(DataError::DimensionMismatch {
            path: path(&config.train_images).into(),
            what: "pixels per image, which disagrees with data.input_dim",
            expected: config.input_dim,
            found: train.dim,
        });
    }
    Ok(TrainTest { train, test })
}

/// One images file and its labels file as a data set with `classes` classes.
pub fn load_pair(
    images_path: &str,
    labels_path: &str,
    classes: usize,
) -> Result<Dataset, DataError> {
    let image_bytes = read_file(images_path)?;
    let (image_dims, pixels) = parse(
        images_path,
        &image_bytes,
        IMAGES_MAGIC,
        "IDX images, u8, 3 dimensions",
    )?;
    let label_bytes = read_file(labels_path)?;
    let (label_dims, labels) = parse(
        labels_path,
        &label_bytes,
        LABELS_MAGIC,
        "IDX labels, u8, 1 dimension",
    )?;

    let images = image_dims[0];
    if images != label_dims[0] {
        return Err(DataError::CountMismatch {
            images_path: images_path.into(),
            labels_path: labels_path.into(),
            images: images as u64,
            labels: label_dims[0] as u64,
        });
    }
    if images == 0 {
        return Err(DataError::NoExamples {
            path: images_path.into(),
        });
    }
    let dim = image_dims[1] * image_dims[2];
    if dim == 0 {
        return Err(DataError::BadHeader {
            path: images_path.into(),
            reason: format!("images of {} × {} pixels", image_dims[1], image_dims[2]),
        });
    }
    let mut label_values = Vec::with_capacity(images);
    for (example, &label) in labels.iter().enumerate() {
        if usize::from(label) >= classes {
            return Err(DataError::LabelOutOfRange {
                path: labels_path.into(),
                example,
                label: u64::from(label),
                classes,
            });
        }
        label_values.push(u32::from(label));
    }
    Ok(Dataset {
        inputs: pixels.iter().map(|&byte| f32::from(byte) / 255.0).collect(),
        labels: label_values,
        n: images,
        dim,
        classes,
    })
}

/// Checks the header of an IDX file of unsigned bytes with the given magic number and returns
/// its dimensions and its data bytes, which are exactly as many as the dimensions declare.
pub fn parse<'b>(
    path: &str,
    bytes: &'b [u8],
    magic: u32,
    what: &'static str,
) -> Result<(Vec<usize>, &'b [u8]), DataError> {
    let path_buf = || PathBuf::from(path);
    if is_gzip(bytes) {
        return Err(DataError::Compressed { path: path_buf() });
    }
    if bytes.len() < 4 {
        return Err(DataError::Truncated {
            path: path_buf(),
            expected: 4,
            found: bytes.len() as u64,
        });
    }
    let found = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if found != magic {
        return Err(DataError::BadMagic {
            path: path_buf(),
            expected: magic,
            found,
            what,
        });
    }
    let dimensions = (magic & 0xff) as usize;
    let header = 4 + 4 * dimensions;
    if bytes.len() < header {
        return Err(DataError::Truncated {
            path: path_buf(),
            expected: header as u64,
            found: bytes.len() as u64,
        });
    }
    let mut dims = Vec::with_capacity(dimensions);
    let mut size: u64 = 1;
    for index in 0..dimensions {
        let start = 4 + 4 * index;
        let dim = u32::from_be_bytes([
            bytes[start],
            bytes[start + 1],
            bytes[start + 2],
            bytes[start + 3],
        ]);
        // The product of u32 sizes fits in u64 for up to two factors; check beyond.
        size = size
            .checked_mul(u64::from(dim))
            .ok_or_else(|| DataError::BadHeader {
                path: path_buf(),
                reason: "the declared dimensions overflow".to_string(),
            })?;
        dims.push(dim as usize);
    }
    let expected = header as u64 + size;
    let found = bytes.len() as u64;
    if found < expected {
        return Err(DataError::Truncated {
            path: path_buf(),
            expected,
            found,
        });
    }
    if found > expected {
        return Err(DataError::TrailingData {
            path: path_buf(),
            expected,
            found,
        });
    }
    Ok((dims, &bytes[header..]))
}

/// The bytes of an IDX file of unsigned bytes: header, then `data`. For tests and tools.
pub fn encode(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = magic.to_be_bytes().to_vec();
    for dim in dims {
        bytes.extend_from_slice(&dim.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Files {
        dir: tempfile::TempDir,
    }

    impl Files {
        fn new() -> Self {
            Self {
                dir: tempfile::tempdir().expect("a temporary directory"),
            }
        }

        fn write(&self, name: &str, bytes: &[u8]) -> String {
            let path = self.dir.path().join(name);
            std::fs::write(&path, bytes).expect("writes");
            path.to_string_lossy().into_owned()
        }
    }

    /// Five 2 × 3 images whose pixel j of image i is 10·i + j, labels 0, 1, 2, 3, 9.
    fn five_images() -> (Vec<u8>, Vec<u8>) {
        let pixels: Vec<u8> = (0..5u8)
            .flat_map(|image| (0..6u8).map(move |pixel| 10 * image + pixel))
            .collect();
        (
            encode(IMAGES_MAGIC, &[5, 2, 3], &pixels),
            encode(LABELS_MAGIC, &[5], &[0, 1, 2, 3, 9]),
        )
    }

    #[test]
    fn a_five_image_pair_loads_with_its_pixels_and_labels() {
        let files = Files::new();
        let (images, labels) = five_images();
        let images = files.write("images", &images);
        let labels = files.write("labels", &labels);
        let data = load_pair(&images, &labels, 10).expect("loads");
        assert_eq!((data.n, data.dim, data.classes), (5, 6, 10));
        assert_eq!(data.labels, vec![0, 1, 2, 3, 9]);
        assert_eq!(data.input(0)[0], 0.0);
        assert_eq!(data.input(3)[2], 32.0 / 255.0);
        assert!(
            data.inputs
                .iter()
                .all(|&pixel| (0.0..=1.0).contains(&pixel))
        );
    }

    #[test]
    fn malformed_files_are_refused_with_the_matching_error() {
        let files = Files::new();
        let (images, labels) = five_images();
        let good_images = files.write("images", &images);
        let good_labels = files.write("labels", &labels);

        // Images and labels swapped: the magic numbers do not match.
        let error = load_pair(&good_labels, &good_images, 10).unwrap_err();
        assert!(
            matches!(
                error,
                DataError::BadMagic {
                    expected: IMAGES_MAGIC,
                    found: LABELS_MAGIC,
                    ..
                }
            ),
            "{error}"
        );
        assert!(error.to_string().contains("labels"), "{error}");

        let truncated = files.write("truncated", &images[..images.len() - 1]);
        let error = load_pair(&truncated, &good_labels, 10).unwrap_err();
        assert!(
            matches!(
                error,
                DataError::Truncated {
                    expected: 46,
                    found: 45,
                    ..
                }
            ),
            "{error}"
        );
        let header_only = files.write("header", &images[..6]);
        assert!(matches!(
            load_pair(&header_only, &good_labels, 10),
            Err(DataError::Truncated { .. })
        ));
        let mut longer = images.clone();
        longer.push(0);
        let longer = files.write("longer", &longer);
        assert!(matches!(
            load_pair(&longer, &good_labels, 10),
            Err(DataError::TrailingData { .. })
        ));

        let four_labels = files.write("four", &encode(LABELS_MAGIC, &[4], &[0, 1, 2, 3]));
        let error = load_pair(&good_images, &four_labels, 10).unwrap_err();
        assert!(
            matches!(
                error,
                DataError::CountMismatch {
                    images: 5,
                    labels: 4,
                    ..
                }
            ),
            "{error}"
        );

        let error = load_pair(&good_images, &good_labels, 5).unwrap_err();
        assert!(
            matches!(
                error,
                DataError::LabelOutOfRange {
                    example: 4,
                    label: 9,
                    classes: 5,
                    ..
                }
            ),
            "{error}"
        );

        let empty = files.write("empty", &[]);
        assert!(matches!(
            load_pair(&empty, &good_labels, 10),
            Err(DataError::Empty { .. })
        ));
        let gzip = files.write("gzip", &[0x1f, 0x8b, 8, 0, 0, 0]);
        assert!(matches!(
            load_pair(&gzip, &good_labels, 10),
            Err(DataError::Compressed { .. })
        ));
        let missing = files
            .dir
            .path()
            .join("absent")
            .to_string_lossy()
            .into_owned();
        let error = load_pair(&missing, &good_labels, 10).unwrap_err();
        assert!(matches!(error, DataError::Missing { .. }));
        assert!(error.to_string().contains("absent"), "{error}");
    }

    #[test]
    fn the_configured_files_load_and_test_images_must_match_the_training_shape() {
        let files = Files::new();
        let (images, labels) = five_images();
        let mut config = DataConfig::synthetic(vocabulary::DataSet::Idx, 0, 0, 0, 0);
        config.train_images = Some(files.write("train-images", &images));
        config.train_labels = Some(files.write("train-labels", &labels));
        config.test_images = Some(files.write("test-images", &images));
        config.test_labels = Some(files.write("test-labels", &labels));
        let data = load(&config).expect("loads");
        assert_eq!(data.train, data.test);
        assert_eq!(data.train.classes, DEFAULT_CLASSES);

        let square = encode(IMAGES_MAGIC, &[5, 3, 3], &[7; 45]);
        config.test_images = Some(files.write("square", &square));
        assert!(matches!(
            load(&config),
            Err(DataError::DimensionMismatch {
                expected: 6,
                found: 9,
                ..
            })
        ));
    }
}
