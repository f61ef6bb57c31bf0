//! Importing subscribers from CSV, in the staff UI and with the CLI: a preview that
//! changes nothing, a per-row report, a required source note, confirmed or invited,
//! never resubscribing anyone who left, admins only, and no personal data kept longer
//! than the report needs.

use reqwest::StatusCode;

use crate::on_both_backends;
use crate::support::{
    Backend, TestApp, admin,
    staff::{StaffSession, location},
};

on_both_backends!(
    an_admin_previews_then_imports_people_as_confirmed,
    invited_people_are_mailed_and_subscribe_only_when_they_confirm,
    bad_uploads_are_explained_and_nothing_is_stored,
    a_discarded_import_leaves_nothing_behind,
    import_rows_are_erased_with_the_person_and_deleted_after_a_while,
    the_cli_imports_by_the_same_rules,
    a_long_file_is_imported_in_batches_and_paged,
    a_mailchimp_export_imports_with_names_joined_and_unknown_localities_left_out,
);

const NOTE: &str = "Delegates of the 2026 VCSE Assembly who ticked the newsletter box";

async fn page(app: &TestApp, staff: &StaffSession, path: &str) -> String {
    let response = app.staff_get(staff, path).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.text().await.unwrap()
}

/// Uploads `csv` with the source note and mode; returns the import's page path.
async fn upload(app: &TestApp, staff: &StaffSession, csv: &str, mode: &str) -> String {
    let uploaded = app
        .staff_upload(
            staff,
            "/admin/imports",
            &[("source_note", NOTE), ("mode", mode)],
            Some(("people.csv", csv.as_bytes())),
            true,
        )
        .await;
    assert_eq!(uploaded.status(), StatusCode::SEE_OTHER);
    let path = location(&uploaded).to_owned();
    assert!(path.starts_with("/admin/imports/"), "{path}");
    path
}

/// The subscription status of `email`, if they have one.
async fn status_of(app: &TestApp, email: &str) -> Option<String> {
    let db = app.db.inspect().await;
    db.texts(
        "SELECT s.email || ' ' || sub.status
         FROM subscribers s JOIN subscriptions sub ON s.id = sub.subscriber_id",
    )
    .await
    .into_iter()
    .flatten()
    .find_map(|line| Some(line.strip_prefix(&format!("{email} "))?.to_owned()))
}

async fn an_admin_previews_then_imports_people_as_confirmed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.confirmed_subscriber("already@example.org").await;
    app.confirmed_subscriber("left@example.org").await;
    let admin = app.staff("admin@example.org", "admin").await;
    let db = app.db.inspect().await;
    let left = db
        .id(
            "SELECT id FROM subscribers WHERE email = $1",
            "left@example.org",
        )
        .await;
    app.staff_post(
        &admin,
        &format!("/admin/subscribers/{left}/unsubscribe"),
        &[],
    )
    .await;

    let form = page(&app, &admin, "/admin/imports").await;
    assert!(form.contains(r#"enctype="multipart/form-data""#));
    let csv = "email,name,organisation,locality,phone\n\
               new.person@example.org,New Person,Cheltenham Food Bank,Cheltenham,01234\n\
               already@example.org,Already Here,,,\n\
               left@example.org,Left Earlier,,,\n\
               not-an-address,Someone,,,\n\
               bad.place@example.org,Bad Place,,Bristol,\n\
               new.person@EXAMPLE.org,New Person Again,,,\n";
    let path = upload(&app, &admin, csv, "confirmed").await;
    assert!(path.ends_with("?ignored=phone"), "{path}");

    let preview = page(&app, &admin, &path).await;
    for expected in [
        "Import preview: people.csv",
        "Columns left out: phone.",
        "To import: 2",
        "Left unchanged: 1",
        "Refused: 3",
        "Subscribe 2 people",
        "Already subscribed.",
        "They unsubscribed: only they can subscribe again",
        "“not-an-address” is not an email address.",
        "“Bristol” is not one of the localities, so they are imported without one.",
        "The same address as line 2.",
        NOTE,
    ] {
        assert!(preview.contains(expected), "{expected}: {preview}");
    }
    assert_eq!(
        db.count("SELECT count(*) FROM subscribers").await,
        2,
        "the preview changes nothing"
    );
    let import_path = path.split('?').next().unwrap().to_owned();
    let refused = page(&app, &admin, &format!("{import_path}?show=refused")).await;
    assert!(refused.contains("Rows: refused"));
    assert!(!refused.contains("Cheltenham Food Bank"));

    let applied = app
        .staff_post(&admin, &format!("{import_path}/apply"), &[])
        .await;
    assert_eq!(location(&applied), format!("{import_path}?done=applied"));
    let report = page(&app, &admin, &format!("{import_path}?done=applied")).await;
    for expected in ["Import report: people.csv", "Subscribed: 2", "Refused: 3"] {
        assert!(report.contains(expected), "{expected}: {report}");
    }
    assert!(!report.contains("Subscribe 2 people"), "no second import");

    assert_eq!(
        status_of(&app, "new.person@example.org").await.as_deref(),
        Some("confirmed")
    );
    assert_eq!(
        status_of(&app, "left@example.org").await.as_deref(),
        Some("unsubscribed"),
        "an import never resubscribes"
    );
    assert_eq!(
        db.count(
            "SELECT count(*) FROM consent_events e JOIN imports i ON i.id = e.import_id
             WHERE e.kind = 'import' AND e.method = 'import'"
        )
        .await,
        2
    );
    assert_eq!(
        db.count("SELECT count(*) FROM outbox WHERE recipient = 'new.person@example.org'")
            .await,
        0,
        "people imported as confirmed are not mailed"
    );
    let person = db
        .id(
            "SELECT id FROM subscribers WHERE email = $1",
            "new.person@example.org",
        )
        .await;
    let ledger = page(&app, &admin, &format!("/admin/subscribers/{person}")).await;
    assert!(
        ledger.contains(&format!(r#"<a href="{import_path}">Imported</a>: {NOTE}"#)),
        "{ledger}"
    );
    assert!(ledger.contains("Cheltenham Food Bank"));

    let again = app
        .staff_post(&admin, &format!("{import_path}/apply"), &[])
        .await;
    assert_eq!(location(&again), format!("{import_path}?done=already"));
    assert_eq!(db.count("SELECT count(*) FROM subscribers").await, 4);
    let list = page(&app, &admin, "/admin/imports").await;
    assert!(list.contains(&format!(r#"<a href="{import_path}">people.csv</a>"#)));
}

async fn invited_people_are_mailed_and_subscribe_only_when_they_confirm(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.staff("admin@example.org", "admin").await;
    let csv = "Email;Full name;Status\ninvited@example.org;Invited Person;pending\n";
    let path = upload(&app, &admin, csv, "invite").await;
    let preview = page(&app, &admin, &path).await;
    assert!(preview.contains("Send 1 confirmation email<"), "{preview}");
    let applied = app.staff_post(&admin, &format!("{path}/apply"), &[]).await;
    assert_eq!(applied.status(), StatusCode::SEE_OTHER);
    let report = page(&app, &admin, &format!("{path}?done=applied")).await;
    assert!(report.contains("Sent a confirmation email: 1"), "{report}");

    let mail = app
        .smtp()
        .wait_for_mail_to(
            "invited@example.org",
            "Confirm your subscription to In Partnership",
        )
        .await;
    let text = mail.decoded();
    assert!(
        text.contains("would like to send you In Partnership"),
        "{text}"
    );
    assert!(!text.contains("probably you"), "they did not ask");
    assert_eq!(
        status_of(&app, "invited@example.org").await.as_deref(),
        Some("pending")
    );
    assert_eq!(
        app.confirm(&mail.confirmation_token()).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        status_of(&app, "invited@example.org").await.as_deref(),
        Some("confirmed")
    );
    let db = app.db.inspect().await;
    let ledger: Vec<String> = db
        .texts("SELECT kind || '/' || method FROM consent_events ORDER BY occurred_at, id")
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(ledger, ["signup/import", "confirm/link"]);
}

async fn bad_uploads_are_explained_and_nothing_is_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.staff("admin@example.org", "admin").await;
    let editor = app.staff("editor@example.org", "editor").await;
    let good = "email,name\njo@example.org,Jo\n";

    assert_eq!(
        app.staff_get(&editor, "/admin/imports").await.status(),
        StatusCode::FORBIDDEN
    );
    let by_editor = app
        .staff_upload(
            &editor,
            "/admin/imports",
            &[("source_note", NOTE), ("mode", "confirmed")],
            Some(("people.csv", good.as_bytes())),
            true,
        )
        .await;
    assert_eq!(by_editor.status(), StatusCode::FORBIDDEN);
    let subscribers = page(&app, &editor, "/admin/subscribers").await;
    assert!(!subscribers.contains("/admin/imports"));

    let no_csrf = app
        .staff_upload(
            &admin,
            "/admin/imports",
            &[("source_note", NOTE), ("mode", "confirmed")],
            Some(("people.csv", good.as_bytes())),
            false,
        )
        .await;
    assert_eq!(no_csrf.status(), StatusCode::FORBIDDEN);

    type Case<'a> = (
        &'a [(&'a str, &'a str)],
        Option<(&'a str, &'a [u8])>,
        &'a str,
    );
    let cases: [Case; 6] = [
        (&[], None, "Choose a CSV file to import."),
        (
            &[("mode", "confirmed")],
            Some(("people.csv", good.as_bytes())),
            "Say where these people",
        ),
        (
            &[("source_note", NOTE)],
            Some(("people.csv", good.as_bytes())),
            "Choose whether to subscribe them now",
        ),
        (
            &[("source_note", NOTE), ("mode", "confirmed")],
            Some(("people.csv", b"email,name\njo@example.org,J\xf6\n")),
            "not UTF-8",
        ),
        (
            &[("source_note", NOTE), ("mode", "confirmed")],
            Some(("people.csv", b"address,who\njo@example.org,Jo\n")),
            "there is no “email” column",
        ),
        (
            &[("source_note", NOTE), ("mode", "confirmed")],
            Some(("people.csv", b"email,name\n")),
            "nobody in it",
        ),
    ];
    for (fields, file, expected) in cases {
        let refused = app
            .staff_upload(&admin, "/admin/imports", fields, file, true)
            .await;
        assert_eq!(
            refused.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{expected}"
        );
        let body = refused.text().await.unwrap();
        assert!(body.contains(expected), "{expected}: {body}");
        assert!(body.contains("<title>Error: Import subscribers"));
        if fields.contains(&("source_note", NOTE)) {
            assert!(body.contains(NOTE), "the note is kept for another try");
        }
    }

    let plain_form = app.staff_post(&admin, "/admin/imports", &[]).await;
    assert_eq!(plain_form.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let too_big = "email,name\n".to_owned() + &"x@example.org,X\n".repeat(700_000);
    let refused = app
        .staff_upload(
            &admin,
            "/admin/imports",
            &[("source_note", NOTE), ("mode", "confirmed")],
            Some(("big.csv", too_big.as_bytes())),
            true,
        )
        .await;
    assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let garbled = app
        .as_staff(&admin, reqwest::Method::POST, "/admin/imports")
        .header(
            "content-type",
            "multipart/form-data; boundary=nothing-like-it",
        )
        .body("this is not a multipart body")
        .send()
        .await
        .unwrap();
    assert_eq!(garbled.status(), StatusCode::BAD_REQUEST);

    for path in [
        "/admin/imports/not-an-id".to_owned(),
        format!("/admin/imports/{}", uuid::Uuid::now_v7()),
    ] {
        assert_eq!(
            app.staff_get(&admin, &path).await.status(),
            StatusCode::NOT_FOUND
        );
    }
    let db = app.db.inspect().await;
    assert_eq!(db.count("SELECT count(*) FROM imports").await, 0);
    assert_eq!(db.count("SELECT count(*) FROM import_rows").await, 0);
    assert_eq!(db.count("SELECT count(*) FROM subscribers").await, 0);
}

async fn a_discarded_import_leaves_nothing_behind(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.staff("admin@example.org", "admin").await;
    let path = upload(&app, &admin, "email,name\njo@example.org,Jo\n", "invite").await;
    let discarded = app
        .staff_post(&admin, &format!("{path}/discard"), &[])
        .await;
    assert_eq!(
        location(&discarded),
        "/admin/imports?done=discarded&list=in-partnership"
    );
    let db = app.db.inspect().await;
    assert_eq!(db.count("SELECT count(*) FROM imports").await, 0);
    assert_eq!(db.count("SELECT count(*) FROM import_rows").await, 0);
    let apply = app.staff_post(&admin, &format!("{path}/apply"), &[]).await;
    assert_eq!(apply.status(), StatusCode::NOT_FOUND);
    assert_eq!(db.count("SELECT count(*) FROM subscribers").await, 0);

    // An applied import stays: it is the record of where people came from.
    let path = upload(&app, &admin, "email,name\njo@example.org,Jo\n", "confirmed").await;
    app.staff_post(&admin, &format!("{path}/apply"), &[]).await;
    let refused = app
        .staff_post(&admin, &format!("{path}/discard"), &[])
        .await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    assert_eq!(db.count("SELECT count(*) FROM imports").await, 1);
}

async fn import_rows_are_erased_with_the_person_and_deleted_after_a_while(backend: Backend) {
    let postgres = matches!(backend, Backend::Postgres(_));
    let app = TestApp::spawn(backend).await;
    let admin = app.staff("admin@example.org", "admin").await;
    let csv = "email,name,organisation\n\
               erase.me@example.org,Erasable Importee,Hidden Charity\n\
               erase.me@EXAMPLE.org,Erasable Again,\n\
               stays@example.org,Staying Importee,\n";
    let path = upload(&app, &admin, csv, "confirmed").await;
    app.staff_post(&admin, &format!("{path}/apply"), &[]).await;
    let db = app.db.inspect().await;
    let id = db
        .id(
            "SELECT id FROM subscribers WHERE email = $1",
            "erase.me@example.org",
        )
        .await;
    assert!(db.dump().await.contains("Erasable Again"));
    app.staff_post(&admin, &format!("/admin/subscribers/{id}/erase"), &[])
        .await;
    let after = db.dump().await;
    for personal in [
        "erase.me@example.org",
        "erase.me@EXAMPLE",
        "Erasable Importee",
        "Erasable Again",
        "Hidden Charity",
    ] {
        assert!(!after.contains(personal), "{personal} is still stored");
    }
    assert!(after.contains("Staying Importee"));
    let report = page(&app, &admin, &path).await;
    assert!(report.contains("stays@example.org"));

    // Rows go when the report has been kept long enough; the import's record stays.
    if postgres {
        db.execute("UPDATE imports SET created_at = created_at - interval '31 days'")
            .await;
    } else {
        db.execute("UPDATE imports SET created_at = created_at - 31 * 86400000")
            .await;
    }
    upload(
        &app,
        &admin,
        "email,name\nnext@example.org,Next\n",
        "confirmed",
    )
    .await;
    assert_eq!(
        db.count("SELECT count(*) FROM import_rows WHERE name = 'Staying Importee'")
            .await,
        0
    );
    assert_eq!(db.count("SELECT count(*) FROM import_rows").await, 1);
    let old = page(&app, &admin, &path).await;
    assert!(old.contains("were deleted 30 days after it"), "{old}");
    assert!(!old.contains("/apply"));
    assert_eq!(db.count("SELECT count(*) FROM imports").await, 2);
}

async fn the_cli_imports_by_the_same_rules(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.confirmed_subscriber("already@example.org").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("members.csv");
    std::fs::write(
        &file,
        "email,name,locality\n\
         cli.person@example.org,Cli Person,Stroud\n\
         already@example.org,Already,\n\
         broken,Broken,\n\
         invitee@example.org,Invitee,\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let db = app.db.inspect().await;

    let args = |mode: &'static str, dry_run: bool| {
        let mut args = vec![
            "import-subscribers",
            file,
            "--source-note",
            NOTE,
            "--mode",
            mode,
        ];
        if dry_run {
            args.push("--dry-run");
        }
        args
    };
    let dry = admin(&app.db.url, &args("confirmed", true)).await;
    assert!(dry.status.success());
    let stdout = String::from_utf8_lossy(&dry.stdout);
    assert!(
        stdout.contains("Dry run, nothing changed: 2 to import, 1 already subscribed, 1 refused."),
        "{stdout}"
    );
    assert!(
        String::from_utf8_lossy(&dry.stderr)
            .contains("Line 4: refused: “broken” is not an email address.")
    );
    assert_eq!(db.count("SELECT count(*) FROM imports").await, 0);
    assert_eq!(db.count("SELECT count(*) FROM subscribers").await, 1);

    let no_note = admin(
        &app.db.url,
        &[
            "import-subscribers",
            file,
            "--source-note",
            " ",
            "--mode",
            "invite",
        ],
    )
    .await;
    assert!(!no_note.status.success());
    assert!(String::from_utf8_lossy(&no_note.stderr).contains("--source-note"));
    assert_eq!(db.count("SELECT count(*) FROM imports").await, 0);

    let done = admin(&app.db.url, &args("invite", false)).await;
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert!(
        stdout.contains("invited 2, unchanged 1, refused 1"),
        "{stdout}"
    );
    // The running service sends what the command queued, with tokens it can open.
    let mail = app
        .smtp()
        .wait_for_mail_to(
            "invitee@example.org",
            "Confirm your subscription to In Partnership",
        )
        .await;
    assert_eq!(
        app.confirm(&mail.confirmation_token()).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        status_of(&app, "invitee@example.org").await.as_deref(),
        Some("confirmed")
    );
    assert_eq!(
        db.texts("SELECT created_by FROM imports").await,
        [Some("command line".to_owned())]
    );
}

async fn a_long_file_is_imported_in_batches_and_paged(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.staff("admin@example.org", "admin").await;
    // More than two batches, and far more than the 16 KiB other forms may send.
    let people = 2 * newsletter::audience::import::BATCH as usize + 1;
    let mut csv = "email,name,organisation\n".to_owned();
    for n in 0..people {
        csv.push_str(&format!(
            "member-{n:04}@example.org,Member {n},The Long Named Voluntary Organisation Number {n}\n"
        ));
    }
    assert!(csv.len() > 64 * 1024);
    let path = upload(&app, &admin, &csv, "confirmed").await;
    let preview = page(&app, &admin, &path).await;
    assert!(preview.contains(&format!("To import: {people}")));
    let pages = people.div_ceil(100);
    assert!(preview.contains(&format!("Page 1 of {pages}")));
    assert!(preview.contains("member-0099@example.org"));
    assert!(!preview.contains("member-0100@example.org"));
    let last = page(&app, &admin, &format!("{path}?page={pages}")).await;
    assert!(last.contains(&format!("member-{:04}@example.org", people - 1)));
    assert!(!last.contains(&format!("member-{:04}@example.org", people - 2)));

    app.staff_post(&admin, &format!("{path}/apply"), &[]).await;
    let report = page(&app, &admin, &path).await;
    assert!(
        report.contains(&format!("Subscribed: {people}")),
        "{report}"
    );
    let db = app.db.inspect().await;
    let people = people as i64;
    assert_eq!(
        db.count("SELECT count(*) FROM subscriptions WHERE status = 'confirmed'")
            .await,
        people
    );
    assert_eq!(
        db.count("SELECT count(*) FROM consent_events WHERE kind = 'import'")
            .await,
        people
    );
}

async fn a_mailchimp_export_imports_with_names_joined_and_unknown_localities_left_out(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mailchimp.csv");
    std::fs::write(
        &file,
        "Email Address,First Name,Last Name,Locality\n\
         jo@example.org,Jo,Bloggs,Gloucester City\n\
         al@example.org,Al,,Stroud\n",
    )
    .unwrap();
    let imported = admin(
        &app.db.url,
        &[
            "import-subscribers",
            file.to_str().unwrap(),
            "--source-note",
            NOTE,
            "--mode",
            "confirmed",
        ],
    )
    .await;
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let db = app.db.inspect().await;
    assert_eq!(
        db.texts(
            "SELECT name || ' ' || coalesce(locality, '(none)') FROM subscribers ORDER BY email"
        )
        .await,
        [
            Some("Al stroud".to_owned()),
            Some("Jo Bloggs (none)".to_owned())
        ]
    );
    // The row's report says why Jo has no locality.
    assert_eq!(
        db.texts("SELECT reason FROM import_rows WHERE email = 'jo@example.org'")
            .await,
        [Some(
            "“Gloucester City” is not one of the localities, so they are imported without one."
                .to_owned()
        )]
    );
}
