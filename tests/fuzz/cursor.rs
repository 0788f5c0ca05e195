//! Resume cursors, which callers hand back: cursors the gateway issued, damaged (bytes
//! flipped, cut, extended, re-encoded), and arbitrary text. Decoding never panics; an issued
//! cursor decodes to what was encoded, for its own `q` only.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use coder_audit_gateway::internals::cursor::{
    ExportCursor, ExportCursorVersion, Position, decode_export, decode_watch, encode_export,
    encode_watch,
};
use proptest::prelude::*;

use crate::{Counter, config};

static INPUTS: Counter = Counter::new("cursor decoding");

prop_compose! {
    /// A position as the walker makes them: ids are remembered only at a time.
    fn position()(
        at in prop::option::of((any::<i64>(), 0..1_000_000_000_u32)),
        seen in prop::collection::hash_set(any::<u64>(), 0..40),
    ) -> Position {
        let seen = if at.is_some() { seen } else { std::collections::HashSet::default() };
        Position::new(at, seen)
    }
}

#[derive(Debug, Clone)]
enum Damage {
    Flip(usize, u8),
    Cut(usize),
    Extend(Vec<u8>),
}

fn damage() -> impl Strategy<Value = Vec<Damage>> {
    prop::collection::vec(
        prop_oneof![
            (any::<usize>(), 1..=255_u8).prop_map(|(at, bits)| Damage::Flip(at, bits)),
            any::<usize>().prop_map(Damage::Cut),
            prop::collection::vec(any::<u8>(), 1..16).prop_map(Damage::Extend),
        ],
        1..3,
    )
}

fn damaged(text: &str, damage: &[Damage]) -> String {
    let mut bytes = URL_SAFE_NO_PAD
        .decode(text)
        .expect("issued cursors are base64");
    for step in damage {
        match step {
            Damage::Flip(at, bits) if !bytes.is_empty() => {
                let len = bytes.len();
                bytes[at % len] ^= bits;
            }
            Damage::Cut(at) => bytes.truncate(at % (bytes.len() + 1)),
            Damage::Extend(more) => bytes.extend_from_slice(more),
            Damage::Flip(..) => {}
        }
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

fn same(a: &Position, b: &Position) -> bool {
    a.at == b.at && a.seen == b.seen
}

#[test]
fn cursor_decoding() {
    proptest!(config(), |(q in ".{0,20}", other in ".{0,20}", next in position(), start in position(), above in proptest::option::of(any::<u32>()), version in proptest::bool::ANY, damage in damage())| {
        INPUTS.tick();
        let watch = encode_watch(&q, &next);
        assert!(same(&decode_watch(&q, &watch).expect("issued"), &next));
        let cursor = ExportCursor { next: next.clone(), above, start: start.clone() };
        let version = if version { ExportCursorVersion::V2 } else { ExportCursorVersion::V1 };
        let export = encode_export(&q, &cursor, version);
        let decoded = decode_export(&q, &export).expect("issued");
        let hint = if version == ExportCursorVersion::V2 { above } else { None };
        assert!(same(&decoded.next, &next) && same(&decoded.start, &start) && decoded.above == hint);
        if other != q {
            assert!(decode_watch(&other, &watch).is_err(), "a cursor of another q");
        }
        assert!(decode_export(&q, &watch).is_err() && decode_watch(&q, &export).is_err());
        for text in [damaged(&watch, &damage), damaged(&export, &damage)] {
            // A damaged cursor is refused, or (checksum collisions aside) decodes to something
            // well-formed; either way, no panic.
            let _ = decode_watch(&q, &text);
            let _ = decode_export(&q, &text);
        }
    });
    proptest!(config(), |(text in ".{0,200}")| {
        INPUTS.tick();
        let _ = decode_watch("", &text);
        let _ = decode_export("", &text);
    });
    INPUTS.report();
}
