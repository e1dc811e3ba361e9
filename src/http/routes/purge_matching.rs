//! `DELETE /instances?runtimeStatus=…&createdTimeFrom=…&createdTimeTo=…`: bulk purge of
//! ended instances, page by page within the request's time; a continuation
//! token when it stopped before the end, to be sent back until there is none.

use crate::domain::listing::{InvalidFilter, TokenUse};
use crate::domain::time::time_left;
use crate::http::app::App;
use crate::http::error::Error;
use crate::http::request::{CONTINUATION_TOKEN, ListRequest};
use crate::http::response::json_response;
use crate::ports::{Engine, InstanceStore};
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;
use std::time::{Duration, SystemTime};

/// No new page after this long (API Gateway's integration timeout is 30 s, and the
/// last page may take up to its Query's 8 s and a delete's 3 s more).
const MAX_BUDGET: Duration = Duration::from_secs(15);
/// Kept back from the invocation's deadline: the last page (a Query and its deletes) and the answer.
const MARGIN: Duration = Duration::from_secs(12);

pub(crate) async fn purge_matching<S: InstanceStore, E: Engine>(
    app: &App<S, E>,
    request: &Request,
) -> Result<Response<Body>, Error> {
    let ListRequest { filter, top, token } = ListRequest::of(request)?;
    if let Some(top) = top {
        let value = top.to_string();
        return Err(InvalidFilter { parameter: "top", accepts: "nothing: a purge has no page size", value }.into());
    }
    // Required, so that nobody purges everything by mistake: the statuses are named.
    let accepts =
        "one or more of Completed, Failed, Terminated (required: a purge names the ended statuses it deletes)";
    if filter.runtime_statuses.is_empty() {
        return Err(InvalidFilter { parameter: "runtimeStatus", accepts, value: String::new() }.into());
    }
    if let Some(running) = filter.runtime_statuses.iter().find(|status| !status.is_terminal()) {
        return Err(InvalidFilter { parameter: "runtimeStatus", accepts, value: running.to_string() }.into());
    }
    let signer = app.token_signer();
    let cursor = token.map(|token| signer.read(TokenUse::Purge, &filter, &token)).transpose()?;
    let purged = app.service.purge_matching(&filter, cursor, budget(request)).await?;
    let token = purged.next.as_ref().map(|next| signer.issue(TokenUse::Purge, &filter, next));
    let mut body = json!({ "instancesDeleted": purged.deleted });
    if let Some(token) = &token {
        body["continuationToken"] = json!(token);
    }
    let mut response = json_response(StatusCode::OK, &body);
    if let Some(token) = token.and_then(|token| HeaderValue::from_str(&token).ok()) {
        response.headers_mut().insert(CONTINUATION_TOKEN, token);
    }
    Ok(response)
}

/// The time this request may spend: the invocation's, less a margin, at most [`MAX_BUDGET`].
fn budget(request: &Request) -> Duration {
    let Some(context) = request.lambda_context_ref() else {
        return MAX_BUDGET;
    };
    time_left(context.deadline, SystemTime::now()).saturating_sub(MARGIN).min(MAX_BUDGET)
}
