//! Images in issues, as comms staff add them from the editor: what is kept (upright,
//! 1200 wide at most, no EXIF or GPS, once however often it is uploaded), what is
//! refused and why, and how the image reaches the mail, the preview and the archive.

use std::io::Cursor;

use image::{DynamicImage, ImageBuffer, ImageFormat, Rgb};
use reqwest::{StatusCode, header};
use serde_json::Value;

use crate::on_both_backends;
use crate::support::{
    Backend, TestApp,
    staff::{StaffSession, location},
};

on_both_backends!(
    an_uploaded_photo_is_resized_stripped_and_served_for_good,
    uploads_that_are_not_what_they_seem_are_refused_and_nothing_is_kept,
    an_image_reaches_the_mail_and_the_archive_with_its_size,
    the_editor_script_gets_the_markdown_and_the_body_is_left_alone,
);

fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let picture = DynamicImage::ImageRgb8(ImageBuffer::from_fn(width, height, |x, y| {
        Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    }));
    let mut out = Cursor::new(Vec::new());
    picture.write_to(&mut out, ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let picture =
        DynamicImage::ImageRgb8(ImageBuffer::from_pixel(width, height, Rgb([9, 80, 160])));
    let mut out = Cursor::new(Vec::new());
    picture.write_to(&mut out, ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A JPEG from a phone: an EXIF block with a GPS position (51.87 N) after the start.
fn jpeg_with_gps(width: u32, height: u32) -> Vec<u8> {
    let plain = jpeg(width, height);
    let mut tiff = b"II\x2a\x00\x08\x00\x00\x00\x01\x00".to_vec();
    tiff.extend([0x25, 0x88, 4, 0, 1, 0, 0, 0, 26, 0, 0, 0, 0, 0, 0, 0]);
    tiff.extend([1, 0, 2, 0, 5, 0, 3, 0, 0, 0, 44, 0, 0, 0, 0, 0, 0, 0]);
    for (n, d) in [(51u32, 1u32), (52, 1), (1234, 100)] {
        tiff.extend(n.to_le_bytes());
        tiff.extend(d.to_le_bytes());
    }
    let mut out = plain[..2].to_vec();
    out.extend(b"\xff\xe1");
    out.extend(((tiff.len() + 8) as u16).to_be_bytes());
    out.extend(b"Exif\0\0");
    out.extend(tiff);
    out.extend(&plain[2..]);
    out
}

/// The CRC-32 that PNG chunks end with.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A draft written in the editor, and its page's path.
async fn draft(app: &TestApp, staff: &StaffSession) -> String {
    let saved = app
        .staff_post(
            staff,
            "/admin/issues",
            &[
                ("subject", "Spring news"),
                ("body_markdown", "## Hubs\n\nThe new hub opened in March."),
                ("template", "standard"),
            ],
        )
        .await;
    location(&saved).trim_end_matches("?done=saved").to_owned()
}

/// The body of the app's one issue, as stored.
async fn body_of(app: &TestApp) -> String {
    let db = app.db.inspect().await;
    let bodies = db.texts("SELECT body_markdown FROM issues").await;
    assert_eq!(bodies.len(), 1);
    bodies[0].clone().unwrap()
}

/// The `/media/...` address in the body's last image.
fn image_path(body: &str) -> String {
    let start = body.rfind("](/media/").expect("an image of ours") + 2;
    let end = start + body[start..].find(')').unwrap();
    body[start..end].to_owned()
}

async fn an_uploaded_photo_is_resized_stripped_and_served_for_good(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let staff = app.staff("editor@example.org", "editor").await;
    let issue = draft(&app, &staff).await;
    let upload = jpeg_with_gps(2400, 1600);
    assert!(contains(&upload, b"Exif"));

    let added = app
        .add_image(
            &staff,
            &issue,
            "Volunteers outside the Cinderford hub",
            Some(("IMG_2041.JPG", &upload)),
            false,
        )
        .await;
    assert_eq!(location(&added), format!("{issue}?done=image"));
    let body = body_of(&app).await;
    assert!(
        body.starts_with("## Hubs\n\nThe new hub opened in March.\n\n![Volunteers outside the Cinderford hub](/media/"),
        "{body}"
    );
    let path = image_path(&body);
    assert!(path.ends_with("-1200x800.jpg"), "{path}");

    let served = app.get(&path).await;
    assert_eq!(served.status(), StatusCode::OK);
    let headers = served.headers().clone();
    assert_eq!(headers[header::CONTENT_TYPE], "image/jpeg");
    assert!(
        headers[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let bytes = served.bytes().await.unwrap();
    let kept = image::load_from_memory(&bytes).unwrap();
    assert_eq!((kept.width(), kept.height()), (1200, 800));
    assert!(!contains(&bytes, b"Exif"), "no EXIF is served");
    assert!(
        !contains(&bytes, &1234u32.to_le_bytes()),
        "no GPS is served"
    );

    // Asked again with its tag, it has not changed.
    let again = app
        .client
        .get(format!("{}{path}", app.address))
        .header(header::IF_NONE_MATCH, headers[header::ETAG].clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    // The same photo uploaded twice is kept once.
    app.add_image(
        &staff,
        &issue,
        "The hub again",
        Some(("copy.jpg", &upload)),
        false,
    )
    .await;
    let db = app.db.inspect().await;
    assert_eq!(db.count("SELECT count(*) FROM media").await, 1);
    assert_eq!(image_path(&body_of(&app).await), path);

    // A name that is not one of ours, or says the wrong size, is not found.
    let wrong_size = path.replace("-1200x800.", "-1200x801.");
    let unknown = format!("/media/{}-1200x800.jpg", "0".repeat(64));
    for missing in [wrong_size.as_str(), unknown.as_str(), "/media/nothing.jpg"] {
        assert_eq!(
            app.get(missing).await.status(),
            StatusCode::NOT_FOUND,
            "{missing}"
        );
    }
}

async fn uploads_that_are_not_what_they_seem_are_refused_and_nothing_is_kept(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let staff = app.staff("editor@example.org", "editor").await;
    let issue = draft(&app, &staff).await;
    let body = body_of(&app).await;

    // A 50,000-pixel-square PNG in a few dozen bytes: a 1-pixel PNG's header, enlarged.
    let bomb = {
        let mut bomb = png(1, 1);
        bomb[16..24].copy_from_slice(&[50_000u32.to_be_bytes(), 50_000u32.to_be_bytes()].concat());
        let crc = crc32(&bomb[12..29]);
        bomb[29..33].copy_from_slice(&crc.to_be_bytes());
        bomb
    };
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"><rect width=\"9\" height=\"9\"/></svg>";
    let cases: [(&str, &str, &[u8], &str); 5] = [
        (
            "photo.jpg",
            "A photo",
            &png(40, 30),
            "it is really a PNG image",
        ),
        ("huge.png", "A diagram", &bomb, "is too large"),
        ("logo.svg", "Our logo", svg, "SVG images are not accepted"),
        (
            "notes.png",
            "Notes",
            b"Minutes of the March meeting",
            "not an image we take",
        ),
        ("hub.jpg", "  ", &jpeg(50, 50), "Say what the image shows"),
    ];
    for (file_name, alt, bytes, says) in cases {
        let refused = app
            .add_image(&staff, &issue, alt, Some((file_name, bytes)), false)
            .await;
        assert_eq!(
            refused.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{file_name}"
        );
        let page = refused.text().await.unwrap();
        assert!(page.contains(says), "{file_name}: {page}");
        let json = app
            .add_image(&staff, &issue, alt, Some((file_name, bytes)), true)
            .await;
        assert_eq!(
            json.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{file_name}"
        );
        let answer: Value = json.json().await.unwrap();
        let field = if alt.trim().is_empty() {
            "alt"
        } else {
            "image"
        };
        assert_eq!(answer["errors"][0]["field"], field, "{file_name}");
    }
    let nothing = app.add_image(&staff, &issue, "A photo", None, false).await;
    assert_eq!(nothing.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let db = app.db.inspect().await;
    assert_eq!(db.count("SELECT count(*) FROM media").await, 0);
    assert_eq!(body_of(&app).await, body);
}

async fn an_image_reaches_the_mail_and_the_archive_with_its_size(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let staff = app.staff("editor@example.org", "editor").await;
    let issue = draft(&app, &staff).await;
    app.add_image(
        &staff,
        &issue,
        "Map of the six localities",
        Some(("map.png", &png(1000, 500))),
        false,
    )
    .await;
    let path = image_path(&body_of(&app).await);
    assert!(path.ends_with("-1000x500.png"), "{path}");
    let whole = format!("http://newsletter.test{path}");
    let sized = format!(
        "<img src=\"{whole}\" alt=\"Map of the six localities\" width=\"552\" height=\"276\""
    );

    let preview = app.staff_get(&staff, &format!("{issue}/preview")).await;
    let policy = preview.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("img-src 'self'"), "{policy}");
    assert!(preview.text().await.unwrap().contains(&sized));

    app.staff_post(
        &staff,
        &format!("{issue}/test"),
        &[("email", "editor@example.org")],
    )
    .await;
    let copy = app
        .smtp()
        .wait_for_mail_to("editor@example.org", "[Test] Spring news")
        .await;
    assert!(copy.decoded().contains(&sized), "{}", copy.decoded());
    assert!(
        copy.decoded()
            .contains("[Image: Map of the six localities]")
    );

    let confirm = app
        .staff_post(&staff, &format!("{issue}/send-now"), &[("confirm", "yes")])
        .await;
    assert_eq!(location(&confirm), format!("{issue}?done=sending"));
    let token = app.api_token("reader").await;
    let id = issue.rsplit('/').next().unwrap();
    crate::support::wait_until("the issue is sent", || async {
        app.issue_status(&token, id).await == "sent"
    })
    .await;
    let archive = app.get("/archive").await.text().await.unwrap();
    let start = archive.find("/archive/spring-news").unwrap();
    let slug = &archive[start..start + archive[start..].find('"').unwrap()];
    let page = app.get(slug).await;
    let policy = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("img-src 'self'"), "{policy}");
    assert!(page.text().await.unwrap().contains(&sized));
}

async fn the_editor_script_gets_the_markdown_and_the_body_is_left_alone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let staff = app.staff("editor@example.org", "editor").await;
    let issue = draft(&app, &staff).await;
    let body = body_of(&app).await;
    let added = app
        .add_image(
            &staff,
            &issue,
            "A [bracketed] *starred* caption",
            Some(("hub.jpg", &jpeg(600, 400))),
            true,
        )
        .await;
    assert_eq!(added.status(), StatusCode::OK);
    let answer: Value = added.json().await.unwrap();
    let src = answer["src"].as_str().unwrap();
    assert_eq!(
        answer["markdown"],
        format!("![A \\[bracketed\\] \\*starred\\* caption]({src})")
    );
    assert_eq!(
        (answer["width"].as_u64(), answer["height"].as_u64()),
        (Some(600), Some(400))
    );
    assert_eq!(body_of(&app).await, body, "the script puts it in the body");

    // Picked from the library, by its address.
    let (content_type, form) = crate::support::staff::multipart_with(
        &[
            ("csrf", staff.csrf.as_str()),
            ("alt", "The hub"),
            ("src", src),
        ],
        "image",
        "image/jpeg",
        None,
    );
    let picked = app
        .as_staff(&staff, reqwest::Method::POST, &format!("{issue}/images"))
        .header(header::CONTENT_TYPE, content_type)
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(location(&picked), format!("{issue}?done=image"));
    assert!(
        body_of(&app)
            .await
            .ends_with(&format!("![The hub]({src})\n"))
    );
    let page = app.staff_get(&staff, &issue).await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(
        page.contains(&format!("<img src=\"{src}\" alt=\"\" width=\"160\"")),
        "the library lists it"
    );
}
