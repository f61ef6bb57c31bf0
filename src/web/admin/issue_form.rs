//! The editor's form: the issue's fields, its list, and its segment (which part of the
//! list it goes to: a checkbox per locality, organisation given or not, signed up
//! before or on or after a day); and how many people it would reach now, which the
//! editor's script asks for as the fields change (`GET /admin/reach`, with the same
//! fields).

use axum::{
    Json,
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chrono::NaiveDate;
use serde::Serialize;

use crate::{
    audience::{
        segment::{Condition, DayOperator, Presence, Segment, SetOperator},
        subscriber::Locality,
    },
    fields::FieldError,
    issues::{Issue, IssueContent},
    store::DEFAULT_LIST,
    web::issue_actions::ActionError,
    web::{AppError, AppState, issue_actions},
};

/// The editor's fields, as typed.
#[derive(Serialize, Default, Clone)]
pub(super) struct IssueForm {
    pub subject: String,
    pub preheader: String,
    pub body_markdown: String,
    pub template: String,
    /// The slug of the list it goes to.
    pub list: String,
    pub segment: SegmentForm,
}

impl IssueForm {
    pub fn of(issue: &Issue) -> Self {
        IssueForm {
            subject: issue.subject.clone(),
            preheader: issue.preheader.clone(),
            body_markdown: issue.body_markdown.clone(),
            template: issue.template.clone(),
            list: issue.list_slug.clone(),
            segment: SegmentForm::of(issue.segment.as_ref()),
        }
    }

    /// The fields from the form's pairs: the segment's localities come once per tick.
    pub fn read(pairs: &[(String, String)]) -> Self {
        let field = |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        IssueForm {
            subject: field("subject"),
            preheader: field("preheader"),
            body_markdown: field("body_markdown"),
            template: field("template"),
            list: field("list"),
            segment: SegmentForm::read(pairs),
        }
    }

    pub fn content(&self) -> Result<IssueContent, ActionError> {
        let segment = self
            .segment
            .segment()
            .map_err(|problem| ActionError::Invalid(vec![problem]))?;
        Ok(IssueContent {
            subject: Some(self.subject.clone()),
            preheader: Some(self.preheader.clone()),
            body_markdown: Some(self.body_markdown.clone()),
            template: Some(self.template.clone()),
            segment: Some(segment),
            list_id: None,
        })
    }

    /// The list chosen; none (a form without the choice) leaves it as it is.
    pub fn list(&self) -> Option<&str> {
        Some(self.list.as_str()).filter(|slug| !slug.is_empty())
    }
}

/// Every list, to choose from: (slug, name).
pub(super) async fn list_choices(state: &AppState) -> anyhow::Result<Vec<(String, String)>> {
    let lists = state.store.lists().await?;
    Ok(lists.into_iter().map(|l| (l.slug, l.name)).collect())
}

/// The segment's fields, as typed (and as shown again).
#[derive(Serialize, Default, Clone, Debug)]
pub(super) struct SegmentForm {
    /// The slugs of the localities ticked.
    pub localities: Vec<String>,
    /// `in` (in one of them) or `not_in`.
    pub locality_operator: String,
    /// Empty (either), `given` or `not_given`.
    pub organisation: String,
    pub signed_up_before: String,
    pub signed_up_on_or_after: String,
}

/// The field names, for the page.
pub(super) fn locality_choices() -> Vec<(&'static str, &'static str)> {
    Locality::ALL
        .iter()
        .map(|l| (l.slug(), l.label()))
        .collect()
}

impl SegmentForm {
    pub fn of(segment: Option<&Segment>) -> Self {
        let mut form = SegmentForm {
            locality_operator: "in".into(),
            ..SegmentForm::default()
        };
        for condition in segment.map(|s| s.0.as_slice()).unwrap_or_default() {
            match condition {
                Condition::Locality { operator, value } => {
                    form.localities = value.iter().map(|l| l.slug().to_owned()).collect();
                    form.locality_operator = match operator {
                        SetOperator::In => "in",
                        SetOperator::NotIn => "not_in",
                    }
                    .into();
                }
                Condition::Organisation { operator } => {
                    form.organisation = match operator {
                        Presence::Given => "given",
                        Presence::NotGiven => "not_given",
                    }
                    .into();
                }
                Condition::SignedUp { operator, value } => {
                    let day = value.format("%Y-%m-%d").to_string();
                    match operator {
                        DayOperator::Before => form.signed_up_before = day,
                        DayOperator::OnOrAfter => form.signed_up_on_or_after = day,
                    }
                }
            }
        }
        form
    }

    /// The fields from a form's pairs (a ticked locality comes once per tick).
    pub fn read(pairs: &[(String, String)]) -> Self {
        let mut form = SegmentForm::of(None);
        for (name, value) in pairs {
            let value = value.trim().to_owned();
            match name.as_str() {
                "locality" => form.localities.push(value),
                "locality_operator" => form.locality_operator = value,
                "organisation" => form.organisation = value,
                "signed_up_before" => form.signed_up_before = value,
                "signed_up_on_or_after" => form.signed_up_on_or_after = value,
                _ => {}
            }
        }
        form
    }

    /// The segment the fields describe, or what is wrong with them.
    pub fn segment(&self) -> Result<Option<Segment>, FieldError> {
        let problem = |message: &str| FieldError::new("segment", message.to_owned());
        let mut conditions = Vec::new();
        if !self.localities.is_empty() {
            let mut value = Vec::new();
            for slug in &self.localities {
                match Locality::parse(slug) {
                    Ok(Some(locality)) => value.push(locality),
                    _ => return Err(problem("Choose localities from the list.")),
                }
            }
            let operator = match self.locality_operator.as_str() {
                "in" | "" => SetOperator::In,
                "not_in" => SetOperator::NotIn,
                _ => {
                    return Err(problem(
                        "Choose whether they are in those localities or not.",
                    ));
                }
            };
            conditions.push(Condition::Locality { operator, value });
        }
        match self.organisation.as_str() {
            "" => {}
            "given" => conditions.push(Condition::Organisation {
                operator: Presence::Given,
            }),
            "not_given" => conditions.push(Condition::Organisation {
                operator: Presence::NotGiven,
            }),
            _ => return Err(problem("Choose whether they gave an organisation.")),
        }
        for (text, operator) in [
            (&self.signed_up_before, DayOperator::Before),
            (&self.signed_up_on_or_after, DayOperator::OnOrAfter),
        ] {
            if text.is_empty() {
                continue;
            }
            let value = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
                problem("Enter the sign-up dates as year-month-day, like 2026-03-01.")
            })?;
            conditions.push(Condition::SignedUp { operator, value });
        }
        Segment(conditions)
            .check()
            .map_err(|message| problem(&message))
    }
}

/// Who an issue would reach, as the editor says it.
#[derive(Serialize, Clone, Debug)]
pub struct Reach {
    pub people: i64,
    /// "12 people on In Partnership (in Stroud) would get it if it went now."
    pub words: String,
}

impl Reach {
    pub fn of(audience: &issue_actions::Audience) -> Self {
        let people = match audience.people {
            1 => "1 person".to_owned(),
            n => format!("{n} people"),
        };
        let segment = match &audience.segment {
            Some(words) => format!(" ({words})"),
            None => String::new(),
        };
        Reach {
            people: audience.people,
            words: format!("{people} on {}{segment}", audience.list),
        }
    }
}

/// How many people the segment in the query reaches now, for the editor's script.
pub(super) async fn reach(
    State(state): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let segment = match SegmentForm::read(&pairs).segment() {
        Ok(segment) => segment,
        Err(problem) => {
            let body = serde_json::json!({ "error": problem.message });
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response());
        }
    };
    let slug = pairs
        .iter()
        .find(|(name, _)| name == "list")
        .map_or(DEFAULT_LIST, |(_, value)| value.as_str());
    let Some(list) = state.store.list_by_slug(slug).await? else {
        let body = serde_json::json!({ "error": "There is no such list." });
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response());
    };
    let audience = issue_actions::audience_of(&state, list, segment.as_ref()).await?;
    Ok(Json(Reach::of(&audience)).into_response())
}
