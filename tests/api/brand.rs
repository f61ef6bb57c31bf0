//! The brand page, as an admin at the charity uses it: a colour pair that fails WCAG AA
//! is refused with its ratio; a new name, logo, colours, address and consent sentence
//! reach the sign-up page, the mails and the ledger, and earlier sign-ups keep the
//! words they agreed to.

use std::io::Cursor;

use image::{DynamicImage, ImageBuffer, ImageFormat, Rgb};
use reqwest::{Method, StatusCode, header};

use crate::on_both_backends;
use crate::support::{
    Backend, TestApp,
    staff::{StaffSession, location, multipart_with},
};

on_both_backends!(
    a_colour_pair_under_aa_is_refused_with_its_ratio_and_nothing_changes,
    a_new_brand_reaches_pages_mails_and_the_ledger,
);

/// The brand form as it comes filled in, with `changes` made.
fn brand_form(changes: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut fields = vec![
        ("newsletter", "In Partnership"),
        ("organisation", "Gloucestershire VCSE Strategic Partnership"),
        (
            "description",
            "the quarterly newsletter of the Gloucestershire VCSE Strategic Partnership",
        ),
        ("logo_alt", ""),
        ("header_colour", "#1d4f91"),
        ("header_text_colour", "#ffffff"),
        ("link_colour", "#1d4f91"),
        ("postal_address", ""),
        ("contact", ""),
        ("privacy_url", ""),
        ("signup_intro", "Sign up for the news."),
        ("consent_text", newsletter::brand::DEFAULT_CONSENT),
    ];
    for (name, value) in changes {
        fields.iter_mut().find(|(n, _)| n == name).unwrap().1 = value;
    }
    fields
}

async fn save_brand(
    app: &TestApp,
    admin: &StaffSession,
    fields: &[(&str, &str)],
    logo: Option<(&str, &[u8])>,
) -> reqwest::Response {
    let mut all = vec![("csrf", admin.csrf.as_str())];
    all.extend_from_slice(fields);
    let (content_type, body) = multipart_with(&all, "logo", "image/png", logo);
    app.as_staff(admin, Method::POST, "/admin/brand")
        .header(header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

fn logo_png() -> Vec<u8> {
    let picture = DynamicImage::ImageRgb8(ImageBuffer::from_pixel(400, 100, Rgb([0, 94, 165])));
    let mut out = Cursor::new(Vec::new());
    picture.write_to(&mut out, ImageFormat::Png).unwrap();
    out.into_inner()
}

async fn a_colour_pair_under_aa_is_refused_with_its_ratio_and_nothing_changes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.staff("admin@example.org", "admin").await;
    let refused = save_brand(
        &app,
        &admin,
        &brand_form(&[("header_colour", "#ffdd00"), ("link_colour", "#999999")]),
        None,
    )
    .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = refused.text().await.unwrap();
    assert!(page.contains("(#ffffff on #ffdd00) is 1.34 to 1"), "{page}");
    assert!(page.contains("(#999999 on #ffffff) is 2.84 to 1"));
    assert!(page.contains("value=\"#ffdd00\""), "what was typed is kept");

    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>";
    let refused = save_brand(&app, &admin, &brand_form(&[]), Some(("logo.png", svg))).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("SVG images are not accepted")
    );

    let db = app.db.inspect().await;
    assert_eq!(db.count("SELECT count(*) FROM brand_versions").await, 1);
    assert_eq!(db.count("SELECT count(*) FROM media").await, 0);
    let editor = app.staff("editor@example.org", "editor").await;
    assert_eq!(
        app.staff_get(&editor, "/admin/brand").await.status(),
        StatusCode::FORBIDDEN
    );
}

async fn a_new_brand_reaches_pages_mails_and_the_ledger(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.staff("admin@example.org", "admin").await;
    app.confirmed_subscriber("before@example.org").await;

    let consent = "Yes, send me Glos VCSE News by email. I can leave at any time.";
    let saved = save_brand(
        &app,
        &admin,
        &brand_form(&[
            ("newsletter", "Glos VCSE News"),
            ("organisation", "Gloucestershire VCSE Alliance"),
            (
                "description",
                "the monthly bulletin of the Gloucestershire VCSE Alliance",
            ),
            ("logo_alt", "Gloucestershire VCSE Alliance"),
            ("header_colour", "#0B0C0C"),
            ("link_colour", "#00703c"),
            ("postal_address", "Unit 4, Brunel Mall\r\nStroud GL5 2BP"),
            ("contact", "news@glos-vcse.example"),
            ("privacy_url", "https://glos-vcse.example/privacy"),
            (
                "signup_intro",
                "News for the sector, every month.\r\n\r\nWe confirm your address first.",
            ),
            ("consent_text", consent),
        ]),
        Some(("alliance logo.png", &logo_png())),
    )
    .await;
    assert_eq!(location(&saved), "/admin/brand?done=saved");
    let page = app
        .staff_get(&admin, "/admin/brand?done=saved")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Version 2;"), "{page}");
    assert!(
        page.contains("value=\"#0b0c0c\""),
        "colours are kept in one form"
    );

    let signup = app.get("/").await.text().await.unwrap();
    assert!(
        signup.contains("<h1>Sign up for Glos VCSE News</h1>"),
        "{signup}"
    );
    assert!(signup.contains(
        "<p>News for the sector, every month.</p>\n<p>We confirm your address first.</p>"
    ));
    assert!(signup.contains(consent));
    assert!(signup.contains("--brand: #0b0c0c;") && signup.contains("--link: #00703c;"));
    assert!(signup.contains("alt=\"Gloucestershire VCSE Alliance\" width=\"192\" height=\"48\""));
    assert!(signup.contains("Gloucestershire VCSE Alliance, Unit 4, Brunel Mall, Stroud GL5 2BP"));
    assert!(signup.contains("<a href=\"mailto:news@glos-vcse.example\">Contact us</a>"));

    app.sign_up("after@example.org").await;
    let mail = app
        .smtp()
        .wait_for_mail_to(
            "after@example.org",
            "Confirm your subscription to Glos VCSE News",
        )
        .await;
    let html = mail.decoded();
    assert!(html.contains("background:#0b0c0c;"), "{html}");
    assert!(html.contains("<img src=\"http://newsletter.test/media/"));
    assert!(html.contains("Gloucestershire VCSE Alliance, Unit 4, Brunel Mall, Stroud GL5 2BP"));
    assert!(html.contains("the monthly bulletin of the Gloucestershire VCSE Alliance"));

    // Each sign-up's ledger names the words that person was shown.
    let db = app.db.inspect().await;
    let versions = db
        .texts(
            "SELECT wording_version FROM consent_events WHERE kind = 'signup' ORDER BY occurred_at",
        )
        .await;
    assert_eq!(versions.len(), 2);
    assert_eq!(
        versions[0].as_deref(),
        Some(newsletter::brand::DEFAULT_CONSENT_VERSION)
    );
    let new_version = versions[1].clone().unwrap();
    assert!(new_version.starts_with("signup-20"), "{new_version}");
    assert_eq!(
        db.texts(
            "SELECT wording_hash FROM consent_events WHERE kind = 'signup' ORDER BY occurred_at"
        )
        .await[1],
        Some(newsletter::tokens::sha256_hex(consent.as_bytes()))
    );
    let before = db
        .id(
            "SELECT id FROM subscribers WHERE email = $1",
            "before@example.org",
        )
        .await;
    let ledger = app
        .staff_get(&admin, &format!("/admin/subscribers/{before}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        ledger.contains(newsletter::brand::DEFAULT_CONSENT),
        "the old words stay theirs"
    );

    // Saving again with the same words keeps the consent version.
    let again = save_brand(
        &app,
        &admin,
        &brand_form(&[
            ("newsletter", "Glos VCSE News"),
            ("logo_alt", "Gloucestershire VCSE Alliance"),
            ("consent_text", consent),
        ]),
        None,
    )
    .await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    assert_eq!(db.count("SELECT count(*) FROM consent_wordings").await, 2);
    assert_eq!(db.count("SELECT count(*) FROM brand_versions").await, 3);
}
