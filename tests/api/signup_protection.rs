//! Sign-up bombing: budgets on confirmation mails per client network, per recipient
//! domain and in total, counted in the database (so they hold across instances); a
//! signed, single-use form token that a bot must wait for; and the client's address
//! taken from proxy headers only when the proxy is trusted.

use chrono::Utc;
use newsletter::{
    audience::budgets::Budgets, keys::KeyRing, settings::Settings, tokens::FormToken,
};
use reqwest::StatusCode;
use serde_json::json;

use crate::on_both_backends;
use crate::support::{Backend, SECRET_KEY, SmtpServer, TestApp};

on_both_backends!(
    bombing_from_one_network_stops_at_its_budget,
    budgets_per_domain_and_in_total,
    budgets_hold_across_instances,
    the_client_address_comes_from_proxy_headers_only_behind_a_trusted_proxy,
    the_form_token_is_needed_used_once_and_not_sent_too_soon,
    pages_carry_a_permissions_policy_and_hsts_when_served_over_https,
);

async fn spawn(backend: Backend, customise: impl FnOnce(&mut Settings)) -> TestApp {
    let smtp = SmtpServer::start().await;
    let mut app = TestApp::spawn_with(
        backend,
        |s| {
            s.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
            customise(s);
        },
        &smtp.url(),
    )
    .await;
    app.smtp = Some(smtp);
    app
}

fn budgets(per_client: u32, per_domain: u32, total: u32) -> Budgets {
    Budgets {
        per_client,
        per_domain,
        total,
    }
}

/// A sign-up that the trusted proxy says came from `client`.
async fn sign_up_from(app: &TestApp, address: &str, email: &str) -> reqwest::Response {
    sign_up_from_to(app, &app.address, address, email).await
}

async fn sign_up_from_to(
    app: &TestApp,
    instance: &str,
    client: &str,
    email: &str,
) -> reqwest::Response {
    app.client
        .post(format!("{instance}/subscriptions"))
        .header("x-forwarded-for", client)
        .form(&[
            ("email", email),
            ("name", "Jo"),
            ("consent", "yes"),
            ("form_token", &app.form_token().await),
        ])
        .send()
        .await
        .unwrap()
}

async fn counts(app: &TestApp) -> (i64, i64) {
    let db = app.db.inspect().await;
    (
        db.count("SELECT count(*) FROM subscribers").await,
        db.count("SELECT count(*) FROM outbox").await,
    )
}

async fn bombing_from_one_network_stops_at_its_budget(backend: Backend) {
    let app = spawn(backend, |s| s.signup_budgets = budgets(5, 0, 0)).await;
    for n in 0..5 {
        let answer = sign_up_from(&app, "198.51.100.7", &format!("victim{n}@example.org")).await;
        assert_eq!(answer.status(), StatusCode::OK);
    }
    let refused = sign_up_from(&app, "198.51.100.7", "victim5@example.org").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: i64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    let page = refused.text().await.unwrap();
    assert!(
        page.contains("Too many sign-ups from your network"),
        "{page}"
    );
    // Nothing was stored or queued for the refused one.
    assert_eq!(counts(&app).await, (5, 5));

    // Another network is not held up; a JSON client gets JSON.
    assert_eq!(
        sign_up_from(&app, "198.51.100.8", "someone@example.org")
            .await
            .status(),
        StatusCode::OK
    );
    let json = app
        .client
        .post(format!("{}/subscriptions", app.address))
        .header("x-forwarded-for", "198.51.100.7")
        .json(
            &json!({"email": "victim6@example.org", "name": "Jo", "consent": true,
                      "form_token": app.form_token().await}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: serde_json::Value = json.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("internet connection")
    );

    // IPv6 clients count by their /64: another address of it is the same network.
    for n in 0..5 {
        let client = format!("2001:db8:1:2::{n:x}");
        let answer = sign_up_from(&app, &client, &format!("v6-{n}@example.org")).await;
        assert_eq!(answer.status(), StatusCode::OK);
    }
    let refused = sign_up_from(&app, "2001:db8:1:2:ffff::1", "v6-9@example.org").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        sign_up_from(&app, "2001:db8:1:3::1", "v6-10@example.org")
            .await
            .status(),
        StatusCode::OK
    );

    // Staff see it on the dashboard.
    let staff = app.staff("ops@example.org", "admin").await;
    let dashboard = app.staff_get(&staff, "/admin").await.text().await.unwrap();
    assert!(
        dashboard.contains("3 sign-ups were turned away"),
        "{dashboard}"
    );
}

async fn budgets_per_domain_and_in_total(backend: Backend) {
    let app = spawn(backend, |s| s.signup_budgets = budgets(0, 3, 5)).await;
    for n in 0..3 {
        let client = format!("198.51.100.{n}");
        let answer = sign_up_from(&app, &client, &format!("p{n}@example.org")).await;
        assert_eq!(answer.status(), StatusCode::OK);
    }
    let refused = sign_up_from(&app, "198.51.100.50", "P3@EXAMPLE.org").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("addresses at example.org")
    );
    for n in 0..2 {
        let client = format!("198.51.100.{}", 10 + n);
        let answer = sign_up_from(&app, &client, &format!("p{n}@example.net")).await;
        assert_eq!(answer.status(), StatusCode::OK);
    }
    let refused = sign_up_from(&app, "198.51.100.60", "p@example.com").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("Too many sign-ups just now")
    );
    assert_eq!(counts(&app).await, (5, 5));
    // Signing up an address that is already confirmed sends nothing, so it does not
    // spend the budget either; but over a budget every sign-up gets the same answer,
    // so a refusal does not tell whether an address is known.
    let known = sign_up_from(&app, "198.51.100.61", "p0@example.org").await;
    assert_eq!(known.status(), StatusCode::TOO_MANY_REQUESTS);
}

async fn budgets_hold_across_instances(backend: Backend) {
    let app = spawn(backend, |s| s.signup_budgets = budgets(4, 0, 0)).await;
    let other = app
        .another_instance_with(|s| {
            s.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
            s.signup_budgets = budgets(4, 0, 0);
        })
        .await;
    let mut statuses = Vec::new();
    for n in 0..6 {
        let instance = if n % 2 == 0 {
            &app.address
        } else {
            &other.address
        };
        let answer =
            sign_up_from_to(&app, instance, "203.0.113.5", &format!("x{n}@example.org")).await;
        statuses.push(answer.status().as_u16());
    }
    assert_eq!(statuses, vec![200, 200, 200, 200, 429, 429]);
    assert_eq!(counts(&app).await, (4, 4));
    other.stop().await;
}

async fn the_client_address_comes_from_proxy_headers_only_behind_a_trusted_proxy(backend: Backend) {
    let trusting = spawn(backend.clone(), |_| {}).await;
    sign_up_from(&trusting, "198.51.100.23", "a@example.org").await;
    // A client that lies first in the chain is not believed: the proxy's entry is.
    sign_up_from(&trusting, "6.6.6.6, 198.51.100.24", "b@example.org").await;
    let db = trusting.db.inspect().await;
    assert_eq!(
        db.texts("SELECT ip FROM consent_events ORDER BY occurred_at")
            .await,
        vec![Some("198.51.100.23".into()), Some("198.51.100.24".into())]
    );

    let direct = spawn(backend, |s| s.trusted_proxies.clear()).await;
    sign_up_from(&direct, "198.51.100.23", "c@example.org").await;
    let db = direct.db.inspect().await;
    assert_eq!(
        db.texts("SELECT ip FROM consent_events").await,
        vec![Some("127.0.0.1".into())]
    );
}

async fn the_form_token_is_needed_used_once_and_not_sent_too_soon(backend: Backend) {
    let app = spawn(backend, |s| {
        s.signup_form_min_age = std::time::Duration::from_secs(2);
    })
    .await;
    let person = |token: &str| {
        vec![
            ("email", "jo@example.org".to_owned()),
            ("name", "Jo".to_owned()),
            ("consent", "yes".to_owned()),
            ("form_token", token.to_owned()),
        ]
    };
    let post = |fields: Vec<(&'static str, String)>| {
        app.client
            .post(format!("{}/subscriptions", app.address))
            .form(&fields)
            .send()
    };

    // The page carries a token; sent at once, it is refused and the form comes back
    // with what was typed and a new token.
    let page = app.get("/").await.text().await.unwrap();
    let from_page = page
        .split("name=\"form_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page has a form token")
        .to_owned();
    let answer = post(person(&from_page)).await.unwrap();
    assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let again = answer.text().await.unwrap();
    assert!(again.contains("very quickly"), "{again}");
    assert!(again.contains("value=\"jo@example.org\""));
    assert!(!again.contains(&from_page), "a new token each time");

    // No token, or a forged one: refused, for the form and for JSON.
    let answer = post(person("")).await.unwrap();
    assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answer
            .text()
            .await
            .unwrap()
            .contains("could not be checked")
    );
    let answer = app
        .client
        .post(format!("{}/subscriptions", app.address))
        .json(&json!({"email": "jo@example.org", "name": "Jo", "consent": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["errors"][0]["field"], "form_token");
    let other_key = FormToken::new(Utc::now() - chrono::TimeDelta::seconds(5)).sign(&KeyRing::new(
        "a key this service never had, long enough",
        &[],
    ));
    assert_eq!(
        post(person(&other_key)).await.unwrap().status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(counts(&app).await, (0, 0));

    // A token made a few seconds ago works, once.
    let ring = KeyRing::new(SECRET_KEY, &[]);
    let waited = FormToken::new(Utc::now() - chrono::TimeDelta::seconds(5)).sign(&ring);
    assert_eq!(
        post(person(&waited)).await.unwrap().status(),
        StatusCode::OK
    );
    let reused = post(person(&waited)).await.unwrap();
    assert_eq!(reused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(reused.text().await.unwrap().contains("sent already"));
    // A page left open for more than a day.
    let stale = FormToken::new(Utc::now() - chrono::TimeDelta::hours(25)).sign(&ring);
    let answer = post(person(&stale)).await.unwrap();
    assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer.text().await.unwrap().contains("more than a day"));
    assert_eq!(counts(&app).await, (1, 1));

    // JSON clients fetch a token, and learn when they may send it.
    let fetched: serde_json::Value = app
        .get("/subscriptions/form-token")
        .await
        .json()
        .await
        .unwrap();
    let not_before: chrono::DateTime<Utc> =
        fetched["not_before"].as_str().unwrap().parse().unwrap();
    assert!(not_before > Utc::now());
}

async fn pages_carry_a_permissions_policy_and_hsts_when_served_over_https(backend: Backend) {
    let plain = spawn(backend.clone(), |_| {}).await;
    let page = plain.get("/").await;
    assert!(
        page.headers()["permissions-policy"]
            .to_str()
            .unwrap()
            .contains("camera=()")
    );
    assert!(page.headers().get("strict-transport-security").is_none());

    let https = spawn(backend, |s| {
        s.public_url = "https://news.example.org".into()
    })
    .await;
    let page = https.get("/").await;
    assert_eq!(
        page.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
}
