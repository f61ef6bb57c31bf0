//! The dashboard: a list's numbers ("In Partnership" unless another is chosen), sign-ups and unsubscribes by week, the next and
//! the latest issues, and the sign-ups the budgets turned away.

use axum::{
    Extension,
    extract::State,
    response::{IntoResponse, Response},
};
use chrono::Utc;
use serde::Serialize;

use super::{AdminFrame, Staff, chart, lists::ChosenList};
use crate::{
    audience::{budgets::Refusals, subscription::SubscriptionStatus},
    issues::IssueStatus,
    time::uk_date_time,
    web::{AppError, AppState, pages::render},
};

#[derive(Serialize)]
struct IssueLine {
    id: uuid::Uuid,
    subject: String,
    status: &'static str,
    when: Option<String>,
    recipients: i64,
    sent: i64,
    failed: i64,
    pending: i64,
    unsubscribed: i64,
    /// Hard bounces and complaints as a share of the copies sent, e.g. "1.2%".
    bounce_rate: String,
    complaint_rate: String,
    /// Why it paused itself, while paused.
    paused_reason: Option<String>,
}

/// `part` of `sent` as a percentage, to one decimal place (two below 1%).
fn rate(part: i64, sent: i64) -> String {
    if sent == 0 {
        return "–".into();
    }
    let percent = part as f64 * 100.0 / sent as f64;
    if percent > 0.0 && percent < 1.0 {
        format!("{percent:.2}%")
    } else {
        format!("{percent:.1}%")
    }
}

#[derive(Serialize)]
struct DashboardView {
    #[serde(flatten)]
    frame: AdminFrame,
    /// The list whose numbers it shows.
    list: crate::store::MailingList,
    lists: Vec<crate::store::MailingList>,
    chart: chart::Chart,
    counts: Vec<(SubscriptionStatus, i64)>,
    next: Option<IssueLine>,
    recent: Vec<IssueLine>,
    /// Sign-ups turned away by the budgets on confirmation mails in the last 24 hours.
    refused: Refusals,
}

/// How many issues the dashboard shows.
const RECENT_ISSUES: usize = 5;

pub(super) async fn dashboard(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    ChosenList { list, lists }: ChosenList,
) -> Result<Response, AppError> {
    let counts = state.store.subscriber_counts(list.id).await?.by_status();
    let today = Utc::now().date_naive();
    let days = state
        .store
        .daily_signups_and_unsubscribes(
            list.id,
            chart::first_monday(today)
                .and_hms_opt(0, 0, 0)
                .expect("midnight exists")
                .and_utc(),
        )
        .await?;
    let chart = chart::weekly(&days, today);
    let mut issues = state.store.issues().await?;
    issues.retain(|issue| issue.list_slug == list.slug);
    let line = |issue: &crate::issues::Issue, stats: crate::store::IssueStats| IssueLine {
        id: issue.id,
        subject: issue.subject.clone(),
        status: issue.status.as_str(),
        when: issue.finished_at.or(issue.send_at).map(uk_date_time),
        recipients: stats.recipients,
        sent: stats.sent,
        failed: stats.failed,
        pending: stats.pending,
        unsubscribed: stats.unsubscribed,
        bounce_rate: rate(stats.hard_bounces, stats.sent),
        complaint_rate: rate(stats.complaints, stats.sent),
        paused_reason: issue.paused_reason.clone(),
    };
    let next = match issues
        .iter()
        .filter(|i| i.status == IssueStatus::Scheduled)
        .min_by_key(|i| i.send_at)
    {
        Some(issue) => Some(line(issue, state.store.issue_stats(issue.id).await?)),
        None => None,
    };
    let mut recent = Vec::new();
    for issue in issues.iter().take(RECENT_ISSUES) {
        recent.push(line(issue, state.store.issue_stats(issue.id).await?));
    }
    let refused = state
        .store
        .budget_refusals(Utc::now() - chrono::TimeDelta::hours(24))
        .await?;
    let view = DashboardView {
        frame: AdminFrame::of(&staff),
        list,
        lists,
        chart,
        counts,
        next,
        recent,
        refused,
    };
    Ok(render("pages/admin_dashboard.html", "Dashboard", &view).into_response())
}
