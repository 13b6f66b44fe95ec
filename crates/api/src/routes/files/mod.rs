//! `/api/v1/files`: uploads, their records and their content.

pub mod content;
pub mod delete;
pub mod get;
pub mod list;
pub mod upload;

use serde::Deserialize;
use switchyard_core::Timestamp;
use utoipa::IntoParams;

/// The query of a signed URL (instead of an `Authorization` header).
#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct Signed {
    /// A signed URL's expiry (milliseconds since the Unix epoch).
    pub expires: Option<i64>,
    /// A signed URL's signature.
    pub signature: Option<String>,
}

impl Signed {
    /// The expiry and signature, if the URL is signed (both or neither).
    pub fn parts(&self) -> Result<Option<(Timestamp, &str)>, crate::error::ApiError> {
        match (self.expires, self.signature.as_deref()) {
            (Some(e), Some(s)) => Ok(Some((Timestamp::from_millis(e), s))),
            (None, None) => Ok(None),
            _ => Err(crate::error::ApiError::new(
                switchyard_core::ErrorCode::InvalidParameter,
                "a signed URL needs both `expires` and `signature`",
            )),
        }
    }
}
