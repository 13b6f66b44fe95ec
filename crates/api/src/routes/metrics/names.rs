use axum::Json;
use switchyard_monitoring::rollup::series_names;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, perm};
use crate::routes::Items;

/// The names `GET /api/v1/metrics/series` accepts as `metric`.
#[utoipa::path(get, operation_id = "list_metric_series_names", path = "/api/v1/metrics/series/names", tag = "monitoring",
    security(("bearer" = [])),
    responses((status = 200, body = Items<String>), (status = 403, body = ErrorBody)))]
pub async fn names(_auth: Auth<perm::ReadSystem>) -> ApiResult<Json<Items<String>>> {
    Ok(Json(Items {
        items: series_names().into_iter().map(str::to_owned).collect(),
    }))
}
