//! The Amazon States Language: a definition parsed into [`Machine`] and checked as
//! `ValidateStateMachineDefinition` checks it, every problem a [`Diagnostic`] with its location
//! (`/States/<name>/<field>`). Pure: no I/O, no clock.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::choice::Rule;
use crate::intrinsic::{looks_like_intrinsic, Intrinsic};
use crate::path::Path;

/// One problem with a definition, as `ValidateStateMachineDefinition` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// `SCHEMA_VALIDATION_FAILED`, `MISSING_TRANSITION_TARGET`, ...
    pub code: &'static str,
    pub message: String,
    /// A JSON pointer into the definition, e.g. `/States/Lost`.
    pub location: String,
}

impl Diagnostic {
    /// The text of one diagnostic in `InvalidDefinition`'s message.
    pub fn text(&self) -> String {
        format!("{}: {} at {}", self.code, self.message, self.location)
    }
}

/// `InvalidDefinition`'s message for a list of diagnostics, as Step Functions words it.
pub fn invalid_definition_message(diags: &[Diagnostic]) -> String {
    let texts: Vec<String> = diags.iter().map(Diagnostic::text).collect();
    format!("Invalid State Machine Definition: '{}'", texts.join(", "))
}

/// Which language a state's fields are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    JsonPath,
    Jsonata,
}

/// A state machine, or a branch of a `Parallel`, or a `Map`'s item processor.
#[derive(Debug, Clone)]
pub struct Machine {
    pub start_at: String,
    pub states: BTreeMap<String, State>,
    pub timeout_seconds: Option<u64>,
}

/// Where a path field takes its value from: absent (`$`), `null` (the empty object for
/// `InputPath`/`OutputPath`, "discard the result" for `ResultPath`), or a path.
#[derive(Debug, Clone)]
pub enum Sel {
    Default,
    Null,
    Path(Path),
}

#[derive(Debug, Clone)]
pub struct State {
    pub kind: Kind,
    /// The next state; `None` for `End: true` and for states that have no transition.
    pub next: Option<String>,
    pub lang: Lang,
    pub input_path: Sel,
    pub output_path: Sel,
    pub result_path: Sel,
    /// `Parameters` (or a `Map`'s `ItemSelector`), a payload template.
    pub parameters: Option<Value>,
    pub result_selector: Option<Value>,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
    /// The state as written, for the JSONata fields evaluated at run time.
    pub def: Value,
    /// JSONata: `Arguments`, `Output`, `Assign`.
    pub arguments: Option<Value>,
    pub output: Option<Value>,
    pub assign: Option<Value>,
}

impl State {
    /// The name of the type, as in `<Type>StateEntered`.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Pass { .. } => "Pass",
            Kind::Task { .. } => "Task",
            Kind::Choice { .. } => "Choice",
            Kind::Wait(_) => "Wait",
            Kind::Succeed => "Succeed",
            Kind::Fail { .. } => "Fail",
            Kind::Parallel { .. } => "Parallel",
            Kind::Map { .. } => "Map",
        }
    }
}

#[derive(Debug, Clone)]
pub enum Kind {
    Pass {
        result: Option<Value>,
    },
    Task {
        resource: String,
        timeout: Option<Seconds>,
        heartbeat: Option<Seconds>,
    },
    Choice {
        rules: Vec<(Rule, String)>,
        default: Option<String>,
    },
    Wait(WaitFor),
    Succeed,
    Fail {
        error: Option<Text>,
        cause: Option<Text>,
    },
    Parallel {
        branches: Vec<Machine>,
    },
    Map {
        processor: Box<Machine>,
        items_path: Sel,
        /// JSONata's `Items`, or a literal list.
        items: Option<Value>,
        max_concurrency: Option<Seconds>,
        tolerated_percentage: Option<f64>,
        tolerated_count: Option<u64>,
        /// Distributed mode's `ItemBatcher`: each iteration gets `{"Items": [...], "BatchInput"}`.
        batcher: Option<Batcher>,
        /// Distributed mode's `ItemReader`: the items come from S3 instead of the input.
        reader: Option<Box<ItemReader>>,
        /// Distributed mode's `ResultWriter`: the results go to S3 (and/or are transformed).
        writer: Option<Box<ResultWriter>>,
        /// Distributed mode: each item (or batch) is a child workflow execution of a Map Run.
        distributed: Option<Box<Distributed>>,
    },
}

/// A distributed `Map`'s child workflow executions: what each runs, and how.
#[derive(Debug, Clone)]
pub struct Distributed {
    /// `ProcessorConfig.ExecutionType: EXPRESS`; else each child is a Standard execution.
    pub express: bool,
    /// `Label`: names the Map Run and its children's state machine.
    pub label: Option<String>,
    /// The `ItemProcessor` as a definition of its own: its `ProcessorConfig` left out, its
    /// query language the one it inherited.
    pub definition: String,
}

/// Where a distributed `Map` reads its items: one S3 object (`s3:getObject`, as JSON, JSON
/// Lines or CSV) or a listing (`s3:listObjectsV2`, one item per object).
#[derive(Debug, Clone)]
pub struct ItemReader {
    pub listing: bool,
    /// `Parameters` (JSONPath) or `Arguments` (JSONata): `Bucket`, `Key` / `Prefix`.
    pub template: Option<Value>,
    pub input_type: InputType,
    /// CSV headers given in the definition (`CSVHeaderLocation: GIVEN`); else the first row.
    pub csv_headers: Option<Vec<String>>,
    pub csv_delimiter: char,
    pub max_items: Option<Seconds>,
    /// JSON files: a JSON Pointer to the array inside the document.
    pub items_pointer: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputType {
    Json,
    Jsonl,
    Csv,
    /// An S3 Inventory report's `manifest.json`: its CSV files' rows are the items.
    Manifest,
    /// A Parquet file: its rows are the items.
    Parquet,
}

/// A distributed `Map`'s `ResultWriter`: `Bucket`/`Prefix` to write the child results to (when
/// a `Resource` is given) and the `WriterConfig` that shapes them.
#[derive(Debug, Clone)]
pub struct ResultWriter {
    pub template: Option<Value>,
    pub to_s3: bool,
    pub jsonl: bool,
    pub transformation: Transformation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transformation {
    /// Each child's execution metadata with its input and output (the default).
    None,
    /// The children's outputs only.
    Compact,
    /// The children's outputs, arrays flattened into one.
    Flatten,
}

#[derive(Debug, Clone)]
pub struct Batcher {
    pub max_items: u64,
    pub max_bytes: u64,
    pub batch_input: Option<Value>,
}

/// A number of seconds given literally or read from the input.
#[derive(Debug, Clone)]
pub enum Seconds {
    Fixed(u64),
    Path(Path),
}

#[derive(Debug, Clone)]
pub enum WaitFor {
    Seconds(Seconds),
    Timestamp(String),
    TimestampPath(Path),
}

/// A `Fail` state's `Error`/`Cause`: literal, or `ErrorPath`/`CausePath` (a path or an
/// intrinsic function).
#[derive(Debug, Clone)]
pub enum Text {
    Literal(String),
    Path(Path),
    Intrinsic(Intrinsic),
}

#[derive(Debug, Clone)]
pub struct Retrier {
    pub errors: Vec<String>,
    pub interval_seconds: f64,
    pub max_attempts: u32,
    pub backoff_rate: f64,
    pub max_delay_seconds: Option<f64>,
    pub full_jitter: bool,
}

#[derive(Debug, Clone)]
pub struct Catcher {
    pub errors: Vec<String>,
    pub next: String,
    pub result_path: Sel,
}

/// Parses and validates a definition (the JSON text of `definition`).
pub fn parse(text: &str) -> Result<Machine, Vec<Diagnostic>> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        vec![Diagnostic {
            code: "INVALID_JSON_DESCRIPTION",
            message: format!("{e}"),
            location: String::new(),
        }]
    })?;
    parse_value(&value)
}

/// Parses and validates a definition already read as JSON.
pub fn parse_value(value: &Value) -> Result<Machine, Vec<Diagnostic>> {
    let mut p = Parser::default();
    let top_lang = match value.get("QueryLanguage") {
        None => Lang::JsonPath,
        Some(v) => match v.as_str() {
            Some("JSONPath") => Lang::JsonPath,
            Some("JSONata") => Lang::Jsonata,
            _ => {
                p.schema(
                    "/QueryLanguage",
                    "Value must be one of [JSONPath, JSONata]".into(),
                );
                Lang::JsonPath
            }
        },
    };
    let machine = p.machine(value, "", top_lang, true);
    match (machine, p.diags.is_empty()) {
        (Some(m), true) => Ok(m),
        _ => Err(p.diags),
    }
}

const ERROR_NAMES_WITH_DOT: &[&str] = &[
    "States.ALL",
    "States.HeartbeatTimeout",
    "States.Timeout",
    "States.TaskFailed",
    "States.Permissions",
    "States.ResultPathMatchFailure",
    "States.ParameterPathFailure",
    "States.QueryEvaluationError",
    "States.BranchFailed",
    "States.NoChoiceMatched",
    "States.IntrinsicFailure",
    "States.ExceedToleratedFailureThreshold",
    "States.ItemReaderFailed",
    "States.ResultWriterFailed",
    "States.Runtime",
    "States.DataLimitExceeded",
];

#[derive(Default)]
struct Parser {
    diags: Vec<Diagnostic>,
}

/// The fields each state type accepts beyond `Type` and `Comment`, by query language.
fn allowed_fields(kind: &str, lang: Lang) -> &'static [&'static str] {
    match (kind, lang) {
        ("Pass", Lang::JsonPath) => &[
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "ResultPath",
            "Parameters",
            "Result",
            "Assign",
            "QueryLanguage",
        ],
        ("Task", Lang::JsonPath) => &[
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "ResultPath",
            "Parameters",
            "ResultSelector",
            "Retry",
            "Catch",
            "Resource",
            "TimeoutSeconds",
            "TimeoutSecondsPath",
            "HeartbeatSeconds",
            "HeartbeatSecondsPath",
            "Credentials",
            "Assign",
            "QueryLanguage",
        ],
        ("Choice", Lang::JsonPath) => &[
            "InputPath",
            "OutputPath",
            "Choices",
            "Default",
            "Assign",
            "QueryLanguage",
        ],
        ("Wait", Lang::JsonPath) => &[
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "Seconds",
            "Timestamp",
            "SecondsPath",
            "TimestampPath",
            "Assign",
            "QueryLanguage",
        ],
        ("Succeed", Lang::JsonPath) => &["InputPath", "OutputPath", "QueryLanguage"],
        ("Fail", Lang::JsonPath) => &["Error", "Cause", "ErrorPath", "CausePath", "QueryLanguage"],
        ("Parallel", Lang::JsonPath) => &[
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "ResultPath",
            "Parameters",
            "ResultSelector",
            "Retry",
            "Catch",
            "Branches",
            "Assign",
            "QueryLanguage",
        ],
        ("Map", Lang::JsonPath) => &[
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "ResultPath",
            "Parameters",
            "ItemSelector",
            "ResultSelector",
            "Retry",
            "Catch",
            "Iterator",
            "ItemProcessor",
            "ItemsPath",
            "MaxConcurrency",
            "MaxConcurrencyPath",
            "ItemReader",
            "ItemBatcher",
            "ResultWriter",
            "ToleratedFailurePercentage",
            "ToleratedFailureCount",
            "ToleratedFailurePercentagePath",
            "ToleratedFailureCountPath",
            "Label",
            "Assign",
            "QueryLanguage",
        ],
        ("Pass", Lang::Jsonata) => &["Next", "End", "Output", "Assign", "QueryLanguage"],
        ("Task", Lang::Jsonata) => &[
            "Next",
            "End",
            "Output",
            "Assign",
            "Arguments",
            "Retry",
            "Catch",
            "Resource",
            "TimeoutSeconds",
            "HeartbeatSeconds",
            "Credentials",
            "QueryLanguage",
        ],
        ("Choice", Lang::Jsonata) => &["Choices", "Default", "Output", "Assign", "QueryLanguage"],
        ("Wait", Lang::Jsonata) => &[
            "Next",
            "End",
            "Output",
            "Assign",
            "Seconds",
            "Timestamp",
            "QueryLanguage",
        ],
        ("Succeed", Lang::Jsonata) => &["Output", "QueryLanguage"],
        ("Fail", Lang::Jsonata) => &["Error", "Cause", "QueryLanguage"],
        ("Parallel", Lang::Jsonata) => &[
            "Next",
            "End",
            "Output",
            "Assign",
            "Arguments",
            "Retry",
            "Catch",
            "Branches",
            "QueryLanguage",
        ],
        ("Map", Lang::Jsonata) => &[
            "Next",
            "End",
            "Output",
            "Assign",
            "Arguments",
            "Retry",
            "Catch",
            "ItemProcessor",
            "Items",
            "ItemSelector",
            "MaxConcurrency",
            "ItemReader",
            "ItemBatcher",
            "ResultWriter",
            "ToleratedFailurePercentage",
            "ToleratedFailureCount",
            "Label",
            "QueryLanguage",
        ],
        _ => &[],
    }
}

impl Parser {
    fn push(&mut self, code: &'static str, location: &str, message: String) {
        self.diags.push(Diagnostic {
            code,
            message,
            location: location.to_owned(),
        });
    }

    fn schema(&mut self, location: &str, message: String) {
        self.push("SCHEMA_VALIDATION_FAILED", location, message);
    }

    fn machine(&mut self, v: &Value, at: &str, lang: Lang, top: bool) -> Option<Machine> {
        let Some(obj) = v.as_object() else {
            self.schema(at_or_root(at), "Expected an object".into());
            return None;
        };
        let known: &[&str] = if top {
            &[
                "Comment",
                "StartAt",
                "States",
                "TimeoutSeconds",
                "Version",
                "QueryLanguage",
            ]
        } else {
            &["Comment", "StartAt", "States", "ProcessorConfig"]
        };
        for key in obj.keys() {
            if !known.contains(&key.as_str()) {
                self.schema(
                    &format!("{at}/{key}"),
                    format!("Field '{key}' is not supported"),
                );
            }
        }
        let start_at = match obj.get("StartAt") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.schema(
                    &format!("{at}/StartAt"),
                    "Expected value of type: String".into(),
                );
                None
            }
            None => {
                self.schema(
                    at_or_root(at),
                    "These fields are required: [StartAt]".into(),
                );
                None
            }
        };
        let timeout_seconds = match obj.get("TimeoutSeconds") {
            None => None,
            Some(v) => match v.as_u64().filter(|n| (1..=99_999_999).contains(n)) {
                Some(n) => Some(n),
                None => {
                    self.schema(
                        &format!("{at}/TimeoutSeconds"),
                        "Expected a positive integer no greater than 99999999".into(),
                    );
                    None
                }
            },
        };
        let Some(states) = obj.get("States") else {
            self.schema(at_or_root(at), "These fields are required: [States]".into());
            return None;
        };
        let Some(states) = states.as_object() else {
            self.schema(
                &format!("{at}/States"),
                "Expected value of type: Object".into(),
            );
            return None;
        };
        if states.is_empty() {
            self.schema(
                &format!("{at}/States"),
                "At least one state is required".into(),
            );
            return None;
        }
        let mut parsed = BTreeMap::new();
        for (name, s) in states {
            let loc = format!("{at}/States/{name}");
            if name.is_empty() || name.chars().count() > 80 {
                self.schema(
                    &loc,
                    "State names must be between 1 and 80 characters".into(),
                );
            }
            if let Some(state) = self.state(s, &loc, lang) {
                parsed.insert(name.clone(), state);
            }
        }
        let start_at = start_at?;
        if !states.contains_key(&start_at) {
            self.push(
                "MISSING_TRANSITION_TARGET",
                &format!("{at}/StartAt"),
                format!("Missing 'Next' target: {start_at}"),
            );
            return None;
        }
        // Transitions to states that do not exist, then states nothing reaches.
        let mut targets: Vec<(String, String)> = Vec::new();
        for (name, state) in &parsed {
            let loc = format!("{at}/States/{name}");
            if let Some(n) = &state.next {
                targets.push((n.clone(), format!("{loc}/Next")));
            }
            if let Kind::Choice { rules, default } = &state.kind {
                for (i, (_, n)) in rules.iter().enumerate() {
                    targets.push((n.clone(), format!("{loc}/Choices[{i}]/Next")));
                }
                if let Some(d) = default {
                    targets.push((d.clone(), format!("{loc}/Default")));
                }
            }
            for (i, c) in state.catch.iter().enumerate() {
                targets.push((c.next.clone(), format!("{loc}/Catch[{i}]/Next")));
            }
        }
        for (target, loc) in &targets {
            if !states.contains_key(target) {
                self.push(
                    "MISSING_TRANSITION_TARGET",
                    loc,
                    format!("Missing 'Next' target: {target}"),
                );
            }
        }
        if parsed.len() == states.len() {
            let reached = reachable(&start_at, &parsed);
            for name in states.keys() {
                if !reached.contains(name.as_str()) {
                    self.push(
                        "MISSING_TRANSITION_TARGET",
                        &format!("{at}/States/{name}"),
                        format!("State \"{name}\" is not reachable."),
                    );
                }
            }
            let terminal = parsed.values().any(|s| {
                matches!(s.kind, Kind::Succeed | Kind::Fail { .. })
                    || (s.next.is_none() && !matches!(s.kind, Kind::Choice { .. }))
            });
            if !terminal {
                // AWS reports this one without a location, and not the unreachable states.
                self.diags
                    .retain(|d| !d.message.ends_with("is not reachable."));
                self.push(
                    "MISSING_END_STATE",
                    "null",
                    "Workflow has no terminal state".into(),
                );
            }
        }
        Some(Machine {
            start_at,
            states: parsed,
            timeout_seconds,
        })
    }

    fn state(&mut self, v: &Value, at: &str, inherited: Lang) -> Option<State> {
        let Some(obj) = v.as_object() else {
            self.schema(at, "Expected an object".into());
            return None;
        };
        let lang = match obj.get("QueryLanguage").map(|v| v.as_str()) {
            None => inherited,
            Some(Some("JSONata")) => Lang::Jsonata,
            Some(Some("JSONPath")) if inherited == Lang::JsonPath => Lang::JsonPath,
            Some(Some("JSONPath")) => {
                self.schema(
                    &format!("{at}/QueryLanguage"),
                    "A state may not use JSONPath when the state machine's QueryLanguage is JSONata".into(),
                );
                Lang::JsonPath
            }
            Some(_) => {
                self.schema(
                    &format!("{at}/QueryLanguage"),
                    "Value must be one of [JSONPath, JSONata]".into(),
                );
                inherited
            }
        };
        let Some(kind_name) = obj.get("Type").and_then(Value::as_str) else {
            self.schema(at, "These fields are required: [Type]".into());
            return None;
        };
        let allowed = allowed_fields(kind_name, lang);
        if allowed.is_empty() {
            self.schema(
                &format!("{at}/Type"),
                "The field 'Type' should have one of these values: [Task, Wait, Pass, Succeed, Fail, Choice, Parallel, Map]".into(),
            );
            return None;
        }
        for key in obj.keys() {
            if key != "Type" && key != "Comment" && !allowed.contains(&key.as_str()) {
                let why = match lang {
                    Lang::JsonPath if ["Arguments", "Output", "Items"].contains(&key.as_str()) => {
                        " (a JSONata field: set QueryLanguage to JSONata)"
                    }
                    Lang::Jsonata
                        if [
                            "InputPath",
                            "OutputPath",
                            "ResultPath",
                            "Parameters",
                            "ResultSelector",
                            "ItemsPath",
                        ]
                        .contains(&key.as_str()) =>
                    {
                        " (a JSONPath field: JSONata states use Arguments and Output)"
                    }
                    _ => "",
                };
                self.schema(at, format!("Field '{key}' is not supported{why}"));
            }
        }
        if lang == Lang::Jsonata {
            self.jsonata_fields(obj, at);
        }
        let field = |k: &str| obj.get(k);
        let has_transition = !matches!(kind_name, "Choice" | "Succeed" | "Fail");
        let mut next = None;
        if has_transition {
            let end = match field("End") {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    self.schema(
                        &format!("{at}/End"),
                        "Expected value of type: Boolean".into(),
                    );
                    false
                }
            };
            match (field("Next"), end) {
                (Some(Value::String(n)), false) => next = Some(n.clone()),
                (Some(Value::String(_)), true) => self.schema(
                    at,
                    "Exactly one of these fields is required: [Next, End]".into(),
                ),
                (Some(_), _) => self.schema(
                    &format!("{at}/Next"),
                    "Expected value of type: String".into(),
                ),
                (None, true) => {}
                (None, false) => self.push(
                    "MISSING_TRANSITION_TARGET",
                    at,
                    "State is not terminal but has no 'Next' field".into(),
                ),
            }
        }
        let input_path = self.sel(obj, "InputPath", at);
        let output_path = self.sel(obj, "OutputPath", at);
        let result_path = self.sel(obj, "ResultPath", at);
        if let Sel::Path(p) = &result_path {
            if !p.is_reference() || p.is_context() {
                self.schema(
                    &format!("{at}/ResultPath"),
                    "Value is not a Reference Path".into(),
                );
            }
        }
        let parameters = match (field("Parameters"), field("ItemSelector")) {
            (Some(_), Some(_)) => {
                self.schema(
                    at,
                    "There should only be one of the following fields: [Parameters, ItemSelector]"
                        .into(),
                );
                None
            }
            (Some(p), None) => self.template(p, &format!("{at}/Parameters"), lang),
            (None, Some(p)) => self.template(p, &format!("{at}/ItemSelector"), lang),
            (None, None) => None,
        };
        let result_selector = field("ResultSelector")
            .and_then(|p| self.template(p, &format!("{at}/ResultSelector"), lang));
        if let Some(a) = field("Assign") {
            if !a.is_object() {
                self.schema(
                    &format!("{at}/Assign"),
                    "Expected value of type: Object".into(),
                );
            } else {
                self.template(a, &format!("{at}/Assign"), lang);
            }
        }
        let retry = match field("Retry") {
            Some(r) => self.retriers(r, &format!("{at}/Retry")),
            None => Vec::new(),
        };
        let catch = match field("Catch") {
            Some(c) => self.catchers(c, &format!("{at}/Catch")),
            None => Vec::new(),
        };
        let kind = match kind_name {
            "Pass" => Kind::Pass {
                result: field("Result").cloned(),
            },
            "Task" => {
                let resource = match field("Resource") {
                    Some(Value::String(r)) => {
                        if !r.starts_with("arn:") {
                            self.schema(
                                &format!("{at}/Resource"),
                                format!("Value is not a valid resource ARN: {r}"),
                            );
                        }
                        r.clone()
                    }
                    Some(_) => {
                        self.schema(
                            &format!("{at}/Resource"),
                            "Expected value of type: String".into(),
                        );
                        String::new()
                    }
                    None => {
                        self.schema(at, "These fields are required: [Resource]".into());
                        String::new()
                    }
                };
                Kind::Task {
                    resource,
                    timeout: self.seconds(obj, "TimeoutSeconds", "TimeoutSecondsPath", at),
                    heartbeat: self.seconds(obj, "HeartbeatSeconds", "HeartbeatSecondsPath", at),
                }
            }
            "Choice" => {
                let mut rules = Vec::new();
                match field("Choices") {
                    Some(Value::Array(list)) if !list.is_empty() => {
                        for (i, rule) in list.iter().enumerate() {
                            let loc = format!("{at}/Choices[{i}]");
                            match rule.get("Next").and_then(Value::as_str) {
                                Some(n) => match crate::choice::parse_rule(rule, true, lang) {
                                    Ok(r) => rules.push((r, n.to_owned())),
                                    Err((sub, msg)) => self.schema(&format!("{loc}{sub}"), msg),
                                },
                                None => {
                                    self.schema(&loc, "These fields are required: [Next]".into())
                                }
                            }
                        }
                    }
                    Some(Value::Array(_)) => {
                        self.schema(&format!("{at}/Choices"), "Value cannot be empty".into())
                    }
                    _ => self.schema(at, "These fields are required: [Choices]".into()),
                }
                let default = match field("Default") {
                    None => None,
                    Some(Value::String(d)) => Some(d.clone()),
                    Some(_) => {
                        self.schema(
                            &format!("{at}/Default"),
                            "Expected value of type: String".into(),
                        );
                        None
                    }
                };
                Kind::Choice { rules, default }
            }
            "Wait" => self.wait(obj, at, lang)?,
            "Succeed" => Kind::Succeed,
            "Fail" => Kind::Fail {
                error: self.fail_text(obj, "Error", "ErrorPath", at),
                cause: self.fail_text(obj, "Cause", "CausePath", at),
            },
            "Parallel" => {
                let mut branches = Vec::new();
                match field("Branches") {
                    Some(Value::Array(list)) if !list.is_empty() => {
                        for (i, b) in list.iter().enumerate() {
                            if let Some(m) =
                                self.machine(b, &format!("{at}/Branches[{i}]"), lang, false)
                            {
                                branches.push(m);
                            }
                        }
                    }
                    Some(Value::Array(_)) => {
                        self.schema(&format!("{at}/Branches"), "Value cannot be empty".into())
                    }
                    _ => self.schema(at, "These fields are required: [Branches]".into()),
                }
                Kind::Parallel { branches }
            }
            "Map" => self.map(obj, at, lang)?,
            _ => return None,
        };
        Some(State {
            kind,
            next,
            lang,
            input_path,
            output_path,
            result_path,
            parameters,
            result_selector,
            retry,
            catch,
            def: v.clone(),
            arguments: field("Arguments").cloned(),
            output: field("Output").cloned(),
            assign: field("Assign").cloned(),
        })
    }

    /// Every `{% %}` expression of a JSONata state's fields must parse.
    fn jsonata_fields(&mut self, obj: &Map<String, Value>, at: &str) {
        fn walk(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
            match v {
                Value::String(s) if is_jsonata(s) => {
                    let t = s.trim();
                    if let Err(e) = crate::jsonata::Expr::parse(&t[2..t.len() - 2]) {
                        out.push((at.to_owned(), e));
                    }
                }
                Value::Object(m) => {
                    for (k, v) in m {
                        walk(v, &format!("{at}/{k}"), out);
                    }
                }
                Value::Array(a) => {
                    for (i, v) in a.iter().enumerate() {
                        walk(v, &format!("{at}[{i}]"), out);
                    }
                }
                _ => {}
            }
        }
        let mut bad = Vec::new();
        for key in [
            "Arguments",
            "Output",
            "Assign",
            "Items",
            "ItemSelector",
            "Seconds",
            "Timestamp",
            "Error",
            "Cause",
            "Choices",
            "Catch",
            "TimeoutSeconds",
            "HeartbeatSeconds",
        ] {
            if let Some(v) = obj.get(key) {
                walk(v, &format!("{at}/{key}"), &mut bad);
            }
        }
        for (loc, e) in bad {
            self.schema(&loc, format!("The JSONata expression is invalid: {e}"));
        }
    }

    fn sel(&mut self, obj: &Map<String, Value>, key: &str, at: &str) -> Sel {
        match obj.get(key) {
            None => Sel::Default,
            Some(Value::Null) => Sel::Null,
            Some(Value::String(s)) => match Path::parse(s) {
                Ok(p) => Sel::Path(p),
                Err(why) => {
                    self.schema(
                        &format!("{at}/{key}"),
                        format!("The value for the field '{key}' must be a valid JSONPath: {why}"),
                    );
                    Sel::Default
                }
            },
            Some(_) => {
                self.schema(
                    &format!("{at}/{key}"),
                    "Expected value of type: String".into(),
                );
                Sel::Default
            }
        }
    }

    fn template(&mut self, v: &Value, at: &str, lang: Lang) -> Option<Value> {
        if lang == Lang::JsonPath {
            if let Err(why) = crate::payload::validate(v) {
                self.schema(at, why);
                return None;
            }
        }
        Some(v.clone())
    }

    fn seconds(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        path_key: &str,
        at: &str,
    ) -> Option<Seconds> {
        match self.literal_or_path(obj, key, path_key, at)? {
            (Some(v), _) => match v.as_u64().filter(|n| (1..=99_999_999).contains(n)) {
                Some(n) => Some(Seconds::Fixed(n)),
                None if v.is_string() => None, // a JSONata expression, evaluated at run time
                None => {
                    self.schema(
                        &format!("{at}/{key}"),
                        "Expected a positive integer no greater than 99999999".into(),
                    );
                    None
                }
            },
            (None, Some(v)) => match v.as_str().map(Path::parse) {
                Some(Ok(p)) if p.is_reference() => Some(Seconds::Path(p)),
                _ => {
                    self.schema(
                        &format!("{at}/{path_key}"),
                        "Value is not a Reference Path".into(),
                    );
                    None
                }
            },
            (None, None) => None,
        }
    }

    /// A field given literally (`key`) or by path (`path_key`), never both: `None` (reported)
    /// when both are there.
    fn literal_or_path<'v>(
        &mut self,
        obj: &'v Map<String, Value>,
        key: &str,
        path_key: &str,
        at: &str,
    ) -> Option<(Option<&'v Value>, Option<&'v Value>)> {
        match (obj.get(key), obj.get(path_key)) {
            (Some(_), Some(_)) => {
                self.schema(
                    at,
                    format!(
                        "There should only be one of the following fields: [{key}, {path_key}]"
                    ),
                );
                None
            }
            pair => Some(pair),
        }
    }

    fn wait(&mut self, obj: &Map<String, Value>, at: &str, lang: Lang) -> Option<Kind> {
        let given: Vec<&str> = ["Seconds", "Timestamp", "SecondsPath", "TimestampPath"]
            .into_iter()
            .filter(|k| obj.contains_key(*k))
            .collect();
        if given.len() != 1 {
            self.schema(
                at,
                "Exactly one of these fields is required: [Seconds, Timestamp, SecondsPath, TimestampPath]"
                    .into(),
            );
            return None;
        }
        let v = &obj[given[0]];
        let loc = format!("{at}/{}", given[0]);
        if lang == Lang::Jsonata && v.as_str().is_some_and(is_jsonata) {
            // Evaluated at run time.
            return Some(Kind::Wait(match given[0] {
                "Seconds" => WaitFor::Seconds(Seconds::Fixed(0)),
                _ => WaitFor::Timestamp(String::new()),
            }));
        }
        Some(Kind::Wait(match given[0] {
            "Seconds" => match v.as_u64().filter(|n| *n <= 99_999_999) {
                Some(n) => WaitFor::Seconds(Seconds::Fixed(n)),
                None => {
                    self.schema(&loc, "Expected a non-negative integer".into());
                    return None;
                }
            },
            "Timestamp" => match v.as_str() {
                Some(t) if crate::clock::parse_timestamp(t).is_some() => {
                    WaitFor::Timestamp(t.to_owned())
                }
                _ => {
                    self.schema(&loc, "Expected an ISO-8601 timestamp".into());
                    return None;
                }
            },
            key => match v.as_str().map(Path::parse) {
                Some(Ok(p)) if p.is_reference() => match key {
                    "SecondsPath" => WaitFor::Seconds(Seconds::Path(p)),
                    _ => WaitFor::TimestampPath(p),
                },
                _ => {
                    self.schema(&loc, "Value is not a Reference Path".into());
                    return None;
                }
            },
        }))
    }

    fn fail_text(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        path_key: &str,
        at: &str,
    ) -> Option<Text> {
        match self.literal_or_path(obj, key, path_key, at)? {
            (Some(Value::String(s)), _) => Some(Text::Literal(s.clone())),
            (Some(_), _) => {
                self.schema(
                    &format!("{at}/{key}"),
                    "Expected value of type: String".into(),
                );
                None
            }
            (None, Some(Value::String(s))) if looks_like_intrinsic(s) => {
                match Intrinsic::parse(s) {
                    Ok(f) => Some(Text::Intrinsic(f)),
                    Err(why) => {
                        self.schema(&format!("{at}/{path_key}"), why);
                        None
                    }
                }
            }
            (None, Some(Value::String(s))) => match Path::parse(s) {
                Ok(p) => Some(Text::Path(p)),
                Err(why) => {
                    self.schema(
                        &format!("{at}/{path_key}"),
                        format!(
                            "The value for the field '{path_key}' must be a valid JSONPath or a valid intrinsic function call: {why}"
                        ),
                    );
                    None
                }
            },
            (None, Some(_)) => {
                self.schema(
                    &format!("{at}/{path_key}"),
                    "Expected value of type: String".into(),
                );
                None
            }
            (None, None) => None,
        }
    }

    fn map(&mut self, obj: &Map<String, Value>, at: &str, lang: Lang) -> Option<Kind> {
        let mut distributed = None;
        let processor = match (obj.get("ItemProcessor"), obj.get("Iterator")) {
            (Some(p), None) => {
                let mode = p
                    .pointer("/ProcessorConfig/Mode")
                    .and_then(Value::as_str)
                    .unwrap_or("INLINE");
                if mode != "INLINE" && mode != "DISTRIBUTED" {
                    self.schema(
                        &format!("{at}/ItemProcessor/ProcessorConfig/Mode"),
                        "Value must be one of [INLINE, DISTRIBUTED]".into(),
                    );
                }
                if mode == "DISTRIBUTED" {
                    distributed = self.distributed(obj, p, at, lang);
                }
                self.machine(p, &format!("{at}/ItemProcessor"), lang, false)?
            }
            (None, Some(p)) => self.machine(p, &format!("{at}/Iterator"), lang, false)?,
            _ => {
                self.schema(
                    at,
                    "Exactly one of these fields is required: [ItemProcessor, Iterator]".into(),
                );
                return None;
            }
        };
        // Distributed mode reads its items from the input or from S3, and writes its results
        // to S3; with a service to keep them, its iterations are child executions.
        let reader = obj
            .get("ItemReader")
            .and_then(|r| self.item_reader(r, &format!("{at}/ItemReader"), lang))
            .map(Box::new);
        let writer = obj
            .get("ResultWriter")
            .and_then(|w| self.result_writer(w, &format!("{at}/ResultWriter"), lang))
            .map(Box::new);
        let batcher = match obj.get("ItemBatcher") {
            None => None,
            Some(b) if b.is_object() => {
                let count = |key: &str| b.get(key).and_then(Value::as_u64);
                let max_items = count("MaxItemsPerBatch");
                let max_bytes = count("MaxInputBytesPerBatch");
                if max_items.is_none() && max_bytes.is_none() {
                    self.schema(
                        &format!("{at}/ItemBatcher"),
                        "At least one of these fields is required: [MaxItemsPerBatch, MaxInputBytesPerBatch]".into(),
                    );
                }
                Some(Batcher {
                    max_items: max_items.unwrap_or(u64::MAX),
                    max_bytes: max_bytes.unwrap_or(262_144),
                    batch_input: b.get("BatchInput").cloned(),
                })
            }
            Some(_) => {
                self.schema(
                    &format!("{at}/ItemBatcher"),
                    "Expected value of type: Object".into(),
                );
                None
            }
        };
        let items_path = self.sel(obj, "ItemsPath", at);
        let max_concurrency = self.seconds_or_zero(obj, "MaxConcurrency", "MaxConcurrencyPath", at);
        let tolerated_percentage = match obj.get("ToleratedFailurePercentage") {
            None => None,
            Some(v) => match v.as_f64().filter(|p| (0.0..=100.0).contains(p)) {
                Some(p) => Some(p),
                None => {
                    self.schema(
                        &format!("{at}/ToleratedFailurePercentage"),
                        "Expected a number between 0 and 100".into(),
                    );
                    None
                }
            },
        };
        let tolerated_count = match obj.get("ToleratedFailureCount") {
            None => None,
            Some(v) => match v.as_u64() {
                Some(n) => Some(n),
                None => {
                    self.schema(
                        &format!("{at}/ToleratedFailureCount"),
                        "Expected a non-negative integer".into(),
                    );
                    None
                }
            },
        };
        Some(Kind::Map {
            processor: Box::new(processor),
            items_path,
            items: obj.get("Items").cloned(),
            max_concurrency,
            tolerated_percentage,
            tolerated_count,
            batcher,
            reader,
            writer,
            distributed: distributed.map(Box::new),
        })
    }

    /// A distributed `Map`'s `ProcessorConfig.ExecutionType` and `Label`, and its item
    /// processor as the definition its child executions run.
    fn distributed(
        &mut self,
        map: &Map<String, Value>,
        processor: &Value,
        at: &str,
        lang: Lang,
    ) -> Option<Distributed> {
        let express = match processor.pointer("/ProcessorConfig/ExecutionType") {
            None => false,
            Some(Value::String(t)) if t == "STANDARD" => false,
            Some(Value::String(t)) if t == "EXPRESS" => true,
            Some(_) => {
                self.schema(
                    &format!("{at}/ItemProcessor/ProcessorConfig/ExecutionType"),
                    "Value must be one of [STANDARD, EXPRESS]".into(),
                );
                false
            }
        };
        let label = match map.get("Label") {
            None => None,
            Some(Value::String(l)) if label_ok(l) => Some(l.clone()),
            Some(_) => {
                self.schema(
                    &format!("{at}/Label"),
                    "Label must be a string of 1 to 40 characters without whitespace, brackets, wildcards, control characters or any of \" # % \\ ^ | ~ ` $ & , ; : /".into(),
                );
                None
            }
        };
        let mut definition = processor.as_object().cloned().unwrap_or_default();
        definition.remove("ProcessorConfig");
        if lang == Lang::Jsonata {
            definition.insert("QueryLanguage".into(), "JSONata".into());
        }
        Some(Distributed {
            express,
            label,
            definition: Value::Object(definition).to_string(),
        })
    }

    /// `Parameters` (JSONPath) or `Arguments` (JSONata) of an `ItemReader` / `ResultWriter`.
    fn io_template(&mut self, obj: &Map<String, Value>, at: &str, lang: Lang) -> Option<Value> {
        let key = match lang {
            Lang::JsonPath => "Parameters",
            Lang::Jsonata => "Arguments",
        };
        obj.get(key)
            .and_then(|t| self.template(t, &format!("{at}/{key}"), lang))
    }

    fn item_reader(&mut self, v: &Value, at: &str, lang: Lang) -> Option<ItemReader> {
        let Some(obj) = v.as_object() else {
            self.schema(at, "Expected value of type: Object".into());
            return None;
        };
        let listing = match obj.get("Resource").and_then(Value::as_str) {
            Some("arn:aws:states:::s3:getObject") => false,
            Some("arn:aws:states:::s3:listObjectsV2") => true,
            Some(other) => {
                self.schema(
                    &format!("{at}/Resource"),
                    format!("Value is not a supported ItemReader resource: {other} (nimbus reads arn:aws:states:::s3:getObject and arn:aws:states:::s3:listObjectsV2)"),
                );
                return None;
            }
            None => {
                self.schema(at, "The field 'Resource' is required".into());
                return None;
            }
        };
        let empty = Map::new();
        let config = obj
            .get("ReaderConfig")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let cat = format!("{at}/ReaderConfig");
        let input_type = match (listing, config.get("InputType").and_then(Value::as_str)) {
            (true, _) => InputType::Json,
            (false, Some("JSON")) => InputType::Json,
            (false, Some("JSONL")) => InputType::Jsonl,
            (false, Some("CSV")) => InputType::Csv,
            (false, Some("MANIFEST")) => {
                match config.get("ManifestType").and_then(Value::as_str) {
                    None | Some("S3_INVENTORY") => InputType::Manifest,
                    Some(other) => {
                        self.schema(
                        &format!("{cat}/ManifestType"),
                        format!("nimbus does not read ManifestType {other} yet; S3_INVENTORY it does"),
                    );
                        return None;
                    }
                }
            }
            (false, Some("PARQUET")) => InputType::Parquet,
            (false, other) => {
                self.schema(
                    &format!("{cat}/InputType"),
                    match other {
                        Some(v) => format!(
                            "Value must be one of [CSV, JSON, JSONL, MANIFEST, PARQUET], got \"{v}\""
                        ),
                        None => "The field 'InputType' is required".into(),
                    },
                );
                return None;
            }
        };
        let csv_headers = match config.get("CSVHeaderLocation").and_then(Value::as_str) {
            Some("GIVEN") => match config.get("CSVHeaders").and_then(Value::as_array) {
                Some(h) => Some(
                    h.iter()
                        .map(|x| x.as_str().unwrap_or("").to_owned())
                        .collect(),
                ),
                None => {
                    self.schema(
                        &cat,
                        "CSVHeaders is required when CSVHeaderLocation is GIVEN".into(),
                    );
                    None
                }
            },
            _ => None,
        };
        let csv_delimiter = match config.get("CSVDelimiter").and_then(Value::as_str) {
            None | Some("COMMA") => ',',
            Some("PIPE") => '|',
            Some("SEMICOLON") => ';',
            Some("SPACE") => ' ',
            Some("TAB") => '\t',
            Some(other) => {
                self.schema(
                    &format!("{cat}/CSVDelimiter"),
                    format!(
                        "Value must be one of [COMMA, PIPE, SEMICOLON, SPACE, TAB], got {other:?}"
                    ),
                );
                ','
            }
        };
        let max_items = self.seconds_or_zero(config, "MaxItems", "MaxItemsPath", &cat);
        Some(ItemReader {
            listing,
            template: self.io_template(obj, at, lang),
            input_type,
            csv_headers,
            csv_delimiter,
            max_items,
            items_pointer: config
                .get("ItemsPointer")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }

    fn result_writer(&mut self, v: &Value, at: &str, lang: Lang) -> Option<ResultWriter> {
        let Some(obj) = v.as_object() else {
            self.schema(at, "Expected value of type: Object".into());
            return None;
        };
        let to_s3 = match obj.get("Resource").and_then(Value::as_str) {
            Some("arn:aws:states:::s3:putObject") => true,
            None => false,
            Some(other) => {
                self.schema(
                    &format!("{at}/Resource"),
                    format!("Value is not a supported ResultWriter resource: {other} (arn:aws:states:::s3:putObject is)"),
                );
                return None;
            }
        };
        let config = obj.get("WriterConfig");
        let jsonl = match config
            .and_then(|c| c.get("OutputType"))
            .and_then(Value::as_str)
        {
            None | Some("JSON") => false,
            Some("JSONL") => true,
            Some(other) => {
                self.schema(
                    &format!("{at}/WriterConfig/OutputType"),
                    format!("Value must be one of [JSON, JSONL], got {other:?}"),
                );
                false
            }
        };
        let transformation = match config
            .and_then(|c| c.get("Transformation"))
            .and_then(Value::as_str)
        {
            None | Some("NONE") => Transformation::None,
            Some("COMPACT") => Transformation::Compact,
            Some("FLATTEN") => Transformation::Flatten,
            Some(other) => {
                self.schema(
                    &format!("{at}/WriterConfig/Transformation"),
                    format!("Value must be one of [NONE, COMPACT, FLATTEN], got {other:?}"),
                );
                Transformation::None
            }
        };
        if !to_s3 && config.is_none() {
            self.schema(
                at,
                "A ResultWriter needs a Resource with Parameters (Bucket, Prefix), a WriterConfig, or both".into(),
            );
            return None;
        }
        Some(ResultWriter {
            template: self.io_template(obj, at, lang),
            to_s3,
            jsonl,
            transformation,
        })
    }

    /// `MaxConcurrency` may be 0 (no limit), unlike a timeout.
    fn seconds_or_zero(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        path_key: &str,
        at: &str,
    ) -> Option<Seconds> {
        match obj.get(key) {
            Some(v) if v.as_u64() == Some(0) => Some(Seconds::Fixed(0)),
            _ => self.seconds(obj, key, path_key, at),
        }
    }

    fn errors_list(&mut self, v: &Value, at: &str) -> Vec<String> {
        match v.get("ErrorEquals").and_then(Value::as_array) {
            Some(list) if !list.is_empty() => {
                let names: Vec<String> = list
                    .iter()
                    .filter_map(|e| e.as_str().map(str::to_owned))
                    .collect();
                if names.len() != list.len() {
                    self.schema(
                        &format!("{at}/ErrorEquals"),
                        "Expected an array of strings".into(),
                    );
                }
                for n in &names {
                    // `States.Http.StatusCode.404`, `States.Http.Socket`: the HTTP task's errors.
                    if n.starts_with("States.")
                        && !n.starts_with("States.Http.")
                        && !ERROR_NAMES_WITH_DOT.contains(&n.as_str())
                    {
                        self.schema(
                            &format!("{at}/ErrorEquals"),
                            format!("Unknown States error name: {n}"),
                        );
                    }
                }
                if names.iter().any(|n| n == "States.ALL") && names.len() > 1 {
                    self.schema(
                        &format!("{at}/ErrorEquals"),
                        "States.ALL must appear alone in ErrorEquals".into(),
                    );
                }
                names
            }
            _ => {
                self.schema(at, "These fields are required: [ErrorEquals]".into());
                Vec::new()
            }
        }
    }

    fn retriers(&mut self, v: &Value, at: &str) -> Vec<Retrier> {
        let Some(list) = v.as_array() else {
            self.schema(at, "Expected value of type: Array".into());
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, r) in list.iter().enumerate() {
            let loc = format!("{at}[{i}]");
            let errors = self.errors_list(r, &loc);
            let num =
                |p: &mut Parser, k: &str, default: f64, ok: fn(f64) -> bool, why: &str| match r
                    .get(k)
                {
                    None => default,
                    Some(v) => match v.as_f64().filter(|n| ok(*n)) {
                        Some(n) => n,
                        None => {
                            p.schema(&format!("{loc}/{k}"), why.to_owned());
                            default
                        }
                    },
                };
            let interval_seconds = num(
                self,
                "IntervalSeconds",
                1.0,
                |n| n >= 1.0 && n.fract() == 0.0,
                "Expected a positive integer",
            );
            let max_attempts = num(
                self,
                "MaxAttempts",
                3.0,
                |n| n >= 0.0 && n.fract() == 0.0,
                "Expected a non-negative integer",
            ) as u32;
            let backoff_rate = num(
                self,
                "BackoffRate",
                2.0,
                |n| n >= 1.0,
                "Expected a number greater than or equal to 1.0",
            );
            let max_delay_seconds = r.get("MaxDelaySeconds").map(|_| {
                num(
                    self,
                    "MaxDelaySeconds",
                    0.0,
                    |n| n >= 1.0 && n.fract() == 0.0,
                    "Expected a positive integer",
                )
            });
            let full_jitter = match r.get("JitterStrategy").map(|v| v.as_str()) {
                None | Some(Some("NONE")) => false,
                Some(Some("FULL")) => true,
                _ => {
                    self.schema(
                        &format!("{loc}/JitterStrategy"),
                        "Value must be one of [FULL, NONE]".into(),
                    );
                    false
                }
            };
            out.push(Retrier {
                errors,
                interval_seconds,
                max_attempts,
                backoff_rate,
                max_delay_seconds,
                full_jitter,
            });
        }
        out
    }

    fn catchers(&mut self, v: &Value, at: &str) -> Vec<Catcher> {
        let Some(list) = v.as_array() else {
            self.schema(at, "Expected value of type: Array".into());
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, c) in list.iter().enumerate() {
            let loc = format!("{at}[{i}]");
            let errors = self.errors_list(c, &loc);
            let Some(next) = c.get("Next").and_then(Value::as_str) else {
                self.schema(&loc, "These fields are required: [Next]".into());
                continue;
            };
            let result_path = match c.as_object() {
                Some(obj) => self.sel(obj, "ResultPath", &loc),
                None => Sel::Default,
            };
            out.push(Catcher {
                errors,
                next: next.to_owned(),
                result_path,
            });
        }
        out
    }
}

fn at_or_root(at: &str) -> &str {
    if at.is_empty() {
        "/"
    } else {
        at
    }
}

/// A JSONata expression: `{% ... %}`.
pub fn is_jsonata(s: &str) -> bool {
    let t = s.trim();
    t.starts_with("{%") && t.ends_with("%}") && t.len() >= 4
}

fn reachable<'a>(start: &'a str, states: &'a BTreeMap<String, State>) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![start];
    while let Some(name) = todo.pop() {
        if !seen.insert(name) {
            continue;
        }
        let Some(s) = states.get(name) else { continue };
        todo.extend(s.next.as_deref());
        if let Kind::Choice { rules, default } = &s.kind {
            todo.extend(rules.iter().map(|(_, n)| n.as_str()));
            todo.extend(default.as_deref());
        }
        todo.extend(s.catch.iter().map(|c| c.next.as_str()));
    }
    seen
}

/// A Map Run label: what Step Functions accepts in an ARN.
fn label_ok(l: &str) -> bool {
    (1..=40).contains(&l.chars().count())
        && !l
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>{}[]?*\"#%\\^|~`$&,;:/".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn codes(def: Value) -> Vec<(String, String)> {
        match parse_value(&def) {
            Ok(_) => Vec::new(),
            Err(d) => d
                .into_iter()
                .map(|d| (d.code.to_owned(), d.location))
                .collect(),
        }
    }

    #[test]
    fn an_unknown_reader_input_type_is_named_as_written() {
        let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true,
            "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "ORC"}},
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED"}, "StartAt": "X",
                              "States": {"X": {"Type": "Pass", "End": true}}}}}});
        let d = parse_value(&def).unwrap_err();
        assert_eq!(
            d[0].message,
            "Value must be one of [CSV, JSON, JSONL, MANIFEST, PARQUET], got \"ORC\""
        );
    }

    #[test]
    fn definitions_are_checked_with_the_location_of_each_problem() {
        // (what, definition, the diagnostics' codes and locations)
        type Case = (&'static str, Value, Vec<(&'static str, &'static str)>);
        let cases: Vec<Case> = vec![
            (
                "a state without Next or End",
                json!({"StartAt": "A", "States": {"A": {"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericEquals": 1, "Next": "Lost"}], "Default": "Done"}, "Lost": {"Type": "Pass"}, "Done": {"Type": "Succeed"}}}),
                vec![("MISSING_TRANSITION_TARGET", "/States/Lost")],
            ),
            (
                "Next naming no state",
                json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}}),
                // As AWS: the dangling Next leaves the machine without an end, too.
                vec![
                    ("MISSING_TRANSITION_TARGET", "/States/A/Next"),
                    ("MISSING_END_STATE", "null"),
                ],
            ),
            (
                "an unreachable state",
                json!({"StartAt": "A", "States": {"A": {"Type": "Succeed"}, "B": {"Type": "Succeed"}}}),
                vec![("MISSING_TRANSITION_TARGET", "/States/B")],
            ),
            (
                "a distributed Map's label with a slash, and an unknown ExecutionType",
                json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true, "Label": "a/b",
                    "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "FAST"},
                                      "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}}}}),
                vec![
                    (
                        "SCHEMA_VALIDATION_FAILED",
                        "/States/M/ItemProcessor/ProcessorConfig/ExecutionType",
                    ),
                    ("SCHEMA_VALIDATION_FAILED", "/States/M/Label"),
                ],
            ),
            (
                "an unknown reader input type, and an Athena manifest",
                json!({"StartAt": "M", "States": {"M": {"Type": "Parallel", "End": true, "Branches": [
                    {"StartAt": "P", "States": {"P": {"Type": "Map", "End": true,
                        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "ORC"}},
                        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED"}, "StartAt": "X", "States": {"X": {"Type": "Pass", "End": true}}}}}},
                    {"StartAt": "A", "States": {"A": {"Type": "Map", "End": true,
                        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                                       "ReaderConfig": {"InputType": "MANIFEST", "ManifestType": "ATHENA_DATA"}},
                        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED"}, "StartAt": "X", "States": {"X": {"Type": "Pass", "End": true}}}}}}]}}}),
                vec![
                    (
                        "SCHEMA_VALIDATION_FAILED",
                        "/States/M/Branches[0]/States/P/ItemReader/ReaderConfig/InputType",
                    ),
                    (
                        "SCHEMA_VALIDATION_FAILED",
                        "/States/M/Branches[1]/States/A/ItemReader/ReaderConfig/ManifestType",
                    ),
                ],
            ),
            (
                "an unknown type",
                json!({"StartAt": "A", "States": {"A": {"Type": "Sleep", "End": true}}}),
                vec![("SCHEMA_VALIDATION_FAILED", "/States/A/Type")],
            ),
            (
                "Retry on a Pass",
                json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true, "Retry": []}}}),
                vec![("SCHEMA_VALIDATION_FAILED", "/States/A")],
            ),
            (
                "StartAt naming no state",
                json!({"StartAt": "Z", "States": {"A": {"Type": "Succeed"}}}),
                vec![("MISSING_TRANSITION_TARGET", "/StartAt")],
            ),
            (
                "a Task without Resource",
                json!({"StartAt": "A", "States": {"A": {"Type": "Task", "End": true}}}),
                vec![("SCHEMA_VALIDATION_FAILED", "/States/A")],
            ),
            (
                "a bad ResultPath",
                json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true, "ResultPath": "$.a[*]"}}}),
                vec![("SCHEMA_VALIDATION_FAILED", "/States/A/ResultPath")],
            ),
            (
                "a Wait with two durations",
                json!({"StartAt": "A", "States": {"A": {"Type": "Wait", "Seconds": 1, "SecondsPath": "$.s", "End": true}}}),
                vec![("SCHEMA_VALIDATION_FAILED", "/States/A")],
            ),
            (
                "a Map branch without Next or End",
                json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true, "ItemProcessor": {"StartAt": "X", "States": {"X": {"Type": "Pass"}}}}}}),
                vec![(
                    "MISSING_TRANSITION_TARGET",
                    "/States/M/ItemProcessor/States/X",
                )],
            ),
            (
                "a JSONata expression that does not parse",
                json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Pass", "Output": {"x": "{% $states.input.a + %}"}, "End": true}}}),
                vec![("SCHEMA_VALIDATION_FAILED", "/States/A/Output/x")],
            ),
            (
                "an unknown States error name",
                json!({"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": true, "Retry": [{"ErrorEquals": ["States.Nope"]}]}}}),
                vec![("SCHEMA_VALIDATION_FAILED", "/States/A/Retry[0]/ErrorEquals")],
            ),
        ];
        for (what, def, want) in cases {
            let got = codes(def);
            let want: Vec<(String, String)> = want
                .into_iter()
                .map(|(c, l)| (c.to_owned(), l.to_owned()))
                .collect();
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn valid_definitions_parse() {
        let defs = [
            json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": 1, "End": true}}}),
            json!({"StartAt": "A", "States": {
                "A": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": "f", "Payload.$": "$"},
                      "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2}],
                      "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "F", "ResultPath": "$.err"}], "Next": "W"},
                "W": {"Type": "Wait", "SecondsPath": "$.s", "Next": "M"},
                "M": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 0, "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}, "Next": "Par"},
                "Par": {"Type": "Parallel", "Branches": [{"StartAt": "Q", "States": {"Q": {"Type": "Succeed"}}}], "Next": "C"},
                "C": {"Type": "Choice", "Choices": [{"Not": {"Variable": "$.x", "IsPresent": true}, "Next": "S"}], "Default": "F"},
                "S": {"Type": "Succeed"},
                "F": {"Type": "Fail", "Error": "E", "Cause": "c"}}}),
            json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Pass", "Output": "{% $states.input %}", "Assign": {"x": 1}, "End": true}}}),
        ];
        for d in defs {
            if let Err(e) = parse_value(&d) {
                panic!("{d} was refused: {e:?}");
            }
        }
    }

    #[test]
    fn invalid_definition_message_names_code_and_location() {
        let d =
            parse_value(&json!({"StartAt": "A", "States": {"A": {"Type": "Pass"}}})).unwrap_err();
        let msg = invalid_definition_message(&d);
        assert!(
            msg.starts_with("Invalid State Machine Definition: '"),
            "{msg}"
        );
        assert!(msg.contains("at /States/A"), "{msg}");
    }
}
