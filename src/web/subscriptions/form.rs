//! The sign-up form as it arrives (a web form or JSON), and what its fields must be.

use axum::{
    Form, Json,
    extract::{FromRequest, Request},
    http::header,
};
use serde::{Deserialize, Serialize};

use crate::{
    audience::subscriber::{
        Locality, NewSubscriber, Organisation, SubscriberEmail, SubscriberName,
    },
    fields::FieldError,
    web::{error::AppError, pages::MessagePage},
};

/// The sign-up form as submitted, every field optional so that a missing one is a
/// clear 422 rather than a parse failure.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct SignupForm {
    pub(super) email: Option<String>,
    pub(super) name: Option<String>,
    pub(super) organisation: Option<String>,
    pub(super) locality: Option<String>,
    /// The slugs of the lists ticked (`lists` once per tick in a form). None: the
    /// default list, when the form offered no choice.
    pub(super) lists: Vec<String>,
    /// Set by a form that offered lists to choose from: then none ticked is a problem.
    #[serde(skip_serializing)]
    pub(super) choosing: Option<String>,
    pub(super) consent: Option<Consent>,
    /// The honeypot: hidden from people, filled in by bots.
    #[serde(skip_serializing)]
    pub(super) website: Option<String>,
    /// From the page (or `GET /subscriptions/form-token`): see `tokens::FormToken`.
    #[serde(skip_serializing)]
    pub(super) form_token: Option<String>,
    /// The version of the consent sentence the page showed (the current one if none).
    #[serde(skip_serializing)]
    pub(super) consent_version: Option<String>,
    /// The address chosen after "Did you mean ...?": the suggestion, or the address as
    /// typed. Either way it is not asked about again.
    #[serde(skip_serializing)]
    pub(super) use_email: Option<String>,
}

/// `true` in JSON; the checkbox's value (`yes`, or a browser's `on`) in a form.
#[derive(Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub(super) enum Consent {
    Flag(bool),
    Text(String),
}

impl SignupForm {
    /// A form's fields: `lists` once per ticked box, any other field once (the first).
    pub(super) fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut fields = serde_json::Map::new();
        let mut lists = Vec::new();
        for (name, value) in pairs {
            if name == "lists" {
                lists.push(serde_json::Value::String(value));
            } else if !fields.contains_key(&name) {
                fields.insert(name, serde_json::Value::String(value));
            }
        }
        fields.insert("lists".into(), serde_json::Value::Array(lists));
        // Every field is text, as each of ours may be: this cannot fail.
        serde_json::from_value(serde_json::Value::Object(fields)).unwrap_or_default()
    }

    pub(super) fn consent_given(&self) -> bool {
        match &self.consent {
            Some(Consent::Flag(given)) => *given,
            Some(Consent::Text(text)) => {
                matches!(
                    text.trim().to_ascii_lowercase().as_str(),
                    "yes" | "on" | "true" | "1"
                )
            }
            None => false,
        }
    }

    pub(super) fn honeypot_filled(&self) -> bool {
        self.website
            .as_deref()
            .is_some_and(|w| !w.trim().is_empty())
    }

    /// Every field's problems at once, in the order of the form.
    pub(super) fn parse(&self) -> Result<NewSubscriber, Vec<FieldError>> {
        let mut errors = Vec::new();
        fn check<T>(
            errors: &mut Vec<FieldError>,
            field: &'static str,
            result: Result<T, String>,
        ) -> Option<T> {
            result
                .map_err(|message| errors.push(FieldError::new(field, message)))
                .ok()
        }
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        let email = check(
            &mut errors,
            "email",
            SubscriberEmail::parse(&text(&self.email)),
        );
        let name = check(
            &mut errors,
            "name",
            SubscriberName::parse(&text(&self.name)),
        );
        let organisation = check(
            &mut errors,
            "organisation",
            Organisation::parse(&text(&self.organisation)),
        );
        let locality = check(
            &mut errors,
            "locality",
            Locality::parse(&text(&self.locality)),
        );
        let consent = check(
            &mut errors,
            "consent",
            if self.consent_given() {
                Ok(())
            } else {
                Err("Tick the box to say you would like to receive the newsletter.".into())
            },
        );
        match (email, name, organisation, locality, consent) {
            (Some(email), Some(name), Some(organisation), Some(locality), Some(())) => {
                Ok(NewSubscriber {
                    email,
                    name,
                    organisation,
                    locality,
                })
            }
            _ => Err(errors),
        }
    }
}

/// A sign-up from the web form or from a JSON client; the answer takes the same form.
pub struct Submission {
    pub(super) form: SignupForm,
    pub(super) json: bool,
}

impl<S: Send + Sync> FromRequest<S> for Submission {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/json")
            });
        if json {
            let Json(form) =
                Json::<SignupForm>::from_request(req, state)
                    .await
                    .map_err(|rejection| AppError::Json {
                        status: rejection.status(),
                        message: rejection.body_text(),
                    })?;
            Ok(Self { form, json })
        } else {
            let Form(pairs) = Form::<Vec<(String, String)>>::from_request(req, state)
                .await
                .map_err(|rejection| {
                    AppError::page(
                        rejection.status(),
                        MessagePage::new(
                            "We could not read that form",
                            &[
                                "Please go back to the sign-up form and try again.",
                                &rejection.body_text(),
                            ],
                        )
                        .offering_signup(),
                    )
                })?;
            let form = SignupForm::from_pairs(pairs);
            Ok(Self { form, json })
        }
    }
}
