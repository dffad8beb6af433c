//! The admin port (`ADMIN_ADDR`): what operators and scrapers use, on its own listener so that
//! the public API port never serves it.
//!
//! | route | answer |
//! |---|---|
//! | `GET /healthz`, `GET /readyz` | as on the API port |
//! | `GET /metrics` | Prometheus text |
//! | `GET /admin/generations[?user=SUB]` | 200 `{"generations":[{session_id, message_id, user, owner, state, started_at, completion_tokens}]}`: every running generation of the deployment, whichever replica runs it |
//! | `POST /admin/users/{sub}/cancel` | 200 `{"cancelled":N}`: cancels every running generation of that user |
//! | `POST /admin/sessions/{session_id}/cancel` | 200 `{"cancelled":N}`: cancels every running message of the session |
//!
//! The cancels are [`Service::cancel`], the one idempotent cancel of the API: each client gets
//! its `done{cancelled}`, and `N` counts the generations this call ended (`cancelling`).
//! With `ADMIN_TOKEN` set, every `/admin` route answers 401 `unauthorized` without
//! `Authorization: Bearer <token>`; `/metrics` and the probes stay open (an internal port).

use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use shared_proto::api::{BulkCancelResponse, GenerationsResponse};
use shared_proto::ErrorCode;

use crate::api::{parse_id, readiness, readyz, require_token, ApiState, HttpError};
use crate::service::Service;

/// Registers the admin port's routes; the app also holds the [`crate::auth::ApiAuth`] of
/// `ADMIN_TOKEN` and the [`ApiState`] of the API.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(service_kit::healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics_route))
        .service(
            web::scope("/admin")
                .wrap(from_fn(require_token))
                .route("/generations", web::get().to(generations))
                .route("/users/{sub}/cancel", web::post().to(cancel_user))
                .route(
                    "/sessions/{session_id}/cancel",
                    web::post().to(cancel_session),
                ),
        );
}

async fn metrics_route(state: web::Data<ApiState>) -> HttpResponse {
    crate::telemetry::set_running(state.service.running());
    let _ = readiness(&state).await;
    service_kit::metrics_response()
}

#[derive(Debug, Deserialize)]
struct GenerationsQuery {
    user: Option<String>,
}

async fn generations(
    state: web::Data<ApiState>,
    query: web::Query<GenerationsQuery>,
) -> Result<HttpResponse, HttpError> {
    let generations = state.service.generations(query.user.as_deref()).await?;
    Ok(HttpResponse::Ok().json(GenerationsResponse { generations }))
}

async fn cancel_user(
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    if path.is_empty() {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidFrame,
            "the user is empty",
        ));
    }
    cancelled(&state.service, state.service.cancel_user(&path).await?)
}

async fn cancel_session(
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let session_id = parse_id(&path, "session_id")?;
    cancelled(
        &state.service,
        state.service.cancel_session(session_id).await?,
    )
}

fn cancelled(service: &Service, n: usize) -> Result<HttpResponse, HttpError> {
    tracing::info!(
        replica_id = service.replica_id(),
        cancelled = n,
        "admin cancel"
    );
    Ok(HttpResponse::Ok().json(BulkCancelResponse {
        cancelled: n as u64,
    }))
}
