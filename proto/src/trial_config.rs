//! The resolved configuration of one trial: one point of a sweep's grid, every value fixed.
//!
//! The coordinator builds it from a sweep file (defaults, then the file, then one grid point),
//! validates it, and sends it to a worker as JSON. Its serialized form is canonical (fields in
//! declaration order), so the trial id can be derived from it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrialConfig {
    /// The seed from which data, initialisation, batch order and all noise are derived.
    #[serde(default)]
    pub seed: u64,
    pub data: DataConfig,
    pub model: ModelConfig,
    pub training: TrainingConfig,
    pub probe: ProbeConfig,
    #[serde(default)]
    pub measure: MeasureConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataSet {
    /// Inputs from N(0, I), labels from a random teacher network, with label noise.
    TeacherStudent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    pub dataset: DataSet,
    pub input_dim: usize,
    pub classes: usize,
    pub train_size: usize,
    pub test_size: usize,
    /// Hidden width of the teacher network that labels the synthetic data.
    pub teacher_width: usize,
    /// Probability that a label is replaced by a uniformly random class.
    #[serde(default)]
    pub label_noise: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Relu,
    Tanh,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// N(0, 2 / fan_in), for ReLU.
    He,
    /// N(0, 1 / fan_in), for tanh.
    Lecun,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Number of dense layers (weight matrices); `depth = 2` is one hidden layer.
    pub depth: usize,
    /// Units in every hidden layer.
    pub width: usize,
    pub activation: Activation,
    #[serde(default = "default_true")]
    pub bias: bool,
    #[serde(default = "default_init")]
    pub init: Init,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    CrossEntropy,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingConfig {
    pub loss: Loss,
    pub learning_rate: f64,
    /// Heavy-ball momentum; 0 is plain SGD.
    #[serde(default)]
    pub momentum: f64,
    pub batch_size: usize,
    /// Standard deviation σ of the Gaussian noise added to every gradient coordinate.
    #[serde(default)]
    pub noise_sigma: f64,
    /// Stop once the full training loss is at or below this value.
    #[serde(default)]
    pub target_loss: Option<f64>,
    /// The step budget: training stops here whether or not the target was reached.
    pub max_steps: u64,
    /// How often (in steps) the full training loss is evaluated for the stop rule.
    #[serde(default = "default_eval_every")]
    pub eval_every: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RadiusUnit {
    /// Radii are distances in parameter space.
    Absolute,
    /// Radii are fractions of the norm of the trained parameters ||Θ̂||.
    RelativeToMinimumNorm,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// Noisy SGD steps run from the trained point.
    pub steps: u64,
    /// Step size of the probe; the training learning rate when absent.
    #[serde(default)]
    pub learning_rate: Option<f64>,
    /// Gaussian gradient noise σ during the probe.
    pub noise_sigma: f64,
    pub radii: Vec<f64>,
    #[serde(default = "default_radius_unit")]
    pub radius_unit: RadiusUnit,
    /// Independent probe runs (own noise and batch order) from the same trained point.
    pub replicates: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeasureConfig {
    /// Percentile of the training margins used as γ (5 in Neyshabur et al. 2019, 10 in Jiang et al.).
    pub margin_percentile: f64,
    /// Confidence parameter δ of the bounds.
    pub delta: f64,
    /// Power-iteration steps for each spectral norm.
    pub power_iterations: u32,
}

impl Default for MeasureConfig {
    fn default() -> Self {
        Self {
            margin_percentile: 5.0,
            delta: 0.01,
            power_iterations: 100,
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_init() -> Init {
    Init::He
}

fn default_eval_every() -> u64 {
    10
}

fn default_radius_unit() -> RadiusUnit {
    RadiusUnit::Absolute
}

/// A value of a trial configuration that is out of its allowed range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{key}` = {value} is invalid: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub value: String,
    pub reason: String,
}

impl ConfigError {
    fn new(key: &str, value: impl std::fmt::Display, reason: &str) -> Self {
        Self {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        }
    }
}

fn require_positive_count(key: &str, value: usize) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(ConfigError::new(key, value, "must be at least 1"));
    }
    Ok(())
}

fn require_finite_in(
    key: &str,
    value: f64,
    low: f64,
    high: f64,
    reason: &str,
) -> Result<(), ConfigError> {
    if !value.is_finite() || value < low || value > high {
        return Err(ConfigError::new(key, value, reason));
    }
    Ok(())
}

fn require_finite_positive(key: &str, value: f64) -> Result<(), ConfigError> {
    if !value.is_finite() || value <= 0.0 {
        return Err(ConfigError::new(
            key,
            value,
            "must be a finite number greater than 0",
        ));
    }
    Ok(())
}

/// Upper limits that keep one trial within what a worker can hold in memory.
const MAX_UNITS: usize = 1 << 20;
const MAX_EXAMPLES: usize = 10_000_000;

impl TrialConfig {
    /// Checks every value against its allowed range; the error names the key and the value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let data = &self.data;
        require_positive_count("data.input_dim", data.input_dim)?;
        if data.classes < 2 {
            return Err(ConfigError::new(
                "data.classes",
                data.classes,
                "must be at least 2",
            ));
        }
        require_positive_count("data.train_size", data.train_size)?;
        require_positive_count("data.test_size", data.test_size)?;
        require_positive_count("data.teacher_width", data.teacher_width)?;
        for (key, value) in [
            ("data.input_dim", data.input_dim),
            ("data.teacher_width", data.teacher_width),
            ("data.classes", data.classes),
        ] {
            if value > MAX_UNITS {
                return Err(ConfigError::new(key, value, "is larger than 1048576"));
            }
        }
        for (key, value) in [
            ("data.train_size", data.train_size),
            ("data.test_size", data.test_size),
        ] {
            if value > MAX_EXAMPLES {
                return Err(ConfigError::new(key, value, "is larger than 10000000"));
            }
        }
        require_finite_in(
            "data.label_noise",
            data.label_noise,
            0.0,
            1.0,
            "must be between 0 and 1",
        )?;

        let model = &self.model;
        if model.depth < 2 {
            return Err(ConfigError::new(
                "model.depth",
                model.depth,
                "must be at least 2 (depth counts dense layers; 2 is one hidden layer)",
            ));
        }
        if model.depth > 64 {
            return Err(ConfigError::new(
                "model.depth",
                model.depth,
                "is larger than 64",
            ));
        }
        require_positive_count("model.width", model.width)?;
        if model.width > MAX_UNITS {
            return Err(ConfigError::new(
                "model.width",
                model.width,
                "is larger than 1048576",
            ));
        }

        let training = &self.training;
        require_finite_positive("training.learning_rate", training.learning_rate)?;
        require_finite_in(
            "training.momentum",
            training.momentum,
            0.0,
            0.999_999,
            "must be in [0, 1)",
        )?;
        require_positive_count("training.batch_size", training.batch_size)?;
        if training.batch_size > data.train_size {
            return Err(ConfigError::new(
                "training.batch_size",
                training.batch_size,
                "must not exceed data.train_size",
            ));
        }
        require_finite_in(
            "training.noise_sigma",
            training.noise_sigma,
            0.0,
            f64::MAX,
            "must be a finite number ≥ 0",
        )?;
        if let Some(target) = training.target_loss {
            require_finite_positive("training.target_loss", target)?;
        }
        if training.max_steps == 0 {
            return Err(ConfigError::new(
                "training.max_steps",
                0,
                "must be at least 1",
            ));
        }
        if training.eval_every == 0 {
            return Err(ConfigError::new(
                "training.eval_every",
                0,
                "must be at least 1",
            ));
        }

        let probe = &self.probe;
        if let Some(rate) = probe.learning_rate {
            require_finite_positive("probe.learning_rate", rate)?;
        }
        require_finite_in(
            "probe.noise_sigma",
            probe.noise_sigma,
            0.0,
            f64::MAX,
            "must be a finite number ≥ 0",
        )?;
        if probe.steps > 0 && probe.replicates == 0 {
            return Err(ConfigError::new(
                "probe.replicates",
                0,
                "must be at least 1 when probe.steps > 0",
            ));
        }
        if probe.steps > 0 && probe.radii.is_empty() {
            return Err(ConfigError::new(
                "probe.radii",
                "[]",
                "must list at least one radius when probe.steps > 0",
            ));
        }
        for radius in &probe.radii {
            require_finite_positive("probe.radii", *radius)?;
        }

        let measure = &self.measure;
        require_finite_in(
            "measure.margin_percentile",
            measure.margin_percentile,
            0.0,
            100.0,
            "must be between 0 and 100",
        )?;
        require_finite_in(
            "measure.delta",
            measure.delta,
            f64::MIN_POSITIVE,
            0.999_999,
            "must be in (0, 1)",
        )?;
        if measure.power_iterations == 0 {
            return Err(ConfigError::new(
                "measure.power_iterations",
                0,
                "must be at least 1",
            ));
        }
        Ok(())
    }

    /// The canonical JSON form: what the trial id is derived from and what a worker receives.
    pub fn to_canonical_json(&self) -> String {
        // Serializing plain structs of numbers, strings and enums cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The probe's step size: its own, or the training learning rate.
    pub fn probe_learning_rate(&self) -> f64 {
        self.probe
            .learning_rate
            .unwrap_or(self.training.learning_rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn small_config() -> TrialConfig {
        TrialConfig {
            seed: 7,
            data: DataConfig {
                dataset: DataSet::TeacherStudent,
                input_dim: 8,
                classes: 3,
                train_size: 64,
                test_size: 64,
                teacher_width: 8,
                label_noise: 0.0,
            },
            model: ModelConfig {
                depth: 2,
                width: 16,
                activation: Activation::Relu,
                bias: true,
                init: Init::He,
            },
            training: TrainingConfig {
                loss: Loss::CrossEntropy,
                learning_rate: 0.1,
                momentum: 0.0,
                batch_size: 16,
                noise_sigma: 0.0,
                target_loss: Some(0.01),
                max_steps: 100,
                eval_every: 10,
            },
            probe: ProbeConfig {
                steps: 50,
                learning_rate: None,
                noise_sigma: 0.01,
                radii: vec![0.1, 1.0],
                radius_unit: RadiusUnit::Absolute,
                replicates: 2,
            },
            measure: MeasureConfig::default(),
        }
    }

    #[test]
    fn a_small_config_is_valid_and_round_trips_through_json() {
        let config = small_config();
        config.validate().expect("valid");
        let parsed: TrialConfig =
            serde_json::from_str(&config.to_canonical_json()).expect("parses");
        assert_eq!(parsed, config);
    }

    #[test]
    fn out_of_range_values_name_their_key() {
        let mut config = small_config();
        config.model.width = 0;
        assert_eq!(config.validate().unwrap_err().key, "model.width");

        let mut config = small_config();
        config.training.learning_rate = f64::NAN;
        assert_eq!(config.validate().unwrap_err().key, "training.learning_rate");

        let mut config = small_config();
        config.training.learning_rate = -0.1;
        let error = config.validate().unwrap_err();
        assert_eq!(
            error.to_string(),
            "`training.learning_rate` = -0.1 is invalid: must be a finite number greater than 0"
        );
    }
}
