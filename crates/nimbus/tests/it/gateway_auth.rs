//! Gateway authorizers, CORS and the response cache, end to end.

use std::time::Duration;

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::harness::Nimbus;

// A key made with openssl for nimbus's tests only (shared with nimbus-gateway's unit tests).
const RSA_PEM: &str = include_str!("../../../nimbus-gateway/src/auth/testdata/rsa-test-key.pem");
const ISSUER: &str = "https://issuer.example.com/pool";

const JWT_TEMPLATE: &str = r#"
Transform: AWS::Serverless-2016-10-31
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Jwt
        Authorizers:
          Jwt:
            IdentitySource: $request.header.Authorization
            JwtConfiguration:
              issuer: https://issuer.example.com/pool
              audience: [my-app]
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn
      Handler: bootstrap
      Runtime: provided.al2023
      Events:
        Read:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Path: /read
            Method: GET
            Auth:
              AuthorizationScopes: [read]
        Public:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Path: /public
            Method: GET
            Auth:
              Authorizer: NONE
"#;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(claims: Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("test-key".into());
    encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn jwks() -> String {
    let key = EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).unwrap();
    let mut jwk = serde_json::to_value(
        jsonwebtoken::jwk::Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap(),
    )
    .unwrap();
    jwk["kid"] = "test-key".into();
    json!({"keys": [jwk]}).to_string()
}

#[test]
fn jwt_authorizers_check_signature_issuer_audience_expiry_and_scopes() {
    let dir = tempfile::tempdir().unwrap();
    let jwks_file = dir.path().join("jwks.json");
    std::fs::write(&jwks_file, jwks()).unwrap();
    let arg = format!("{ISSUER}={}", jwks_file.display());
    let nimbus = Nimbus::start(JWT_TEMPLATE, &["--jwks", &arg]);
    let base = nimbus.api_url("Api");
    let good = json!({"iss": ISSUER, "aud": "my-app", "sub": "ada", "exp": now() + 600, "scope": "read write"});
    let call = |auth: Option<String>| {
        let auth = auth.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        nimbus.request("GET", &format!("{base}/read"), &headers, b"")
    };

    let r = call(Some(token(good.clone())));
    assert_eq!(r.status, 200, "{}", r.body);
    let event: Value = r.json();
    assert_eq!(
        event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"],
        "ada"
    );
    assert_eq!(
        event["requestContext"]["authorizer"]["jwt"]["scopes"],
        json!(["read", "write"])
    );

    let unauthorized = r#"{"message":"Unauthorized"}"#;
    let r = call(None);
    assert_eq!((r.status, r.body.as_str()), (401, unauthorized));
    let r = call(Some("not.a.jwt".into()));
    assert_eq!((r.status, r.body.as_str()), (401, unauthorized));
    let mut expired = good.clone();
    expired["exp"] = json!(now() - 600);
    assert_eq!(call(Some(token(expired))).status, 401);
    let mut wrong_aud = good.clone();
    wrong_aud["aud"] = json!("someone-else");
    assert_eq!(call(Some(token(wrong_aud))).status, 401);
    let mut wrong_iss = good.clone();
    wrong_iss["iss"] = json!("https://evil.example.com");
    assert_eq!(call(Some(token(wrong_iss))).status, 401);
    // A valid token's claims under another token's signature.
    let mut other = good.clone();
    other["sub"] = json!("mallory");
    let (signed, _) = token(good.clone())
        .rsplit_once('.')
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .unwrap();
    let other_signature = token(other).rsplit_once('.').unwrap().1.to_owned();
    assert_eq!(
        call(Some(format!("{signed}.{other_signature}"))).status,
        401
    );
    let mut no_scope = good.clone();
    no_scope["scope"] = json!("write");
    let r = call(Some(token(no_scope)));
    assert_eq!(
        (r.status, r.body.as_str()),
        (403, r#"{"message":"Forbidden"}"#)
    );

    // Authorizer: NONE opens one route of an API with a default authorizer.
    assert_eq!(
        nimbus
            .request("GET", &format!("{base}/public"), &[], b"")
            .status,
        200
    );
}

const LAMBDA_AUTH_TEMPLATE: &str = r#"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    CodeUri: fn
    Handler: bootstrap
    Runtime: provided.al2023
Resources:
  Rest:
    Type: AWS::Serverless::Api
    Properties:
      StageName: v1
      Auth:
        DefaultAuthorizer: Tokens
        Authorizers:
          Tokens:
            FunctionArn: !GetAtt Authorizer.Arn
            Identity:
              ReauthorizeEvery: 0
  Http:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Simple
        Authorizers:
          Simple:
            FunctionArn: !GetAtt Authorizer.Arn
            AuthorizerPayloadFormatVersion: "2.0"
            EnableSimpleResponses: true
            Identity:
              Headers: [Authorization]
  Authorizer:
    Type: AWS::Serverless::Function
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Rest:
          Type: Api
          Properties:
            RestApiId: !Ref Rest
            Path: /items/{id}
            Method: get
        Http:
          Type: HttpApi
          Properties:
            ApiId: !Ref Http
            Path: /items/{id}
            Method: GET
"#;

#[test]
fn lambda_authorizers_allow_deny_and_pass_their_context() {
    let nimbus = Nimbus::start(LAMBDA_AUTH_TEMPLATE, &[]);
    let rest = nimbus.api_url("Rest");
    let get = |base: &str, token: &str| {
        nimbus.request(
            "GET",
            &format!("{base}/items/1"),
            &[("authorization", token)],
            b"",
        )
    };

    let r = get(&rest, "allow");
    assert_eq!(r.status, 200, "{}\n{}", r.body, nimbus.lines().join("\n"));
    let auth = &r.json()["requestContext"]["authorizer"];
    assert_eq!(auth["principalId"], "user-42");
    assert_eq!(auth["tier"], "gold");
    assert_eq!(auth["n"], "7", "REST passes context values as strings");

    let r = get(&rest, "deny");
    assert_eq!(r.status, 403);
    assert_eq!(
        r.body,
        r#"{"Message":"User is not authorized to access this resource with an explicit deny"}"#
    );
    let r = get(&rest, "unauthorized");
    assert_eq!(
        (r.status, r.body.as_str()),
        (401, r#"{"message":"Unauthorized"}"#)
    );
    let r = get(&rest, "garbage");
    assert_eq!(r.status, 500, "{}", r.body);
    let r = nimbus.request("GET", &format!("{rest}/items/1"), &[], b"");
    assert_eq!(r.status, 401, "no token: {}", r.body);

    let http = nimbus.api_url("Http");
    let r = get(&http, "allow");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["requestContext"]["authorizer"]["lambda"]["user"],
        "simple-user"
    );
    let r = get(&http, "nope");
    assert_eq!(
        (r.status, r.body.as_str()),
        (403, r#"{"message":"Forbidden"}"#)
    );
}

const CORS_CACHE_TEMPLATE: &str = r#"
Transform: AWS::Serverless-2016-10-31
Resources:
  Rest:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      Cors: "'*'"
      CacheClusterEnabled: true
      MethodSettings:
        - HttpMethod: "*"
          ResourcePath: "/*"
          CachingEnabled: true
          CacheTtlInSeconds: 60
  Http:
    Type: AWS::Serverless::HttpApi
    Properties:
      CorsConfiguration:
        AllowOrigins: [https://app.example.com]
        AllowMethods: [GET, POST]
        AllowHeaders: [content-type]
        MaxAge: 600
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn
      Handler: bootstrap
      Runtime: provided.al2023
      Events:
        Rest:
          Type: Api
          Properties:
            RestApiId: !Ref Rest
            Path: /items/{id}
            Method: get
        Http:
          Type: HttpApi
          Properties:
            ApiId: !Ref Http
            Path: /items/{id}
            Method: GET
"#;

#[test]
fn cors_preflights_and_headers_as_each_api_flavour_answers_them() {
    let nimbus = Nimbus::start(CORS_CACHE_TEMPLATE, &[]);
    let http = nimbus.api_url("Http");
    let origin = ("origin", "https://app.example.com");
    let r = nimbus.request(
        "OPTIONS",
        &format!("{http}/items/1"),
        &[origin, ("access-control-request-method", "GET")],
        b"",
    );
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    let r = nimbus.request("GET", &format!("{http}/items/1"), &[origin], b"");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    let r = nimbus.request(
        "GET",
        &format!("{http}/items/1"),
        &[("origin", "https://evil.example.com")],
        b"",
    );
    assert_eq!(r.header("access-control-allow-origin"), None);

    let rest = nimbus.api_url("Rest");
    let r = nimbus.request("OPTIONS", &format!("{rest}/items/1"), &[origin], b"");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("GET,OPTIONS")
    );
}

#[test]
fn the_rest_stage_cache_answers_repeated_gets_until_the_ttl() {
    let nimbus = Nimbus::start(CORS_CACHE_TEMPLATE, &[]);
    let rest = nimbus.api_url("Rest");
    let first = nimbus.request("GET", &format!("{rest}/items/1?q=a"), &[], b"");
    let second = nimbus.request("GET", &format!("{rest}/items/1?q=a"), &[], b"");
    assert_eq!(first.status, 200);
    // The echoed event carries its request id: the same body means the function ran once.
    assert_eq!(first.body, second.body);
    let other = nimbus.request("GET", &format!("{rest}/items/1?q=b"), &[], b"");
    assert_ne!(
        first.body, other.body,
        "the query string is part of the cache key"
    );
    let bypass = nimbus.request(
        "GET",
        &format!("{rest}/items/1?q=a"),
        &[("cache-control", "max-age=0")],
        b"",
    );
    assert_ne!(first.body, bypass.body);
    let hit = nimbus.wait_for_line("\"cacheHit\":true", Duration::from_secs(5));
    assert!(hit.starts_with("Rest | {"), "{hit}");
}

const KEY_FROM_AUTHORIZER: &str = r#"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    CodeUri: fn
    Handler: bootstrap
    Runtime: provided.al2023
Resources:
  Rest:
    Type: AWS::Serverless::Api
    Properties:
      StageName: v1
      ApiKeySourceType: AUTHORIZER
      Auth:
        ApiKeyRequired: true
        DefaultAuthorizer: Tokens
        Authorizers:
          Tokens:
            FunctionArn: !GetAtt Authorizer.Arn
  Key:
    Type: AWS::ApiGateway::ApiKey
    Properties:
      Enabled: true
      Value: authorizer-issued-key-0001
  Plan:
    Type: AWS::ApiGateway::UsagePlan
    Properties:
      ApiStages: [{ApiId: !Ref Rest, Stage: v1}]
      Quota: {Limit: 1, Period: DAY}
  PlanKey:
    Type: AWS::ApiGateway::UsagePlanKey
    Properties: {KeyId: !Ref Key, KeyType: API_KEY, UsagePlanId: !Ref Plan}
  Authorizer:
    Type: AWS::Serverless::Function
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Rest:
          Type: Api
          Properties:
            RestApiId: !Ref Rest
            Path: /items
            Method: get
"#;

#[test]
fn with_api_key_source_authorizer_the_authorizers_usage_key_is_metered() {
    let nimbus = Nimbus::start(KEY_FROM_AUTHORIZER, &[]);
    let rest = nimbus.api_url("Rest");
    // No x-api-key header: the key comes from the authorizer's usageIdentifierKey.
    let r = nimbus.request(
        "GET",
        &format!("{rest}/items"),
        &[("authorization", "allow")],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["requestContext"]["identity"]["apiKeyId"], "Key");
    // The plan's quota of 1 is now spent.
    let r = nimbus.request(
        "GET",
        &format!("{rest}/items"),
        &[("authorization", "allow")],
        b"",
    );
    assert_eq!(
        (r.status, r.body.as_str()),
        (429, r#"{"message":"Limit Exceeded"}"#)
    );
}

const PREFLIGHT_AUTH: &str = r#"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    CodeUri: fn
    Handler: bootstrap
    Runtime: provided.al2023
Resources:
  Guarded:
    Type: AWS::Serverless::Api
    Properties:
      StageName: v1
      Cors: "'*'"
      Auth:
        DefaultAuthorizer: Tokens
        Authorizers:
          Tokens:
            FunctionArn: !GetAtt Authorizer.Arn
  Open:
    Type: AWS::Serverless::Api
    Properties:
      StageName: v1
      Cors: "'*'"
      Auth:
        DefaultAuthorizer: Tokens
        AddDefaultAuthorizerToCorsPreflight: false
        Authorizers:
          Tokens:
            FunctionArn: !GetAtt Authorizer.Arn
  Authorizer:
    Type: AWS::Serverless::Function
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Guarded:
          Type: Api
          Properties: {RestApiId: !Ref Guarded, Path: /items, Method: get}
        Open:
          Type: Api
          Properties: {RestApiId: !Ref Open, Path: /items, Method: get}
"#;

#[test]
fn sams_cors_preflights_carry_the_default_authorizer_unless_told_not_to() {
    let nimbus = Nimbus::start(PREFLIGHT_AUTH, &[]);
    let origin = ("origin", "https://app.example.com");
    let guarded = nimbus.api_url("Guarded");
    let r = nimbus.request("OPTIONS", &format!("{guarded}/items"), &[origin], b"");
    assert_eq!(
        (r.status, r.body.as_str()),
        (401, r#"{"message":"Unauthorized"}"#)
    );
    let r = nimbus.request(
        "OPTIONS",
        &format!("{guarded}/items"),
        &[origin, ("authorization", "allow")],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let open = nimbus.api_url("Open");
    let r = nimbus.request("OPTIONS", &format!("{open}/items"), &[origin], b"");
    assert_eq!(r.status, 200, "{}", r.body);
}

const DECLARED_AUTH_TEMPLATE: &str = r#"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    CodeUri: fn
    Handler: bootstrap
    Runtime: provided.al2023
Resources:
  Authorizer:
    Type: AWS::Serverless::Function
  Echo:
    Type: AWS::Serverless::Function
  OpenApi:
    Type: AWS::Serverless::Api
    Properties:
      StageName: v1
      GatewayResponses:
        DEFAULT_4XX:
          ResponseParameters:
            Headers:
              Access-Control-Allow-Origin: "'*'"
              X-Asked-From: method.request.header.Origin
        UNAUTHORIZED:
          StatusCode: 401
          ResponseTemplates:
            application/json: '{"error": $context.error.messageString, "type": "$context.error.responseType"}'
      DefinitionBody:
        openapi: "3.0.1"
        info: {title: declared, version: "1"}
        components:
          securitySchemes:
            tokens:
              type: apiKey
              name: Authorization
              in: header
              x-amazon-apigateway-authtype: custom
              x-amazon-apigateway-authorizer:
                type: token
                authorizerUri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Authorizer.Arn}/invocations"
                authorizerResultTtlInSeconds: 0
        paths:
          /items/{id}:
            get:
              security: [{tokens: []}]
              x-amazon-apigateway-integration:
                type: aws_proxy
                httpMethod: POST
                uri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Echo.Arn}/invocations"
          /open:
            get:
              x-amazon-apigateway-integration:
                type: aws_proxy
                httpMethod: POST
                uri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Echo.Arn}/invocations"
  Cfn:
    Type: AWS::ApiGateway::RestApi
    Properties: {Name: cfn}
  CfnTokens:
    Type: AWS::ApiGateway::Authorizer
    Properties:
      RestApiId: !Ref Cfn
      Name: tokens
      Type: TOKEN
      IdentitySource: method.request.header.Authorization
      AuthorizerResultTtlInSeconds: 0
      AuthorizerUri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Authorizer.Arn}/invocations"
  CfnItems:
    Type: AWS::ApiGateway::Resource
    Properties: {RestApiId: !Ref Cfn, ParentId: !GetAtt Cfn.RootResourceId, PathPart: items}
  CfnItem:
    Type: AWS::ApiGateway::Resource
    Properties: {RestApiId: !Ref Cfn, ParentId: !Ref CfnItems, PathPart: "{id}"}
  CfnGet:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref Cfn
      ResourceId: !Ref CfnItem
      HttpMethod: GET
      AuthorizationType: CUSTOM
      AuthorizerId: !Ref CfnTokens
      Integration:
        Type: AWS_PROXY
        IntegrationHttpMethod: POST
        Uri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Echo.Arn}/invocations"
  CfnNoRoute:
    Type: AWS::ApiGateway::GatewayResponse
    Properties:
      RestApiId: !Ref Cfn
      ResponseType: MISSING_AUTHENTICATION_TOKEN
      StatusCode: "404"
      ResponseTemplates: {application/json: '{"message": "no such route"}'}
  CfnStage:
    Type: AWS::ApiGateway::Stage
    Properties: {RestApiId: !Ref Cfn, DeploymentId: d, StageName: v1}
  Http:
    Type: AWS::ApiGatewayV2::Api
    Properties: {Name: http, ProtocolType: HTTP}
  HttpSimple:
    Type: AWS::ApiGatewayV2::Authorizer
    Properties:
      ApiId: !Ref Http
      Name: simple
      AuthorizerType: REQUEST
      AuthorizerPayloadFormatVersion: "2.0"
      EnableSimpleResponses: true
      IdentitySource: [$request.header.Authorization]
      AuthorizerUri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Authorizer.Arn}/invocations"
  HttpEcho:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Http
      IntegrationType: AWS_PROXY
      IntegrationUri: !GetAtt Echo.Arn
      PayloadFormatVersion: "2.0"
  HttpItem:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Http
      RouteKey: GET /items/{id}
      AuthorizationType: CUSTOM
      AuthorizerId: !Ref HttpSimple
      Target: !Sub "integrations/${HttpEcho}"
"#;

#[test]
fn authorizers_and_gateway_responses_declared_in_openapi_and_cloudformation_apply() {
    let nimbus = Nimbus::start(DECLARED_AUTH_TEMPLATE, &[]);
    let get = |api: &str, path: &str, token: Option<&str>| {
        let headers: Vec<(&str, &str)> = token.map(|t| ("authorization", t)).into_iter().collect();
        let r = nimbus.request(
            "GET",
            &format!("{}{path}", nimbus.api_url(api)),
            &headers,
            b"",
        );
        (r.status, r.body)
    };
    // (api, token, status): the REST token authorizers answer 401 without a token and 403 on
    // a deny; the HTTP API's simple authorizer 403 on false.
    let table = [
        ("OpenApi", Some("allow"), 200),
        ("OpenApi", Some("deny"), 403),
        ("OpenApi", None, 401),
        ("Cfn", Some("allow"), 200),
        ("Cfn", Some("deny"), 403),
        ("Cfn", None, 401),
        ("Http", Some("allow"), 200),
        ("Http", Some("nope"), 403),
    ];
    for (api, token, status) in table {
        let (got, body) = get(api, "/items/1", token);
        assert_eq!(got, status, "{api} with {token:?}: {body}");
    }
    // An operation without `security` stays open.
    assert_eq!(get("OpenApi", "/open", None).0, 200);

    // Gateway responses: a type's own customisation, else DEFAULT_4XX's.
    let (status, body) = get("OpenApi", "/items/1", None);
    assert_eq!(
        (status, serde_json::from_str::<Value>(&body).unwrap()),
        (
            401,
            json!({"error": "Unauthorized", "type": "UNAUTHORIZED"})
        )
    );
    let r = nimbus.request(
        "GET",
        &format!("{}/items/1", nimbus.api_url("OpenApi")),
        &[("authorization", "deny"), ("origin", "https://app.example")],
        b"",
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("x-asked-from"), Some("https://app.example"));
    assert_eq!(
        r.body,
        r#"{"Message":"User is not authorized to access this resource with an explicit deny"}"#
    );
    let (status, body) = get("Cfn", "/nothing", None);
    assert_eq!(
        (status, body.as_str()),
        (404, r#"{"message": "no such route"}"#)
    );
}
