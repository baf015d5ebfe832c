//! Weights saved as safetensors files, so that a trial's initial, trained and end-of-probe points
//! can be re-examined in any framework: one f32 tensor per layer weight (`layer{ℓ}.weight`,
//! fan_out × fan_in, ℓ from 1) and bias (`layer{ℓ}.bias`), the trial described in the metadata.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};

use crate::model::mlp::Mlp;

#[derive(Debug, thiserror::Error)]
pub enum SavedWeightsError {
    #[error("cannot create the checkpoint directory {path}: {source}")]
    Directory {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the checkpoint {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

/// Where one trial's weight files go, and what each file says about the trial.
#[derive(Debug, Clone)]
pub struct WeightsDirectory {
    directory: PathBuf,
    metadata: HashMap<String, String>,
}

impl WeightsDirectory {
    /// Creates `directory` (and its parents); `metadata` goes into every file's header.
    pub fn create(
        directory: &Path,
        metadata: HashMap<String, String>,
    ) -> Result<Self, SavedWeightsError> {
        std::fs::create_dir_all(directory).map_err(|source| SavedWeightsError::Directory {
            path: directory.to_path_buf(),
            source,
        })?;
        Ok(Self {
            directory: directory.to_path_buf(),
            metadata,
        })
    }

    /// Writes `<directory>/<name>.safetensors` with `parameters` split by layer; `point` names
    /// what they are (initial, trained, end of a probe replicate) in the metadata.
    pub fn save(
        &self,
        name: &str,
        point: &str,
        mlp: &Mlp,
        parameters: &[f32],
    ) -> Result<PathBuf, SavedWeightsError> {
        let path = self.directory.join(format!("{name}.safetensors"));
        let failed = |reason: String| SavedWeightsError::Write {
            path: path.clone(),
            reason,
        };
        let bytes: Vec<u8> = parameters.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut tensors = Vec::with_capacity(2 * mlp.layers().len());
        for (index, layer) in mlp.layers().iter().enumerate() {
            let weight = layer.weight_range();
            tensors.push((
                format!("layer{}.weight", index + 1),
                TensorView::new(
                    Dtype::F32,
                    vec![layer.fan_out, layer.fan_in],
                    &bytes[4 * weight.start..4 * weight.end],
                )
                .map_err(|error| failed(error.to_string()))?,
            ));
            if let Some(bias) = layer.bias_range() {
                tensors.push((
                    format!("layer{}.bias", index + 1),
                    TensorView::new(
                        Dtype::F32,
                        vec![layer.fan_out],
                        &bytes[4 * bias.start..4 * bias.end],
                    )
                    .map_err(|error| failed(error.to_string()))?,
                ));
            }
        }
        let mut metadata = self.metadata.clone();
        metadata.insert("point".to_string(), point.to_string());
        safetensors::serialize_to_file(tensors, Some(metadata), &path)
            .map_err(|error| failed(error.to_string()))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{Stream, stream};
    use safetensors::SafeTensors;
    use vocabulary::Activation;

    #[test]
    fn each_layer_is_a_tensor_of_its_shape_holding_its_values() {
        let mlp = Mlp::new(3, 5, 2, 3, Activation::Relu, true);
        let parameters = mlp.initialize(vocabulary::Init::He, &mut stream(4, Stream::Init));
        let directory = tempfile::tempdir().expect("a temporary directory");
        let target = directory.path().join("sweep").join("trial");
        let metadata = HashMap::from([("trial_id".to_string(), "abc".to_string())]);
        let saved = WeightsDirectory::create(&target, metadata).expect("created");
        let path = saved
            .save("trained", "trained", &mlp, &parameters)
            .expect("written");
        assert_eq!(path, target.join("trained.safetensors"));

        // Read back through the format's own parser, independently of the writer's layout.
        let bytes = std::fs::read(&path).expect("readable");
        let (_, header) = SafeTensors::read_metadata(&bytes).expect("a safetensors header");
        let info = header.metadata().as_ref().expect("metadata");
        assert_eq!(info.get("trial_id").map(String::as_str), Some("abc"));
        assert_eq!(info.get("point").map(String::as_str), Some("trained"));
        let file = SafeTensors::deserialize(&bytes).expect("a safetensors file");
        let mut names = file.names();
        names.sort();
        assert_eq!(
            names,
            [
                "layer1.bias",
                "layer1.weight",
                "layer2.bias",
                "layer2.weight",
                "layer3.bias",
                "layer3.weight"
            ]
        );
        for (index, layer) in mlp.layers().iter().enumerate() {
            let weight = file
                .tensor(&format!("layer{}.weight", index + 1))
                .expect("the weight");
            assert_eq!(weight.dtype(), Dtype::F32);
            assert_eq!(weight.shape(), [layer.fan_out, layer.fan_in]);
            let values: Vec<f32> = weight
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            assert_eq!(values, parameters[layer.weight_range()]);
            let bias = file
                .tensor(&format!("layer{}.bias", index + 1))
                .expect("the bias");
            assert_eq!(bias.shape(), [layer.fan_out]);
        }
    }

    #[test]
    fn an_unwritable_directory_is_an_error_naming_it() {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let file = directory.path().join("a-file");
        std::fs::write(&file, "not a directory").expect("written");
        let error = WeightsDirectory::create(&file.join("inside"), HashMap::new())
            .expect_err("cannot create a directory inside a file");
        assert!(error.to_string().contains("a-file"), "{error}");
    }
}
