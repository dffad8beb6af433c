//! The reference web client, embedded in the binary (no files to deploy, no build step).
//!
//! Contract:
//! - `GET /` and `GET /c/{session_id}` serve the same page (`static/index.html`); the page
//!   reads its address to know whether to start a conversation or join one. `{session_id}`
//!   must be a UUID (anything else is 404): whether the session exists, and whether this
//!   browser may join it, is the WebSocket's business, never the page route's.
//! - The page's scripts are ES modules served from the root: `/app.js` and the modules it
//!   imports, among them `/streamline-client.js`, the `@streamline/client` library bundled into
//!   one file by `clients/js/scripts/bundle.mjs` (committed; CI fails while it is stale).
//! - Every asset is `no-cache` and `nosniff`; the page carries a strict CSP (scripts from this
//!   origin only, no inline script or style), so model text that slipped into the DOM as
//!   markup still could not run.

use actix_web::http::header::{HeaderValue, CONTENT_SECURITY_POLICY};
use actix_web::{web, HttpResponse};
use uuid::Uuid;

const INDEX_HTML: &str = include_str!("../static/index.html");

/// The page's policy: everything from this origin, WebSockets to any host (the page may sit
/// behind a proxy that changes the scheme), images also as `data:` (the favicon).
const PAGE_CSP: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'";

/// A file of the page other than the HTML: where it is served, as what, and its bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const JS: &str = "text/javascript; charset=utf-8";

const ASSETS: &[Asset] = &[
    Asset {
        path: "/app.js",
        content_type: JS,
        body: include_str!("../static/app.js"),
    },
    Asset {
        path: "/answer-view.js",
        content_type: JS,
        body: include_str!("../static/answer-view.js"),
    },
    Asset {
        path: "/markdown.js",
        content_type: JS,
        body: include_str!("../static/markdown.js"),
    },
    Asset {
        path: "/error-text.js",
        content_type: JS,
        body: include_str!("../static/error-text.js"),
    },
    Asset {
        path: "/streamline-client.js",
        content_type: JS,
        body: include_str!("../static/streamline-client.js"),
    },
    Asset {
        path: "/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../static/style.css"),
    },
];

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(body)
}

fn page() -> HttpResponse {
    let mut r = asset("text/html; charset=utf-8", INDEX_HTML);
    r.headers_mut()
        .insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP));
    r
}

/// `/c/{session_id}`: the page, for a UUID only; a malformed id is an address that does not
/// exist, not an error of the page.
async fn conversation_page(session_id: web::Path<String>) -> HttpResponse {
    match Uuid::parse_str(&session_id) {
        Ok(_) => page(),
        Err(_) => HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("not found"),
    }
}

/// Registers `/`, `/c/{session_id}` and every asset of the page.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(|| async { page() }))
        .route("/c/{session_id}", web::get().to(conversation_page));
    for a in ASSETS {
        let (content_type, body) = (a.content_type, a.body);
        cfg.route(
            a.path,
            web::get().to(move || async move { asset(content_type, body) }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{http::StatusCode, test, App};

    async fn get(path: &str) -> (StatusCode, Option<String>, Option<String>, String) {
        let app = test::init_service(App::new().configure(configure)).await;
        let res = test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
        let header = |name| {
            res.headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let (status, ctype, csp) = (
            res.status(),
            header("content-type"),
            header("content-security-policy"),
        );
        let body = test::read_body(res).await;
        (
            status,
            ctype,
            csp,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    #[actix_web::test]
    async fn the_page_is_served_at_the_root_and_for_any_session_uuid() {
        for path in ["/", "/c/6f9619ff-8b86-4011-b42d-00cf4fc964ff"] {
            let (status, ctype, csp, body) = get(path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(ctype.as_deref(), Some("text/html; charset=utf-8"));
            assert_eq!(csp.as_deref(), Some(PAGE_CSP), "{path}");
            assert_eq!(body, INDEX_HTML);
        }
    }

    #[actix_web::test]
    async fn a_session_path_that_is_not_a_uuid_does_not_exist() {
        for path in ["/c/nope", "/c/6f9619ff-8b86-4011-b42d", "/c/%3Cscript%3E"] {
            assert_eq!(get(path).await.0, StatusCode::NOT_FOUND, "{path}");
        }
    }

    #[actix_web::test]
    async fn every_module_and_the_bundle_are_served_as_javascript() {
        for a in ASSETS {
            let (status, ctype, _, body) = get(a.path).await;
            assert_eq!(status, StatusCode::OK, "{}", a.path);
            assert_eq!(ctype.as_deref(), Some(a.content_type), "{}", a.path);
            assert_eq!(body, a.body, "{}", a.path);
        }
        assert!(ASSETS.iter().any(|a| a.path == "/streamline-client.js"));
    }
}
