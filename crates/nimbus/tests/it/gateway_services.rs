//! REST APIs' `AWS` integrations to the services nimbus serves, with no function at all:
//! the request API Gateway would send (mapping template, `integration.request.*` parameters,
//! `action/NAME` or `path/...`) reaches nimbus's own DynamoDB, SNS, S3 and SQS, and the
//! service's answer comes back through the integration response.

use crate::harness::Nimbus;

const TEMPLATE: &str = r#"
Resources:
  Cars:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: cars
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
      KeySchema: [{AttributeName: id, KeyType: HASH}]
  Inbox:
    Type: AWS::SQS::Queue
    Properties: {QueueName: inbox}
  Alerts:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: alerts
      Subscription: [{Protocol: sqs, Endpoint: !GetAtt Inbox.Arn}]
  Files:
    Type: AWS::S3::Bucket
    Properties: {BucketName: files}
  Api:
    Type: AWS::ApiGateway::RestApi
    Properties:
      Name: services
      BinaryMediaTypes: [image/png]
      Body:
        openapi: "3.0.1"
        info: {title: services, version: "1"}
        paths:
          /cars/{id}:
            put:
              x-amazon-apigateway-integration:
                type: aws
                httpMethod: POST
                uri: arn:aws:apigateway:us-east-1:dynamodb:action/PutItem
                requestTemplates:
                  application/json: '{"TableName": "$stageVariables.table", "Item": {"id": {"S": "$input.params(''id'')"}, "make": {"S": "$input.path(''$.make'')"}}, "ConditionExpression": "attribute_not_exists(id)"}'
                responses:
                  "4\\d{2}":
                    statusCode: "400"
                    responseTemplates: {application/json: '{"error": "$input.path(''$.__type'')"}'}
                  default: {statusCode: "204"}
            get:
              x-amazon-apigateway-integration:
                type: aws
                httpMethod: POST
                uri: arn:aws:apigateway:us-east-1:dynamodb:action/GetItem
                requestTemplates:
                  application/json: '{"TableName": "cars", "Key": {"id": {"S": "$input.params(''id'')"}}}'
                responses:
                  default:
                    statusCode: "200"
                    responseTemplates:
                      application/json: '#set($item = $input.path(''$.Item'')){"id": "$item.id.S", "make": "$item.make.S"}'
          /alerts:
            post:
              x-amazon-apigateway-integration:
                type: aws
                httpMethod: POST
                uri: arn:aws:apigateway:us-east-1:sns:action/Publish
                requestParameters:
                  integration.request.querystring.TopicArn: "'arn:aws:sns:us-east-1:123456789012:alerts'"
                  integration.request.querystring.Message: method.request.body
                  integration.request.querystring.Subject: method.request.header.X-Subject
                responses:
                  default:
                    statusCode: "202"
                    responseTemplates:
                      application/json: '{"id": "$input.path(''$.PublishResponse.PublishResult.MessageId'')"}'
          /queue:
            post:
              x-amazon-apigateway-integration:
                type: aws
                httpMethod: POST
                uri: arn:aws:apigateway:us-east-1:sqs:action/SendMessage
                requestParameters:
                  integration.request.querystring.QueueUrl: "'http://127.0.0.1/123456789012/inbox'"
                  integration.request.querystring.MessageBody: method.request.body.order
                responses:
                  default:
                    statusCode: "200"
                    responseTemplates:
                      application/json: '{"id": "$input.path(''$.SendMessageResponse.SendMessageResult.MessageId'')"}'
          /files/{key}:
            get:
              x-amazon-apigateway-integration:
                type: aws
                httpMethod: GET
                uri: arn:aws:apigateway:us-east-1:s3:path/files/{object}
                requestParameters:
                  integration.request.path.object: method.request.path.key
                responses:
                  "404": {statusCode: "404"}
                  default:
                    statusCode: "200"
                    responseParameters:
                      method.response.header.Content-Type: integration.response.header.Content-Type
            put:
              x-amazon-apigateway-integration:
                type: aws
                httpMethod: PUT
                uri: arn:aws:apigateway:us-east-1:s3:path/files/{key}
                requestParameters:
                  integration.request.header.Content-Type: method.request.header.Content-Type
                responses:
                  default: {statusCode: "200"}
          /text/{key}:
            put:
              x-amazon-apigateway-integration:
                type: aws
                httpMethod: PUT
                uri: arn:aws:apigateway:us-east-1:s3:path/files/{key}
                contentHandling: CONVERT_TO_BINARY
                requestParameters:
                  integration.request.header.Content-Type: "'image/png'"
                responses:
                  default: {statusCode: "200"}
  Deployment:
    Type: AWS::ApiGateway::Deployment
    Properties: {RestApiId: !Ref Api}
  Stage:
    Type: AWS::ApiGateway::Stage
    Properties:
      RestApiId: !Ref Api
      DeploymentId: !Ref Deployment
      StageName: prod
      Variables: {table: cars}
"#;

#[test]
fn rest_aws_integrations_reach_dynamodb_sns_sqs_and_s3_without_a_function() {
    let nimbus = Nimbus::start(TEMPLATE, &[]);
    let base = nimbus.api_url("Api");
    let json = ("content-type", "application/json");

    // DynamoDB: PutItem from a mapping template (the table name a stage variable), GetItem
    // through a response template.
    let r = nimbus.request(
        "PUT",
        &format!("{base}/cars/c1"),
        &[json],
        br#"{"make": "Volvo"}"#,
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let r = nimbus.request("GET", &format!("{base}/cars/c1"), &[], b"");
    assert_eq!(
        (r.status, r.json()),
        (200, serde_json::json!({"id": "c1", "make": "Volvo"})),
        "{}",
        r.body
    );
    // DynamoDB's own error (the template's condition) selects the 4xx integration response.
    let r = nimbus.request(
        "PUT",
        &format!("{base}/cars/c1"),
        &[json],
        br#"{"make": "Saab"}"#,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.json()["error"],
        "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"
    );

    // SNS: Publish with query-string parameters mapped from the body and a header; the
    // topic's queue subscription gets the notification.
    let r = nimbus.request(
        "POST",
        &format!("{base}/alerts"),
        &[json, ("X-Subject", "disk")],
        br#"{"level": "high"}"#,
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    assert!(!id.is_empty(), "{}", r.body);
    let m = nimbus.receive_one("inbox");
    let envelope: serde_json::Value = serde_json::from_str(m["Body"].as_str().unwrap()).unwrap();
    assert_eq!(envelope["MessageId"], id.as_str());
    assert_eq!(envelope["Message"], r#"{"level": "high"}"#);
    assert_eq!(envelope["Subject"], "disk");

    // SQS: SendMessage by action, the body a JSON path of the request's.
    let r = nimbus.request(
        "POST",
        &format!("{base}/queue"),
        &[json],
        br#"{"order": {"id": 4}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let m = nimbus.receive_one("inbox");
    assert_eq!(m["Body"], r#"{"id":4}"#);
    assert_eq!(m["MessageId"], r.json()["id"]);

    // S3: GetObject at a path filled from the method's path parameter.
    let put = nimbus.request(
        "PUT",
        &format!("{}/files/report.txt", nimbus.endpoint),
        &[("content-type", "text/plain")],
        b"all good",
    );
    assert_eq!(put.status, 200, "{}", put.body);
    let r = nimbus.request("GET", &format!("{base}/files/report.txt"), &[], b"");
    assert_eq!((r.status, r.body.as_str()), (200, "all good"));
    let r = nimbus.request("GET", &format!("{base}/files/missing.txt"), &[], b"");
    assert_eq!(r.status, 404, "{}", r.body);

    // Binary through the API (BinaryMediaTypes image/png): uploaded as it is, downloaded as it
    // is to an Accept of image/png, and as base64 text to a text Accept; a base64 upload with
    // CONVERT_TO_BINARY is stored decoded.
    let png: &[u8] = b"\x89PNG\r\n\x1a\n\x00\xff\xfe";
    let r = nimbus.request(
        "PUT",
        &format!("{base}/files/dot.png"),
        &[("content-type", "image/png")],
        png,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = nimbus.request(
        "GET",
        &format!("{base}/files/dot.png"),
        &[("accept", "image/png")],
        b"",
    );
    assert_eq!((r.status, r.bytes.as_slice()), (200, png));
    assert_eq!(r.header("content-type"), Some("image/png"));
    let r = nimbus.request(
        "GET",
        &format!("{base}/files/dot.png"),
        &[("accept", "application/json")],
        b"",
    );
    assert_eq!((r.status, r.body.as_str()), (200, "iVBORw0KGgoA//4="));
    let r = nimbus.request(
        "PUT",
        &format!("{base}/text/copy.png"),
        &[("content-type", "text/plain")],
        b"iVBORw0KGgoA//4=",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = nimbus.request(
        "GET",
        &format!("{base}/files/copy.png"),
        &[("accept", "image/png")],
        b"",
    );
    assert_eq!((r.status, r.bytes.as_slice()), (200, png));
}

const VALIDATED: &str = r#"
Resources:
  Api:
    Type: AWS::ApiGateway::RestApi
    Properties: {Name: validated}
  Orders:
    Type: AWS::ApiGateway::Resource
    Properties: {RestApiId: !Ref Api, ParentId: !GetAtt Api.RootResourceId, PathPart: orders}
  Everything:
    Type: AWS::ApiGateway::RequestValidator
    Properties: {RestApiId: !Ref Api, Name: everything, ValidateRequestBody: true, ValidateRequestParameters: true}
  Line:
    Type: AWS::ApiGateway::Model
    Properties:
      RestApiId: !Ref Api
      Name: Line
      ContentType: application/json
      Schema:
        type: object
        required: [sku, quantity]
        properties:
          sku: {type: string}
          quantity: {type: integer, minimum: 1}
  Order:
    Type: AWS::ApiGateway::Model
    Properties:
      RestApiId: !Ref Api
      Name: Order
      ContentType: application/json
      Schema: !Sub |
        {"type": "object", "required": ["lines"],
         "properties": {"lines": {"type": "array", "items": {"$ref": "https://apigateway.amazonaws.com/restapis/${Api}/models/Line"}}}}
  Post:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref Api
      ResourceId: !Ref Orders
      HttpMethod: POST
      AuthorizationType: NONE
      RequestValidatorId: !Ref Everything
      RequestParameters: {method.request.querystring.tenant: true, method.request.header.X-Trace: false}
      RequestModels: {application/json: !Ref Order}
      Integration:
        Type: MOCK
        RequestTemplates: {application/json: '{"statusCode": 200}'}
        IntegrationResponses:
          - StatusCode: 200
            ResponseTemplates: {application/json: '{"accepted": true}'}
  Stage:
    Type: AWS::ApiGateway::Stage
    Properties: {RestApiId: !Ref Api, DeploymentId: d, StageName: v1}
"#;

#[test]
fn cloudformation_request_validators_check_parameters_and_models_before_the_integration() {
    let nimbus = Nimbus::start(VALIDATED, &[]);
    let base = nimbus.api_url("Api");
    let json = ("content-type", "application/json");
    let good = br#"{"lines": [{"sku": "tea", "quantity": 2}]}"#;
    // (query, body, status, answer): parameters are checked first, then the body against
    // the model, whose `$ref` names the other model by its URL.
    let table: [(&str, &[u8], u16, &str); 4] = [
        ("?tenant=a", good, 200, r#"{"accepted": true}"#),
        (
            "",
            good,
            400,
            r#"{"message": "Missing required request parameters: [tenant]"}"#,
        ),
        (
            "?tenant=a",
            br#"{"lines": [{"sku": "tea", "quantity": 0}]}"#,
            400,
            r#"{"message": "Invalid request body"}"#,
        ),
        (
            "?tenant=a",
            b"not json",
            400,
            r#"{"message": "Invalid request body"}"#,
        ),
    ];
    for (query, body, status, answer) in table {
        let r = nimbus.request("POST", &format!("{base}/orders{query}"), &[json], body);
        let got: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        let want: serde_json::Value = serde_json::from_str(answer).unwrap();
        assert_eq!(
            (r.status, got),
            (status, want),
            "{query} {}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn an_openapi_body_included_with_aws_include_is_served() {
    let template = r#"
Transform: AWS::Serverless-2016-10-31
Resources:
  Echo:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: fn, Handler: bootstrap, Runtime: provided.al2023}
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: v1
      DefinitionBody:
        Fn::Transform:
          Name: AWS::Include
          Parameters: {Location: api/openapi.yaml}
"#;
    let openapi = r#"openapi: "3.0.1"
info: {title: included, version: "1"}
paths:
  /items/{id}:
    get:
      x-amazon-apigateway-integration:
        type: aws_proxy
        httpMethod: POST
        uri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Echo.Arn}/invocations"
"#;
    let nimbus = Nimbus::start_with_files(template, &[], &[("api/openapi.yaml", openapi, false)]);
    let r = nimbus.request(
        "GET",
        &format!("{}/items/9", nimbus.api_url("Api")),
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["pathParameters"]["id"], "9", "{}", r.body);
}
