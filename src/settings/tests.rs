use super::*;

fn settings(pairs: &[(&str, &str)]) -> anyhow::Result<Settings> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::from_lookup(|k| map.get(k).cloned())
}

#[test]
fn a_bounce_mailbox_must_be_a_plain_short_address() {
    assert_eq!(settings(&[]).unwrap().bounce_address, None);
    let set = settings(&[("BOUNCE_ADDRESS", "bounces@news.example.org")]).unwrap();
    assert_eq!(
        set.bounce_address.as_deref(),
        Some("bounces@news.example.org")
    );
    for bad in [
        "bounces",
        "bounces+x@news.example.org",
        "Bounces <bounces@news.example.org>",
        "a-very-long-bounce-mailbox-name@news.example.org",
        "bounces@localhost",
    ] {
        let err = settings(&[("BOUNCE_ADDRESS", bad)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("BOUNCE_ADDRESS"), "{bad}: {err}");
    }
}

#[test]
fn defaults_run_on_a_fresh_machine() {
    let s = settings(&[]).unwrap();
    assert_eq!(s.database_url, "sqlite://newsletter.db");
    assert_eq!(s.public_url, "http://127.0.0.1:8080");
    assert_eq!(s.smtp_url, None);
    assert_eq!(s.confirmation_ttl, Duration::from_secs(7 * 24 * 3600));
    assert_eq!(s.key_file(), Some(PathBuf::from("newsletter.key")));
}

#[test]
fn the_key_file_sits_beside_a_sqlite_database_and_is_given_for_postgres() {
    let s = settings(&[("DATABASE_URL", "sqlite:///var/lib/nl/news.db?mode=rwc")]).unwrap();
    assert_eq!(s.key_file(), Some(PathBuf::from("/var/lib/nl/news.key")));
    let s = settings(&[("DATABASE_URL", "postgres://db/newsletter")]).unwrap();
    assert_eq!(s.key_file(), None);
    let s = settings(&[
        ("DATABASE_URL", "postgres://db/newsletter"),
        ("SECRET_KEY_FILE", "/etc/nl/secret.key"),
        (
            "PREVIOUS_SECRET_KEYS",
            &format!("{0}a, {0}b", "k".repeat(32)),
        ),
    ])
    .unwrap();
    assert_eq!(s.key_file(), Some(PathBuf::from("/etc/nl/secret.key")));
    assert_eq!(s.previous_secret_keys.len(), 2);
    let err = settings(&[("PREVIOUS_SECRET_KEYS", "short")]).unwrap_err();
    assert!(err.to_string().contains("PREVIOUS_SECRET_KEYS"));
}

#[test]
fn public_url_follows_bind_address_and_loses_trailing_slash() {
    let s = settings(&[("BIND_ADDRESS", "0.0.0.0:9000")]).unwrap();
    assert_eq!(s.public_url, "http://0.0.0.0:9000");
    let s = settings(&[("PUBLIC_URL", "https://news.example.org/")]).unwrap();
    assert_eq!(s.public_url, "https://news.example.org");
}

#[test]
fn bad_values_are_refused_with_the_name() {
    let err = settings(&[("SECRET_KEY", "short")]).unwrap_err();
    assert!(err.to_string().contains("SECRET_KEY"));
    let err = settings(&[("MAIL_CONCURRENCY", "lots")]).unwrap_err();
    assert!(err.to_string().contains("MAIL_CONCURRENCY"));
    let err = settings(&[("TRUSTED_PROXIES", "10.0.0.0/8, proxy.example.org")]).unwrap_err();
    assert!(err.to_string().contains("TRUSTED_PROXIES"));
    let s = settings(&[("TRUSTED_PROXIES", "10.0.0.0/8 ::1")]).unwrap();
    assert_eq!(s.trusted_proxies.len(), 2);
    let err = settings(&[("PUBLIC_URL", "news.example.org")]).unwrap_err();
    assert!(err.to_string().contains("PUBLIC_URL"));
}

#[test]
fn mail_through_a_relay_needs_a_public_https_address() {
    let relay = ("SMTP_URL", "smtp://relay.example.org:587");
    for url in [
        "http://127.0.0.1:8080",
        "https://localhost",
        "https://[::1]:8443/news",
        "http://0.0.0.0:8080",
        "http://news.example.org",
    ] {
        let s = settings(&[relay, ("PUBLIC_URL", url)]).unwrap();
        let problem = s.public_url_problem().unwrap_or_default();
        assert!(problem.contains(url), "{url}: {problem:?}");
        assert!(problem.contains("ALLOW_INSECURE_PUBLIC_URL"));
    }
    // The default PUBLIC_URL too, which is what happened.
    assert!(settings(&[relay]).unwrap().public_url_problem().is_some());
    for pairs in [
        vec![relay, ("PUBLIC_URL", "https://news.example.org")],
        vec![("PUBLIC_URL", "http://127.0.0.1:8080")],
        vec![relay, ("ALLOW_INSECURE_PUBLIC_URL", "true")],
    ] {
        assert_eq!(
            settings(&pairs).unwrap().public_url_problem(),
            None,
            "{pairs:?}"
        );
    }
}

#[test]
fn toml_values_are_flattened() {
    let values = parse_toml("database_url = \"sqlite://x.db\"\nmail_concurrency = 3\n").unwrap();
    assert_eq!(values["database_url"], "sqlite://x.db");
    assert_eq!(values["mail_concurrency"], "3");
    assert!(parse_toml("nested = { a = 1 }").is_err());
}
