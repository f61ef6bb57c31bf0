//! A segment: the part of a list an issue goes to. It is a list of typed conditions
//! (field, operator, value), every one of which must hold; `filter` turns it into a
//! fixed SQL condition whose values are all bound parameters, so nothing a person typed
//! is ever part of the SQL text. Both stores use the same condition, on `subscribers s`
//! joined to `subscriptions sub`.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Europe::London;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audience::subscriber::Locality;

/// Conditions in one segment, at most.
pub const MAX_CONDITIONS: usize = 8;
/// The years a sign-up day may be in: every database can store those days.
pub const SIGNED_UP_YEARS: std::ops::RangeInclusive<i32> = 1900..=2200;

/// Every condition must hold. No conditions is the whole list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
pub struct Segment(pub Vec<Condition>);

/// One thing a subscriber must be, to be in the segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "field", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// Where they work: one of these localities (`in`), or none of them (`not_in`,
    /// which includes people who gave none).
    Locality {
        operator: SetOperator,
        value: Vec<Locality>,
    },
    /// Whether they gave an organisation.
    Organisation { operator: Presence },
    /// When they first joined the list (a day in the UK): `before` the day starts, or
    /// `on_or_after` it.
    SignedUp {
        operator: DayOperator,
        #[schema(value_type = String, format = Date)]
        value: NaiveDate,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SetOperator {
    In,
    NotIn,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Given,
    NotGiven,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DayOperator {
    Before,
    OnOrAfter,
}

/// A value the SQL condition binds, in the order of its placeholders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Param {
    Text(&'static str),
    Time(DateTime<Utc>),
}

/// A segment as SQL: `condition` uses `$first`, `$first + 1`, … for `params`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pub condition: String,
    pub params: Vec<Param>,
}

impl Segment {
    /// The segment as a person means it: its localities sorted and without repeats, or
    /// the problem with it, said for the person who built it.
    pub fn check(self) -> Result<Option<Segment>, String> {
        if self.0.len() > MAX_CONDITIONS {
            return Err(format!(
                "A segment has at most {MAX_CONDITIONS} conditions."
            ));
        }
        let mut conditions = Vec::with_capacity(self.0.len());
        for condition in self.0 {
            conditions.push(match condition {
                Condition::Locality { operator, value } => {
                    let value: BTreeSet<_> = value.into_iter().collect();
                    if value.is_empty() {
                        return Err(
                            "Choose at least one locality, or no locality condition.".into()
                        );
                    }
                    Condition::Locality {
                        operator,
                        value: value.into_iter().collect(),
                    }
                }
                Condition::SignedUp { value, .. } if !SIGNED_UP_YEARS.contains(&value.year()) => {
                    return Err(format!(
                        "Choose a day from the year {} to {}.",
                        SIGNED_UP_YEARS.start(),
                        SIGNED_UP_YEARS.end()
                    ));
                }
                other => other,
            });
        }
        Ok((!conditions.is_empty()).then_some(Segment(conditions)))
    }

    /// The condition, for SQL whose placeholders before it end at `$(first - 1)`.
    pub fn filter(&self, first: usize) -> Filter {
        let mut params = Vec::new();
        let mut next = |param: Param| {
            params.push(param);
            format!("${}", first + params.len() - 1)
        };
        let mut parts = Vec::with_capacity(self.0.len());
        for condition in &self.0 {
            parts.push(match condition {
                Condition::Locality { operator, value } => {
                    let slots: Vec<String> =
                        value.iter().map(|l| next(Param::Text(l.slug()))).collect();
                    let slots = slots.join(", ");
                    match operator {
                        SetOperator::In => format!("s.locality IN ({slots})"),
                        SetOperator::NotIn => {
                            format!("(s.locality IS NULL OR s.locality NOT IN ({slots}))")
                        }
                    }
                }
                Condition::Organisation { operator } => match operator {
                    Presence::Given => "coalesce(s.organisation, '') <> ''".to_owned(),
                    Presence::NotGiven => "coalesce(s.organisation, '') = ''".to_owned(),
                },
                Condition::SignedUp { operator, value } => {
                    let slot = next(Param::Time(start_of_uk_day(*value)));
                    match operator {
                        DayOperator::Before => format!("sub.created_at < {slot}"),
                        DayOperator::OnOrAfter => format!("sub.created_at >= {slot}"),
                    }
                }
            });
        }
        if parts.is_empty() {
            parts.push("1 = 1".to_owned());
        }
        Filter {
            condition: parts.join(" AND "),
            params,
        }
    }

    /// The segment in words: "in Stroud or Forest of Dean, and signed up before 1 March 2026".
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|condition| match condition {
                Condition::Locality { operator, value } => {
                    let names: Vec<&str> = value.iter().map(|l| l.label()).collect();
                    let names = names.join(" or ");
                    match operator {
                        SetOperator::In => format!("in {names}"),
                        SetOperator::NotIn => format!("not in {names}"),
                    }
                }
                Condition::Organisation { operator } => match operator {
                    Presence::Given => "with an organisation".to_owned(),
                    Presence::NotGiven => "without an organisation".to_owned(),
                },
                Condition::SignedUp { operator, value } => {
                    let day = value.format("%-d %B %Y");
                    match operator {
                        DayOperator::Before => format!("signed up before {day}"),
                        DayOperator::OnOrAfter => format!("signed up on or after {day}"),
                    }
                }
            })
            .collect();
        parts.join(", and ")
    }

    /// The segment as stored with its issue.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a segment serialises")
    }

    pub fn from_json(text: &str) -> anyhow::Result<Self> {
        serde_json::from_str(text)
            .map_err(|err| anyhow::anyhow!("A stored segment is unreadable: {err}"))
    }
}

/// Who an issue reaches: its list's confirmed subscribers in its segment, as the
/// `FROM … WHERE …` of a query on `subscriptions sub` and `subscribers s`. `$list` is
/// the list's id (the caller binds it); the segment's values follow it.
pub fn audience(segment: Option<&Segment>, list: usize) -> Filter {
    let filter = segment.cloned().unwrap_or_default().filter(list + 1);
    Filter {
        condition: format!(
            "FROM subscriptions sub JOIN subscribers s ON s.id = sub.subscriber_id
             WHERE sub.list_id = ${list} AND sub.status = 'confirmed' AND {}",
            filter.condition
        ),
        params: filter.params,
    }
}

/// The first moment of a day in the UK (midnight, which the clocks never skip).
fn start_of_uk_day(day: NaiveDate) -> DateTime<Utc> {
    match London.from_local_datetime(&day.and_time(NaiveTime::MIN)) {
        LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => at.to_utc(),
        LocalResult::None => day.and_time(NaiveTime::MIN).and_utc(),
    }
}

#[cfg(test)]
mod tests;
