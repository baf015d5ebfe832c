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
    /// `classes` Gaussian clusters with unit-variance noise around random means, with label noise.
    GaussianMixture,
    /// MNIST-format IDX files (MNIST, Fashion-MNIST): u8 images and u8 labels.
    Idx,
    /// CIFAR-10 binary batches: records of one label byte and 3072 pixel bytes.
    Cifar10,
    /// Numeric CSV files with one integer label column.
    Csv,
}

impl DataSet {
    /// Whether the examples are read from files (true) or generated from the seed (false).
    pub fn is_file_based(self) -> bool {
        matches!(self, DataSet::Idx | DataSet::Cifar10 | DataSet::Csv)
    }

    /// The name used in configuration files.
    pub fn name(self) -> &'static str {
        match self {
            DataSet::TeacherStudent => "teacher_student",
            DataSet::GaussianMixture => "gaussian_mixture",
            DataSet::Idx => "idx",
            DataSet::Cifar10 => "cifar10",
            DataSet::Csv => "csv",
        }
    }
}

/// The CSV column that holds the class label: a 0-based index, or a name from the header row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LabelColumn {
    Index(usize),
    Name(String),
}

impl std::fmt::Display for LabelColumn {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LabelColumn::Index(index) => write!(formatter, "{index}"),
            LabelColumn::Name(name) => write!(formatter, "{name:?}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    pub dataset: DataSet,
    /// Input dimension. Required for the synthetic sets; for file sets it comes from the files
    /// (0, the default, means "from the files"; any other value must match them).
    #[serde(default)]
    pub input_dim: usize,
    /// Number of classes. Required for `teacher_student`, `gaussian_mixture` and `csv`; 10 when
    /// absent (0) for `idx`; must be absent or 10 for `cifar10`.
    #[serde(default)]
    pub classes: usize,
    /// Training examples generated (synthetic sets only; file sets use the whole file, see
    /// `subsample`).
    #[serde(default)]
    pub train_size: usize,
    /// Test examples generated (synthetic sets), or rows held out of the training file (`csv`
    /// without `test_path`).
    #[serde(default)]
    pub test_size: usize,
    /// Hidden width of the teacher network that labels the synthetic data (`teacher_student`).
    #[serde(default)]
    pub teacher_width: usize,
    /// Probability that a label is replaced by a uniformly random class (synthetic sets).
    #[serde(default)]
    pub label_noise: f64,
    /// `gaussian_mixture`: the class means are N(0, I/input_dim)·cluster_separation, so two means
    /// lie about cluster_separation·√2 noise standard deviations apart in any dimension.
    /// [`DEFAULT_CLUSTER_SEPARATION`] when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_separation: Option<f64>,
    /// `idx`: the training images file (magic 0x00000803, u8, n × rows × cols).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_images: Option<String>,
    /// `idx`: the training labels file (magic 0x00000801, u8, n).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_labels: Option<String>,
    /// `idx`: the test images file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_images: Option<String>,
    /// `idx`: the test labels file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_labels: Option<String>,
    /// `cifar10`: the training batch files (`data_batch_1.bin` … `data_batch_5.bin`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub train_files: Vec<String>,
    /// `cifar10`: the test batch files (`test_batch.bin`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test_files: Vec<String>,
    /// `csv`: the training file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_path: Option<String>,
    /// `csv`: the test file; when absent, `test_size` rows of the training file are held out
    /// after a shuffle by the seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_path: Option<String>,
    /// `csv`: the label column, a 0-based index or a header name; the last column when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_column: Option<LabelColumn>,
    /// `csv`: whether the first row is a header; true when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_header: Option<bool>,
    /// Use at most this many training examples, chosen by the seed (any data set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subsample: Option<usize>,
    /// Shift and scale every feature by the mean and standard deviation of the training set
    /// (applied to the training and the test set).
    #[serde(default, skip_serializing_if = "is_false")]
    pub standardize: bool,
}

/// The default `data.cluster_separation` of the Gaussian mixture.
pub const DEFAULT_CLUSTER_SEPARATION: f64 = 3.0;

impl DataConfig {
    /// `cluster_separation`, or its default.
    pub fn cluster_separation(&self) -> f64 {
        self.cluster_separation
            .unwrap_or(DEFAULT_CLUSTER_SEPARATION)
    }

    /// `has_header`, or its default (true).
    pub fn has_header(&self) -> bool {
        self.has_header.unwrap_or(true)
    }

    /// A synthetic configuration with every optional field at its default; the starting point for
    /// tests and programmatic configurations.
    pub fn synthetic(
        dataset: DataSet,
        input_dim: usize,
        classes: usize,
        train_size: usize,
        test_size: usize,
    ) -> Self {
        Self {
            dataset,
            input_dim,
            classes,
            train_size,
            test_size,
            teacher_width: 0,
            label_noise: 0.0,
            cluster_separation: None,
            train_images: None,
            train_labels: None,
            test_images: None,
            test_labels: None,
            train_files: Vec::new(),
            test_files: Vec::new(),
            train_path: None,
            test_path: None,
            label_column: None,
            has_header: None,
            subsample: None,
            standardize: false,
        }
    }
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
    /// Standard deviation σ of the Gaussian noise added to the gradient (scaled by `noise_form`).
    #[serde(default)]
    pub noise_sigma: f64,
    /// Left out of the canonical form at its default, so adding it kept every trial id.
    #[serde(default, skip_serializing_if = "NoiseForm::is_default")]
    pub noise_form: NoiseForm,
    /// β of the Langevin form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inverse_temperature: Option<f64>,
    /// Stop once the full training loss is at or below this value.
    #[serde(default)]
    pub target_loss: Option<f64>,
    /// The step budget: training stops here whether or not the target was reached.
    pub max_steps: u64,
    /// How often (in steps) the full training loss is evaluated for the stop rule.
    #[serde(default = "default_eval_every")]
    pub eval_every: u64,
    /// After SGD, full-batch gradient descent (at the training learning rate) until the gradient
    /// norm ||∇R̂_n|| is at most this, so that the probe starts at a stationary point. None: no
    /// polish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polish_tolerance: Option<f64>,
    /// The most polish steps; reaching it without the tolerance is reported, not an error.
    #[serde(
        default = "default_polish_max_steps",
        skip_serializing_if = "is_default_polish_max_steps"
    )]
    pub polish_max_steps: u64,
}

const DEFAULT_POLISH_MAX_STEPS: u64 = 2000;

fn default_polish_max_steps() -> u64 {
    DEFAULT_POLISH_MAX_STEPS
}

fn is_default_polish_max_steps(value: &u64) -> bool {
    *value == DEFAULT_POLISH_MAX_STEPS
}

/// How the Gaussian gradient noise ξ is scaled (`science.md` §1). With one σ for every
/// coordinate the total noise grows like sqrt(D) as the network widens; the other forms let a
/// width sweep hold the noise per layer or in total fixed instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseForm {
    /// ξ ~ N(0, σ² I).
    #[default]
    PerCoordinate,
    /// σ / sqrt(fan_in) for the weights and biases of each layer.
    PerLayer,
    /// σ / sqrt(D) for every coordinate, so that E||ξ||² = σ² at any width.
    FixedTotal,
    /// Langevin dynamics Θ ← Θ − η∇R̂ + sqrt(2η/β) ζ at inverse temperature β
    /// (`inverse_temperature`); σ is not used.
    Langevin,
}

impl NoiseForm {
    pub fn is_default(&self) -> bool {
        *self == NoiseForm::PerCoordinate
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RadiusUnit {
    /// Radii are distances in parameter space.
    Absolute,
    /// Radii are fractions of the norm of the trained parameters ||Θ̂||.
    RelativeToMinimumNorm,
    /// Radii are multiples of the RMS distance the linearised dynamics predict after the probe's
    /// steps, sqrt(Σ_i v_{i,T}) (science.md §3.8), from the Hessian at Θ̂: it needs
    /// `measure.hessian_top_k` > 0.
    RelativeToPredictedRms,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// Noisy SGD steps run from the trained point.
    pub steps: u64,
    /// Step size of the probe; the training learning rate when absent.
    #[serde(default)]
    pub learning_rate: Option<f64>,
    /// Examples per probe gradient; the training batch size when absent. The whole training set
    /// leaves only the injected noise, what the linearised prediction describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// Gaussian gradient noise σ during the probe (scaled by `noise_form`).
    pub noise_sigma: f64,
    #[serde(default, skip_serializing_if = "NoiseForm::is_default")]
    pub noise_form: NoiseForm,
    /// β of the Langevin form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inverse_temperature: Option<f64>,
    pub radii: Vec<f64>,
    #[serde(default = "default_radius_unit")]
    pub radius_unit: RadiusUnit,
    /// Independent probe runs (own noise and batch order) from the same trained point.
    pub replicates: u32,
    /// Snapshots per replicate, evenly spaced over its steps, whose cloud gives the effective
    /// dimension (memory: snapshots × parameters floats). 0 skips them, and the evaluations
    /// below. 20 by default (it was 5: a cloud of N points has a participation ratio below N,
    /// and a pure random walk already gives 2.5 of 5).
    #[serde(
        default = "default_probe_snapshots",
        skip_serializing_if = "is_default_probe_snapshots"
    )]
    pub snapshots: u32,
    /// Points per replicate, evenly spaced over its steps, where the loss excursion and the
    /// local convexity are evaluated on the whole training and test sets: at most `snapshots`.
    /// Each costs a full pass over both sets, so there are fewer of them than snapshots.
    #[serde(
        default = "default_snapshot_evaluations",
        skip_serializing_if = "is_default_snapshot_evaluations"
    )]
    pub snapshot_evaluations: u32,
    /// Noise-free full-batch gradient-descent steps from each replicate's end point for the
    /// same-basin test. 0 skips it.
    #[serde(
        default = "default_basin_steps",
        skip_serializing_if = "is_default_basin_steps"
    )]
    pub basin_steps: u32,
    /// Points per side of the loss-landscape slice through Θ̂ (science.md §3.11): grid² training
    /// losses. 0 (the default) stores no slice.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub landscape_grid: u32,
    /// The plane of the slice.
    #[serde(default, skip_serializing_if = "LandscapePlane::is_default")]
    pub landscape_plane: LandscapePlane,
}

/// The plane through Θ̂ a loss-landscape slice is drawn in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LandscapePlane {
    /// The top two principal directions of the first probe replicate's snapshot cloud.
    #[default]
    Pca,
    /// Two filter-normalised random directions (each weight row scaled to the norm of the
    /// matching row of Ŵ, biases zero; Li et al. 2018), then orthonormalised.
    Random,
}

impl LandscapePlane {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LandscapePlane::Pca => "pca",
            LandscapePlane::Random => "random",
        }
    }
}

/// The largest landscape grid: 201² losses.
pub const MAX_LANDSCAPE_GRID: u32 = 201;

fn is_zero(value: &u32) -> bool {
    *value == 0
}

/// `probe.snapshots`, `probe.snapshot_evaluations` and `probe.basin_steps` when a sweep file
/// leaves them out.
pub const DEFAULT_PROBE_SNAPSHOTS: u32 = 20;
pub const DEFAULT_SNAPSHOT_EVALUATIONS: u32 = 5;
pub const DEFAULT_BASIN_STEPS: u32 = 20;

fn default_snapshot_evaluations() -> u32 {
    DEFAULT_SNAPSHOT_EVALUATIONS
}

fn is_default_snapshot_evaluations(value: &u32) -> bool {
    *value == DEFAULT_SNAPSHOT_EVALUATIONS
}

fn default_probe_snapshots() -> u32 {
    DEFAULT_PROBE_SNAPSHOTS
}

fn is_default_probe_snapshots(value: &u32) -> bool {
    *value == DEFAULT_PROBE_SNAPSHOTS
}

fn default_basin_steps() -> u32 {
    DEFAULT_BASIN_STEPS
}

fn is_default_basin_steps(value: &u32) -> bool {
    *value == DEFAULT_BASIN_STEPS
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
    /// Top Hessian eigenvalues at Θ̂ to estimate by Lanczos (0 skips the Hessian measurements).
    pub hessian_top_k: u32,
    /// Lanczos iterations (each one Hessian-vector product on the full training set).
    pub lanczos_steps: u32,
    /// Rademacher probes for Hutchinson's estimate of the Hessian trace (0 skips it).
    pub hutchinson_probes: u32,
    /// Weight-noise draws averaged at each σ of the PAC-Bayes flatness search (0 skips it).
    #[serde(skip_serializing_if = "is_default_flatness_draws")]
    pub flatness_draws: u32,
    /// Save the initial, trained and end-of-probe weights as safetensors files in the worker's
    /// checkpoint directory.
    #[serde(skip_serializing_if = "is_false")]
    pub checkpoints: bool,
}

/// Jiang et al. (2020) average 10 draws of weight noise at each σ'.
const DEFAULT_FLATNESS_DRAWS: u32 = 10;

fn is_default_flatness_draws(value: &u32) -> bool {
    *value == DEFAULT_FLATNESS_DRAWS
}

impl Default for MeasureConfig {
    fn default() -> Self {
        Self {
            margin_percentile: 5.0,
            delta: 0.01,
            power_iterations: 100,
            hessian_top_k: 3,
            lanczos_steps: 30,
            hutchinson_probes: 10,
            flatness_draws: DEFAULT_FLATNESS_DRAWS,
            checkpoints: false,
        }
    }
}

fn default_true() -> bool {
    true
}

fn is_false(value: &bool) -> bool {
    !*value
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

/// Langevin needs its β, and β means nothing to the other forms.
fn validate_noise_form(
    section: &str,
    form: NoiseForm,
    inverse_temperature: Option<f64>,
) -> Result<(), ConfigError> {
    let key = format!("{section}.inverse_temperature");
    match (form, inverse_temperature) {
        (NoiseForm::Langevin, None) => Err(ConfigError::new(
            &format!("{section}.noise_form"),
            "\"langevin\"",
            &format!("needs {key} (β > 0)"),
        )),
        (NoiseForm::Langevin, Some(beta)) => require_finite_positive(&key, beta),
        (_, Some(beta)) => Err(ConfigError::new(
            &key,
            beta,
            &format!("is only used with {section}.noise_form = \"langevin\""),
        )),
        (_, None) => Ok(()),
    }
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

fn require_path(key: &str, value: &Option<String>, dataset: DataSet) -> Result<(), ConfigError> {
    match value {
        Some(path) if !path.trim().is_empty() => Ok(()),
        Some(path) => Err(ConfigError::new(
            key,
            format!("{path:?}"),
            "must be a file path, not empty",
        )),
        None => Err(ConfigError::new(
            key,
            "(missing)",
            &format!("is required for data.dataset = \"{}\"", dataset.name()),
        )),
    }
}

fn require_files(key: &str, files: &[String], dataset: DataSet) -> Result<(), ConfigError> {
    if files.is_empty() {
        return Err(ConfigError::new(
            key,
            "[]",
            &format!(
                "must list at least one file for data.dataset = \"{}\"",
                dataset.name()
            ),
        ));
    }
    for path in files {
        if path.trim().is_empty() {
            return Err(ConfigError::new(
                key,
                format!("{files:?}"),
                "must not contain an empty path",
            ));
        }
    }
    Ok(())
}

/// Refuses a key that the data set kind does not use, when it is set.
fn refuse_unused(
    key: &str,
    is_set: bool,
    value: &str,
    dataset: DataSet,
) -> Result<(), ConfigError> {
    if is_set {
        return Err(ConfigError::new(
            key,
            value,
            &format!("is not used by data.dataset = \"{}\"", dataset.name()),
        ));
    }
    Ok(())
}

impl DataConfig {
    /// Checks the data section: ranges, and which keys each data set kind requires or refuses.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let dataset = self.dataset;
        let kind = format!("data.dataset = \"{}\"", dataset.name());
        for (key, value) in [
            ("data.input_dim", self.input_dim),
            ("data.teacher_width", self.teacher_width),
            ("data.classes", self.classes),
        ] {
            if value > MAX_UNITS {
                return Err(ConfigError::new(key, value, "is larger than 1048576"));
            }
        }
        for (key, value) in [
            ("data.train_size", self.train_size),
            ("data.test_size", self.test_size),
            ("data.subsample", self.subsample.unwrap_or(0)),
        ] {
            if value > MAX_EXAMPLES {
                return Err(ConfigError::new(key, value, "is larger than 10000000"));
            }
        }
        if let Some(subsample) = self.subsample {
            require_positive_count("data.subsample", subsample)?;
        }
        require_finite_in(
            "data.label_noise",
            self.label_noise,
            0.0,
            1.0,
            "must be between 0 and 1",
        )?;
        if let Some(separation) = self.cluster_separation {
            require_finite_in(
                "data.cluster_separation",
                separation,
                0.0,
                f64::MAX,
                "must be a finite number ≥ 0",
            )?;
        }
        if dataset != DataSet::GaussianMixture
            && let Some(separation) = self.cluster_separation
        {
            refuse_unused(
                "data.cluster_separation",
                true,
                &separation.to_string(),
                dataset,
            )?;
        }

        // Keys of the file-based kinds are refused everywhere else.
        let idx_keys = [
            ("data.train_images", &self.train_images),
            ("data.train_labels", &self.train_labels),
            ("data.test_images", &self.test_images),
            ("data.test_labels", &self.test_labels),
        ];
        if dataset != DataSet::Idx {
            for (key, value) in idx_keys {
                if let Some(path) = value {
                    refuse_unused(key, true, &format!("{path:?}"), dataset)?;
                }
            }
        }
        if dataset != DataSet::Cifar10 {
            for (key, files) in [
                ("data.train_files", &self.train_files),
                ("data.test_files", &self.test_files),
            ] {
                refuse_unused(key, !files.is_empty(), &format!("{files:?}"), dataset)?;
            }
        }
        if dataset != DataSet::Csv {
            for (key, value) in [
                ("data.train_path", &self.train_path),
                ("data.test_path", &self.test_path),
            ] {
                if let Some(path) = value {
                    refuse_unused(key, true, &format!("{path:?}"), dataset)?;
                }
            }
            if let Some(column) = &self.label_column {
                refuse_unused("data.label_column", true, &column.to_string(), dataset)?;
            }
            if let Some(has_header) = self.has_header {
                refuse_unused("data.has_header", true, &has_header.to_string(), dataset)?;
            }
        }

        if !dataset.is_file_based() {
            require_positive_count("data.input_dim", self.input_dim)?;
            if self.classes < 2 {
                return Err(ConfigError::new(
                    "data.classes",
                    self.classes,
                    "must be at least 2",
                ));
            }
            require_positive_count("data.train_size", self.train_size)?;
            require_positive_count("data.test_size", self.test_size)?;
            if dataset == DataSet::TeacherStudent {
                require_positive_count("data.teacher_width", self.teacher_width)?;
            }
            return Ok(());
        }

        // File-based kinds: sizes come from the files.
        if self.train_size != 0 {
            return Err(ConfigError::new(
                "data.train_size",
                self.train_size,
                &format!(
                    "is not used by {kind}: the training set is the whole file (use data.subsample to use fewer examples)"
                ),
            ));
        }
        if self.label_noise != 0.0 {
            return Err(ConfigError::new(
                "data.label_noise",
                self.label_noise,
                &format!("is only supported by the synthetic data sets, not {kind}"),
            ));
        }
        if self.teacher_width != 0 {
            refuse_unused(
                "data.teacher_width",
                true,
                &self.teacher_width.to_string(),
                dataset,
            )?;
        }
        if self.classes == 1 {
            return Err(ConfigError::new("data.classes", 1, "must be at least 2"));
        }
        match dataset {
            DataSet::Idx => {
                for (key, value) in idx_keys {
                    require_path(key, value, dataset)?;
                }
            }
            DataSet::Cifar10 => {
                require_files("data.train_files", &self.train_files, dataset)?;
                require_files("data.test_files", &self.test_files, dataset)?;
                if self.classes != 0 && self.classes != 10 {
                    return Err(ConfigError::new(
                        "data.classes",
                        self.classes,
                        "must be 10 (or absent) for data.dataset = \"cifar10\"",
                    ));
                }
                if self.input_dim != 0 && self.input_dim != 3072 {
                    return Err(ConfigError::new(
                        "data.input_dim",
                        self.input_dim,
                        "must be 3072 (or absent) for data.dataset = \"cifar10\"",
                    ));
                }
            }
            DataSet::Csv => {
                require_path("data.train_path", &self.train_path, dataset)?;
                if self.classes < 2 {
                    return Err(ConfigError::new(
                        "data.classes",
                        self.classes,
                        "must be at least 2 (labels are class ids 0..classes-1) for data.dataset = \"csv\"",
                    ));
                }
                if let Some(LabelColumn::Name(name)) = &self.label_column
                    && !self.has_header()
                {
                    return Err(ConfigError::new(
                        "data.label_column",
                        format!("{name:?}"),
                        "names a column, which needs data.has_header = true; give a 0-based index instead",
                    ));
                }
            }
            DataSet::TeacherStudent | DataSet::GaussianMixture => {}
        }
        let holds_out = dataset == DataSet::Csv && self.test_path.is_none();
        if holds_out {
            if self.test_size == 0 {
                return Err(ConfigError::new(
                    "data.test_size",
                    0,
                    "must be at least 1 for data.dataset = \"csv\" without data.test_path (rows held out of data.train_path)",
                ));
            }
        } else if self.test_size != 0 {
            return Err(ConfigError::new(
                "data.test_size",
                self.test_size,
                &format!("is not used by {kind} with a test file: the test set is the whole file"),
            ));
        }
        if self.test_path.is_some() {
            require_path("data.test_path", &self.test_path, dataset)?;
        }
        Ok(())
    }
}

impl TrialConfig {
    /// A small valid configuration (teacher–student data 8 → 3 classes, 64 training points, a
    /// ReLU network of width 16, 100 steps, a 50-step probe with two absolute radii): what tests and
    /// benchmarks start from and adjust field by field.
    pub fn example() -> TrialConfig {
        TrialConfig {
            seed: 7,
            data: DataConfig {
                teacher_width: 8,
                ..DataConfig::synthetic(DataSet::TeacherStudent, 8, 3, 64, 64)
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
                noise_form: NoiseForm::PerCoordinate,
                inverse_temperature: None,
                target_loss: Some(0.01),
                max_steps: 100,
                eval_every: 10,
                polish_tolerance: None,
                polish_max_steps: 2000,
            },
            probe: ProbeConfig {
                batch_size: None,
                steps: 50,
                learning_rate: None,
                noise_sigma: 0.01,
                noise_form: NoiseForm::PerCoordinate,
                inverse_temperature: None,
                radii: vec![0.1, 1.0],
                radius_unit: RadiusUnit::Absolute,
                replicates: 2,
                snapshots: 10,
                snapshot_evaluations: 5,
                basin_steps: 50,
                landscape_grid: 0,
                landscape_plane: LandscapePlane::Pca,
            },
            measure: MeasureConfig::default(),
        }
    }

    /// Checks every value against its allowed range; the error names the key and the value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.data.validate()?;

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
        let batch_sizes = [
            ("training.batch_size", Some(training.batch_size)),
            ("probe.batch_size", self.probe.batch_size),
        ];
        for (key, batch_size) in batch_sizes {
            let Some(batch_size) = batch_size else {
                continue;
            };
            require_positive_count(key, batch_size)?;
            if !self.data.dataset.is_file_based() && batch_size > self.data.train_size {
                return Err(ConfigError::new(
                    key,
                    batch_size,
                    "must not exceed data.train_size",
                ));
            }
            if let Some(subsample) = self.data.subsample
                && batch_size > subsample
            {
                return Err(ConfigError::new(
                    key,
                    batch_size,
                    "must not exceed data.subsample",
                ));
            }
        }
        require_finite_in(
            "training.noise_sigma",
            training.noise_sigma,
            0.0,
            f64::MAX,
            "must be a finite number ≥ 0",
        )?;
        validate_noise_form(
            "training",
            training.noise_form,
            training.inverse_temperature,
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
        if let Some(tolerance) = training.polish_tolerance {
            require_finite_positive("training.polish_tolerance", tolerance)?;
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
        validate_noise_form("probe", probe.noise_form, probe.inverse_temperature)?;
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
        if probe.landscape_grid == 1 || probe.landscape_grid > MAX_LANDSCAPE_GRID {
            return Err(ConfigError::new(
                "probe.landscape_grid",
                probe.landscape_grid,
                &format!("must be 0 (no slice) or between 2 and {MAX_LANDSCAPE_GRID}"),
            ));
        }
        if probe.landscape_grid > 0
            && probe.landscape_plane == LandscapePlane::Pca
            && probe.snapshots < 3
        {
            return Err(ConfigError::new(
                "probe.snapshots",
                probe.snapshots,
                "must be at least 3 for a landscape slice in the PCA plane of the snapshots",
            ));
        }

        let measure = &self.measure;
        if probe.radius_unit == RadiusUnit::RelativeToPredictedRms && measure.hessian_top_k == 0 {
            return Err(ConfigError::new(
                "probe.radius_unit",
                "relative_to_predicted_rms",
                "needs the Hessian the prediction comes from: set measure.hessian_top_k above 0",
            ));
        }
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
        if measure.hessian_top_k > 0 && measure.lanczos_steps < measure.hessian_top_k {
            return Err(ConfigError::new(
                "measure.lanczos_steps",
                measure.lanczos_steps,
                "must be at least measure.hessian_top_k",
            ));
        }
        if measure.lanczos_steps > 1000 {
            return Err(ConfigError::new(
                "measure.lanczos_steps",
                measure.lanczos_steps,
                "is larger than 1000",
            ));
        }
        if measure.hutchinson_probes > 10_000 {
            return Err(ConfigError::new(
                "measure.hutchinson_probes",
                measure.hutchinson_probes,
                "is larger than 10000",
            ));
        }
        Ok(())
    }

    /// The canonical JSON form: what the trial id is derived from and what a worker receives.
    pub fn to_canonical_json(&self) -> String {
        // Serializing plain structs of numbers, strings and enums cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The probe's batch size: its own, or the training one.
    pub fn probe_batch_size(&self) -> usize {
        self.probe.batch_size.unwrap_or(self.training.batch_size)
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
        TrialConfig::example()
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

        let mut config = small_config();
        config.probe.radius_unit = RadiusUnit::RelativeToPredictedRms;
        assert_eq!(config.validate(), Ok(()));
        config.measure.hessian_top_k = 0;
        assert_eq!(config.validate().unwrap_err().key, "probe.radius_unit");

        let mut config = small_config();
        config.probe.batch_size = Some(config.data.train_size + 1);
        assert_eq!(config.validate().unwrap_err().key, "probe.batch_size");
        config.probe.batch_size = Some(0);
        assert_eq!(config.validate().unwrap_err().key, "probe.batch_size");

        let mut config = small_config();
        config.probe.landscape_grid = 1;
        assert_eq!(config.validate().unwrap_err().key, "probe.landscape_grid");
        config.probe.landscape_grid = 21;
        config.probe.snapshots = 2;
        assert_eq!(config.validate().unwrap_err().key, "probe.snapshots");
        config.probe.landscape_plane = LandscapePlane::Random;
        assert_eq!(config.validate(), Ok(()));
    }

    fn file_config(dataset: DataSet) -> TrialConfig {
        let mut config = small_config();
        config.data = DataConfig::synthetic(dataset, 0, 0, 0, 0);
        config
    }

    #[test]
    fn noise_forms_check_their_temperature_and_leave_default_ids_alone() {
        let default_json = small_config().to_canonical_json();
        assert!(!default_json.contains("noise_form"), "{default_json}");

        let mut config = small_config();
        config.probe.noise_form = NoiseForm::Langevin;
        let error = config.validate().unwrap_err();
        assert_eq!(error.key, "probe.noise_form");
        assert!(
            error.to_string().contains("probe.inverse_temperature"),
            "{error}"
        );
        config.probe.inverse_temperature = Some(-1.0);
        assert_eq!(
            config.validate().unwrap_err().key,
            "probe.inverse_temperature"
        );
        config.probe.inverse_temperature = Some(1e4);
        config.validate().expect("Langevin with β > 0");
        assert!(
            config
                .to_canonical_json()
                .contains(r#""noise_form":"langevin""#)
        );

        let mut config = small_config();
        config.training.inverse_temperature = Some(1e4);
        let error = config.validate().unwrap_err();
        assert_eq!(error.key, "training.inverse_temperature");
        assert!(error.to_string().contains("langevin"), "{error}");

        let parsed: ProbeConfig = serde_json::from_str(
            r#"{"steps":1,"noise_sigma":0.1,"noise_form":"per_layer","radii":[1.0],"replicates":1}"#,
        )
        .expect("parses");
        assert_eq!(parsed.noise_form, NoiseForm::PerLayer);
    }

    #[test]
    fn the_canonical_json_of_a_synthetic_config_has_no_unused_keys() {
        let json = small_config().to_canonical_json();
        assert!(
            json.starts_with(
                r#"{"seed":7,"data":{"dataset":"teacher_student","input_dim":8,"classes":3,"train_size":64,"test_size":64,"teacher_width":8,"label_noise":0.0},"#
            ),
            "{json}"
        );
    }

    #[test]
    fn file_data_sets_require_their_paths_and_refuse_generated_sizes() {
        let mut config = file_config(DataSet::Idx);
        config.data.train_images = Some("/data/train-images".into());
        config.data.train_labels = Some("/data/train-labels".into());
        config.data.test_images = Some("/data/test-images".into());
        let error = config.validate().unwrap_err();
        assert_eq!(error.key, "data.test_labels");
        assert_eq!(
            error.to_string(),
            "`data.test_labels` = (missing) is invalid: is required for data.dataset = \"idx\""
        );
        config.data.test_labels = Some("/data/test-labels".into());
        config.validate().expect("valid");
        let parsed: TrialConfig =
            serde_json::from_str(&config.to_canonical_json()).expect("parses");
        assert_eq!(parsed, config);

        config.data.train_size = 1000;
        assert_eq!(config.validate().unwrap_err().key, "data.train_size");
        config.data.train_size = 0;
        config.data.train_path = Some("x.csv".into());
        let error = config.validate().unwrap_err();
        assert_eq!(error.key, "data.train_path");
        assert!(error.reason.contains("not used by data.dataset = \"idx\""));

        let mut config = file_config(DataSet::Cifar10);
        assert_eq!(config.validate().unwrap_err().key, "data.train_files");
        config.data.train_files = vec!["data_batch_1.bin".into()];
        config.data.test_files = vec!["test_batch.bin".into()];
        config.validate().expect("valid");
        config.data.classes = 100;
        assert_eq!(config.validate().unwrap_err().key, "data.classes");

        let mut config = file_config(DataSet::Csv);
        config.data.train_path = Some("train.csv".into());
        assert_eq!(config.validate().unwrap_err().key, "data.classes");
        config.data.classes = 3;
        // Without a test file, rows are held out of the training file.
        assert_eq!(config.validate().unwrap_err().key, "data.test_size");
        config.data.test_size = 10;
        config.validate().expect("valid");
        config.data.test_path = Some("test.csv".into());
        assert_eq!(config.validate().unwrap_err().key, "data.test_size");
        config.data.test_size = 0;
        config.validate().expect("valid");
        config.data.has_header = Some(false);
        config.data.label_column = Some(LabelColumn::Name("label".into()));
        assert_eq!(config.validate().unwrap_err().key, "data.label_column");
        config.data.label_column = Some(LabelColumn::Index(0));
        config.validate().expect("valid");
        config.data.subsample = Some(8);
        assert_eq!(config.validate().unwrap_err().key, "training.batch_size");
    }

    #[test]
    fn the_gaussian_mixture_needs_no_teacher_and_checks_its_separation() {
        let mut config = small_config();
        config.data.dataset = DataSet::GaussianMixture;
        config.data.teacher_width = 0;
        config.validate().expect("valid");
        config.data.cluster_separation = Some(-1.0);
        assert_eq!(
            config.validate().unwrap_err().key,
            "data.cluster_separation"
        );
        config.data.cluster_separation = Some(2.0);
        config.validate().expect("valid");
        config.data.dataset = DataSet::TeacherStudent;
        config.data.teacher_width = 4;
        assert_eq!(
            config.validate().unwrap_err().key,
            "data.cluster_separation"
        );
    }

    #[test]
    fn a_label_column_is_an_index_or_a_name() {
        #[derive(Deserialize)]
        struct Holder {
            column: LabelColumn,
        }
        let index: Holder = serde_json::from_str(r#"{"column": 4}"#).expect("parses");
        assert_eq!(index.column, LabelColumn::Index(4));
        let name: Holder = serde_json::from_str(r#"{"column": "label"}"#).expect("parses");
        assert_eq!(name.column, LabelColumn::Name("label".into()));
    }
}
