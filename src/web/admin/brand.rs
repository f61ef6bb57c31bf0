//! The brand page (admins): the newsletter's names, logo, colours, who sends it, the
//! privacy notice and the sign-up wording. Saving checks every field (`brand::Brand`:
//! colour pairs under WCAG AA are refused with their ratio) and makes a new version,
//! shown at once on this instance and within seconds on the others.

use std::collections::BTreeMap;

use axum::{
    Extension,
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    routing::{MethodRouter, get},
};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{AdminFrame, FormParts, Staff};
use crate::{
    brand::{
        Brand, BrandVersion, Logo, consent_version_name,
        contrast::{AA_TEXT, Colour, ratio_words},
    },
    fields::FieldError,
    store::NewBrand,
    web::{AppError, AppState, pages::render},
};

pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![("/admin/brand", get(page).post(save))]
}

#[derive(Serialize)]
struct Pair {
    what: String,
    ratio: String,
    passes: bool,
}

#[derive(Serialize)]
struct BrandView {
    #[serde(flatten)]
    frame: AdminFrame,
    form: Brand,
    version: i64,
    consent_version: String,
    errors: BTreeMap<String, String>,
    error_list: Vec<FieldError>,
    notice: Option<&'static str>,
    pairs: Vec<Pair>,
}

/// The contrast of the saved colours, as the page reports it.
fn pairs(brand: &Brand) -> Vec<Pair> {
    brand
        .contrast_pairs()
        .into_iter()
        .map(|(_, what, text, background)| {
            let ratio = text
                .unwrap_or(Colour::WHITE)
                .contrast(background.unwrap_or(Colour::WHITE));
            let mut words = what.chars();
            Pair {
                what: words
                    .next()
                    .map(|first| first.to_uppercase().chain(words).collect())
                    .unwrap_or_default(),
                ratio: ratio_words(ratio),
                passes: ratio >= AA_TEXT,
            }
        })
        .collect()
}

fn view(staff: &Staff, saved: &BrandVersion, form: Brand, errors: Vec<FieldError>) -> BrandView {
    BrandView {
        frame: AdminFrame::of(staff),
        pairs: pairs(&saved.brand),
        form,
        version: saved.version,
        consent_version: saved.consent_version.clone(),
        errors: errors
            .iter()
            .map(|e| (e.field.to_string(), e.message.clone()))
            .collect(),
        error_list: errors,
        notice: None,
    }
}

fn brand_page(status: StatusCode, view: &BrandView) -> Response {
    let title = if view.error_list.is_empty() {
        "Brand and wording"
    } else {
        "Error: Brand and wording"
    };
    (status, render("pages/admin_brand.html", title, view)).into_response()
}

#[derive(Deserialize)]
struct Done {
    done: Option<String>,
}

async fn page(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Query(done): Query<Done>,
) -> Result<Response, AppError> {
    let saved = state.store.current_brand().await?;
    let mut view = view(&staff, &saved, saved.brand.clone(), Vec::new());
    if done.done.as_deref() == Some("saved") {
        view.notice = Some("Saved: every page and mail from now on uses it.");
    }
    Ok(brand_page(StatusCode::OK, &view))
}

/// The brand the form describes, with the logo it keeps, uploads or removes.
async fn submitted(
    state: &AppState,
    staff: &Staff,
    form: &FormParts,
    saved: &Brand,
) -> anyhow::Result<(Brand, Vec<FieldError>)> {
    let text = |name: &str| form.text(name).unwrap_or_default();
    let mut errors = Vec::new();
    let alt = text("logo_alt");
    let mut logo = saved.logo.clone().map(|logo| Logo {
        alt: alt.clone(),
        ..logo
    });
    if form.text("remove_logo").is_some() {
        logo = None;
    }
    if let Some(file) = form.part("logo").filter(|p| !p.data.is_empty()) {
        match super::issue_images::keep_upload(state, staff, file).await? {
            Ok(image) => {
                logo = Some(Logo {
                    path: image.path(),
                    width: image.width,
                    height: image.height,
                    alt: alt.clone(),
                });
            }
            Err(refusal) => errors.push(FieldError::new("logo", refusal.to_string())),
        }
    }
    let brand = Brand {
        organisation: text("organisation"),
        newsletter: text("newsletter"),
        description: text("description"),
        logo,
        header_colour: text("header_colour"),
        header_text_colour: text("header_text_colour"),
        link_colour: text("link_colour"),
        postal_address: text("postal_address"),
        contact: text("contact"),
        privacy_url: text("privacy_url"),
        signup_intro: text("signup_intro"),
        consent_text: text("consent_text"),
    };
    Ok((brand, errors))
}

#[tracing::instrument(skip_all)]
async fn save(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    form: Option<Extension<FormParts>>,
) -> Result<Response, AppError> {
    let form = form.map(|Extension(f)| f).unwrap_or_default();
    let saved = state.store.current_brand().await?;
    let (brand, mut errors) = submitted(&state, &staff, &form, &saved.brand).await?;
    let brand = match brand.clone().check() {
        Ok(checked) if errors.is_empty() => checked,
        Ok(_) => brand,
        Err(problems) => {
            errors.extend(problems);
            brand
        }
    };
    if !errors.is_empty() {
        let view = view(&staff, &saved, brand, errors);
        return Ok(brand_page(StatusCode::UNPROCESSABLE_ENTITY, &view));
    }
    let now = Utc::now();
    let version = state
        .store
        .save_brand(&NewBrand {
            brand: &brand,
            consent_version: &consent_version_name(&brand.consent_text, now.date_naive()),
            by: &staff.user.email,
            now,
        })
        .await?;
    tracing::info!(version = version.version, "Brand saved");
    state.brand.saved(version);
    Ok(Redirect::to("/admin/brand?done=saved").into_response())
}
