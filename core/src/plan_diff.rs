//! What a prepare changes, entry by entry: the input kit's tree against the built
//! output's, with the JSON files the targets edit compared key by key.

use std::path::Path;

use serde_json::{json, Value};

use crate::receipt::{EntryKind, ReceiptEntry};

/// The kit files whose edits a plan shows key by key.
pub const DIFFED_JSON: [&str; 2] = ["local/resources.json.default", "local/comm_config.json"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Changed,
    Removed,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Changed => "changed",
            ChangeKind::Removed => "removed",
        }
    }
}

/// One key of a JSON file that a prepare adds, removes or changes.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyChange {
    /// e.g. `components[id=resource_manager].args.num_of_gpus`.
    pub key: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

/// One entry of the output that differs from the input kit.
#[derive(Debug, Clone, PartialEq)]
pub struct FileChange {
    pub path: String,
    pub change: ChangeKind,
    /// The entry's type in the output (in the kit, for a removed one).
    pub kind: EntryKind,
    /// For a changed entry: its content (or link target, or type) differs.
    pub content_changed: bool,
    /// For a changed entry whose mode differs: (kit, output).
    pub mode: Option<(String, String)>,
    /// For the files of [`DIFFED_JSON`]: the keys that differ.
    pub json_changes: Vec<KeyChange>,
}

fn kind_str(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::File => "file",
        EntryKind::Dir => "dir",
        EntryKind::Link => "link",
    }
}

impl FileChange {
    pub fn to_json(&self) -> Value {
        let mut item = json!({"path": self.path, "change": self.change.as_str(), "type": kind_str(self.kind)});
        if let Value::Object(map) = &mut item {
            if self.change == ChangeKind::Changed {
                map.insert("content_changed".into(), self.content_changed.into());
            }
            if let Some((from, to)) = &self.mode {
                map.insert("mode".into(), json!({"from": from, "to": to}));
            }
            if !self.json_changes.is_empty() {
                let keys: Vec<Value> = self
                    .json_changes
                    .iter()
                    .map(|k| json!({"key": k.key, "old": k.old, "new": k.new}))
                    .collect();
                map.insert("json_changes".into(), Value::Array(keys));
            }
        }
        item
    }
}

/// The differences between the kit's entries (`before`, under `before_root`) and the
/// output's (`after`, under `after_root`), sorted by path. Both lists are sorted by path.
pub fn compare(
    before_root: &Path,
    before: &[ReceiptEntry],
    after_root: &Path,
    after: &[ReceiptEntry],
) -> Vec<FileChange> {
    let mut changes = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < before.len() || j < after.len() {
        let order = match (before.get(i), after.get(j)) {
            (Some(a), Some(b)) => a.path.cmp(&b.path),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        let change = match order {
            std::cmp::Ordering::Less => {
                i += 1;
                Some(entry_change(&before[i - 1], ChangeKind::Removed))
            }
            std::cmp::Ordering::Greater => {
                j += 1;
                Some(entry_change(&after[j - 1], ChangeKind::Added))
            }
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
                changed(&before[i - 1], &after[j - 1])
            }
        };
        if let Some(mut change) = change {
            if DIFFED_JSON.contains(&change.path.as_str()) && change.content_changed {
                change.json_changes = json_file_changes(before_root, after_root, &change.path);
            }
            changes.push(change);
        }
    }
    changes
}

fn entry_change(entry: &ReceiptEntry, change: ChangeKind) -> FileChange {
    FileChange {
        path: entry.path.clone(),
        change,
        kind: entry.kind,
        content_changed: true,
        mode: None,
        json_changes: Vec::new(),
    }
}

fn changed(old: &ReceiptEntry, new: &ReceiptEntry) -> Option<FileChange> {
    let content_changed = old.kind != new.kind || old.sha256 != new.sha256 || old.target != new.target;
    let mode = match (&old.mode, &new.mode) {
        (Some(a), Some(b)) if a != b && old.kind == new.kind => Some((a.clone(), b.clone())),
        _ => None,
    };
    (content_changed || mode.is_some()).then(|| FileChange {
        path: new.path.clone(),
        change: ChangeKind::Changed,
        kind: new.kind,
        content_changed,
        mode,
        json_changes: Vec::new(),
    })
}

/// The key changes of one JSON file; none when either side is not JSON.
fn json_file_changes(before_root: &Path, after_root: &Path, path: &str) -> Vec<KeyChange> {
    let read = |root: &Path| -> Option<Value> {
        let text = std::fs::read_to_string(root.join(path)).ok()?;
        serde_json::from_str(&text).ok()
    };
    let (old, new) = (read(before_root), read(after_root));
    let mut out = Vec::new();
    diff_values("", old.as_ref(), new.as_ref(), &mut out);
    out
}

fn key_path(prefix: &str, key: &str) -> String {
    let plain = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (prefix.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{prefix}.{key}"),
        (_, false) => format!("{prefix}[{}]", crate::json::to_line(key)),
    }
}

/// The `id`s of an array of objects that each carry a distinct string `id`.
fn ids(items: &[Value]) -> Option<Vec<&str>> {
    let ids: Vec<&str> = items
        .iter()
        .map(|item| item.get("id").and_then(Value::as_str))
        .collect::<Option<_>>()?;
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    (sorted.len() == ids.len()).then_some(ids)
}

/// Key-path differences of two JSON values. Objects are compared key by key (and
/// expanded when only one side has them); arrays of objects with distinct `id`s by id
/// (components move when a launcher is replaced), other arrays by index.
pub fn diff_values(prefix: &str, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<KeyChange>) {
    if old == new {
        return;
    }
    match (old, new) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            for (key, value) in a {
                diff_values(&key_path(prefix, key), Some(value), b.get(key), out);
            }
            for (key, value) in b.iter().filter(|(k, _)| !a.contains_key(*k)) {
                diff_values(&key_path(prefix, key), None, Some(value), out);
            }
        }
        (Some(Value::Object(a)), None) if !a.is_empty() => {
            for (key, value) in a {
                diff_values(&key_path(prefix, key), Some(value), None, out);
            }
        }
        (None, Some(Value::Object(b))) if !b.is_empty() => {
            for (key, value) in b {
                diff_values(&key_path(prefix, key), None, Some(value), out);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) => match (ids(a), ids(b)) {
            (Some(old_ids), Some(new_ids)) => {
                let at = |items: &[Value], list: &[&str], id: &str| {
                    list.iter().position(|x| *x == id).map(|i| items[i].clone())
                };
                let mut all: Vec<&str> = old_ids.clone();
                all.extend(new_ids.iter().filter(|id| !old_ids.contains(id)));
                for id in all {
                    let key = format!("{prefix}[id={id}]");
                    diff_values(&key, at(a, &old_ids, id).as_ref(), at(b, &new_ids, id).as_ref(), out);
                }
            }
            _ => {
                for index in 0..a.len().max(b.len()) {
                    diff_values(&format!("{prefix}[{index}]"), a.get(index), b.get(index), out);
                }
            }
        },
        _ => out.push(KeyChange {
            key: if prefix.is_empty() {
                "(document)".into()
            } else {
                prefix.to_string()
            },
            old: old.cloned(),
            new: new.cloned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(old: Value, new: Value) -> Vec<(String, Option<Value>, Option<Value>)> {
        let mut out = Vec::new();
        diff_values("", Some(&old), Some(&new), &mut out);
        out.into_iter().map(|k| (k.key, k.old, k.new)).collect()
    }

    #[test]
    fn components_are_matched_by_id() {
        let old = json!({"format_version": 2, "components": [
            {"id": "resource_manager", "path": "a.GPU", "args": {"num_of_gpus": 0}},
            {"id": "process_launcher", "path": "a.Proc", "args": {}}]});
        let new = json!({"format_version": 2, "components": [
            {"id": "resource_manager", "path": "a.Pass", "args": {}},
            {"id": "docker_launcher", "path": "a.Dock", "args": {"network": "nvflare-network"}}]});
        let want: Vec<(String, Option<Value>, Option<Value>)> = vec![
            (
                "components[id=resource_manager].path".into(),
                Some(json!("a.GPU")),
                Some(json!("a.Pass")),
            ),
            (
                "components[id=resource_manager].args.num_of_gpus".into(),
                Some(json!(0)),
                None,
            ),
            (
                "components[id=process_launcher].id".into(),
                Some(json!("process_launcher")),
                None,
            ),
            (
                "components[id=process_launcher].path".into(),
                Some(json!("a.Proc")),
                None,
            ),
            ("components[id=process_launcher].args".into(), Some(json!({})), None),
            (
                "components[id=docker_launcher].id".into(),
                None,
                Some(json!("docker_launcher")),
            ),
            (
                "components[id=docker_launcher].path".into(),
                None,
                Some(json!("a.Dock")),
            ),
            (
                "components[id=docker_launcher].args.network".into(),
                None,
                Some(json!("nvflare-network")),
            ),
        ];
        assert_eq!(diff(old, new), want);
    }

    #[test]
    fn odd_keys_are_quoted_and_plain_arrays_go_by_index() {
        assert_eq!(
            diff(json!({"a b": [1, 2]}), json!({"a b": [1, 3, 4]})),
            vec![
                ("[\"a b\"][1]".to_string(), Some(json!(2)), Some(json!(3))),
                ("[\"a b\"][2]".to_string(), None, Some(json!(4))),
            ]
        );
    }
}
