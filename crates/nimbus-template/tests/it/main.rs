//! Template loading, driven by inline templates: each case is YAML in and a stack (or the exact
//! diagnostics) out. Line numbers in expected messages count from the first line of the
//! template string.

mod conditions;
mod errors;
mod functions;
mod globals;
mod intrinsics;
mod parameters;
mod sections;

use nimbus_template::{load, LoadOptions, Stack, TemplateErrors};

pub const FILE: &str = "template.yaml";

pub fn load_with(yaml: &str, opts: &LoadOptions) -> Result<Stack, TemplateErrors> {
    load(yaml, FILE, opts)
}

/// Loads `yaml`, which must succeed, and hands the stack to `check`.
#[track_caller]
pub fn check_ok(yaml: &str, check: impl FnOnce(&Stack)) {
    check_ok_with(yaml, &LoadOptions::default(), check);
}

#[track_caller]
pub fn check_ok_with(yaml: &str, opts: &LoadOptions, check: impl FnOnce(&Stack)) {
    match load_with(yaml, opts) {
        Ok(stack) => check(&stack),
        Err(e) => panic!("expected the template to load, got {e}"),
    }
}

/// Loads `yaml`, which must fail with exactly these diagnostics, as displayed.
#[track_caller]
pub fn check_err(yaml: &str, expected: &[&str]) {
    check_err_with(yaml, &LoadOptions::default(), expected);
}

#[track_caller]
pub fn check_err_with(yaml: &str, opts: &LoadOptions, expected: &[&str]) {
    match load_with(yaml, opts) {
        Ok(_) => panic!("expected errors {expected:#?}, but the template loaded"),
        Err(e) => {
            let got: Vec<String> = e.errors.iter().map(ToString::to_string).collect();
            assert_eq!(got, expected, "\nfull error:\n{e}");
        }
    }
}

/// The displayed warnings of a stack.
pub fn warnings(stack: &Stack) -> Vec<String> {
    stack.warnings.iter().map(ToString::to_string).collect()
}

/// Options with parameter overrides.
pub fn overrides(pairs: &[(&str, &str)]) -> LoadOptions {
    LoadOptions {
        parameter_overrides: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..LoadOptions::default()
    }
}
