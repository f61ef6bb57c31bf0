//! Staff in the web UI, as a browser would be: accounts made with the CLI, the
//! sign-in form filled in, and requests that carry the session cookie and CSRF token.

use reqwest::{Method, StatusCode, header};

use super::{TestApp, admin_with_input};

/// The password every test staff member has.
pub const PASSWORD: &str = "a long and memorable passphrase";

/// A signed-in staff member: their session cookie and their forms' CSRF token.
pub struct StaffSession {
    pub session: String,
    pub csrf: String,
}

/// The value of cookie `name` in the response's `Set-Cookie` headers, and the whole header.
pub fn set_cookie(response: &reqwest::Response, name: &str) -> Option<(String, String)> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| {
            let value = v[name.len() + 1..].split(';').next().unwrap().to_owned();
            (value, v.to_owned())
        })
}

/// The first hidden CSRF field's value in a page.
pub fn csrf_in(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("the page has a CSRF field");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

pub fn location(response: &reqwest::Response) -> &str {
    response
        .headers()
        .get(header::LOCATION)
        .map_or("", |v| v.to_str().unwrap())
}

impl TestApp {
    /// `newsletter admin create-user EMAIL --role ROLE`, the password on stdin.
    pub async fn create_user(
        &self,
        email: &str,
        role: &str,
        password: &str,
    ) -> std::process::Output {
        admin_with_input(
            &self.db.url,
            &["create-user", email, "--role", role],
            &format!("{password}\n"),
        )
        .await
    }

    /// Fills in the sign-in form as a browser would; returns the answer.
    pub async fn sign_in(&self, email: &str, password: &str) -> reqwest::Response {
        self.sign_in_from(email, password, None).await
    }

    /// Signs in through a proxy that says the client is `forwarded_for`.
    pub async fn sign_in_from(
        &self,
        email: &str,
        password: &str,
        forwarded_for: Option<&str>,
    ) -> reqwest::Response {
        let form = self.get("/admin/login").await;
        assert_eq!(form.status(), StatusCode::OK);
        let (nonce, _) = set_cookie(&form, "nl_login").expect("the form sets its nonce cookie");
        let csrf = csrf_in(&form.text().await.unwrap());
        let mut request = self.client.post(format!("{}/admin/login", self.address));
        if let Some(client) = forwarded_for {
            request = request.header("x-forwarded-for", client);
        }
        request
            .header(header::COOKIE, format!("nl_login={nonce}"))
            .form(&[("email", email), ("password", password), ("csrf", &csrf)])
            .send()
            .await
            .unwrap()
    }

    /// A new staff member with `role`, signed in.
    pub async fn staff(&self, email: &str, role: &str) -> StaffSession {
        let created = self.create_user(email, role, PASSWORD).await;
        assert!(
            created.status.success(),
            "create-user failed: {}",
            String::from_utf8_lossy(&created.stderr)
        );
        let signed_in = self.sign_in(email, PASSWORD).await;
        assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
        let session = set_cookie(&signed_in, "nl_session")
            .expect("a session cookie")
            .0;
        let mut staff = StaffSession {
            session,
            csrf: String::new(),
        };
        let dashboard = self.staff_get(&staff, "/admin").await;
        staff.csrf = csrf_in(&dashboard.text().await.unwrap());
        staff
    }

    /// A request with the staff member's session cookie.
    pub fn as_staff(
        &self,
        staff: &StaffSession,
        method: Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.address))
            .header(header::COOKIE, format!("nl_session={}", staff.session))
    }

    pub async fn staff_get(&self, staff: &StaffSession, path: &str) -> reqwest::Response {
        self.as_staff(staff, Method::GET, path)
            .send()
            .await
            .unwrap()
    }

    /// Submits a form behind the sign-in, with the CSRF token added.
    pub async fn staff_post(
        &self,
        staff: &StaffSession,
        path: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut fields = fields.to_vec();
        fields.push(("csrf", &staff.csrf));
        self.as_staff(staff, Method::POST, path)
            .form(&fields)
            .send()
            .await
            .unwrap()
    }

    /// Submits a `multipart/form-data` form behind the sign-in, as a browser sends a
    /// file upload: `fields` (the CSRF token first, if `with_csrf`) then the file.
    pub async fn staff_upload(
        &self,
        staff: &StaffSession,
        path: &str,
        fields: &[(&str, &str)],
        file: Option<(&str, &[u8])>,
        with_csrf: bool,
    ) -> reqwest::Response {
        let (content_type, body) = multipart(
            &[
                if with_csrf {
                    vec![("csrf", staff.csrf.as_str())]
                } else {
                    vec![]
                },
                fields.to_vec(),
            ]
            .concat(),
            file,
        );
        self.as_staff(staff, Method::POST, path)
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// Adds an image to an issue from its editor, as the page's form (or, with `json`,
    /// its script) sends it.
    pub async fn add_image(
        &self,
        staff: &StaffSession,
        issue: &str,
        alt: &str,
        file: Option<(&str, &[u8])>,
        json: bool,
    ) -> reqwest::Response {
        let (content_type, body) = multipart_with(
            &[("csrf", staff.csrf.as_str()), ("alt", alt)],
            "image",
            "image/jpeg",
            file,
        );
        let mut request = self
            .as_staff(staff, Method::POST, &format!("{issue}/images"))
            .header(header::CONTENT_TYPE, content_type);
        if json {
            request = request.header(header::ACCEPT, "application/json");
        }
        request.body(body).send().await.unwrap()
    }
}

/// A `multipart/form-data` body with text `fields` and a `file` field (its file name
/// and bytes), and its content type.
pub fn multipart(fields: &[(&str, &str)], file: Option<(&str, &[u8])>) -> (String, Vec<u8>) {
    multipart_with(fields, "file", "text/csv", file)
}

/// `multipart`, with the file in the field `file_field`, sent as `content_type`.
pub fn multipart_with(
    fields: &[(&str, &str)],
    file_field: &str,
    content_type: &str,
    file: Option<(&str, &[u8])>,
) -> (String, Vec<u8>) {
    const BOUNDARY: &str = "----newsletter-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some((file_name, data)) = file {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{file_field}\"; filename=\"{file_name}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}
