//! What is wrong with one field of a form or a JSON body, for every check that names
//! one: the sign-up form, an issue's content, the staff pages and the API alike.

use std::borrow::Cow;

use serde::Serialize;

/// One field's problem, in words a person can act on. The field is named as the form or
/// the JSON names it (a path such as `list.tags[1]` for a nested JSON value).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: Cow<'static, str>,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
