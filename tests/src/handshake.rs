//! A bare `/ws` handshake, for tests of who may connect: the selected protocol, or the HTTP
//! status and JSON body of a refusal.

use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::Error as WsError;

use crate::PATIENCE;

/// A handshake with extra headers: Ok(selected protocol) or Err((status, body)). An accepted
/// connection is closed at once.
pub async fn handshake(
    url: &str,
    headers: &[(&str, &str)],
) -> Result<Option<String>, (u16, serde_json::Value)> {
    let mut req = url.into_client_request().expect("request");
    for (k, v) in headers {
        req.headers_mut().append(
            HeaderName::from_bytes(k.as_bytes()).expect("header name"),
            HeaderValue::from_str(v).expect("header value"),
        );
    }
    match tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(req))
        .await
        .expect("handshake in time")
    {
        Ok((mut ws, resp)) => {
            let _ = ws.close(None).await;
            Ok(resp
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string))
        }
        Err(WsError::Http(resp)) => {
            let status = resp.status().as_u16();
            let body = resp
                .body()
                .as_ref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(serde_json::Value::Null);
            Err((status, body))
        }
        Err(e) => panic!("unexpected handshake error: {e}"),
    }
}

/// The `error.code` of a refusal body.
pub fn code_of(body: &serde_json::Value) -> Option<&str> {
    body["error"]["code"].as_str()
}
