//! `/api/bounces` and `/api/suppressions`: what came back from the mail world, and the
//! list of addresses no mail goes to (search, add, import, lift).

use axum::{
    Json,
    extract::{Query, State, rejection::QueryRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiCaller, ApiJson};
use crate::{
    store::{InboundFilter, InboundSummary, Removal, SuppressionEntry},
    web::{
        AppError, AppState, ErrorBody,
        suppression_actions::{self as actions, SuppressionImport},
    },
};

/// What the text check accepts, which the derived schemas cannot say: one line has no
/// control character at all; a CSV may have tabs and line breaks.
pub fn rules(spec: &mut serde_json::Value) {
    use super::issues::{LINE, TEXT};
    let line = format!("^{LINE}*$");
    let text = format!("^{TEXT}*$");
    let schemas = &mut spec["components"]["schemas"];
    for (schema, field, pattern) in [
        ("NewSuppressionBody", "email", &line),
        ("NewSuppressionBody", "note", &line),
        ("LiftBody", "address", &line),
        ("LiftBody", "note", &line),
        ("ImportBody", "csv", &text),
    ] {
        schemas[schema]["properties"][field]["pattern"] = pattern.as_str().into();
    }
    let parameters = spec["paths"]["/api/suppressions"]["get"]["parameters"]
        .as_array_mut()
        .into_iter()
        .flatten();
    for parameter in parameters.filter(|p| p["name"] == "search") {
        parameter["schema"]["pattern"] = line.as_str().into();
    }
}

fn by(caller: &ApiCaller) -> String {
    format!("API token \u{201c}{}\u{201d}", caller.0)
}

/// Query parameters that did not parse: a 422 that says which are allowed.
fn bad_query(message: &'static str) -> impl FnOnce(QueryRejection) -> AppError {
    move |_| AppError::json(StatusCode::UNPROCESSABLE_ENTITY, message)
}

#[derive(Deserialize, ToSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BounceList {
    /// Bounces and complaints that were acted on or counted.
    Returns,
    /// What a person should look at: not understood, or about no copy of ours.
    Unrecognised,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BounceParams {
    /// `returns` (the default) or `unrecognised`.
    #[param(inline)]
    show: Option<BounceList>,
    /// How many, newest first (1 to 500; 100 if not given).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct BounceListBody {
    messages: Vec<InboundSummary>,
}

#[utoipa::path(
    get,
    path = "/api/bounces",
    params(BounceParams),
    responses(
        (status = 200, description = "Messages that came back, newest first, with what was read in each and what it did", body = BounceListBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn list_bounces(
    State(state): State<AppState>,
    params: Result<Query<BounceParams>, QueryRejection>,
) -> Result<Json<BounceListBody>, AppError> {
    let Query(params) = params.map_err(bad_query(
        "show must be returns or unrecognised; limit 1 to 500.",
    ))?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(AppError::json(
            StatusCode::UNPROCESSABLE_ENTITY,
            "limit must be from 1 to 500.",
        ));
    }
    let filter = match params.show.unwrap_or(BounceList::Returns) {
        BounceList::Returns => InboundFilter::Returns,
        BounceList::Unrecognised => InboundFilter::NeedsAPerson,
    };
    let messages = state.store.inbound_messages(filter, limit).await?;
    Ok(Json(BounceListBody { messages }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SuppressionParams {
    /// An address (or an entry's key): only its entry, if it is on the list.
    #[param(max_length = 254)]
    search: Option<String>,
    #[param(minimum = 0, maximum = 1000000)]
    offset: Option<u32>,
    /// 1 to 500; 100 if not given.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct SuppressionListBody {
    entries: Vec<SuppressionEntry>,
    /// How many entries match in all.
    total: i64,
}

#[utoipa::path(
    get,
    path = "/api/suppressions",
    params(SuppressionParams),
    responses(
        (status = 200, description = "The suppression list, newest first", body = SuppressionListBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn list_suppressions(
    State(state): State<AppState>,
    params: Result<Query<SuppressionParams>, QueryRejection>,
) -> Result<Json<SuppressionListBody>, AppError> {
    let Query(params) = params.map_err(bad_query(
        "offset must be 0 to 1000000, and limit 1 to 500.",
    ))?;
    let (offset, limit) = (params.offset.unwrap_or(0), params.limit.unwrap_or(100));
    if offset > 1_000_000 || !(1..=500).contains(&limit) {
        return Err(AppError::json(
            StatusCode::UNPROCESSABLE_ENTITY,
            "offset must be 0 to 1000000, and limit 1 to 500.",
        ));
    }
    if params
        .search
        .as_ref()
        .is_some_and(|s| s.chars().count() > 254)
    {
        return Err(AppError::json(
            StatusCode::UNPROCESSABLE_ENTITY,
            "search is an address: 254 characters at most.",
        ));
    }
    super::one_line("search", params.search.as_deref())?;
    let page = actions::page(&state, params.search.as_deref(), offset, limit).await?;
    Ok(Json(SuppressionListBody {
        entries: page.entries,
        total: page.total,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSuppressionBody {
    /// The address to send nothing to.
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// Why, for whoever looks later.
    #[schema(max_length = 500)]
    note: Option<String>,
}

/// `{"added": true}`, or `false` when it was on the list already.
#[derive(Serialize, ToSchema)]
pub struct AddedBody {
    added: bool,
}

#[utoipa::path(
    post,
    path = "/api/suppressions",
    request_body = NewSuppressionBody,
    responses(
        (status = 201, description = "Put on the list", body = AddedBody),
        (status = 200, description = "It was on the list already", body = AddedBody),
        (status = 422, description = "Not an address the service can send to, or a note too long", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn add_suppression(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<ApiCaller>,
    ApiJson(body): ApiJson<NewSuppressionBody>,
) -> Result<Response, AppError> {
    let address = actions::address("email", &body.email).map_err(|e| AppError::Invalid(vec![e]))?;
    if body.note.as_ref().is_some_and(|n| n.chars().count() > 500) {
        return Err(AppError::Invalid(vec![crate::fields::FieldError::new(
            "note",
            "A note is 500 characters at most.",
        )]));
    }
    let added = actions::add(&state, &address, body.note.as_deref(), &by(&caller)).await?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(AddedBody { added })).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LiftBody {
    /// The address, or the entry's key (for an entry whose person was erased).
    #[schema(max_length = 254)]
    address: String,
    /// Why, for whoever looks later.
    #[schema(max_length = 500)]
    note: Option<String>,
}

/// `{"lifted": true}`
#[derive(Serialize, ToSchema)]
pub struct LiftedBody {
    lifted: bool,
}

#[utoipa::path(
    post,
    path = "/api/suppressions/lift",
    request_body = LiftBody,
    responses(
        (status = 200, description = "Taken off the list: mail goes to the address again", body = LiftedBody),
        (status = 404, description = "The address is not on the list", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn lift_suppression(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<ApiCaller>,
    ApiJson(body): ApiJson<LiftBody>,
) -> Result<Json<LiftedBody>, AppError> {
    if body.address.chars().count() > 254
        || body.note.as_ref().is_some_and(|n| n.chars().count() > 500)
    {
        return Err(AppError::json(
            StatusCode::UNPROCESSABLE_ENTITY,
            "address is 254 characters at most, and note 500.",
        ));
    }
    match actions::lift(&state, &body.address, body.note.as_deref(), &by(&caller)).await? {
        Removal::Removed => Ok(Json(LiftedBody { lifted: true })),
        Removal::NotFound => Err(AppError::json(
            StatusCode::NOT_FOUND,
            "That address is not on the suppression list.",
        )),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportBody {
    /// The CSV a previous provider exported (Mailchimp, SendGrid, Mailgun, Postmark):
    /// a header naming the address column (`email`, `email address`, `address`), or an
    /// address first on each line.
    csv: String,
}

#[utoipa::path(
    post,
    path = "/api/suppressions/import",
    request_body = ImportBody,
    responses(
        (status = 200, description = "What was added, what was listed already, and the lines that hold no address", body = SuppressionImport),
        (status = 422, description = "The file cannot be read: its problem", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn import_suppressions(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<ApiCaller>,
    ApiJson(body): ApiJson<ImportBody>,
) -> Result<Json<SuppressionImport>, AppError> {
    match actions::import(&state, body.csv.as_bytes(), &by(&caller)).await? {
        Ok(done) => Ok(Json(done)),
        Err(problem) => Err(AppError::json(StatusCode::UNPROCESSABLE_ENTITY, problem)),
    }
}
