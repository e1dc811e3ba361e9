//! `GET /instances?runtimeStatus=…&functionName=…&createdTimeFrom=…&createdTimeTo=…&instanceIdPrefix=…&top=…`:
//! a page of instances, one Query of the table's `byStatus` index; the next
//! page's token in Durable's `x-ms-continuation-token` header.

use crate::domain::listing::TokenUse;
use crate::http::app::App;
use crate::http::error::Error;
use crate::http::request::{CONTINUATION_TOKEN, DEFAULT_PAGE_SIZE, ListRequest};
use crate::http::response::{json_response, status_body};
use crate::ports::{Engine, InstanceStore};
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};

pub(crate) async fn list<S: InstanceStore, E: Engine>(
    app: &App<S, E>,
    request: &Request,
) -> Result<Response<Body>, Error> {
    let ListRequest { filter, top, token } = ListRequest::of(request)?;
    let top = top.unwrap_or(DEFAULT_PAGE_SIZE);
    let signer = app.token_signer();
    // Read (and its signature checked) before anything in it reaches DynamoDB.
    let cursor = token.map(|token| signer.read(TokenUse::List, &filter, &token)).transpose()?;
    let page = app.service.list(&filter, cursor, top).await?;
    let body = serde_json::Value::Array(page.records.iter().map(status_body).collect());
    let mut response = json_response(StatusCode::OK, &body);
    if let Some(next) = &page.next
        && let Ok(token) = HeaderValue::from_str(&signer.issue(TokenUse::List, &filter, next))
    {
        response.headers_mut().insert(CONTINUATION_TOKEN, token);
    }
    Ok(response)
}
