//! JSON as Go's `encoding/json` writes it: compact, with `<`, `>`, `&`, U+2028 and U+2029
//! escaped inside strings. Serving those escapes keeps the gateway honest about decoding them.

use std::io;

use serde::Serialize;
use serde_json::ser::Formatter;

struct GoFormatter;

impl Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let escape = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(escape.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// Encodes `value` as Go would.
pub(super) fn to_vec(value: &impl Serialize) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    // Writing JSON values into a Vec cannot fail.
    let _ = value.serialize(&mut serializer);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_html_characters_like_go() {
        let text = String::from_utf8(to_vec(&serde_json::json!({"a": "x<y>&z\u{2028}é\"q"})))
            .expect("utf-8");
        assert_eq!(text, r#"{"a":"x\u003cy\u003e\u0026z\u2028é\"q"}"#);
    }
}
