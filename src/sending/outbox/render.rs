//! Rendering the service's own mails from the outbox: confirmation, welcome and
//! already-subscribed, in the compiled-in templates and the current brand.

use super::{
    ALREADY_SUBSCRIBED, CONFIRMATION, ConfirmationPayload, ISSUE_TEST, IssueTestPayload,
    OutboxWorker, PREFERENCES_LINK, STAFF_INVITE, STAFF_RESET, StaffLinkPayload, WELCOME,
    WelcomePayload, header,
};
use crate::{
    brand::BrandVersion,
    keys::KeyId,
    sending::mail::{OutgoingMail, Parts, SendError},
    store::OutboxMail,
    templates::templates,
    tokens::{ManageToken, UnsubscribeToken},
};

impl OutboxWorker {
    pub(super) async fn render_outbox(
        &self,
        row: &OutboxMail,
        brand: &BrandVersion,
    ) -> Result<OutgoingMail, SendError> {
        // A row we cannot render will not render on a retry either.
        let permanent = |e: anyhow::Error| SendError::Permanent(format!("{e:#}"));
        let name = &brand.brand.newsletter;
        match row.kind.as_str() {
            CONFIRMATION => {
                let payload: ConfirmationPayload =
                    serde_json::from_str(&row.payload).map_err(|e| permanent(e.into()))?;
                let token = match (&payload.key_id, &row.sealed_secret) {
                    (Some(id), _) => KeyId::parse(id)
                        .and_then(|id| self.secret.get(id))
                        .map(|key| key.confirmation_token(row.id.as_bytes()))
                        .ok_or_else(|| {
                            permanent(anyhow::anyhow!(
                                "The key {id} that made this confirmation token is no longer configured"
                            ))
                        })?,
                    (None, Some(sealed)) => self
                        .secret
                        .open_legacy(sealed, row.id.as_bytes())
                        .map_err(permanent)?,
                    (None, None) => {
                        return Err(permanent(anyhow::anyhow!(
                            "The confirmation token is missing"
                        )));
                    }
                };
                let confirm_url = self.settings.confirmation_url(&token);
                if self.mailer.writes_files() {
                    // Development without a relay: the issue asks for the link in the log.
                    tracing::info!(%confirm_url, "No SMTP_URL: confirmation link");
                }
                let name = payload.lists.words(name);
                let context = minijinja::context! {
                    list_name => &name,
                    brand => brand.for_templates(),
                    public_url => &self.settings.public_url,
                    confirm_url => confirm_url,
                    expires => payload.expires,
                    invited => payload.invited,
                };
                templated(
                    &row.recipient,
                    format!("Confirm your subscription to {name}"),
                    "confirmation",
                    &context,
                )
            }
            kind @ (WELCOME | ALREADY_SUBSCRIBED | PREFERENCES_LINK) => {
                let payload: WelcomePayload =
                    serde_json::from_str(&row.payload).map_err(|e| permanent(e.into()))?;
                let subscriber_id = row.subscriber_id.ok_or_else(|| {
                    permanent(anyhow::anyhow!("A {kind} mail names no subscriber"))
                })?;
                let name = payload.lists.words(name);
                let token = UnsubscribeToken {
                    subscriber_id,
                    list_id: payload.list_id,
                    issue_id: None,
                }
                .sign(&self.secret);
                // The link asked for works for a day, and does more (see `ManageToken`).
                let preferences = match kind {
                    PREFERENCES_LINK => ManageToken {
                        subscriber_id,
                        list_id: payload.list_id,
                        expires_at: chrono::Utc::now() + ManageToken::LIFETIME,
                    }
                    .sign(&self.secret),
                    _ => token.clone(),
                };
                let context = minijinja::context! {
                    list_name => &name,
                    brand => brand.for_templates(),
                    public_url => &self.settings.public_url,
                    unsubscribe_url => self.settings.unsubscribe_url(&token),
                    preferences_url => self.settings.preferences_url(&preferences),
                };
                let subject = match kind {
                    WELCOME => format!("Welcome to {name}"),
                    PREFERENCES_LINK => format!("Manage your subscription to {name}"),
                    _ => format!("You are already subscribed to {name}"),
                };
                templated(&row.recipient, subject, kind, &context)
            }
            kind @ (STAFF_INVITE | STAFF_RESET) => {
                let payload: StaffLinkPayload =
                    serde_json::from_str(&row.payload).map_err(|e| permanent(e.into()))?;
                let token = KeyId::parse(&payload.key_id)
                    .and_then(|id| self.secret.get(id))
                    .map(|key| key.confirmation_token(row.id.as_bytes()))
                    .ok_or_else(|| {
                        permanent(anyhow::anyhow!(
                            "The key {} that made this link is no longer configured",
                            payload.key_id
                        ))
                    })?;
                let (path, subject) = match kind {
                    STAFF_INVITE => ("invitation", format!("You are invited to help send {name}")),
                    _ => ("reset", format!("Reset your password for {name}")),
                };
                let context = minijinja::context! {
                    brand => brand.for_templates(),
                    public_url => &self.settings.public_url,
                    link => format!(
                        "{}/admin/{path}?token={}",
                        self.settings.public_url,
                        token.encode()
                    ),
                    role => payload.role,
                    expires => payload.expires,
                    list_name => name,
                };
                templated(&row.recipient, subject, kind, &context)
            }
            ISSUE_TEST => {
                let payload: IssueTestPayload =
                    serde_json::from_str(&row.payload).map_err(|e| permanent(e.into()))?;
                let issue = self.compose_issue(payload.issue_id).await?;
                // A test copy names no subscriber: its link shows the "does not work" page.
                let (html, text) = issue
                    .composed
                    .personalise(&self.settings.recipient_links("test-copy"));
                Ok(OutgoingMail {
                    to: row.recipient.clone(),
                    subject: format!("[Test] {}", issue.composed.subject),
                    parts: Parts::Plain { text, html },
                    headers: vec![header("List-Id", issue.list_id_header)],
                    returns: None,
                })
            }
            other => Err(permanent(anyhow::anyhow!("Unknown mail kind {other:?}"))),
        }
    }
}

/// A mail from the pair `email_templates/{name}.txt` and `.html`.
fn templated(
    to: &str,
    subject: String,
    name: &str,
    context: &minijinja::Value,
) -> Result<OutgoingMail, SendError> {
    let render = |part: &str| {
        templates()
            .render(&format!("email/{name}.{part}"), context)
            .map_err(|e| SendError::Permanent(format!("{e:#}")))
    };
    Ok(OutgoingMail {
        to: to.to_owned(),
        subject,
        parts: Parts::Plain {
            text: render("txt")?,
            html: render("html")?,
        },
        headers: Vec::new(),
        returns: None,
    })
}
