//! How a running trial reports progress and learns that it should stop.

use crate::measurements::Phase;

/// Steps between two progress reports (and cancellation checks) in training and the probe.
pub const PROGRESS_INTERVAL: u64 = 50;

/// Receives progress from a running trial; called from the trial's own thread.
pub trait TrialObserver: Sync {
    /// The trial is in `phase` and has completed `step` steps of it.
    fn progress(&self, phase: Phase, step: u64);
    /// Whether the trial should stop; checked at every progress report.
    fn cancelled(&self) -> bool;
}

/// An observer that ignores progress and never cancels.
#[derive(Debug, Clone, Copy, Default)]
pub struct SilentObserver;

impl TrialObserver for SilentObserver {
    fn progress(&self, _phase: Phase, _step: u64) {}

    fn cancelled(&self) -> bool {
        false
    }
}

/// The trial was cancelled by its observer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

/// Reports progress and turns a cancellation request into an error.
pub fn checkpoint(observer: &dyn TrialObserver, phase: Phase, step: u64) -> Result<(), Cancelled> {
    observer.progress(phase, step);
    if observer.cancelled() {
        return Err(Cancelled);
    }
    Ok(())
}
