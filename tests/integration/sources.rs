//! Every event source hands the handler the instance ID its client named:
//! fixtures of each source's real shape (HTTP API payload 2.0 with its
//! decoded `rawPath` and decoded `pathParameters`, REST API with both still
//! encoded, function URL with an encoded `rawPath` and no parameters), for IDs
//! that percent-encoding, `#`, `?`, dot segments and decoding twice would break.

use lambda_http::http::StatusCode;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use testkit::*;

#[derive(Debug, Clone, Copy)]
enum Source {
    HttpApi,
    RestApi,
    FunctionUrl,
}

/// How the client sends an ID in the URL: every reserved byte encoded.
fn encoded(id: &str) -> String {
    utf8_percent_encode(id, NON_ALPHANUMERIC).to_string()
}

/// The event `source` delivers for `POST /orchestrators/{function}/{id}` (sent encoded).
fn start_event(source: Source, function: &str, id: &str) -> lambda_http::Request {
    let (fixture, raw_path, id_parameter) = match source {
        // API Gateway decodes the path it hands over, and cuts it at a decoded `?`.
        Source::HttpApi => {
            let decoded = format!("/orchestrators/{function}/{id}");
            let cut = decoded.split('?').next().unwrap_or_default().to_owned();
            ("http_api_v2", cut, id.to_owned())
        }
        Source::RestApi => ("rest_api_v1", format!("/orchestrators/{function}/{}", encoded(id)), encoded(id)),
        Source::FunctionUrl => ("function_url", format!("/orchestrators/{function}/{}", encoded(id)), String::new()),
    };
    let path = format!("{}/tests/fixtures/sources/{fixture}.json", env!("CARGO_MANIFEST_DIR"));
    let template = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let json_string = |s: &str| serde_json::to_string(s).map(|q| q[1..q.len() - 1].to_owned()).unwrap_or_default();
    let event = template
        .replace("{{RAW_PATH}}", &json_string(&raw_path))
        .replace("{{FUNCTION_NAME}}", &json_string(function))
        .replace("{{INSTANCE_ID}}", &json_string(&id_parameter));
    lambda_http::request::from_str(&event).unwrap_or_else(|e| panic!("{fixture} for {id:?}: {e}\n{event}"))
}

#[tokio::test]
async fn every_event_source_yields_the_id_the_client_named_or_the_same_400() {
    let env = TestEnv::new().await;
    let app = env.app();
    // (instance ID as the client means it, whether it is valid)
    let ids = [
        ("a%41", true), // decoded twice it would be "aA"
        ("a%2541", true),
        ("100%", true),
        ("a b", true),
        ("a+b", true),
        ("ünïcödé 🎉", true),
        ("a.b", true),
        ("a#x", false), // decoded once, then cut at `#`, it named "a"
        ("a?x", false), // cut at `?`, it named "a"
        ("a/b", false), // %2F
        (".", false),
        ("..", false),
    ];
    for (id, valid) in ids {
        for source in [Source::HttpApi, Source::RestApi, Source::FunctionUrl] {
            let answer = call(&app, start_event(source, QUICK, id)).await;
            if valid {
                assert_eq!(answer.status, StatusCode::ACCEPTED, "{source:?} {id:?}: {}", answer.body);
                assert_eq!(answer.json()["id"], id, "{source:?}");
                let record = env.record(id).await.unwrap_or_else(|| panic!("{source:?}: no record for {id:?}"));
                assert_eq!(record.instance_id, id);
                // The next source starts the same ID again.
                env.dynamo
                    .delete_item()
                    .table_name(&env.table)
                    .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(record.key.to_string()))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{e:?}"));
            } else {
                assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{source:?} {id:?}: {}", answer.body);
                assert!(answer.body.contains("InvalidInstanceId"), "{source:?} {id:?}: {}", answer.body);
            }
        }
    }
    assert_eq!(env.item_count().await, 0, "every refusal wrote nothing");
}
