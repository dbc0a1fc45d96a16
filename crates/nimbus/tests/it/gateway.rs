//! API Gateway end to end: real HTTP requests through nimbus's REST and HTTP APIs to functions
//! built with the unmodified `lambda_runtime` and `lambda_http` crates.

use std::time::Duration;

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};

use crate::harness::Nimbus;

const TEMPLATE: &str = r#"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    CodeUri: fn
    Handler: bootstrap
    Runtime: provided.al2023
    Timeout: 10
Resources:
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Item:
          Type: Api
          Properties:
            Path: /items/{id}
            Method: get
        Proxy:
          Type: Api
          Properties:
            Path: /files/{proxy+}
            Method: any
        Post:
          Type: Api
          Properties:
            Path: /items
            Method: post
        HttpItem:
          Type: HttpApi
          Properties:
            Path: /items/{id}
            Method: GET
        HttpV1:
          Type: HttpApi
          Properties:
            Path: /v1/{id}
            Method: GET
            PayloadFormatVersion: "1.0"
        Slow:
          Type: HttpApi
          Properties:
            Path: /slow
            Method: GET
            TimeoutInMillis: 500
        Default:
          Type: HttpApi
  Off:
    Type: AWS::Serverless::Function
    Properties:
      ReservedConcurrentExecutions: 0
      Events:
        Off:
          Type: Api
          Properties:
            Path: /off
            Method: get
"#;

/// Sends raw HTTP/1.1 requests over one connection and returns each response's body (the
/// responses carry Content-Length).
fn raw_exchange(base: &str, requests: &[String]) -> Vec<String> {
    use std::io::{BufRead, BufReader, Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the gateway");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut bodies = Vec::new();
    for req in requests {
        stream.write_all(req.as_bytes()).unwrap();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        bodies.push(String::from_utf8(body).unwrap());
    }
    bodies
}

#[test]
fn rest_events_keep_header_names_as_the_client_wrote_them_and_http_apis_lower_case_them() {
    let nimbus = Nimbus::start(TEMPLATE, &[]);
    let rest = nimbus.api_url("ServerlessRestApi");
    // One keep-alive connection: a chunked POST between two GETs must not confuse which
    // request's names are which.
    let bodies = raw_exchange(
        &rest,
        &[
            "GET /items/1 HTTP/1.1\r\nHost: x\r\nX-Thing: t\r\nAUTHORIZATION: Bearer abc\r\n\r\n".into(),
            "POST /items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n".into(),
            "GET /items/2 HTTP/1.1\r\nhost: x\r\nx-thing: lower\r\n\r\n".into(),
        ],
    );
    let events: Vec<serde_json::Value> = bodies
        .iter()
        .map(|b| serde_json::from_str(b).expect("the echoed event"))
        .collect();
    for (event, name, value) in [
        (&events[0], "X-Thing", "t"),
        (&events[0], "AUTHORIZATION", "Bearer abc"),
        (&events[0], "Host", "x"),
        (&events[1], "Content-Type", "application/json"),
        (&events[2], "x-thing", "lower"),
        (&events[2], "host", "x"),
    ] {
        assert_eq!(
            event["headers"][name], value,
            "{name} in {}",
            event["headers"]
        );
        assert_eq!(event["multiValueHeaders"][name][0], value);
    }
    assert!(events[0]["headers"].get("x-thing").is_none());

    let http = nimbus.api_url("ServerlessHttpApi");
    let bodies = raw_exchange(
        &http,
        &["GET /items/1 HTTP/1.1\r\nHost: x\r\nX-Thing: t\r\n\r\n".into()],
    );
    let event: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(event["headers"]["x-thing"], "t", "{}", event["headers"]);
}

#[test]
fn rest_api_sends_a_complete_payload_1_0_event_and_maps_the_response() {
    let nimbus = Nimbus::start(TEMPLATE, &[]);
    let base = nimbus.api_url("ServerlessRestApi");
    let r = nimbus.request(
        "GET",
        &format!("{base}/items/a%20b?x=1&x=2&y=z"),
        &[("x-test", "one"), ("user-agent", "nimbus-test")],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let request_id = r
        .header("x-amzn-requestid")
        .expect("x-amzn-RequestId")
        .to_owned();
    assert!(r.header("x-amzn-trace-id").unwrap().starts_with("Root=1-"));
    let event: ApiGatewayProxyRequest = serde_json::from_str(&r.body).expect("a REST proxy event");
    assert_eq!(event.resource.as_deref(), Some("/items/{id}"));
    assert_eq!(event.path.as_deref(), Some("/items/a%20b"));
    assert_eq!(event.http_method.as_str(), "GET");
    assert_eq!(
        event.path_parameters.get("id").map(String::as_str),
        Some("a b")
    );
    assert_eq!(
        event.multi_value_query_string_parameters.all("x"),
        Some(vec!["1", "2"])
    );
    assert_eq!(event.query_string_parameters.first("y"), Some("z"));
    assert_eq!(event.headers.get("x-test").unwrap(), "one");
    let ctx = &event.request_context;
    assert_eq!(ctx.stage.as_deref(), Some("Prod"));
    assert_eq!(ctx.request_id.as_deref(), Some(request_id.as_str()));
    assert_eq!(ctx.resource_path.as_deref(), Some("/items/{id}"));
    assert_eq!(ctx.path.as_deref(), Some("/Prod/items/a%20b"));
    assert_eq!(ctx.account_id.as_deref(), Some("123456789012"));
    assert_eq!(ctx.identity.source_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(ctx.identity.user_agent.as_deref(), Some("nimbus-test"));
    assert!(!event.is_base64_encoded);
    // The trace the gateway made reached the function, with the function's own segment as
    // the parent.
    let root = |h: &str| h.split(';').next().unwrap().to_owned();
    let seen = r.header("x-seen-trace").unwrap();
    assert_eq!(root(seen), root(r.header("x-amzn-trace-id").unwrap()));
    assert!(seen.contains(";Parent="), "{seen}");

    let r = nimbus.request(
        "POST",
        &format!("{base}/items"),
        &[("content-type", "application/json")],
        br#"{"a":1}"#,
    );
    let event: ApiGatewayProxyRequest = serde_json::from_str(&r.body).unwrap();
    assert_eq!(event.body.as_deref(), Some(r#"{"a":1}"#));

    let r = nimbus.request("DELETE", &format!("{base}/files/a/b/c.txt"), &[], b"");
    let event: ApiGatewayProxyRequest = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        event.path_parameters.get("proxy").map(String::as_str),
        Some("a/b/c.txt")
    );
    assert_eq!(event.resource.as_deref(), Some("/files/{proxy+}"));
}

#[test]
fn http_api_sends_payload_2_0_and_1_0_events() {
    let nimbus = Nimbus::start(TEMPLATE, &[]);
    let base = nimbus.api_url("ServerlessHttpApi");
    let r = nimbus.request(
        "GET",
        &format!("{base}/items/42?a=1&a=2"),
        &[
            ("cookie", "c1=v1; c2=v2"),
            ("x-multi", "p"),
            ("X-Trace-Me", "yes"),
        ],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let request_id = r
        .header("apigw-requestid")
        .expect("apigw-requestid")
        .to_owned();
    let event: ApiGatewayV2httpRequest = serde_json::from_str(&r.body).expect("a 2.0 event");
    assert_eq!(event.version.as_deref(), Some("2.0"));
    assert_eq!(event.route_key.as_deref(), Some("GET /items/{id}"));
    assert_eq!(event.raw_path.as_deref(), Some("/items/42"));
    assert_eq!(event.raw_query_string.as_deref(), Some("a=1&a=2"));
    assert_eq!(
        event.cookies,
        Some(vec!["c1=v1".to_owned(), "c2=v2".to_owned()])
    );
    assert_eq!(
        event.path_parameters.get("id").map(String::as_str),
        Some("42")
    );
    // AWS joins repeated query values with commas in 2.0 (the typed QueryMap splits them).
    assert_eq!(r.json()["queryStringParameters"]["a"], "1,2");
    assert_eq!(event.headers.get("x-trace-me").unwrap(), "yes");
    assert_eq!(
        event.request_context.request_id.as_deref(),
        Some(request_id.as_str())
    );
    assert_eq!(event.request_context.http.method.as_str(), "GET");
    assert_eq!(
        event.request_context.http.path.as_deref(),
        Some("/items/42")
    );
    assert_eq!(event.request_context.stage.as_deref(), Some("$default"));

    let r = nimbus.request("GET", &format!("{base}/v1/7"), &[], b"");
    assert_eq!(r.status, 200, "{}", r.body);
    let event: ApiGatewayProxyRequest = serde_json::from_str(&r.body).expect("a 1.0 event");
    assert_eq!(
        event.path_parameters.get("id").map(String::as_str),
        Some("7")
    );
}

#[test]
fn responses_are_mapped_as_api_gateway_maps_them() {
    let nimbus = Nimbus::start(TEMPLATE, &[]);
    let http = nimbus.api_url("ServerlessHttpApi");
    let rest = nimbus.api_url("ServerlessRestApi");

    // 2.0: a JSON value without statusCode is the body of a 200.
    let r = nimbus.request(
        "GET",
        &format!("{http}/anything/at/all?action=raw"),
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json(), serde_json::json!({"hello": "world"}));

    let r = nimbus.request("GET", &format!("{http}/x?action=cookies"), &[], b"");
    assert_eq!(r.status, 201);
    let cookies: Vec<&str> = r
        .headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(cookies, ["a=1; Path=/", "b=2"]);

    let r = nimbus.request(
        "GET",
        &format!("{rest}/items/1?action=status&code=418"),
        &[],
        b"",
    );
    assert_eq!(r.status, 418);
    assert_eq!(r.body, "status");
    let multi: Vec<&str> = r
        .headers
        .iter()
        .filter(|(k, _)| k == "x-multi")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(multi, ["a", "b"]);

    let r = nimbus.request("GET", &format!("{rest}/items/1?action=binary"), &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
}

#[test]
fn gateway_errors_have_api_gateways_status_codes_and_bodies() {
    let nimbus = Nimbus::start(TEMPLATE, &[]);
    let rest = nimbus.api_url("ServerlessRestApi");
    let http = nimbus.api_url("ServerlessHttpApi");

    let r = nimbus.request("GET", &format!("{rest}/nowhere"), &[], b"");
    assert_eq!(
        (r.status, r.body.as_str()),
        (403, r#"{"message":"Missing Authentication Token"}"#)
    );
    assert_eq!(
        r.header("x-amzn-errortype"),
        Some("MissingAuthenticationTokenException")
    );
    let r = nimbus.request("PUT", &format!("{rest}/items/1"), &[], b"");
    assert_eq!(
        r.status, 403,
        "a path that exists without the method is still unknown to REST"
    );

    let r = nimbus.request("GET", &format!("{rest}/items/1?action=error"), &[], b"");
    assert_eq!(
        (r.status, r.body.as_str()),
        (502, r#"{"message":"Internal server error"}"#)
    );
    let r = nimbus.request("GET", &format!("{rest}/items/1?action=malformed"), &[], b"");
    assert_eq!(
        (r.status, r.body.as_str()),
        (502, r#"{"message":"Internal server error"}"#)
    );
    let r = nimbus.request("GET", &format!("{http}/items/1?action=error"), &[], b"");
    assert_eq!(
        (r.status, r.body.as_str()),
        (500, r#"{"message":"Internal Server Error"}"#)
    );

    let r = nimbus.request(
        "GET",
        &format!("{http}/slow?action=sleep&ms=3000"),
        &[],
        b"",
    );
    assert_eq!(r.status, 504, "{}", r.body);

    let r = nimbus.request("GET", &format!("{rest}/off"), &[], b"");
    assert_eq!(
        (r.status, r.body.as_str()),
        (500, r#"{"message":"Internal server error"}"#)
    );

    let big = vec![b'x'; 10 * 1024 * 1024 + 1];
    let r = nimbus.request("POST", &format!("{rest}/items"), &[], &big);
    assert_eq!(r.status, 413);

    // Every request got one access-log line.
    let line = nimbus.wait_for_line("ServerlessRestApi | {", Duration::from_secs(5));
    let access: serde_json::Value =
        serde_json::from_str(line.split_once(" | ").unwrap().1).unwrap();
    assert!(
        access["requestId"].is_string() && access["status"].is_number(),
        "{access}"
    );
}

const KEYED: &str = r#"
Transform: AWS::Serverless-2016-10-31
Resources:
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: live
      Variables:
        color: blue
      Auth:
        ApiKeyRequired: true
        UsagePlan:
          CreateUsagePlan: PER_API
          Quota:
            Limit: 3
            Period: DAY
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn
      Handler: bootstrap
      Runtime: provided.al2023
      Events:
        Get:
          Type: Api
          Properties:
            RestApiId: !Ref Api
            Path: /w
            Method: get
            Auth:
              ApiKeyRequired: true
        Open:
          Type: Api
          Properties:
            RestApiId: !Ref Api
            Path: /open
            Method: get
            Auth:
              ApiKeyRequired: false
        Inherits:
          Type: Api
          Properties:
            RestApiId: !Ref Api
            Path: /inherits
            Method: get
"#;

#[test]
fn api_keys_and_usage_plan_quotas_guard_rest_routes() {
    let nimbus = Nimbus::start(KEYED, &[]);
    let base = nimbus.api_url("Api");
    let key_line = nimbus.wait_for_line(
        "API key ApiApiKey (usage plan ApiUsagePlan): ",
        Duration::from_secs(5),
    );
    let key = key_line.rsplit(' ').next().unwrap().to_owned();
    assert_eq!(key.len(), 40);

    let r = nimbus.request("GET", &format!("{base}/w"), &[], b"");
    assert_eq!(
        (r.status, r.body.as_str()),
        (403, r#"{"message":"Forbidden"}"#)
    );
    assert_eq!(r.header("x-amzn-errortype"), Some("ForbiddenException"));
    let r = nimbus.request(
        "GET",
        &format!("{base}/w"),
        &[("x-api-key", "not-the-key")],
        b"",
    );
    assert_eq!(r.status, 403);

    let r = nimbus.request("GET", &format!("{base}/w"), &[("x-api-key", &key)], b"");
    assert_eq!(r.status, 200, "{}", r.body);
    let event: ApiGatewayProxyRequest = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        event.request_context.identity.api_key.as_deref(),
        Some(key.as_str())
    );
    assert_eq!(
        event.request_context.identity.api_key_id.as_deref(),
        Some("ApiApiKey")
    );
    assert_eq!(event.request_context.stage.as_deref(), Some("live"));
    assert_eq!(
        event.stage_variables.get("color").map(String::as_str),
        Some("blue")
    );

    assert_eq!(
        nimbus
            .request("GET", &format!("{base}/w"), &[("x-api-key", &key)], b"")
            .status,
        200
    );
    assert_eq!(
        nimbus
            .request("GET", &format!("{base}/w"), &[("x-api-key", &key)], b"")
            .status,
        200
    );
    let r = nimbus.request("GET", &format!("{base}/w"), &[("x-api-key", &key)], b"");
    assert_eq!(
        (r.status, r.body.as_str()),
        (429, r#"{"message":"Limit Exceeded"}"#)
    );

    // A route without ApiKeyRequired is open.
    assert_eq!(
        nimbus
            .request("GET", &format!("{base}/open"), &[], b"")
            .status,
        200
    );
    // The key never appears in nimbus's logs, only in the start-up line that hands it out.
    let leaks = nimbus.lines().iter().filter(|l| l.contains(&key)).count();
    assert_eq!(leaks, 1);
}

const HTTPFN: &str = r#"
Transform: AWS::Serverless-2016-10-31
Resources:
  Web:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: web
      Handler: bootstrap
      Runtime: provided.al2023
      Events:
        Rest:
          Type: Api
          Properties:
            Path: /r/{name}
            Method: post
        Http:
          Type: HttpApi
          Properties:
            Path: /h/{name}
            Method: post
        Http1:
          Type: HttpApi
          Properties:
            Path: /h1/{name}
            Method: post
            PayloadFormatVersion: "1.0"
"#;

#[test]
fn lambda_http_functions_parse_every_event_nimbus_sends() {
    let httpfn = crate::harness::testfn().with_file_name("httpfn");
    let nimbus = Nimbus::start_with_bootstraps(HTTPFN, &[], &[("web", httpfn)]);
    let rest = nimbus.api_url("ServerlessRestApi");
    let http = nimbus.api_url("ServerlessHttpApi");
    for (url, kind) in [
        (format!("{rest}/r/ada?q=1"), "apiGateway"),
        (format!("{http}/h/ada?q=1"), "apiGatewayV2"),
        (format!("{http}/h1/ada?q=1"), "apiGateway"),
    ] {
        let r = nimbus.request(
            "POST",
            &url,
            &[("x-test", "yes"), ("content-type", "text/plain")],
            b"hello",
        );
        assert_eq!(r.status, 200, "{url}: {}", r.body);
        let body = r.json();
        assert_eq!(body["method"], "POST", "{url}: {body}");
        assert_eq!(
            body["path_parameters"][0],
            serde_json::json!(["name", "ada"]),
            "{url}: {body}"
        );
        assert_eq!(
            body["query"][0],
            serde_json::json!(["q", "1"]),
            "{url}: {body}"
        );
        assert_eq!(body["header_x_test"], "yes", "{url}: {body}");
        assert_eq!(body["body"], "hello", "{url}: {body}");
        let _ = kind;
    }
}

/// Sends raw bytes and returns the status line of the answer ("" when the connection closed).
fn raw_status(base: &str, request: &[u8]) -> String {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn malformed_http_gets_a_4xx_and_a_closed_connection_never_a_hang() {
    let nimbus = Nimbus::start(TEMPLATE, &[]);
    let rest = nimbus.api_url("ServerlessRestApi");
    assert!(raw_status(&rest, b"NOT HTTP AT ALL\r\n\r\n").starts_with("HTTP/1.1 400"));
    let huge = format!(
        "GET /items/1 HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(1024 * 1024)
    );
    let status = raw_status(&rest, huge.as_bytes());
    assert!(
        status.starts_with("HTTP/1.1 431") || status.starts_with("HTTP/1.1 400"),
        "{status:?}"
    );
    assert!(
        raw_status(&rest, b"GET /items/\xff\xfe HTTP/1.1\r\nhost: x\r\n\r\n")
            .starts_with("HTTP/1.1 400")
    );
    // Percent-encoded bytes that are not UTF-8 still reach the function, decoded lossily.
    let r = nimbus.request("GET", &format!("{rest}/items/%FF%FE"), &[], b"");
    assert_eq!(r.status, 200, "{}", r.body);
    // nimbus keeps serving.
    assert_eq!(
        nimbus
            .request("GET", &format!("{rest}/items/1"), &[], b"")
            .status,
        200
    );
}

const OPENAPI_TEMPLATE: &str = r#"
Transform: AWS::Serverless-2016-10-31
Resources:
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn
      Handler: bootstrap
      Runtime: provided.al2023
  DefinedApi:
    Type: AWS::Serverless::Api
    Properties:
      StageName: v1
      DefinitionUri: api.yaml
"#;

/// The routes live in a separate OpenAPI file; `${EchoArn}` is replaced with the function's ARN.
const OPENAPI_FILE: &str = r##"
openapi: "3.0.1"
info: {title: defined, version: "1"}
x-amazon-apigateway-request-validators:
  all: {validateRequestBody: true, validateRequestParameters: true}
paths:
  /orders/{id}:
    get:
      parameters:
        - {name: id, in: path, required: true, schema: {type: string}}
      x-amazon-apigateway-integration:
        type: aws_proxy
        httpMethod: POST
        uri: arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:Echo/invocations
  /orders:
    post:
      x-amazon-apigateway-request-validator: all
      parameters:
        - {name: tenant, in: query, required: true}
        - {name: X-Client, in: header, required: true}
      requestBody:
        content:
          application/json:
            schema: {$ref: "#/components/schemas/Order"}
      x-amazon-apigateway-integration:
        type: aws_proxy
        httpMethod: POST
        uri: arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:Echo/invocations
components:
  schemas:
    Order:
      type: object
      required: [item, quantity]
      properties:
        item: {type: string}
        quantity: {type: integer, minimum: 1}
"##;

#[test]
fn openapi_definitions_route_to_functions_and_validate_requests_as_api_gateway_does() {
    let nimbus =
        Nimbus::start_with_files(OPENAPI_TEMPLATE, &[], &[("api.yaml", OPENAPI_FILE, false)]);
    let base = nimbus.api_url("DefinedApi");
    let r = nimbus.request("GET", &format!("{base}/orders/7"), &[], b"");
    assert_eq!(r.status, 200, "{}", r.body);
    let event = r.json();
    assert_eq!(event["resource"], "/orders/{id}");
    assert_eq!(event["pathParameters"]["id"], "7");
    assert_eq!(event["requestContext"]["stage"], "v1");

    let json = ("content-type", "application/json");
    // (query, headers, body, status, API Gateway's message when refused)
    type Case<'a> = (
        &'a str,
        &'a [(&'a str, &'a str)],
        &'a str,
        u16,
        Option<&'a str>,
    );
    let cases: &[Case<'_>] = &[
        (
            "?tenant=a",
            &[json, ("x-client", "t")],
            r#"{"item":"tea","quantity":2}"#,
            200,
            None,
        ),
        (
            "",
            &[json],
            r#"{"item":"tea","quantity":2}"#,
            400,
            Some("Missing required request parameters: [tenant, X-Client]"),
        ),
        (
            "?tenant=a",
            &[json],
            "{}",
            400,
            Some("Missing required request parameters: [X-Client]"),
        ),
        (
            "?tenant=a",
            &[json, ("x-client", "t")],
            r#"{"item":"tea"}"#,
            400,
            Some("Invalid request body"),
        ),
        (
            "?tenant=a",
            &[json, ("x-client", "t")],
            r#"{"item":"tea","quantity":0}"#,
            400,
            Some("Invalid request body"),
        ),
        (
            "?tenant=a",
            &[json, ("x-client", "t")],
            "not json",
            400,
            Some("Invalid request body"),
        ),
    ];
    for (query, headers, body, status, message) in cases {
        let r = nimbus.request(
            "POST",
            &format!("{base}/orders{query}"),
            headers,
            body.as_bytes(),
        );
        assert_eq!(r.status, *status, "{query} {body}: {}", r.body);
        if let Some(message) = message {
            assert_eq!(
                r.json(),
                serde_json::json!({"message": message}),
                "{query} {body}"
            );
            assert_eq!(r.header("x-amzn-errortype"), Some("BadRequestException"));
        } else {
            assert_eq!(r.json()["body"], *body);
        }
    }
}

/// The echo function as CDK declares one: plain CloudFormation with its code as an asset.
macro_rules! cfn_echo {
    () => {
        r#"
Resources:
  Echo:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: provided.al2023
      Handler: bootstrap
      Code: {S3Bucket: assets, S3Key: echo.zip}
    Metadata:
      aws:asset:path: fn
"#
    };
}

const CFN_TEMPLATE: &str = concat!(
    cfn_echo!(),
    r#"  Api:
    Type: AWS::ApiGateway::RestApi
    Properties: {Name: cfn}
  Orders:
    Type: AWS::ApiGateway::Resource
    Properties: {RestApiId: !Ref Api, ParentId: !GetAtt Api.RootResourceId, PathPart: orders}
  Order:
    Type: AWS::ApiGateway::Resource
    Properties: {RestApiId: !Ref Api, ParentId: !Ref Orders, PathPart: "{id}"}
  GetOrder:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref Api
      ResourceId: !Ref Order
      HttpMethod: GET
      AuthorizationType: NONE
      Integration:
        Type: AWS_PROXY
        IntegrationHttpMethod: POST
        Uri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Echo.Arn}/invocations"
  PostOrders:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref Api
      ResourceId: !Ref Orders
      HttpMethod: POST
      AuthorizationType: NONE
      Integration: {Type: AWS, IntegrationHttpMethod: POST, Uri: "arn:aws:apigateway:us-east-1:sqs:path/123456789012/orders"}
  Deployment:
    Type: AWS::ApiGateway::Deployment
    DependsOn: [GetOrder, PostOrders]
    Properties: {RestApiId: !Ref Api}
  Stage:
    Type: AWS::ApiGateway::Stage
    Properties: {RestApiId: !Ref Api, DeploymentId: !Ref Deployment, StageName: live}
"#
);

#[test]
fn cloudformation_rest_apis_serve_their_resource_tree_and_unserved_integrations_answer_500() {
    let nimbus = Nimbus::start(CFN_TEMPLATE, &[]);
    let base = nimbus.api_url("Api");
    let r = nimbus.request("GET", &format!("{base}/orders/9"), &[], b"");
    assert_eq!(r.status, 200, "{}", r.body);
    let event = r.json();
    assert_eq!(event["resource"], "/orders/{id}");
    assert_eq!(event["pathParameters"]["id"], "9");
    assert_eq!(event["requestContext"]["stage"], "live");

    // An SQS service integration is not served yet: API Gateway's answer to a failing
    // integration.
    let r = nimbus.request("POST", &format!("{base}/orders"), &[], b"{}");
    assert_eq!(r.status, 500, "{}", r.body);
    assert_eq!(
        r.json(),
        serde_json::json!({"message": "Internal server error"})
    );
    assert_eq!(
        r.header("x-amzn-errortype"),
        Some("InternalServerErrorException")
    );
}

/// The next message of `queue` on nimbus's SQS (JSON protocol), waiting up to 5 s for one.
const SERVICE_TEMPLATE: &str = r#"
Resources:
  Outbox:
    Type: AWS::SQS::Queue
    Properties: {QueueName: outbox}
  Audit:
    Type: AWS::SQS::Queue
    Properties: {QueueName: audit}
  ToAudit:
    Type: AWS::Events::Rule
    Properties:
      EventPattern: {source: [orders.api]}
      Targets: [{Arn: !GetAtt Audit.Arn, Id: audit}]
  Http:
    Type: AWS::ApiGatewayV2::Api
    Properties: {Name: services, ProtocolType: HTTP}
  Send:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Http
      IntegrationType: AWS_PROXY
      IntegrationSubtype: SQS-SendMessage
      PayloadFormatVersion: "1.0"
      RequestParameters: {QueueUrl: !Ref Outbox, MessageBody: $request.body.order}
  Publish:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Http
      IntegrationType: AWS_PROXY
      IntegrationSubtype: EventBridge-PutEvents
      PayloadFormatVersion: "1.0"
      RequestParameters: {Source: orders.api, DetailType: $request.header.x-kind, Detail: $request.body}
  Receive:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Http
      IntegrationType: AWS_PROXY
      IntegrationSubtype: SQS-ReceiveMessage
      PayloadFormatVersion: "1.0"
      RequestParameters: {QueueUrl: !Ref Outbox, MaxNumberOfMessages: "1", VisibilityTimeout: $request.querystring.hold}
  Delete:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Http
      IntegrationType: AWS_PROXY
      IntegrationSubtype: SQS-DeleteMessage
      PayloadFormatVersion: "1.0"
      RequestParameters: {QueueUrl: !Ref Outbox, ReceiptHandle: $request.header.x-receipt}
  SendRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Http, RouteKey: POST /orders, Target: !Sub "integrations/${Send}"}
  ReceiveRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Http, RouteKey: GET /orders/next, Target: !Sub "integrations/${Receive}"}
  DeleteRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Http, RouteKey: DELETE /orders, Target: !Sub "integrations/${Delete}"}
  PublishRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Http, RouteKey: POST /events, Target: !Sub "integrations/${Publish}"}
"#;

#[test]
fn http_api_service_integrations_send_to_nimbus_sqs_and_eventbridge() {
    let nimbus = Nimbus::start(SERVICE_TEMPLATE, &[]);
    let base = nimbus.api_url("Http");

    let r = nimbus.request(
        "POST",
        &format!("{base}/orders"),
        &[("content-type", "application/json")],
        br#"{"order":{"id":7}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let result = &r.json()["SendMessageResponse"]["SendMessageResult"];
    // Received and deleted through the API too (SQS-ReceiveMessage, SQS-DeleteMessage).
    let r = nimbus.request("GET", &format!("{base}/orders/next?hold=30"), &[], b"");
    assert_eq!(r.status, 200, "{}", r.body);
    let received = &r.json()["ReceiveMessageResponse"]["ReceiveMessageResult"]["messages"][0];
    assert_eq!(received["Body"], r#"{"id":7}"#);
    assert_eq!(received["MessageId"], result["MessageId"]);
    let handle = received["ReceiptHandle"].as_str().unwrap();
    let r = nimbus.request(
        "DELETE",
        &format!("{base}/orders"),
        &[("x-receipt", handle)],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["DeleteMessageResponse"].is_object(), "{}", r.body);
    let r = nimbus.request(
        "DELETE",
        &format!("{base}/orders"),
        &[("x-receipt", "not-a-handle")],
        b"",
    );
    assert_eq!(r.status, 400, "{}", r.body);

    let r = nimbus.request(
        "POST",
        &format!("{base}/events"),
        &[("x-kind", "order.placed")],
        br#"{"id":8}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["FailedEntryCount"], 0);
    let envelope: serde_json::Value =
        serde_json::from_str(nimbus.receive_one("audit")["Body"].as_str().unwrap()).unwrap();
    assert_eq!(envelope["detail-type"], "order.placed");
    assert_eq!(envelope["detail"], serde_json::json!({"id": 8}));
}

const MAPPING_TEMPLATE: &str = concat!(
    cfn_echo!(),
    r##"  LambdaPath:
    Type: AWS::ApiGateway::Resource
    Properties: {RestApiId: !Ref Api, ParentId: !GetAtt Api.RootResourceId, PathPart: lambda}
  LambdaGet:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref Api
      ResourceId: !Ref LambdaPath
      HttpMethod: GET
      AuthorizationType: NONE
      Integration:
        Type: AWS
        IntegrationHttpMethod: POST
        Uri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Echo.Arn}/invocations"
        RequestTemplates:
          application/json: '{"action": "$input.params(''action'')", "who": "$input.params(''name'')"}'
        IntegrationResponses:
          - StatusCode: 200
            ResponseTemplates: {application/json: '{"who": "$input.path(''$.event.who'')"}'}
          - StatusCode: 422
            SelectionPattern: ".*went wrong.*"
            ResponseTemplates: {application/json: '{"failed": "$input.path(''$.errorMessage'')"}'}
  Orders:
    Type: AWS::SQS::Queue
    Properties: {QueueName: orders}
  Api:
    Type: AWS::ApiGateway::RestApi
    Properties: {Name: mapped}
  Health:
    Type: AWS::ApiGateway::Resource
    Properties: {RestApiId: !Ref Api, ParentId: !GetAtt Api.RootResourceId, PathPart: health}
  OrdersPath:
    Type: AWS::ApiGateway::Resource
    Properties: {RestApiId: !Ref Api, ParentId: !GetAtt Api.RootResourceId, PathPart: orders}
  HealthGet:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref Api
      ResourceId: !Ref Health
      HttpMethod: GET
      AuthorizationType: NONE
      Integration:
        Type: MOCK
        RequestTemplates:
          application/json: |
            #if($input.params('fail') == "yes"){"statusCode": 503}#else{"statusCode": 200}#end
        IntegrationResponses:
          - StatusCode: 200
            ResponseTemplates: {application/json: '{"ok": true, "stage": "$context.stage", "who": "$util.escapeJavaScript($input.params(''name''))"}'}
            ResponseParameters: {method.response.header.X-Served-By: "'mock'"}
          - StatusCode: 503
            SelectionPattern: "5\\d{2}"
            ResponseTemplates: {application/json: '{"ok": false}'}
  OrdersPost:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref Api
      ResourceId: !Ref OrdersPath
      HttpMethod: POST
      AuthorizationType: NONE
      Integration:
        Type: AWS
        IntegrationHttpMethod: POST
        Uri: !Sub "arn:aws:apigateway:${AWS::Region}:sqs:path/${AWS::AccountId}/orders"
        PassthroughBehavior: NEVER
        RequestParameters: {integration.request.header.Content-Type: "'application/x-www-form-urlencoded'"}
        RequestTemplates:
          application/json: "Action=SendMessage&MessageBody=$util.urlEncode($input.json('$.order'))"
        IntegrationResponses:
          - StatusCode: 202
            ResponseTemplates: {application/json: '{"accepted": true}'}
  Stage:
    Type: AWS::ApiGateway::Stage
    Properties: {RestApiId: !Ref Api, DeploymentId: deployment, StageName: beta}
  Deployment:
    Type: AWS::ApiGateway::Deployment
    Properties: {RestApiId: !Ref Api}
"##
);

#[test]
fn rest_mock_and_sqs_integrations_run_their_mapping_templates() {
    let nimbus = Nimbus::start(MAPPING_TEMPLATE, &[]);
    let base = nimbus.api_url("Api");
    let r = nimbus.request("GET", &format!("{base}/health?name=a%22b"), &[], b"");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json(),
        serde_json::json!({"ok": true, "stage": "beta", "who": "a\"b"})
    );
    assert_eq!(r.header("x-served-by"), Some("mock"));
    let r = nimbus.request("GET", &format!("{base}/health?fail=yes"), &[], b"");
    assert_eq!(
        (r.status, r.json()),
        (503, serde_json::json!({"ok": false}))
    );

    let json = ("content-type", "application/json");
    let r = nimbus.request(
        "POST",
        &format!("{base}/orders"),
        &[json],
        br#"{"order": {"id": 9, "item": "tea"}}"#,
    );
    assert_eq!(
        (r.status, r.json()),
        (202, serde_json::json!({"accepted": true})),
        "{}",
        r.body
    );
    let message = nimbus.receive_one("orders");
    assert_eq!(message["Body"], r#"{"id":9,"item":"tea"}"#, "{message}");

    // Lambda non-proxy: the mapped event in, the response template out; a function error
    // picks the response whose SelectionPattern matches its errorMessage.
    let r = nimbus.request(
        "GET",
        &format!("{base}/lambda?action=echo&name=ada"),
        &[],
        b"",
    );
    assert_eq!(
        (r.status, r.json()),
        (200, serde_json::json!({"who": "ada"})),
        "{}",
        r.body
    );
    let r = nimbus.request("GET", &format!("{base}/lambda?action=error"), &[], b"");
    assert_eq!(
        (r.status, r.json()),
        (422, serde_json::json!({"failed": "something went wrong"})),
        "{}",
        r.body
    );

    // PassthroughBehavior NEVER: a content type without a template is refused, as API Gateway does.
    let r = nimbus.request(
        "POST",
        &format!("{base}/orders"),
        &[("content-type", "text/plain")],
        b"x",
    );
    assert_eq!(r.status, 415, "{}", r.body);
    assert_eq!(
        r.json(),
        serde_json::json!({"message": "Unsupported Media Type"})
    );
}

/// A backend for HTTP_PROXY tests: answers each request with 201, its request line as the body
/// and an `x-backend` header.
fn proxy_backend() -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let mut seen = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if line.to_ascii_lowercase().starts_with("x-client:") {
                    seen = line.trim().to_owned();
                }
            }
            let body = format!("{} | {seen}", first.trim());
            let mut s = stream;
            let _ = write!(
                s,
                "HTTP/1.1 201 Created\r\ncontent-type: text/plain\r\nx-backend: yes\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn http_proxy_integrations_forward_the_request_and_pass_the_answer_back() {
    let port = proxy_backend();
    let template = format!(
        r#"
Transform: AWS::Serverless-2016-10-31
Resources:
  Proxy:
    Type: AWS::Serverless::Api
    Properties:
      StageName: Prod
      DefinitionBody:
        openapi: "3.0.1"
        info: {{title: proxy, version: "1"}}
        paths:
          /items/{{item}}:
            get:
              x-amazon-apigateway-integration:
                type: http_proxy
                httpMethod: GET
                uri: http://127.0.0.1:{port}/backend/{{id}}
                requestParameters:
                  integration.request.path.id: method.request.path.item
"#
    );
    let nimbus = Nimbus::start(&template, &[]);
    let base = nimbus.api_url("Proxy");
    let r = nimbus.request(
        "GET",
        &format!("{base}/items/5?x=1"),
        &[("x-client", "c1")],
        b"",
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.header("x-backend"), Some("yes"));
    assert_eq!(r.body, "GET /backend/5?x=1 HTTP/1.1 | x-client: c1");
}

#[test]
fn rest_http_integrations_map_the_request_and_the_backends_answer() {
    let port = proxy_backend();
    let template = format!(
        r#"
Transform: AWS::Serverless-2016-10-31
Resources:
  Mapped:
    Type: AWS::Serverless::Api
    Properties:
      StageName: Prod
      DefinitionBody:
        openapi: "3.0.1"
        info: {{title: mapped, version: "1"}}
        paths:
          /orders/{{id}}:
            post:
              x-amazon-apigateway-integration:
                type: http
                httpMethod: PUT
                uri: http://127.0.0.1:{port}/v2/orders/{{order}}
                requestParameters:
                  integration.request.path.order: method.request.path.id
                  integration.request.querystring.source: "'nimbus'"
                  integration.request.header.X-Client: method.request.header.X-Who
                requestTemplates:
                  application/json: '{{"qty": $input.json(''$.quantity'')}}'
                responses:
                  "5\\d{{2}}":
                    statusCode: "502"
                  default:
                    statusCode: "200"
                    responseParameters:
                      method.response.header.X-From-Backend: integration.response.header.x-backend
                    responseTemplates:
                      application/json: '{{"backend": "$util.escapeJavaScript($input.body)"}}'
"#
    );
    let nimbus = Nimbus::start(&template, &[]);
    let base = nimbus.api_url("Mapped");
    let r = nimbus.request(
        "POST",
        &format!("{base}/orders/a%20b"),
        &[("content-type", "application/json"), ("X-Who", "c7")],
        br#"{"quantity": 3}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-from-backend"), Some("yes"));
    assert_eq!(
        r.json()["backend"],
        "PUT /v2/orders/a%20b?source=nimbus HTTP/1.1 | x-client: c7"
    );
}

#[test]
fn http_api_parameter_mapping_rewrites_what_reaches_an_http_backend() {
    let port = proxy_backend();
    let template = format!(
        r#"
Resources:
  Http:
    Type: AWS::ApiGatewayV2::Api
    Properties: {{Name: mapped, ProtocolType: HTTP}}
  Backend:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Http
      IntegrationType: HTTP_PROXY
      IntegrationMethod: ANY
      IntegrationUri: http://127.0.0.1:{port}/base
      PayloadFormatVersion: "1.0"
      RequestParameters:
        overwrite:path: /v2/$request.path.id
        overwrite:header.x-client: mapped-$request.header.x-client
        append:querystring.src: api
        remove:querystring.debug: ""
      ResponseParameters:
        "201":
          ResponseParameters:
            - {{Destination: overwrite:statuscode, Source: "202"}}
            - {{Destination: append:header.x-copied, Source: $response.header.x-backend}}
            - {{Destination: overwrite:header.x-stage, Source: $context.stage}}
            - {{Destination: remove:header.x-backend, Source: "''"}}
        "500":
          ResponseParameters: [{{Destination: overwrite:statuscode, Source: "503"}}]
  Route:
    Type: AWS::ApiGatewayV2::Route
    Properties: {{ApiId: !Ref Http, RouteKey: "GET /things/{{id}}", Target: !Sub "integrations/${{Backend}}"}}
"#
    );
    let nimbus = Nimbus::start(&template, &[]);
    let base = nimbus.api_url("Http");
    let r = nimbus.request(
        "GET",
        &format!("{base}/things/9?debug=1&q=z"),
        &[("x-client", "c1")],
        b"",
    );
    // The response mapping for the backend's 201: another status, a header copied, one
    // removed, one from the context.
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(
        r.body,
        "GET /v2/9?q=z&src=api HTTP/1.1 | x-client: mapped-c1"
    );
    assert_eq!(r.header("x-copied"), Some("yes"));
    assert_eq!(r.header("x-stage"), Some("$default"));
    assert_eq!(r.header("x-backend"), None);
}
