//! Small readers of JSON documents the binary prints.

use serde_json::Value;

/// The keys of a JSON object, in document order.
pub fn keys(value: &Value) -> Vec<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

/// The `name` of each entry of a JSON list (a schema's `args`, `options`, `commands`).
pub fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|entry| entry["name"].as_str().unwrap_or_else(|| panic!("no name: {entry}")))
        .collect()
}
