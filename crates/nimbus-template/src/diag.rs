//! Collecting diagnostics: loading goes on after an error so the user sees every problem at once.

use crate::yaml::Pos;
use crate::Diagnostic;

pub(crate) struct Diags {
    file: String,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

impl Diags {
    pub fn new(file: &str) -> Diags {
        Diags {
            file: file.to_string(),
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn make(&self, path: &str, pos: Pos, message: String) -> Diagnostic {
        Diagnostic {
            file: self.file.clone(),
            line: pos.line,
            column: pos.column,
            path: path.to_string(),
            message,
        }
    }

    pub fn error(&mut self, path: &str, pos: Pos, message: impl Into<String>) {
        let d = self.make(path, pos, message.into());
        self.errors.push(d);
    }

    pub fn warn(&mut self, path: &str, pos: Pos, message: impl Into<String>) {
        let d = self.make(path, pos, message.into());
        self.warnings.push(d);
    }

    /// Sorted by position, repeats removed: a value can be evaluated twice (once to learn a
    /// resource's name for a `Ref` elsewhere, once for the resource itself) and must not be
    /// reported twice.
    pub fn finish(mut self) -> (Vec<Diagnostic>, Vec<Diagnostic>) {
        for list in [&mut self.errors, &mut self.warnings] {
            let mut seen = Vec::with_capacity(list.len());
            list.retain(|d| {
                if seen.contains(d) {
                    false
                } else {
                    seen.push(d.clone());
                    true
                }
            });
            list.sort_by_key(|d| (d.line, d.column));
        }
        (self.errors, self.warnings)
    }
}

pub(crate) fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// The closest name, for "did you mean" hints: a name that contains the given one or is
/// contained in it (`Url` -> `QueueUrl`), else one within a small edit distance.
pub(crate) fn suggest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = name.to_lowercase();
    let candidates: Vec<&str> = candidates.into_iter().filter(|c| *c != name).collect();
    let containing = candidates
        .iter()
        .filter(|c| {
            let c = c.to_lowercase();
            lower.len() >= 3 && (c.contains(&lower) || (c.len() >= 3 && lower.contains(&c)))
        })
        .min_by_key(|c| c.len().abs_diff(name.len()));
    if let Some(c) = containing {
        return Some(c);
    }
    candidates
        .into_iter()
        .map(|c| (edit_distance(&lower, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// ` (did you mean "X"?)`, or nothing.
pub(crate) fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    match suggest(name, candidates) {
        Some(s) => format!(" (did you mean {s:?}?)"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            suggest("HelloFuction", ["HelloFunction", "Queue"]),
            Some("HelloFunction")
        );
        assert_eq!(suggest("queue", ["Queue"]), Some("Queue"));
        assert_eq!(suggest("Zzz", ["HelloFunction", "Queue"]), None);
        assert_eq!(
            suggest("Url", ["Arn", "QueueName", "QueueUrl"]),
            Some("QueueUrl")
        );
    }
}
