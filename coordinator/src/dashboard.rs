//! A small web dashboard in the coordinator's process, on its own port: the sweeps with their
//! progress, a page per sweep with the per-width table, the analysis and the figure (refreshed
//! while the sweep runs), and Prometheus metrics on `/metrics`.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::metrics::Metrics;
use crate::report::{
    SweepReport, analysis_table, bounds_plot_svg, gap_interval, landscape_svg, msd_svg, number,
    stay_vs_noise_svg, summary_cell, survival_svg, table_columns,
};
use crate::store::{Store, StoreError};

/// Seconds between reloads of a page while something is still running.
const REFRESH_SECONDS: u32 = 5;

/// Trials (total, done, failed, diverged) of a sweep when its report was built.
type ReportKey = (u64, u64, u64, u64);

/// Per sweep, the last report and the counts it was built at.
type ReportCache = HashMap<String, (ReportKey, Arc<SweepReport>)>;

#[derive(Clone)]
struct Dashboard {
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    /// The last report per sweep. A report changes only when a trial finishes, so a page whose
    /// sweep's counts have not moved reuses it instead of re-reading and re-fitting every trial
    /// (a page reloads every few seconds while its sweep runs).
    reports: Arc<Mutex<ReportCache>>,
}

pub fn router(store: Arc<dyn Store>, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/", get(sweeps_page))
        .route("/sweeps/{name}", get(sweep_page))
        .route("/metrics", get(metrics_text))
        .with_state(Dashboard {
            store,
            metrics,
            reports: Arc::default(),
        })
}

/// The sweep's report: the cached one while its counts are unchanged, else a new one.
async fn current_report(dashboard: &Dashboard, name: &str) -> Result<Arc<SweepReport>, StoreError> {
    let counts = dashboard.store.sweep_counts(Some(name)).await?;
    let key = counts
        .first()
        .map(|counts| (counts.total, counts.done, counts.failed, counts.diverged));
    let cached = |reports: &ReportCache| {
        reports
            .get(name)
            .filter(|(built_at, _)| Some(*built_at) == key)
            .map(|(_, report)| report.clone())
    };
    // A poisoned lock only means another page panicked mid-insert; the map is still usable.
    if let Some(report) = cached(&dashboard.reports.lock().unwrap_or_else(|e| e.into_inner())) {
        return Ok(report);
    }
    let report = Arc::new(SweepReport::load(dashboard.store.as_ref(), name, false).await?);
    if let Some(key) = key {
        dashboard
            .reports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), (key, report.clone()));
    }
    Ok(report)
}

fn failure(error: StoreError) -> Response {
    let status = match error {
        StoreError::UnknownSweep(_) => StatusCode::NOT_FOUND,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, error.to_string()).into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(title: &str, refresh: bool, body: &str) -> Html<String> {
    let refresh = if refresh {
        format!("<meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">")
    } else {
        String::new()
    };
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\">{refresh}<title>{}</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{padding:.25em .75em;border-bottom:1px solid #ddd;text-align:right}}\
         th{{background:#f4f4f4}}td:first-child,th:first-child{{text-align:left}}\
         progress{{width:12em}}pre{{background:#f8f8f8;padding:1em}}</style></head>\
         <body>{body}</body></html>",
        escape(title)
    ))
}

async fn sweeps_page(State(dashboard): State<Dashboard>) -> Response {
    let counts = match dashboard.store.sweep_counts(None).await {
        Ok(counts) => counts,
        Err(error) => return failure(error),
    };
    let mut body = String::from(
        "<h1>Sweeps</h1><table id=\"sweeps\"><tr><th>sweep</th><th>progress</th><th>done</th>\
         <th>running</th><th>pending</th><th>failed</th><th>diverged</th></tr>",
    );
    for sweep in &counts {
        let name = escape(&sweep.sweep);
        let _ = write!(
            body,
            "<tr><td><a href=\"/sweeps/{name}\">{name}</a></td>\
             <td><progress max=\"{}\" value=\"{}\"></progress></td>\
             <td>{}/{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            sweep.total.max(1),
            sweep.finished(),
            sweep.done,
            sweep.total,
            sweep.leased,
            sweep.pending,
            sweep.failed,
            sweep.diverged
        );
    }
    body.push_str("</table><p><a href=\"/metrics\">metrics</a></p>");
    let running = counts.iter().any(|sweep| !sweep.is_complete());
    page("Sweeps", running, &body).into_response()
}

async fn sweep_page(State(dashboard): State<Dashboard>, Path(name): Path<String>) -> Response {
    let report = match current_report(&dashboard, &name).await {
        Ok(report) => report,
        Err(error) => return failure(error),
    };
    let title = format!("Sweep {}", report.sweep);
    let mut body = format!(
        "<p><a href=\"/\">all sweeps</a></p><h1>{}</h1><p id=\"progress\">{} of {} trials done, \
         {} failed, {} diverged</p><table id=\"widths\"><tr><th>width</th><th>done</th>",
        escape(&title),
        report.done,
        report.total,
        report.failed,
        report.diverged
    );
    for (header, _) in table_columns() {
        let _ = write!(body, "<th>{}</th>", escape(header));
    }
    body.push_str("<th>err gap 95% CI</th></tr>");
    for width in &report.widths {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}/{}</td>",
            width.width, width.summary.done, width.summary.trials
        );
        for (_, measurement) in table_columns() {
            let cell = summary_cell(width.summary.measurement(measurement));
            let _ = write!(body, "<td>{cell}</td>");
        }
        let interval = gap_interval(width)
            .map(|interval| format!("[{}, {}]", number(interval.low), number(interval.high)))
            .unwrap_or_else(|| "–".to_string());
        let _ = write!(body, "<td>{interval}</td></tr>");
    }
    body.push_str("</table>");
    match bounds_plot_svg(&report) {
        Ok(svg) => {
            let _ = write!(
                body,
                "<h2>Bounds and gap vs width</h2><figure id=\"bounds-vs-width\">{svg}</figure>"
            );
        }
        Err(error) => {
            let _ = write!(
                body,
                "<p>the figure could not be drawn: {}</p>",
                escape(&error)
            );
        }
    }
    if let Some(Ok(svg)) = survival_svg(&report) {
        let _ = write!(
            body,
            "<h2>Survival in the first probe ball</h2><figure id=\"survival\">{svg}</figure>"
        );
    }
    if let Some(Ok(svg)) = stay_vs_noise_svg(&report) {
        let _ = write!(
            body,
            "<h2>Stay probability vs probe noise</h2><figure id=\"stay-vs-noise\">{svg}</figure>"
        );
    }
    if let Some(Ok(svg)) = msd_svg(&report) {
        let _ = write!(
            body,
            "<h2>Mean-squared displacement in the probe</h2><figure id=\"msd\">{svg}</figure>"
        );
    }
    for slice in &report.landscapes {
        if let Ok(svg) = landscape_svg(&report.sweep, slice) {
            let _ = write!(
                body,
                "<h2>Loss landscape, width {}</h2><figure id=\"landscape-{}\">{svg}</figure>",
                slice.width, slice.width
            );
        }
    }
    if !report.analysis.is_empty() {
        let _ = write!(
            body,
            "<h2>Scaling and rank correlation</h2><pre id=\"analysis\">{}</pre>",
            escape(&analysis_table(&report))
        );
    }
    let running = report.done + report.failed < report.total;
    page(&title, running, &body).into_response()
}

async fn metrics_text(State(dashboard): State<Dashboard>) -> Response {
    match dashboard.store.sweep_counts(None).await {
        Ok(counts) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            dashboard.metrics.render(&counts),
        )
            .into_response(),
        Err(error) => failure(error),
    }
}
