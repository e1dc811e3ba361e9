//! Where a request is going: its stage and its path's segments, decoded once
//! whatever the event source.

use super::error::Error;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use percent_encoding::percent_decode_str;

pub(super) fn stage(request: &Request) -> Option<String> {
    let stage = match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context.stage.clone(),
        RequestContext::ApiGatewayV1(context) => context.stage.clone(),
        _ => None,
    }?;
    (stage != "$default" && !stage.is_empty()).then_some(stage)
}

/// The path's segments after the stage, each percent-decoded exactly once.
///
/// Event sources disagree: HTTP APIs (payload 2.0) hand `rawPath` already
/// decoded (a decoded `%` would be decoded again, a `#` or `?` cuts it) and
/// their `pathParameters` decoded; REST APIs hand both still encoded; function
/// URLs have no path parameters and an encoded `rawPath`. So: the route
/// template's parameters where API Gateway matched one, else the raw path.
pub(super) fn segments(request: &Request, stage: Option<&str>) -> Result<Vec<String>, Error> {
    let decode = |segment: &str| {
        percent_decode_str(segment)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| Error::NoRoute(format!("{segment} (not UTF-8 once percent-decoded)")))
    };
    let template = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => {
            context.route_key.as_deref().and_then(|key| key.split_once(' ')).map(|(_, path)| (path, false))
        }
        Some(RequestContext::ApiGatewayV1(context)) => context.resource_path.as_deref().map(|path| (path, true)),
        _ => None,
    };
    // A greedy `{proxy+}` parameter holds several segments: read the raw path instead.
    if let (Some((template, encoded)), Some(parameters)) = (template, request.path_parameters_ref())
        && template.contains('{')
        && !template.contains("+}")
    {
        return template
            .trim_start_matches('/')
            .split('/')
            .map(|part| match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) => {
                    let value = parameters.first(name).ok_or_else(|| Error::NoRoute(template.to_owned()))?;
                    if encoded { decode(value) } else { Ok(value.to_owned()) }
                }
                None => Ok(part.to_owned()),
            })
            .collect();
    }
    // The path as the event gave it (lambda_http's URI drops dot segments and cuts at `#`).
    let raw = request.raw_http_path();
    let mut path = if raw.is_empty() { request.uri().path() } else { raw };
    if let Some(stage) = stage {
        let prefix = format!("/{stage}");
        if let Some(rest) = path.strip_prefix(&prefix).filter(|rest| rest.is_empty() || rest.starts_with('/')) {
            path = rest;
        }
    }
    path.trim_start_matches('/').split('/').map(decode).collect()
}
