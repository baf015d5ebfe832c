use super::*;

/// A sweep of tiny networks; its settings are shared with the other unit tests' sweep.
const SWEEP: &str = concat!(
    "\nname = \"demo\"\n",
    include_str!("testdata/tiny_settings.toml"),
    "[grid]\nmodel.width = [8, 16, 32]\nseed = { start = 0, stop = 3 }\n"
);

fn plan(text: &str) -> Result<SweepPlan, SweepError> {
    SweepPlan::from_toml("demo.toml", text, DEFAULT_MAX_TRIALS)
}

fn error_text(text: &str) -> String {
    match plan(text) {
        Ok(plan) => panic!(
            "the sweep must be refused, but it expanded to {} trials",
            plan.trial_count() as usize
        ),
        Err(error) => error.to_string(),
    }
}

#[test]
fn the_grid_expands_to_every_combination_in_a_stable_order() {
    let plan = plan(SWEEP).expect("valid sweep");
    assert_eq!(plan.trial_count() as usize, 12);
    let trials = plan.all_trials().expect("trials");
    let points: Vec<(usize, u64)> = trials
        .iter()
        .map(|trial| (trial.config.model.width, trial.config.seed))
        .collect();
    assert_eq!(&points[..5], &[(8, 0), (8, 1), (8, 2), (8, 3), (16, 0)]);
    let mut ids: Vec<&str> = trials.iter().map(|trial| trial.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 12, "trial ids are distinct");
}

#[test]
fn trial_ids_are_stable_across_runs_and_formatting() {
    let first = plan(SWEEP).expect("valid");
    let reformatted = SWEEP.replace(
        "learning_rate = 0.1",
        "learning_rate   =   0.1   # same value",
    );
    let second = plan(&reformatted).expect("valid");
    assert_eq!(first.sweep.spec_hash, second.sweep.spec_hash);
    let first = first.all_trials().expect("trials");
    for (a, b) in first.iter().zip(second.trials()) {
        assert_eq!(a.id, b.expect("trial").id);
    }
    // A pinned id: a change in canonical form or hashing would silently fork every stored sweep.
    assert_eq!(
        first[0].id,
        super::expand::trial_id("demo", &first[0].config_json)
    );
    assert_eq!(first[0].id.len(), 32);
}

#[test]
fn a_changed_value_changes_the_hash_and_the_ids() {
    let first = plan(SWEEP).expect("valid");
    let changed =
        plan(&SWEEP.replace("learning_rate = 0.1", "learning_rate = 0.2")).expect("valid");
    assert_ne!(first.sweep.spec_hash, changed.sweep.spec_hash);
    assert_ne!(
        first.trial_at(0).expect("trial").id,
        changed.trial_at(0).expect("trial").id
    );
}

#[test]
fn ranges_and_log_spaced_ranges_expand_as_documented() {
    let text = SWEEP.replace(
        "model.width = [8, 16, 32]",
        "model.width = { start = 16, stop = 256, num = 5, spacing = \"log\" }\ntraining.learning_rate = { start = 0.1, stop = 0.3, step = 0.1 }\ntraining.noise_sigma = { start = 0.001, stop = 0.1, num = 3, spacing = \"log\" }",
    );
    let plan = plan(&text).expect("valid");
    let axis = |path: &str| plan.sweep.axes[path].values.clone();
    let integers: Vec<i64> = axis("model.width")
        .iter()
        .filter_map(|v| v.as_integer())
        .collect();
    assert_eq!(integers, vec![16, 32, 64, 128, 256]);
    let rates: Vec<f64> = axis("training.learning_rate")
        .iter()
        .filter_map(|v| v.as_float())
        .collect();
    assert_eq!(rates, vec![0.1, 0.2, 0.3]);
    let sigmas: Vec<f64> = axis("training.noise_sigma")
        .iter()
        .filter_map(|v| v.as_float())
        .collect();
    assert_eq!(sigmas, vec![0.001, 0.01, 0.1]);
    let seeds: Vec<i64> = axis("seed").iter().filter_map(|v| v.as_integer()).collect();
    assert_eq!(seeds, vec![0, 1, 2, 3]);
    assert_eq!(plan.trial_count() as usize, 5 * 3 * 3 * 4);
}

#[test]
fn unknown_keys_are_refused_with_their_name() {
    let message = error_text(&SWEEP.replace("width = 8\n", "width = 8\nwidht = 9\n"));
    assert!(
        message.contains("demo.toml") && message.contains("widht") && message.contains("[model]"),
        "{message}"
    );

    let message = error_text(&format!("colour = 1\n{SWEEP}"));
    assert!(message.contains("unknown key `colour`"), "{message}");

    let message = error_text(&SWEEP.replace("seed = {", "model.colour = [1, 2]\nseed = {"));
    assert!(message.contains("colour"), "{message}");
}

#[test]
fn wrong_types_are_refused_with_key_and_value() {
    let message = error_text(&SWEEP.replace("depth = 2\n", "depth = \"deep\"\n"));
    assert!(
        message.contains("[model]") && message.contains("deep"),
        "{message}"
    );

    let message = error_text(&SWEEP.replace("name = \"demo\"", "name = 3"));
    assert!(message.contains("`name` = 3"), "{message}");
    // A sweep's name is a directory of checkpoint files: "..", a path, are refused.
    for name in ["..", "a/b"] {
        let message = error_text(&SWEEP.replace("name = \"demo\"", &format!("name = \"{name}\"")));
        assert!(message.contains("`name`"), "{message}");
    }

    let message = error_text(&SWEEP.replace("[8, 16, 32]", "[8, [16]]"));
    assert!(message.contains("grid.model.width"), "{message}");
}

#[test]
fn out_of_range_values_are_refused_with_key_and_value() {
    let message = error_text(&SWEEP.replace("[8, 16, 32]", "[8, 0]"));
    assert!(message.contains("`model.width` = 0"), "{message}");
    assert!(
        message.contains("model.width = 0"),
        "names the grid point: {message}"
    );

    let message = error_text(&SWEEP.replace("learning_rate = 0.1", "learning_rate = -0.1"));
    assert!(
        message.contains("`training.learning_rate` = -0.1"),
        "{message}"
    );

    let message = error_text(&SWEEP.replace("learning_rate = 0.1", "learning_rate = nan"));
    assert!(
        message.contains("`training.learning_rate` = NaN"),
        "{message}"
    );

    let message = error_text(&SWEEP.replace(
        "seed = { start = 0, stop = 3 }",
        "training.learning_rate = [0.1, inf]",
    ));
    assert!(
        message.contains("grid.training.learning_rate") && message.contains("inf"),
        "{message}"
    );
}

#[test]
fn empty_and_oversized_grids_are_refused() {
    let message = error_text(&SWEEP.replace("[8, 16, 32]", "[]"));
    assert!(
        message.contains("grid.model.width") && message.contains("at least one value"),
        "{message}"
    );

    let without_grid = SWEEP.split("[grid]").next().unwrap_or_default().to_string();
    let message = error_text(&without_grid);
    assert!(
        message.contains("`grid`") && message.contains("no axes"),
        "{message}"
    );

    let huge = SWEEP.replace(
        "seed = { start = 0, stop = 3 }",
        "seed = { start = 0, stop = 999999 }\ntraining.learning_rate = { start = 0.1, stop = 0.2, num = 10 }",
    );
    let message = error_text(&huge);
    assert!(
        message.contains("30000000 trials") && message.contains("1000000"),
        "{message}"
    );

    let capped =
        SweepPlan::from_toml("demo.toml", SWEEP, 5).map(|plan| plan.trial_count() as usize);
    assert!(
        matches!(
            capped,
            Err(SweepError::TooManyTrials {
                count: 12,
                limit: 5,
                ..
            })
        ),
        "{capped:?}"
    );
}

#[test]
fn axes_must_name_scalars_of_the_configuration() {
    let message = error_text(&SWEEP.replace("seed = {", "probe.radii = [0.1, 0.2]\nseed = {"));
    assert!(
        message.contains("grid.probe.radii") && message.contains("only scalars"),
        "{message}"
    );

    let message = error_text(&SWEEP.replace("seed = {", "optimizer.kind = [1, 2]\nseed = {"));
    assert!(message.contains("grid.optimizer.kind"), "{message}");
}

#[test]
fn syntax_errors_name_the_file() {
    let message = error_text("name = \"demo\"\n[model\n");
    assert!(message.starts_with("demo.toml:"), "{message}");
}

#[test]
fn the_shipped_example_sweeps_are_valid() {
    for path in [
        "../examples/width-sweep.toml",
        "../examples/noise-by-width.toml",
        "../examples/mnist-neyshabur-2019.toml",
        "../examples/landscape-slice.toml",
    ] {
        let text = std::fs::read_to_string(path).expect("example exists");
        let plan = SweepPlan::from_toml(path, &text, DEFAULT_MAX_TRIALS)
            .unwrap_or_else(|error| panic!("{error}"));
        assert!(plan.trial_count() > 0);
    }
}
