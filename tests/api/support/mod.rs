//! Test support: spawn the real application on port 0 with its own database (a temp
//! SQLite file, or a fresh PostgreSQL database) and a real SMTP server on a free port.
//!
//! PostgreSQL tests need `TEST_DATABASE_URL` (a server where we may create databases).
//! Without it they say so and pass on a developer's machine; under CI they fail.

pub mod dns;
pub mod dovecot;
pub mod postfix;
pub mod returns;
pub mod smtp;
pub mod staff;

use std::{future::Future, str::FromStr, time::Duration};

use newsletter::{settings::Settings, startup::Application};
use sqlx::{
    ConnectOptions, Connection, Executor, Row,
    postgres::{PgConnectOptions, PgConnection, PgPool},
    sqlite::SqlitePool,
};
use tokio::sync::oneshot;

pub use smtp::{Fault, ReceivedMail, SmtpServer};

/// Runs each named test function once per backend: `mod sqlite` and `mod postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::support::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(backend) = $crate::support::Backend::postgres() {
                        super::$name(backend).await
                    }
                }
            )*
        }
    };
}

#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite,
    /// The URL of a server and database we may connect to and create databases from.
    Postgres(String),
}

impl Backend {
    pub fn postgres() -> Option<Self> {
        match std::env::var("TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => Some(Backend::Postgres(url)),
            _ if std::env::var_os("CI").is_some() => {
                panic!("TEST_DATABASE_URL must name a PostgreSQL server in CI")
            }
            _ => {
                eprintln!("TEST_DATABASE_URL is not set: skipping the PostgreSQL run");
                None
            }
        }
    }
}

/// A database of the test's own, removed when the test ends.
pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    pub async fn create(backend: &Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                Self {
                    url,
                    _dir: Some(dir),
                    postgres: None,
                }
            }
            Backend::Postgres(admin_url) => {
                let name = format!("newsletter_test_{}", uuid::Uuid::now_v7().simple());
                let mut admin = PgConnection::connect(admin_url)
                    .await
                    .expect("TEST_DATABASE_URL does not connect");
                admin
                    .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .await
                    .expect("failed to create a test database");
                let url = with_database(admin_url, &name);
                Self {
                    url,
                    _dir: None,
                    postgres: Some((admin_url.clone(), name)),
                }
            }
        }
    }

    /// A database of the test's own holding what `newsletter backup` wrote to `file`,
    /// restored as docs/running-it.md says: SQLite's copy put in place, PostgreSQL's
    /// dump given to `pg_restore` with an empty database.
    pub async fn restore(backend: &Backend, file: &std::path::Path) -> Self {
        let db = Self::create(backend).await;
        match &db._dir {
            Some(dir) => {
                std::fs::copy(file, dir.path().join("test.db")).unwrap();
            }
            None => {
                // libpq's URL: the server's, with the new database, without sqlx's
                // own parameters.
                let (admin_url, name) = db.postgres.clone().unwrap();
                let mut url = url::Url::parse(&admin_url).unwrap();
                url.set_path(&name);
                url.set_query(None);
                let out = std::process::Command::new("pg_restore")
                    .args(["--no-owner", "--exit-on-error", "--dbname"])
                    .arg(url.as_str())
                    .arg(file)
                    .output()
                    .expect("pg_restore did not run");
                assert!(
                    out.status.success(),
                    "pg_restore failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        db
    }

    /// Opens a connection of the test's own, to look at what the app stored.
    pub async fn inspect(&self) -> Inspector {
        if self.postgres.is_some() {
            Inspector::Postgres(PgPool::connect(&self.url).await.unwrap())
        } else {
            Inspector::Sqlite(SqlitePool::connect(&self.url).await.unwrap())
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs outside async code: use a runtime of our own on a thread of our own.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    let mut admin = PgConnection::connect(&admin_url).await?;
                    admin
                        .execute(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .await
                        .map(|_| ())
                })
        })
        .join();
        if let Ok(Err(err)) = dropped {
            eprintln!("could not drop a test database: {err}");
        }
    }
}

/// The same server as `url`, another database.
fn with_database(url: &str, name: &str) -> String {
    PgConnectOptions::from_str(url)
        .expect("TEST_DATABASE_URL is not a PostgreSQL URL")
        .database(name)
        .to_url_lossy()
        .to_string()
}

/// Reads what the application stored, in SQL both backends understand.
pub enum Inspector {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Inspector {
    pub async fn count(&self, sql: &'static str) -> i64 {
        match self {
            Inspector::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
            Inspector::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The first column of every row, as text.
    pub async fn texts(&self, sql: &'static str) -> Vec<Option<String>> {
        match self {
            Inspector::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
            Inspector::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub async fn execute(&self, sql: &'static str) {
        match self {
            Inspector::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
            Inspector::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Runs `sql` with `$1` bound to `value`.
    pub async fn execute_with(&self, sql: &'static str, value: &str) {
        match self {
            Inspector::Sqlite(pool) => sqlx::query(sql).bind(value).execute(pool).await.map(|_| ()),
            Inspector::Postgres(pool) => {
                sqlx::query(sql).bind(value).execute(pool).await.map(|_| ())
            }
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The id that `sql` (with `$1` bound to `key`) selects.
    pub async fn id(&self, sql: &'static str, key: &str) -> uuid::Uuid {
        match self {
            Inspector::Sqlite(pool) => sqlx::query_scalar(sql).bind(key).fetch_one(pool).await,
            Inspector::Postgres(pool) => sqlx::query_scalar(sql).bind(key).fetch_one(pool).await,
        }
        .unwrap_or_else(|e| panic!("{sql} with {key}: {e}"))
    }

    /// Every value in every table, as text (bytes as lower-case hex): to show that
    /// something is stored nowhere.
    pub async fn dump(&self) -> String {
        let mut dump = String::new();
        match self {
            Inspector::Sqlite(pool) => {
                let tables: Vec<String> =
                    sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                        .fetch_all(pool)
                        .await
                        .unwrap();
                for table in tables {
                    let rows =
                        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM \"{table}\"")))
                            .fetch_all(pool)
                            .await
                            .unwrap();
                    for row in rows {
                        for i in 0..row.len() {
                            if let Ok(Some(text)) = row.try_get::<Option<String>, _>(i) {
                                dump.push_str(&text);
                            } else if let Ok(Some(bytes)) = row.try_get::<Option<Vec<u8>>, _>(i) {
                                dump.push_str(&hex(&bytes));
                                dump.push_str(&String::from_utf8_lossy(&bytes));
                            } else if let Ok(Some(number)) = row.try_get::<Option<i64>, _>(i) {
                                dump.push_str(&number.to_string());
                            }
                            dump.push('\n');
                        }
                    }
                }
            }
            Inspector::Postgres(pool) => {
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
                )
                .fetch_all(pool)
                .await
                .unwrap();
                for table in tables {
                    let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                        "SELECT row_to_json(t)::text FROM \"{table}\" t"
                    )))
                    .fetch_all(pool)
                    .await
                    .unwrap();
                    for row in rows {
                        dump.push_str(&row);
                        dump.push('\n');
                    }
                }
            }
        }
        dump
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A running application, its database and the SMTP server it sends to.
pub struct TestApp {
    pub address: String,
    /// `http://host:port` of `METRICS_ADDRESS`, when the test set one.
    pub metrics_address: Option<String>,
    pub client: reqwest::Client,
    pub smtp: Option<SmtpServer>,
    pub db: TestDatabase,
    /// Dropped with the app, which then shuts down.
    _stop: oneshot::Sender<()>,
}

/// The secret key every test app uses, so a test can sign what the app would.
pub const SECRET_KEY: &str = "a test secret that is long enough to use";

/// Settings for tests: quick retries, and mail to `smtp_url`.
pub fn test_settings(database_url: &str, smtp_url: &str) -> Settings {
    let mut settings = Settings::from_lookup(|_| None).unwrap();
    settings.database_url = database_url.to_owned();
    settings.database_max_connections = 5;
    settings.smtp_url = Some(smtp_url.to_owned());
    // The test SMTP server is a trial relay; links point at the test app.
    settings.allow_insecure_public_url = true;
    settings.bind_address = "127.0.0.1:0".into();
    settings.public_url = "http://newsletter.test".into();
    settings.secret_key = Some(SECRET_KEY.into());
    // Tests sign up at machine speed, many from one address: the tests of the form
    // token and of the budgets set their own.
    settings.signup_form_min_age = Duration::ZERO;
    settings.signup_budgets = newsletter::audience::budgets::Budgets {
        per_client: 0,
        per_domain: 0,
        total: 0,
    };
    settings.mail.retry_base = Duration::from_millis(50);
    settings.mail.retry_max = Duration::from_millis(400);
    settings.mail.poll_interval = Duration::from_millis(500);
    settings.mail.smtp_timeout = Duration::from_secs(5);
    settings
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        let smtp = SmtpServer::start().await;
        let url = smtp.url();
        let mut app = Self::spawn_with(backend, |_| {}, &url).await;
        app.smtp = Some(smtp);
        app
    }

    /// Spawns with mail to `smtp_url` (which may have nothing listening), after
    /// `customise` has had its way with the settings.
    pub async fn spawn_with(
        backend: Backend,
        customise: impl FnOnce(&mut Settings),
        smtp_url: &str,
    ) -> Self {
        Self::spawn_on(TestDatabase::create(&backend).await, customise, smtp_url).await
    }

    /// Spawns on a database the test has prepared.
    pub async fn spawn_on(
        db: TestDatabase,
        customise: impl FnOnce(&mut Settings),
        smtp_url: &str,
    ) -> Self {
        let mut settings = test_settings(&db.url, smtp_url);
        customise(&mut settings);
        let app = Application::build(settings)
            .await
            .expect("the application failed to start");
        let address = format!("http://{}", app.local_addr());
        let metrics_address = app.metrics_addr().map(|a| format!("http://{a}"));
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        Self {
            address,
            metrics_address,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            smtp: None,
            db,
            _stop: stop,
        }
    }

    pub fn smtp(&self) -> &SmtpServer {
        self.smtp
            .as_ref()
            .expect("this app has no test SMTP server")
    }

    /// Posts a form. A sign-up (`/subscriptions`) carries a fresh form token, as the
    /// page gives one, unless the fields have a `form_token` of their own.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut fields: Vec<(&str, String)> =
            fields.iter().map(|(k, v)| (*k, v.to_string())).collect();
        if path == "/subscriptions" && !fields.iter().any(|(k, _)| *k == "form_token") {
            fields.push(("form_token", self.form_token().await));
        }
        self.client
            .post(format!("{}{path}", self.address))
            .form(&fields)
            .send()
            .await
            .unwrap()
    }

    /// Posts JSON; a sign-up gets a form token as `post_form` gives one.
    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        let mut body = body.clone();
        if path == "/subscriptions"
            && let Some(fields) = body.as_object_mut()
            && !fields.contains_key("form_token")
        {
            fields.insert("form_token".into(), self.form_token().await.into());
        }
        self.client
            .post(format!("{}{path}", self.address))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// A sign-up form token from `GET /subscriptions/form-token`.
    pub async fn form_token(&self) -> String {
        let answer: serde_json::Value = self
            .get("/subscriptions/form-token")
            .await
            .json()
            .await
            .unwrap();
        answer["form_token"].as_str().unwrap().to_owned()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap()
    }

    /// A complete, valid sign-up through the web form.
    pub async fn sign_up(&self, email: &str) -> reqwest::Response {
        self.sign_up_with(email, &[]).await
    }

    /// A sign-up through the web form, with `changes` to the usual fields (a field
    /// named twice is sent twice, as ticked boxes are).
    pub async fn sign_up_with(&self, email: &str, changes: &[(&str, &str)]) -> reqwest::Response {
        let mut fields = vec![("email", email), ("consent", "yes")];
        for (name, usual) in [
            ("name", "Jo Bloggs"),
            ("organisation", "Stroud Community Hub"),
            ("locality", "stroud"),
        ] {
            if !changes.iter().any(|(changed, _)| *changed == name) {
                fields.push((name, usual));
            }
        }
        fields.extend_from_slice(changes);
        self.post_form("/subscriptions", &fields).await
    }

    /// Signs `email` up and confirms through the mailed link, as a person would.
    pub async fn confirmed_subscriber(&self, email: &str) {
        self.confirmed_subscriber_with(email, &[]).await
    }

    /// Signs `email` up with `changes` to the usual fields, and confirms.
    pub async fn confirmed_subscriber_with(&self, email: &str, changes: &[(&str, &str)]) {
        self.sign_up_with(email, changes).await;
        let mail = self
            .smtp()
            .wait_for_mail_to(email, "Confirm your subscription to In Partnership")
            .await;
        let confirmed = self.confirm(&mail.confirmation_token()).await;
        assert_eq!(confirmed.status(), reqwest::StatusCode::OK);
    }

    /// Presses the Confirm button for `token`.
    pub async fn confirm(&self, token: &str) -> reqwest::Response {
        self.post_form("/subscriptions/confirm", &[("token", token)])
            .await
    }
}

/// Runs `newsletter admin ARGS` against the app's database, as staff would.
pub async fn admin(db_url: &str, args: &[&str]) -> std::process::Output {
    admin_with_input(db_url, args, "").await
}

/// Runs `newsletter admin ARGS` with `input` on its standard input (a pipe, as a
/// script would give it).
pub async fn admin_with_input(db_url: &str, args: &[&str], input: &str) -> std::process::Output {
    use std::io::Write;
    let db_url = db_url.to_owned();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let input = input.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_newsletter"))
            .arg("admin")
            .args(&args)
            .env("DATABASE_URL", db_url)
            // The same key as the running app, as an operator's environment would have.
            .env("SECRET_KEY", SECRET_KEY)
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the newsletter binary did not run");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

impl TestApp {
    /// Adds a confirmed subscriber through the API (an import of one), sending no
    /// mail: for a test whose worker is off, or that should not wait for confirmations.
    pub async fn add_confirmed(&self, token: &str, email: &str) {
        let added = self
            .api(reqwest::Method::POST, "/api/subscribers", token)
            .json(&serde_json::json!({
                "email": email, "name": "Reader", "mode": "confirmed",
                "source_note": "Members who asked for it",
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(added.status(), 201, "{}", added.text().await.unwrap());
    }

    /// A fresh API token made with `newsletter admin create-token`.
    pub async fn api_token(&self, name: &str) -> String {
        let output = admin(&self.db.url, &["create-token", name]).await;
        assert!(
            output.status.success(),
            "create-token failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .last()
            .expect("create-token printed nothing")
            .to_owned()
    }

    /// Another instance of the app on the same database and SMTP server, as behind a
    /// load balancer; it stops when dropped, or when `stop` is awaited.
    pub async fn another_instance(&self) -> Instance {
        self.another_instance_with(|_| {}).await
    }

    /// Another instance, after `customise` has had its way with its settings.
    pub async fn another_instance_with(&self, customise: impl FnOnce(&mut Settings)) -> Instance {
        let mut settings = test_settings(&self.db.url, &self.smtp().url());
        customise(&mut settings);
        let app = Application::build(settings)
            .await
            .expect("the second instance failed to start");
        let address = format!("http://{}", app.local_addr());
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        Instance {
            address,
            stop,
            task,
        }
    }

    /// Creates an issue through the API (which must answer 201) and returns it.
    pub async fn create_issue(&self, token: &str, body: serde_json::Value) -> serde_json::Value {
        let response = self
            .api(reqwest::Method::POST, "/api/issues", token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::CREATED);
        response.json().await.unwrap()
    }

    /// Schedules the issue for now, and waits until every copy has been sent.
    pub async fn send_now_and_wait(&self, token: &str, id: &str) {
        let scheduled = self
            .api(
                reqwest::Method::POST,
                &format!("/api/issues/{id}/schedule"),
                token,
            )
            .json(&serde_json::json!({"send_at": "now"}))
            .send()
            .await
            .unwrap();
        assert_eq!(scheduled.status(), reqwest::StatusCode::OK);
        wait_until("the issue is sent", || async {
            self.issue_status(token, id).await == "sent"
        })
        .await;
    }

    /// Creates an issue and schedules it for now; returns its id.
    pub async fn send_issue(&self, token: &str, subject: &str) -> String {
        let issue = self
            .create_issue(
                token,
                serde_json::json!({
                    "subject": subject,
                    "preheader": "News from the partnership",
                    "body_markdown": "## This quarter\n\nNews from the [partnership](https://example.org/).",
                }),
            )
            .await;
        let id = issue["id"].as_str().unwrap().to_owned();
        let scheduled = self
            .api(
                reqwest::Method::POST,
                &format!("/api/issues/{id}/schedule"),
                token,
            )
            .json(&serde_json::json!({"send_at": "now"}))
            .send()
            .await
            .unwrap();
        assert_eq!(scheduled.status(), reqwest::StatusCode::OK);
        id
    }

    /// The issue's numbers from `GET /api/issues/{id}/stats`.
    pub async fn stats(&self, token: &str, id: &str) -> serde_json::Value {
        self.api(
            reqwest::Method::GET,
            &format!("/api/issues/{id}/stats"),
            token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
    }

    /// The issue's status from the API.
    pub async fn issue_status(&self, token: &str, id: &str) -> String {
        let issue: serde_json::Value = self
            .api(reqwest::Method::GET, &format!("/api/issues/{id}"), token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        issue["status"].as_str().unwrap().to_owned()
    }

    /// A request to the staff API with `token`.
    pub fn api(&self, method: reqwest::Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(token)
    }
}

/// A running instance of the app.
pub struct Instance {
    /// Where it listens: `http://127.0.0.1:PORT`.
    pub address: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Instance {
    /// Stops it and waits until its worker has finished.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

/// Polls `check` until it returns true, failing the test after a deadline.
pub async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
