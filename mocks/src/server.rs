//! The executor stubs' server: a fresh wiremock server on loopback with one catch-all mock,
//! our responder. (The LLM stub has a server of its own, in `serve`.)

use std::net::TcpListener;

use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

use crate::errors::StubError;

/// A fresh (not pooled) server on `127.0.0.1`, on a free port, with wiremock's request
/// recording off (our journal records), answering every request with `responder`.
pub(crate) async fn start(
    stub: &str,
    responder: impl Respond + 'static,
) -> Result<MockServer, StubError> {
    let bind_error = |source| StubError::Bind {
        stub: stub.to_string(),
        source,
    };
    let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(bind_error)?;
    // wiremock reads the address with `expect`: read it first to fail with an error instead
    listener.local_addr().map_err(bind_error)?;
    let server = MockServer::builder()
        .listener(listener)
        .disable_request_recording()
        .start()
        .await;
    Mock::given(any())
        .respond_with(responder)
        .named(stub)
        .mount(&server)
        .await;
    Ok(server)
}

/// A response with this status; a status wiremock cannot send (configurations are
/// validated, so only a bug gets here) becomes a 500 instead of a panic in the server.
pub(crate) fn response(status: u16) -> ResponseTemplate {
    let status = if (100..=999).contains(&status) {
        status
    } else {
        500
    };
    ResponseTemplate::new(status)
}

/// A JSON response, and its size in bytes.
pub(crate) fn json_response(status: u16, body: &serde_json::Value) -> (ResponseTemplate, usize) {
    let bytes = body.to_string().into_bytes();
    let size = bytes.len();
    (
        response(status).set_body_raw(bytes, "application/json"),
        size,
    )
}
