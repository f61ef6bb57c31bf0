//! Signing up: the form, its answers, what is stored, and what is refused.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestApp};

on_both_backends!(
    sign_up_then_confirm_through_the_link_in_the_mail,
    the_sign_up_page_is_a_labelled_form_with_consent_and_a_honeypot,
    json_sign_up_answers_pending,
    the_answer_is_the_same_for_known_and_unknown_addresses,
    signing_up_again_while_pending_resends_up_to_the_cap,
    a_confirmed_address_gets_no_more_mail,
    each_bad_field_is_a_422_naming_it_and_nothing_is_stored,
    a_form_with_errors_is_shown_again_with_what_was_typed,
    a_filled_honeypot_is_answered_as_usual_and_stores_nothing,
    the_email_is_trimmed_and_its_domain_lower_cased,
    the_consent_event_records_how_and_what_was_agreed,
    the_mail_does_not_echo_the_name,
    bodies_that_are_not_a_sign_up_get_a_clear_4xx,
    health_reports_the_database,
    the_site_icon_is_served_and_linked,
    check_your_inbox_shows_the_address_and_a_way_to_correct_it,
    a_likely_typo_in_the_domain_is_asked_about_first,
);

async fn sign_up_then_confirm_through_the_link_in_the_mail(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let response = app.sign_up("jo@example.org").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("Check your inbox"));

    let mail = &app.smtp().wait_for(1).await[0];
    assert_eq!(mail.to, vec!["jo@example.org"]);
    let link = mail.confirmation_link();
    assert!(link.starts_with("http://newsletter.test/subscriptions/confirm?token="));

    // Follow the link as the browser would (on our address, not the public one).
    let path = link.strip_prefix("http://newsletter.test").unwrap();
    let page = app.get(path).await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(page.contains("Confirm my subscription"));
    assert!(page.contains(&format!("value=\"{}\"", mail.confirmation_token())));

    let confirmed = app.confirm(&mail.confirmation_token()).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    assert!(
        confirmed
            .text()
            .await
            .unwrap()
            .contains("You are subscribed")
    );

    let db = app.db.inspect().await;
    assert_eq!(
        db.texts("SELECT status FROM subscriptions").await,
        vec![Some("confirmed".to_owned())]
    );
    assert_eq!(
        db.count("SELECT count(*) FROM subscriptions WHERE confirmed_at IS NOT NULL")
            .await,
        1
    );
}

async fn the_sign_up_page_is_a_labelled_form_with_consent_and_a_honeypot(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let response = app.get("/").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = response.text().await.unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("<html lang=\"en-GB\">"));
    for field in ["email", "name", "organisation", "locality", "consent"] {
        assert!(
            page.contains(&format!("<label for=\"{field}\"")),
            "no label for {field}"
        );
        assert!(
            page.contains(&format!("id=\"{field}\"")),
            "no field {field}"
        );
    }
    for district in [
        "Cheltenham",
        "Cotswold",
        "Forest of Dean",
        "Gloucester",
        "Stroud",
        "Tewkesbury",
        "County-wide / other",
    ] {
        assert!(
            page.contains(&format!(">{district}</option>")),
            "no {district}"
        );
    }
    assert!(page.contains("unsubscribe at any time"));
    assert!(page.contains("name=\"website\""), "no honeypot");
    // The form works without JavaScript: the one script only moves the focus to the
    // error summary when there is one.
    assert_eq!(page.matches("<script").count(), 1);
    assert!(page.contains(r#"<script src="/focus-errors.js" defer></script>"#));
}

async fn json_sign_up_answers_pending(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let response = app
        .post_json(
            "/subscriptions",
            &json!({"email": "api@example.org", "name": "Api User", "consent": true}),
        )
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "pending"})
    );
    let mail = &app.smtp().wait_for(1).await[0];
    assert_eq!(mail.to, vec!["api@example.org"]);
    let db = app.db.inspect().await;
    assert_eq!(
        db.texts("SELECT method FROM consent_events").await,
        vec![Some("api".to_owned())]
    );
}

async fn the_answer_is_the_same_for_known_and_unknown_addresses(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("confirmed@example.org").await;
    let mail = app.smtp().wait_for(1).await.remove(0);
    app.confirm(&mail.confirmation_token()).await;
    app.sign_up("pending@example.org").await;

    let mut answers = Vec::new();
    for email in [
        "new@example.org",
        "pending@example.org",
        "confirmed@example.org",
    ] {
        let response = app.sign_up(email).await;
        let status = response.status();
        // The page shows the address typed, and otherwise nothing of what is known.
        let page = response.text().await.unwrap();
        assert!(page.contains(&format!("<strong>{email}</strong>")));
        answers.push((status, page.replace(email, "ADDRESS")));
    }

    assert_eq!(answers[0].0, StatusCode::OK);
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0], answers[2]);
}

async fn signing_up_again_while_pending_resends_up_to_the_cap(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    for _ in 0..5 {
        assert_eq!(
            app.sign_up("again@example.org").await.status(),
            StatusCode::OK
        );
    }

    // Three mails, each with its own working link; the fourth and fifth were not queued.
    let mails = app.smtp().wait_for(3).await;
    let db = app.db.inspect().await;
    assert_eq!(db.count("SELECT count(*) FROM outbox").await, 3);
    assert_eq!(
        db.count("SELECT count(*) FROM confirmation_tokens").await,
        3
    );
    assert_eq!(db.count("SELECT count(*) FROM subscribers").await, 1);
    let tokens: std::collections::HashSet<_> =
        mails.iter().map(|m| m.confirmation_token()).collect();
    assert_eq!(tokens.len(), 3);
    let first = mails[0].confirmation_token();
    assert_eq!(app.confirm(&first).await.status(), StatusCode::OK);
}

async fn a_confirmed_address_gets_no_more_mail(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("done@example.org").await;
    let mail = app.smtp().wait_for(1).await.remove(0);
    app.confirm(&mail.confirmation_token()).await;
    let welcome = app
        .smtp()
        .wait_for_mail_to("done@example.org", "Welcome to In Partnership")
        .await;
    assert!(welcome.data.contains("/unsubscribe?token="));

    // Signing up again, the page is the same as ever; the mail says they are
    // subscribed already, with their way out, and asks nothing. A few times a day at most.
    for _ in 0..5 {
        let again = app.sign_up("done@example.org").await;
        assert_eq!(again.status(), StatusCode::OK);
        assert!(again.text().await.unwrap().contains("Check your inbox"));
    }
    let reminders = app
        .smtp()
        .wait_for_subject("You are already subscribed to In Partnership", 3)
        .await;
    let reminder = &reminders[0];
    assert_eq!(reminder.to, vec!["done@example.org"]);
    assert!(reminder.data.contains("/unsubscribe?token="));
    assert!(!reminder.data.contains("/subscriptions/confirm"));

    let db = app.db.inspect().await;
    assert_eq!(
        db.count("SELECT count(*) FROM outbox WHERE kind = 'confirmation'")
            .await,
        1
    );
    assert_eq!(
        db.count("SELECT count(*) FROM outbox WHERE kind = 'already_subscribed'")
            .await,
        3,
        "capped like confirmations"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM consent_events WHERE kind = 'signup'")
            .await,
        1
    );
}

type Fields = Vec<(&'static str, String)>;

/// (what is wrong, the fields as sent, the field that must be named)
fn bad_sign_ups() -> Vec<(&'static str, Fields, &'static str)> {
    let good = |overrides: &[(&'static str, String)]| {
        let mut fields: Fields = vec![
            ("email", "ok@example.org".into()),
            ("name", "Jo".into()),
            ("organisation", "".into()),
            ("locality", "".into()),
            ("consent", "yes".into()),
        ];
        for (key, value) in overrides {
            fields.retain(|(k, _)| k != key);
            fields.push((key, value.clone()));
        }
        fields
    };
    let without = |field: &str| {
        let mut fields = good(&[]);
        fields.retain(|(k, _)| *k != field);
        fields
    };
    vec![
        ("missing email", without("email"), "email"),
        (
            "malformed email",
            good(&[("email", "not-an-address".into())]),
            "email",
        ),
        (
            "two @ signs",
            good(&[("email", "a@b@example.org".into())]),
            "email",
        ),
        ("missing name", without("name"), "name"),
        ("empty name", good(&[("name", "   ".into())]), "name"),
        ("name too long", good(&[("name", "x".repeat(257))]), "name"),
        (
            "markup in name",
            good(&[("name", "<a href=x>win</a>".into())]),
            "name",
        ),
        (
            "organisation too long",
            good(&[("organisation", "o".repeat(257))]),
            "organisation",
        ),
        (
            "unknown locality",
            good(&[("locality", "bristol".into())]),
            "locality",
        ),
        ("missing consent", without("consent"), "consent"),
        (
            "consent refused",
            good(&[("consent", "no".into())]),
            "consent",
        ),
    ]
}

async fn each_bad_field_is_a_422_naming_it_and_nothing_is_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    for (case, fields, field) in bad_sign_ups() {
        let form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response = app.post_form("/subscriptions", &form).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "form: {case}"
        );
        let page = response.text().await.unwrap();
        assert!(page.contains("There is a problem"), "form: {case}");
        assert!(
            page.contains(&format!("id=\"{field}-error\"")),
            "form: {case}"
        );

        let body: serde_json::Map<String, Value> = fields
            .iter()
            .map(|(k, v)| {
                let value = if *k == "consent" {
                    json!(v == "yes")
                } else {
                    json!(v)
                };
                (k.to_string(), value)
            })
            .collect();
        let response = app.post_json("/subscriptions", &Value::Object(body)).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "json: {case}"
        );
        let answer: Value = response.json().await.unwrap();
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains(answer["errors"][0]["message"].as_str().unwrap()),
            "json: {case}"
        );
        let named: Vec<&str> = answer["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(named, vec![field], "json: {case}");
        assert!(
            !answer["errors"][0]["message"].as_str().unwrap().is_empty(),
            "json: {case}"
        );
    }

    let db = app.db.inspect().await;
    assert_eq!(db.count("SELECT count(*) FROM subscribers").await, 0);
    assert_eq!(db.count("SELECT count(*) FROM outbox").await, 0);
}

async fn a_form_with_errors_is_shown_again_with_what_was_typed(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let response = app
        .post_form(
            "/subscriptions",
            &[
                ("email", "typo@example"),
                ("name", "Sam <Smith>"),
                ("organisation", "Cotswold Friends"),
                ("locality", "cotswold"),
            ],
        )
        .await;

    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = response.text().await.unwrap();
    // All three problems, each linked to its field, and the typed values kept (escaped).
    for field in ["email", "name", "consent"] {
        assert!(page.contains(&format!("href=\"#{field}\"")), "{field}");
    }
    assert!(page.contains("value=\"typo@example\""));
    assert!(page.contains("value=\"Sam &lt;Smith&gt;\""));
    assert!(page.contains("value=\"Cotswold Friends\""));
    assert!(page.contains("<option value=\"cotswold\" selected>"));
    assert!(page.contains("aria-invalid=\"true\""));
}

async fn a_filled_honeypot_is_answered_as_usual_and_stores_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let human = app.sign_up("human@example.org").await.text().await.unwrap();

    let response = app
        .post_form(
            "/subscriptions",
            &[
                ("email", "bot@example.org"),
                ("name", "Jo Bloggs"),
                ("organisation", "Stroud Community Hub"),
                ("locality", "stroud"),
                ("consent", "yes"),
                ("website", "http://spam.example"),
            ],
        )
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    // The same page, but for the address each typed.
    let bot = response.text().await.unwrap();
    assert_eq!(bot.replace("bot@", "human@"), human);
    let db = app.db.inspect().await;
    assert_eq!(
        db.texts("SELECT email FROM subscribers").await,
        vec![Some("human@example.org".to_owned())]
    );
    assert_eq!(db.count("SELECT count(*) FROM outbox").await, 1);
}

async fn the_email_is_trimmed_and_its_domain_lower_cased(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    app.sign_up("  Jo.Bloggs@Example.ORG ").await;
    app.sign_up("Jo.Bloggs@example.org").await;

    let db = app.db.inspect().await;
    assert_eq!(
        db.texts("SELECT email FROM subscribers").await,
        vec![Some("Jo.Bloggs@example.org".to_owned())]
    );
    let mails = app.smtp().wait_for(2).await;
    assert_eq!(mails[0].to, vec!["Jo.Bloggs@example.org"]);
}

async fn the_consent_event_records_how_and_what_was_agreed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.client
        .post(format!("{}/subscriptions", app.address))
        .header("user-agent", "Test Browser/1.0")
        .form(&[
            ("email", "ledger@example.org"),
            ("name", "Lee"),
            ("consent", "on"),
            ("form_token", &app.form_token().await),
        ])
        .send()
        .await
        .unwrap();
    let mail = app.smtp().wait_for(1).await.remove(0);
    app.confirm(&mail.confirmation_token()).await;

    let db = app.db.inspect().await;
    assert_eq!(
        db.texts(
            "SELECT kind || ' ' || method || ' ' || ip FROM consent_events ORDER BY occurred_at"
        )
        .await,
        vec![
            Some("signup form 127.0.0.1".to_owned()),
            Some("confirm link 127.0.0.1".to_owned())
        ]
    );
    assert_eq!(
        db.texts("SELECT user_agent FROM consent_events WHERE kind = 'signup'")
            .await,
        vec![Some("Test Browser/1.0".to_owned())]
    );
    assert_eq!(
        db.texts("SELECT wording_version FROM consent_events WHERE kind = 'signup'")
            .await,
        vec![Some(newsletter::brand::DEFAULT_CONSENT_VERSION.to_owned())]
    );
    assert_eq!(
        db.texts("SELECT wording_hash FROM consent_events WHERE kind = 'signup'")
            .await,
        vec![Some(newsletter::tokens::sha256_hex(
            newsletter::brand::DEFAULT_CONSENT.as_bytes()
        ))]
    );
}

async fn the_mail_does_not_echo_the_name(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    app.post_form(
        "/subscriptions",
        &[
            ("email", "echo@example.org"),
            ("name", "Cheap pills at pills dot example"),
            ("organisation", "Spam Org"),
            ("consent", "yes"),
        ],
    )
    .await;

    let mail = app.smtp().wait_for(1).await.remove(0);
    let text = mail.decoded();
    assert!(!text.contains("Cheap pills"));
    assert!(!text.contains("Spam Org"));
    assert!(text.contains("In Partnership"));
    assert!(text.contains("Content-Type: text/plain"));
    assert!(text.contains("Content-Type: text/html"));
    assert_eq!(mail.from, "newsletter@localhost");
    assert!(mail.header("Message-ID").is_some());
    assert!(mail.header("Date").is_some());
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Confirm your subscription to In Partnership")
    );
}

async fn bodies_that_are_not_a_sign_up_get_a_clear_4xx(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let url = format!("{}/subscriptions", app.address);

    let broken_json = app
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(broken_json.status(), StatusCode::BAD_REQUEST);
    assert!(broken_json.json::<Value>().await.unwrap()["error"].is_string());

    let wrong_type = app
        .client
        .post(&url)
        .header("content-type", "text/plain")
        .body("email=x@example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let huge = app
        .post_form("/subscriptions", &[("name", &"x".repeat(100_000))])
        .await;
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let db = app.db.inspect().await;
    assert_eq!(db.count("SELECT count(*) FROM subscribers").await, 0);
}

async fn health_reports_the_database(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let response = app.get("/health").await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "ok", "database": "ok"})
    );
}

async fn the_site_icon_is_served_and_linked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let page = app.get("/").await.text().await.unwrap();
    assert!(page.contains(r#"<link rel="icon" href="/favicon.svg" type="image/svg+xml">"#));
    for path in ["/favicon.svg", "/favicon.ico"] {
        let icon = app.get(path).await;
        assert_eq!(icon.status(), StatusCode::OK, "{path}");
        assert_eq!(icon.headers()["content-type"], "image/svg+xml");
        assert!(icon.text().await.unwrap().starts_with("<svg"));
    }
}

async fn check_your_inbox_shows_the_address_and_a_way_to_correct_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let page = app.sign_up("jo@exmaple.org").await.text().await.unwrap();
    assert!(page.contains("<strong>jo@exmaple.org</strong>"), "{page}");
    assert!(page.contains(r#"action="/subscriptions/edit""#));

    // "Go back and correct it": the form again, as it was filled in, consent unticked.
    let form = app
        .post_form(
            "/subscriptions/edit",
            &[
                ("email", "jo@exmaple.org"),
                ("name", "Jo Bloggs"),
                ("organisation", "Stroud Community Hub"),
                ("locality", "stroud"),
            ],
        )
        .await;
    assert_eq!(form.status(), StatusCode::OK);
    let form = form.text().await.unwrap();
    assert!(form.contains(r#"value="jo@exmaple.org""#), "{form}");
    assert!(form.contains(r#"value="Stroud Community Hub""#));
    assert!(form.contains(r#"name="form_token""#));
    assert!(!form.contains("checked"), "consent is asked for again");
    let db = app.db.inspect().await;
    assert_eq!(db.count("SELECT count(*) FROM subscribers").await, 1);
}

async fn a_likely_typo_in_the_domain_is_asked_about_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let fields = |email: &'static str, choice: Option<&'static str>| {
        let mut fields = vec![
            ("email", email),
            ("name", "Jo Bloggs"),
            ("locality", "stroud"),
            ("consent", "yes"),
        ];
        fields.extend(choice.map(|chosen| ("use_email", chosen)));
        fields
    };
    let asked = app
        .post_form("/subscriptions", &fields("jo@gmial.com", None))
        .await;
    assert_eq!(asked.status(), StatusCode::OK);
    let page = asked.text().await.unwrap();
    assert!(
        page.contains("Did you mean <strong>jo@gmail.com</strong>?"),
        "{page}"
    );
    assert!(
        page.contains(r#"value="jo@gmial.com""#),
        "what was typed is kept"
    );
    let db = app.db.inspect().await;
    assert_eq!(db.count("SELECT count(*) FROM subscribers").await, 0);

    // "Yes": the suggestion is used.
    let yes = app
        .post_form(
            "/subscriptions",
            &fields("jo@gmial.com", Some("jo@gmail.com")),
        )
        .await;
    assert!(
        yes.text()
            .await
            .unwrap()
            .contains("<strong>jo@gmail.com</strong>")
    );
    // "No": what was typed is used, and not asked about again.
    let no = app
        .post_form(
            "/subscriptions",
            &fields("sam@nhs.nte", Some("sam@nhs.nte")),
        )
        .await;
    assert!(
        no.text()
            .await
            .unwrap()
            .contains("<strong>sam@nhs.nte</strong>")
    );
    assert_eq!(
        db.texts("SELECT email FROM subscribers ORDER BY email")
            .await,
        [
            Some("jo@gmail.com".to_owned()),
            Some("sam@nhs.nte".to_owned())
        ]
    );
    app.smtp().wait_for(2).await;
    // An address of no known domain's near miss is not asked about.
    let plain = app
        .post_form(
            "/subscriptions",
            &fields("kim@stroudcommunity.org.uk", None),
        )
        .await;
    assert!(plain.text().await.unwrap().contains("Check your inbox"));
}
