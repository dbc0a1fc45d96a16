//! cars-api: the REST API (lambda_http) over the cars table, with the AWS SDK for Rust.
//!
//! `GET /cars` (`status`, `limit`, `next`), `POST /cars`, `GET /cars/{id}`, `PUT /cars/{id}`
//! (a full replacement, with the `version` last read: optimistic locking), `DELETE /cars/{id}`
//! and `GET /stats` (cars per status, kept by status-counter from the table's events).

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use inventory::attrs::{item_from_sdk, item_to_sdk, to_sdk};
use inventory::{car, page, ApiError};
use lambda_http::{run, service_fn, Body, Error, Request, RequestExt, Response};
use serde_json::{json, Map, Value};

struct Api {
    db: Client,
    cars: String,
    counts: String,
}

fn respond(status: u16, body: &Value, location: Option<&str>) -> Response<Body> {
    let mut r = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    if let Some(l) = location {
        r = r.header("location", l);
    }
    r.body(Body::Text(body.to_string()))
        .expect("static header names and values are valid")
}

fn empty(status: u16) -> Response<Body> {
    Response::builder()
        .status(status)
        .body(Body::Empty)
        .expect("a status alone is a valid response")
}

/// A DynamoDB call that failed for a reason the client cannot fix.
fn unavailable<E>(e: &aws_sdk_dynamodb::error::SdkError<E>) -> ApiError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
{
    eprintln!("cars-api: DynamoDB: {}", DisplayErrorContext(e));
    ApiError::new(
        502,
        "table_unavailable",
        "the cars table did not answer; try again",
    )
}

fn is_condition_failure<E: ProvideErrorMetadata>(e: &aws_sdk_dynamodb::error::SdkError<E>) -> bool {
    e.as_service_error().and_then(ProvideErrorMetadata::code)
        == Some("ConditionalCheckFailedException")
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("the current time formats as RFC 3339")
}

/// The route: `/cars`, `/cars/{id}` or `/stats`, after any stage prefix.
fn route(path: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.len() > 1 && !matches!(parts[0], "cars" | "stats") {
        parts.remove(0);
    }
    parts
}

impl Api {
    async fn handle(&self, req: Request) -> Response<Body> {
        let method = req.method().as_str().to_owned();
        let path = req.uri().path().to_owned();
        let parts = route(&path);
        let answer = match (method.as_str(), parts.as_slice()) {
            ("GET", ["cars"]) => self.list(&req).await,
            ("POST", ["cars"]) => self.create(req.body()).await,
            ("GET", ["cars", id]) => self.get(id).await,
            ("PUT", ["cars", id]) => self.replace(id, req.body()).await,
            ("DELETE", ["cars", id]) => self.delete(id).await,
            ("GET", ["stats"]) => self.stats().await,
            _ => Err(ApiError::new(
                404,
                "no_route",
                format!("no route {method} {path}; see the API's OpenAPI document"),
            )),
        };
        answer.unwrap_or_else(|e| respond(e.status, &e.body(), None))
    }

    async fn create(&self, body: &Body) -> Result<Response<Body>, ApiError> {
        let (mut car, _) = car::parse(body.as_ref(), false)?;
        let id = uuid::Uuid::new_v4().to_string();
        let at = now();
        car.insert("id".into(), id.clone().into());
        car.insert("version".into(), 1.into());
        car.insert("created_at".into(), at.clone().into());
        car.insert("updated_at".into(), at.into());
        self.db
            .put_item()
            .table_name(&self.cars)
            .set_item(Some(item_to_sdk(&car)))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(respond(
            201,
            &Value::Object(car),
            Some(&format!("/cars/{id}")),
        ))
    }

    async fn get(&self, id: &str) -> Result<Response<Body>, ApiError> {
        let out = self
            .db
            .get_item()
            .table_name(&self.cars)
            .key("id", AttributeValue::S(id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        match out.item() {
            Some(item) => Ok(respond(200, &Value::Object(item_from_sdk(item)), None)),
            None => Err(ApiError::not_found(id)),
        }
    }

    async fn list(&self, req: &Request) -> Result<Response<Body>, ApiError> {
        let q = req.query_string_parameters();
        let limit = page::limit(q.first("limit"))?;
        let start = q
            .first("next")
            .map(page::decode)
            .transpose()?
            .map(|k| item_to_sdk(&k));
        let (items, last) = match q.first("status") {
            Some(status) => {
                let status = status.to_ascii_lowercase();
                if !car::STATUSES.contains(&status.as_str()) {
                    return Err(ApiError::new(
                        400,
                        "invalid_query",
                        format!(
                            "status must be one of {}, got {status:?}",
                            car::STATUSES.join(", ")
                        ),
                    ));
                }
                let out = self
                    .db
                    .query()
                    .table_name(&self.cars)
                    .index_name("by-status")
                    .key_condition_expression("#s = :s")
                    .expression_attribute_names("#s", "status")
                    .expression_attribute_values(":s", AttributeValue::S(status))
                    .limit(limit)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| unavailable(&e))?;
                (out.items, out.last_evaluated_key)
            }
            None => {
                let out = self
                    .db
                    .scan()
                    .table_name(&self.cars)
                    .limit(limit)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| unavailable(&e))?;
                (out.items, out.last_evaluated_key)
            }
        };
        let cars: Vec<Value> = items
            .unwrap_or_default()
            .iter()
            .map(|i| Value::Object(item_from_sdk(i)))
            .collect();
        let mut body = json!({ "cars": cars });
        if let Some(last) = last.filter(|k| !k.is_empty()) {
            body["next"] = page::encode(&item_from_sdk(&last)).into();
        }
        Ok(respond(200, &body, None))
    }

    async fn replace(&self, id: &str, body: &Body) -> Result<Response<Body>, ApiError> {
        let (car, version) = car::parse(body.as_ref(), true)?;
        let expected = version.expect("PUT bodies carry a version");
        let mut names: HashMap<String, String> = HashMap::new();
        let mut values: HashMap<String, AttributeValue> = HashMap::new();
        let mut sets = Vec::new();
        for (i, (field, value)) in car.iter().enumerate() {
            names.insert(format!("#f{i}"), field.clone());
            values.insert(format!(":f{i}"), to_sdk(value));
            sets.push(format!("#f{i} = :f{i}"));
        }
        // A full replacement: the optional fields the body leaves out are removed.
        let removed: Vec<String> = ["color", "price", "mileage", "vin"]
            .iter()
            .filter(|f| !car.contains_key(**f))
            .map(|f| f.to_string())
            .collect();
        names.insert("#v".into(), "version".into());
        names.insert("#u".into(), "updated_at".into());
        values.insert(":expected".into(), AttributeValue::N(expected.to_string()));
        values.insert(":one".into(), AttributeValue::N("1".into()));
        values.insert(":now".into(), AttributeValue::S(now()));
        sets.push("#v = #v + :one".into());
        sets.push("#u = :now".into());
        let mut update = format!("SET {}", sets.join(", "));
        if !removed.is_empty() {
            update.push_str(" REMOVE ");
            update.push_str(&removed.join(", "));
        }
        let out = self
            .db
            .update_item()
            .table_name(&self.cars)
            .key("id", AttributeValue::S(id.to_owned()))
            .update_expression(update)
            .condition_expression("attribute_exists(id) AND #v = :expected")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match out {
            Ok(out) => Ok(respond(
                200,
                &Value::Object(
                    out.attributes
                        .as_ref()
                        .map(item_from_sdk)
                        .unwrap_or_default(),
                ),
                None,
            )),
            Err(e) if is_condition_failure(&e) => {
                let current = e
                    .as_service_error()
                    .and_then(|s| match s {
                        aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c) => c.item.as_ref(),
                        _ => None,
                    })
                    .map(item_from_sdk);
                match current {
                    None => Err(ApiError::not_found(id)),
                    Some(current) => {
                        let at = current.get("version").cloned().unwrap_or(Value::Null);
                        let mut err = ApiError::new(
                            409,
                            "version_conflict",
                            format!("car {id} is at version {at}, not {expected}: read it again and retry with its version"),
                        );
                        err.extra = Some(("current_version", at));
                        Err(err)
                    }
                }
            }
            Err(e) => Err(unavailable(&e)),
        }
    }

    async fn delete(&self, id: &str) -> Result<Response<Body>, ApiError> {
        match self
            .db
            .delete_item()
            .table_name(&self.cars)
            .key("id", AttributeValue::S(id.to_owned()))
            .condition_expression("attribute_exists(id)")
            .send()
            .await
        {
            Ok(_) => Ok(empty(204)),
            Err(e) if is_condition_failure(&e) => Err(ApiError::not_found(id)),
            Err(e) => Err(unavailable(&e)),
        }
    }

    async fn stats(&self) -> Result<Response<Body>, ApiError> {
        let out = self
            .db
            .scan()
            .table_name(&self.counts)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        let mut counts = Map::new();
        for status in car::STATUSES {
            counts.insert(status.to_string(), 0.into());
        }
        for item in out.items() {
            let item = item_from_sdk(item);
            if let (Some(Value::String(s)), Some(n)) = (item.get("status"), item.get("count")) {
                counts.insert(s.clone(), n.clone());
            }
        }
        Ok(respond(200, &json!({ "counts": counts }), None))
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let cars = inventory::edge::required_env("cars-api", "CARS_TABLE");
    let counts = inventory::edge::required_env("cars-api", "COUNTS_TABLE");
    let config = inventory::edge::aws_config().await;
    let api = &*Box::leak(Box::new(Api {
        db: Client::new(&config),
        cars,
        counts,
    }));
    run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(api.handle(req).await)
    }))
    .await
}
