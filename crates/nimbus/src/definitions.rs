//! `DefinitionUri` of `AWS::Serverless::Api` / `AWS::Serverless::HttpApi`: the OpenAPI file
//! beside the template is read and put in place of the URI, as `DefinitionBody`, so the
//! gateway reads one shape. Files are read here, at the binary's edge, because the template and
//! gateway crates do no I/O.

use std::path::Path;

use nimbus_template::Stack;

/// A definition file's document: JSON, or YAML (as `sam` accepts both). The error names the
/// file (and the line and column for JSON).
pub fn document(text: &str, path: &Path) -> Result<serde_json::Value, String> {
    // JSON is YAML too, but JSON's own parser gives the better message for a JSON file.
    if text.trim_start().starts_with('{') {
        serde_json::from_str(text)
            .map_err(|e| format!("{}:{}:{}: {e}", path.display(), e.line(), e.column()))
    } else {
        crate::samconfig::yaml_to_json(text).map_err(|e| format!("{}: {e:#}", path.display()))
    }
}

/// Reads every local `DefinitionUri` into `DefinitionBody`. Errors name the resource, the
/// property and the file (with line and column for a parse error).
pub fn inline(stack: &mut Stack, template_dir: &Path) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    for (id, r) in stack.resources.iter_mut() {
        if !matches!(
            r.resource_type.as_str(),
            "AWS::Serverless::Api" | "AWS::Serverless::HttpApi"
        ) {
            continue;
        }
        let at = format!("Resources.{id}.Properties.DefinitionUri");
        let uri = match &r.properties["DefinitionUri"] {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) if s.starts_with("s3://") => {
                errors.push(format!(
                    "{at}: {s:?} points at S3, which nimbus cannot read; point it at a local file"
                ));
                continue;
            }
            serde_json::Value::String(s) => s.clone(),
            _ => {
                errors.push(format!(
                    "{at}: a Bucket/Key location points at S3, which nimbus cannot read; point it at a local file"
                ));
                continue;
            }
        };
        if !r.properties["DefinitionBody"].is_null() {
            errors.push(format!(
                "{at}: set either DefinitionUri or DefinitionBody, not both"
            ));
            continue;
        }
        let path = template_dir.join(&uri);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(format!("{at}: cannot read {}: {e}", path.display()));
                continue;
            }
        };
        match document(&text, &path) {
            Ok(doc) => {
                if let Some(props) = r.properties.as_object_mut() {
                    props.remove("DefinitionUri");
                    props.insert("DefinitionBody".into(), doc);
                }
            }
            Err(e) => errors.push(format!("{at}: {e}")),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}
