//! What an operator watches: Prometheus metrics, served at `GET /metrics` (see
//! `web/metrics.rs` for who may read them).
//!
//! Two kinds. What this process did is counted here as it happens: HTTP requests by
//! route, status and time taken; copies by outcome; the relay's answer times; database
//! pool use. What the database holds is read from it at each scrape: sign-ups,
//! confirmations and unsubscribes (the consent ledger), bounces and complaints by kind,
//! subscriptions, the queues, and each sending issue's progress. Those are the same on
//! every instance that shares the database (sum the first kind across instances, take
//! the `max` of the second), and they include what other processes did: a bounce taken
//! by `newsletter bounces ingest`, an import from the command line.

use axum::http::Method;
use chrono::{DateTime, Utc};
use prometheus_client::{
    encoding::{EncodeLabelSet, text},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

use crate::store::{
    SendOutcome,
    metrics::{MetricsSnapshot, PoolUse},
};

/// The content type of what `render` writes (OpenMetrics text, which Prometheus reads).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    /// The route's pattern (`/api/v1/issues/{id}`), never the path a client sent.
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CopyLabels {
    /// `outbox` (single mails: confirmations, test copies) or `deliveries` (issues).
    queue: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RelayLabels {
    /// `accepted`, `deferred` (a 4xx answer or a network fault) or `refused` (5xx).
    result: &'static str,
}

const QUEUES: [&str; 2] = ["outbox", "deliveries"];
const OUTCOMES: [&str; 5] = ["sent", "retry", "failed", "skipped", "suppressed"];
const RESULTS: [&str; 3] = ["accepted", "deferred", "refused"];

/// This process's counters, cheap to update from any task.
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_seconds: Family<RouteLabels, Histogram>,
    copies: Family<CopyLabels, Counter>,
    relay_seconds: Family<RelayLabels, Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// What a relay's answer was, for the histogram of answer times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayResult {
    Accepted,
    Deferred,
    Refused,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("newsletter");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered by this process, by route and status",
            http_requests.clone(),
        );
        // 1 ms to about 16 s.
        let http_seconds = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 15))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its answer, by route",
            http_seconds.clone(),
        );
        let copies = Family::<CopyLabels, Counter>::default();
        registry.register(
            "copies",
            "Mails this process has tried, by queue and outcome (sent, retry, failed, skipped, suppressed)",
            copies.clone(),
        );
        // 1 ms to about 32 s: a relay may take its time (SMTP_TIMEOUT_SECONDS).
        let relay_seconds = Family::<RelayLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 16))
        });
        registry.register(
            "smtp_send_duration_seconds",
            "Time the relay took to answer a message, by its answer",
            relay_seconds.clone(),
        );
        // Every series there will be starts at 0, so that a rate is right from the start.
        for queue in QUEUES {
            for outcome in OUTCOMES {
                drop(copies.get_or_create(&CopyLabels { queue, outcome }));
            }
        }
        for result in RESULTS {
            drop(relay_seconds.get_or_create(&RelayLabels { result }));
        }
        Self {
            registry,
            http_requests,
            http_seconds,
            copies,
            relay_seconds,
        }
    }

    /// One answered HTTP request. `route` is the matched pattern (or `(no route)`).
    pub fn http_request(&self, method: &Method, route: &str, status: u16, seconds: f64) {
        let method = method_label(method);
        self.http_requests
            .get_or_create(&HttpLabels {
                method,
                route: route.to_owned(),
                status,
            })
            .inc();
        self.http_seconds
            .get_or_create(&RouteLabels {
                method,
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    /// The outcome of one copy from one queue.
    pub fn copy(&self, queue: &'static str, outcome: &SendOutcome) {
        let outcome = match outcome {
            SendOutcome::Sent { .. } => OUTCOMES[0],
            SendOutcome::Retry { .. } => OUTCOMES[1],
            SendOutcome::Failed { .. } => OUTCOMES[2],
            SendOutcome::Skipped => OUTCOMES[3],
            SendOutcome::Suppressed => OUTCOMES[4],
        };
        self.copies
            .get_or_create(&CopyLabels { queue, outcome })
            .inc();
    }

    /// How long the relay took to answer one message.
    pub fn relay_answer(&self, result: RelayResult, seconds: f64) {
        let result = match result {
            RelayResult::Accepted => RESULTS[0],
            RelayResult::Deferred => RESULTS[1],
            RelayResult::Refused => RESULTS[2],
        };
        self.relay_seconds
            .get_or_create(&RelayLabels { result })
            .observe(seconds);
    }

    /// Everything, as OpenMetrics text: this process's counters, its pools, and the
    /// database's numbers (`None`: the database did not answer, which
    /// `newsletter_database_up` says).
    pub fn render(
        &self,
        pools: &[PoolUse],
        snapshot: Option<&MetricsSnapshot>,
        now: DateTime<Utc>,
    ) -> String {
        let mut out = String::new();
        text::encode_registry(&mut out, &self.registry).expect("writing to a String");
        let database = database_registry(pools, snapshot, now);
        text::encode_registry(&mut out, &database).expect("writing to a String");
        text::encode_eof(&mut out).expect("writing to a String");
        out
    }
}

/// Methods as labels: the standard ones by name, anything else (a bot's invention) as
/// one value, so no client can make new series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

type Labels = Vec<(&'static str, String)>;

/// A family of gauges, registered, to fill in.
fn gauges(registry: &mut Registry, name: &str, help: &str) -> Family<Labels, Gauge> {
    let family = Family::<Labels, Gauge>::default();
    registry.register(name, help, family.clone());
    family
}

/// A family of counters whose totals are read from the database.
fn totals(registry: &mut Registry, name: &str, help: &str) -> Family<Labels, Counter> {
    let family = Family::<Labels, Counter>::default();
    registry.register(name, help, family.clone());
    family
}

fn database_registry(
    pools: &[PoolUse],
    snapshot: Option<&MetricsSnapshot>,
    now: DateTime<Utc>,
) -> Registry {
    let mut registry = Registry::with_prefix("newsletter");
    let pool = gauges(
        &mut registry,
        "db_pool_connections",
        "This process's database connections, by pool and state (in_use, idle, max)",
    );
    for p in pools {
        let set = |state: &str, n: u32| {
            pool.get_or_create(&vec![
                ("pool", p.pool.to_owned()),
                ("state", state.to_owned()),
            ])
            .set(i64::from(n));
        };
        set("in_use", p.open.saturating_sub(p.idle));
        set("idle", p.idle);
        set("max", p.max);
    }
    let up = Gauge::<i64>::default();
    up.set(i64::from(snapshot.is_some()));
    registry.register(
        "database_up",
        "1 if the database answered this scrape's questions, else 0",
        up,
    );
    let Some(snapshot) = snapshot else {
        return registry;
    };
    let ledger = totals(
        &mut registry,
        "ledger_events",
        "Consent ledger events in the database, by kind (signup, confirm, unsubscribe...) and method (form, one-click...)",
    );
    for (kind, method, n) in &snapshot.ledger {
        ledger
            .get_or_create(&vec![("kind", kind.clone()), ("method", method.clone())])
            .inc_by(count(*n));
    }
    let returns = totals(
        &mut registry,
        "returns",
        "Messages that came back (bounces, complaints, auto-replies...), by kind",
    );
    for (kind, n) in &snapshot.returns {
        returns
            .get_or_create(&vec![("kind", kind.clone())])
            .inc_by(count(*n));
    }
    let subscriptions = gauges(
        &mut registry,
        "subscriptions",
        "Subscriptions in the database, by list and status",
    );
    for (list, status, n) in &snapshot.subscriptions {
        subscriptions
            .get_or_create(&vec![("list", list.clone()), ("status", status.clone())])
            .set(*n);
    }
    let depth = gauges(
        &mut registry,
        "queue_rows",
        "Rows in the mail queues: due (waiting to be sent now), later (a retry's back-off) and in_flight (claimed by a worker)",
    );
    let oldest = gauges(
        &mut registry,
        "queue_oldest_due_seconds",
        "How long the longest-waiting due row has waited (0: none waits)",
    );
    for q in &snapshot.queues {
        for (state, n) in [
            ("due", q.due),
            ("later", q.later),
            ("in_flight", q.in_flight),
        ] {
            depth
                .get_or_create(&vec![
                    ("queue", q.queue.to_owned()),
                    ("state", state.to_owned()),
                ])
                .set(n);
        }
        let waited = q
            .oldest_due
            .map_or(0, |due| (now - due).num_seconds().max(0));
        oldest
            .get_or_create(&vec![("queue", q.queue.to_owned())])
            .set(waited);
    }
    let issues = gauges(
        &mut registry,
        "issue_copies",
        "Copies of each issue that is sending or paused, by the copy's status",
    );
    for issue in &snapshot.issues {
        for (status, n) in &issue.copies {
            issues
                .get_or_create(&vec![
                    ("issue", issue.number.to_string()),
                    ("issue_status", issue.status.clone()),
                    ("status", status.clone()),
                ])
                .set(*n);
        }
    }
    registry
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[cfg(test)]
mod tests;
