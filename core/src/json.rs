//! JSON the way the reference writes it (Python `json.dumps`): key order preserved,
//! non-ASCII escaped as `\uXXXX`, floats in Python `repr` form. Files use 4-space
//! indentation; the result envelope is one line with `", "` and `": "` separators.

use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter, PrettyFormatter};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Serialises `value` like `json.dumps(value, indent=4)` followed by a newline.
pub fn to_file_string<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    let mut out = Vec::new();
    let formatter = PythonFormatter {
        inner: PrettyFormatter::with_indent(b"    "),
        pretty: true,
    };
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    value.serialize(&mut ser).map_err(Error::prepare_failed)?;
    out.push(b'\n');
    String::from_utf8(out).map_err(Error::prepare_failed)
}

/// Serialises `value` like `json.dumps(value)`: one line, `", "` and `": "` separators.
pub fn to_line<T: Serialize + ?Sized>(value: &T) -> String {
    let mut out = Vec::new();
    let formatter = PythonFormatter {
        inner: PrettyFormatter::with_indent(b""),
        pretty: false,
    };
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    // Serialising an in-memory Value cannot fail; fall back to serde's own output if it ever does.
    if value.serialize(&mut ser).is_err() {
        return serde_json::to_string(value).unwrap_or_default();
    }
    String::from_utf8(out).unwrap_or_default()
}

/// Writes a JSON document in the reference's file format.
pub fn write_file<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    let text = to_file_string(value)?;
    std::fs::write(path, text).map_err(|e| Error::prepare_failed(format_args!("{}: {e}", path.display())))
}

/// Largest kit JSON file accepted (16 MiB; provisioned ones are a few KiB).
pub const MAX_KIT_JSON_BYTES: u64 = 16 << 20;

/// Loads a kit JSON file that must hold an object, with the reference's messages
/// (`label` is the file name the messages show).
pub fn load_object(path: &Path, label: &str) -> Result<Map<String, Value>> {
    if !path.is_file() {
        return Err(Error::invalid_kit(
            format!("Missing {label}: {}", path.display()),
            "Provide a valid startup kit.",
        ));
    }
    let parse_error = |e: &dyn std::fmt::Display| {
        Error::invalid_kit(format!("Failed to parse {label}: {e}"), "Fix the startup kit JSON.")
    };
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if size > MAX_KIT_JSON_BYTES {
        return Err(Error::invalid_kit(
            format!(
                "{label} is too large: {} ({size} bytes; the limit is {MAX_KIT_JSON_BYTES}).",
                path.display()
            ),
            "Fix the startup kit JSON.",
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| parse_error(&e))?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| parse_error(&e))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(Error::invalid_kit(
            format!("{label} must contain a JSON object."),
            "Fix the startup kit JSON.",
        )),
    }
}

/// serde_json's pretty printer with Python's ASCII escaping, float repr and, for the
/// one-line form, Python's default separators.
struct PythonFormatter {
    inner: PrettyFormatter<'static>,
    pretty: bool,
}

impl Formatter for PythonFormatter {
    fn write_f64<W: ?Sized + Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        writer.write_all(python_float_repr(value).as_bytes())
    }

    fn write_f32<W: ?Sized + Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(writer, f64::from(value))
    }

    fn write_string_fragment<W: ?Sized + Write>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()> {
        if fragment.is_ascii() {
            return writer.write_all(fragment.as_bytes());
        }
        let mut buf = [0u16; 2];
        for ch in fragment.chars() {
            if ch.is_ascii() {
                writer.write_all(&[ch as u8])?;
            } else {
                for unit in ch.encode_utf16(&mut buf) {
                    write!(writer, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }

    fn write_char_escape<W: ?Sized + Write>(&mut self, writer: &mut W, escape: CharEscape) -> io::Result<()> {
        // Python writes other control characters as \u00XX (lower-case hex), like serde.
        serde_json::ser::CompactFormatter.write_char_escape(writer, escape)
    }

    fn begin_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        if self.pretty {
            self.inner.begin_array(writer)
        } else {
            writer.write_all(b"[")
        }
    }

    fn end_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        if self.pretty {
            self.inner.end_array(writer)
        } else {
            writer.write_all(b"]")
        }
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        if self.pretty {
            self.inner.begin_array_value(writer, first)
        } else if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        if self.pretty {
            self.inner.end_array_value(writer)
        } else {
            Ok(())
        }
    }

    fn begin_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        if self.pretty {
            self.inner.begin_object(writer)
        } else {
            writer.write_all(b"{")
        }
    }

    fn end_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        if self.pretty {
            self.inner.end_object(writer)
        } else {
            writer.write_all(b"}")
        }
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        if self.pretty {
            self.inner.begin_object_key(writer, first)
        } else if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        if self.pretty {
            self.inner.end_object_value(writer)
        } else {
            Ok(())
        }
    }
}

/// Python's `repr(float)`: shortest round-trip digits, exponent form below 1e-4 and
/// from 1e16 on, a two-digit signed exponent, and `.0` on integral values.
pub fn python_float_repr(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if value == 0.0 {
        return if value.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // `{:e}` gives the shortest round-trip digits as d[.ddd]e<exp>.
    let sci = format!("{value:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if negative { "-" } else { "" };
    if !(-4..16).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exp_sign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{exp_sign}{:02}", exp.abs());
    }
    let point = exp + 1; // digits before the decimal point
    if point <= 0 {
        format!("{sign}0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else if point as usize >= digits.len() {
        format!("{sign}{digits}{}.0", "0".repeat(point as usize - digits.len()))
    } else {
        let (int, frac) = digits.split_at(point as usize);
        format!("{sign}{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_follow_python_repr() {
        for (v, s) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789012345.6, "123456789012345.6"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (-2.5, "-2.5"),
            (100.0, "100.0"),
        ] {
            assert_eq!(python_float_repr(v), s, "{v}");
        }
    }

    #[test]
    fn file_format_matches_python_indent_4() {
        let v = json!({"a": [], "b": {}, "c": [1, {"d": "é"}], "e": null});
        assert_eq!(
            to_file_string(&v).expect("serialises"),
            "{\n    \"a\": [],\n    \"b\": {},\n    \"c\": [\n        1,\n        {\n            \"d\": \"\\u00e9\"\n        }\n    ],\n    \"e\": null\n}\n"
        );
    }

    #[test]
    fn line_format_matches_python_default() {
        let v = json!({"a": [1, 2], "b": {"c": "\u{1F600}"}});
        assert_eq!(to_line(&v), "{\"a\": [1, 2], \"b\": {\"c\": \"\\ud83d\\ude00\"}}");
    }
}
