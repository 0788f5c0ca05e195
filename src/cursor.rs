//! Positions in Coder's audit trail, and the opaque cursors that carry them between calls.
//!
//! Coder orders rows by `time` alone, so no offset names a row for long: rows recorded
//! meanwhile push every offset down, and rows with equal times come back in any order. A
//! position is therefore a time plus the rows *at exactly that time* already delivered, named
//! by a 64-bit hash of their ids: that is enough to tell, for any row Coder returns later,
//! whether it is on this side of the position or the other, whatever the order of ties.
//!
//! A cursor is that position (two of them for an export: how far it got, and where it began)
//! bound to the compiled `q` by a hash, in a small versioned binary form with a checksum,
//! written as unpadded base64url. It carries no token and no row content, only times and
//! hashes, and it is not a secret: a forged cursor can only move its own caller's position.

use std::collections::HashSet;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};

pub use crate::model::fnv64;
use crate::model::{Row, Timestamp};

/// Watch cursors, and export cursors whose hint is an offset from the top of the trail.
const VERSION_1: u8 = 1;
/// Export cursors whose hint counts the rows above the position inside its window (the
/// windowed walker's); version-1 readers refuse them as malformed.
const VERSION_2: u8 = 2;
const EXPORT: u8 = 1;
const WATCH: u8 = 2;
/// Page tokens (`ListAuditLogs`' `page_token`, `auditLogs`' `after`): always version 2.
const PAGE: u8 = 3;
/// More tied rows than any cursor should carry; a larger count means a corrupt cursor.
const MAX_SEEN: usize = 1 << 16;
/// The longest cursor text this gateway can issue (two positions of `MAX_SEEN` ids, in
/// base64); anything longer is refused before it is decoded.
const MAX_TEXT: usize = (2 * (MAX_SEEN * 8 + 32) + 32) * 4 / 3 + 4;

/// A row's place in Coder's order: its time as (seconds, nanoseconds).
pub type Instant = (i64, u32);

/// The instant of a timestamp, for ordering.
#[must_use]
pub fn instant(time: &Timestamp) -> Instant {
    (time.seconds(), time.nanos())
}

/// A point in the trail: the rows at `at` whose ids hash into `seen` are on the near side;
/// `at: None` is before the oldest row (an empty trail had nothing to see).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position {
    pub at: Option<Instant>,
    pub seen: HashSet<u64>,
    /// Rows at `at` whose own time Coder sent unreadable (see [`Row::place`]): their true
    /// time may equal the next time the position moves to, so they are seen there too.
    unplaced: Vec<u64>,
}

impl Position {
    /// The point at `at` past the rows whose id hashes are `seen`.
    #[must_use]
    pub fn new(at: Option<Instant>, seen: HashSet<u64>) -> Self {
        Self {
            at,
            seen,
            unplaced: Vec::new(),
        }
    }

    /// Whether `row` is newer than this position: what a watch still has to deliver.
    #[must_use]
    pub fn is_before(&self, row: &Row) -> bool {
        match self.at {
            None => true,
            Some(at) => {
                let time = instant(&row.time);
                time > at || (time == at && !self.seen.contains(&fnv64(row.id.as_bytes())))
            }
        }
    }

    /// Whether `row` is older than this position: what an export still has to deliver.
    /// `at: None` here means nothing was delivered yet.
    #[must_use]
    pub fn is_after(&self, row: &Row) -> bool {
        match self.at {
            None => true,
            Some(at) => {
                let time = instant(&row.time);
                time < at || (time == at && !self.seen.contains(&fnv64(row.id.as_bytes())))
            }
        }
    }

    /// Where "now" is in a batch read from the top (newest first): the newest row and the
    /// rows tied with it. The walker delivers a whole group of ties before moving past it,
    /// so a first batch holds all of them.
    #[must_use]
    pub fn newest(rows: &[Row]) -> Self {
        let mut position = Self::default();
        let newest = rows.first().map(|row| instant(&row.time));
        for row in rows
            .iter()
            .take_while(|row| Some(instant(&row.time)) == newest)
        {
            position.advance(row);
        }
        position
    }

    /// Moves the position onto `row`, which must be delivered next in this position's
    /// direction: a new time starts a new set of ties.
    pub fn advance(&mut self, row: &Row) {
        self.advance_to(instant(&row.time), &row.id, row.unplaced.is_some());
    }

    /// [`Position::advance`] onto a row given by its instant and id.
    pub fn advance_to(&mut self, time: Instant, id: &str, unplaced: bool) {
        if self.at != Some(time) {
            self.at = Some(time);
            self.seen.clear();
            self.seen.extend(self.unplaced.drain(..));
        }
        let id = fnv64(id.as_bytes());
        self.seen.insert(id);
        if unplaced {
            self.unplaced.push(id);
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self.at {
            None => out.push(0),
            Some((seconds, nanos)) => {
                out.push(1);
                out.extend_from_slice(&seconds.to_be_bytes());
                out.extend_from_slice(&nanos.to_be_bytes());
                write_varint(out, self.seen.len() as u64);
                let mut seen: Vec<u64> = self.seen.iter().copied().collect();
                seen.sort_unstable();
                for hash in seen {
                    out.extend_from_slice(&hash.to_be_bytes());
                }
            }
        }
    }

    fn read(input: &mut Reader) -> Option<Self> {
        match input.byte()? {
            0 => Some(Self::default()),
            1 => {
                let seconds = i64::from_be_bytes(input.array()?);
                let nanos = u32::from_be_bytes(input.array()?);
                if nanos >= 1_000_000_000 {
                    return None;
                }
                let count = usize::try_from(input.varint()?).ok()?;
                if count > MAX_SEEN {
                    return None;
                }
                let mut seen = HashSet::with_capacity(count);
                for _ in 0..count {
                    seen.insert(u64::from_be_bytes(input.array()?));
                }
                Some(Self::new(Some((seconds, nanos)), seen))
            }
            _ => None,
        }
    }
}

/// Where an export stands: `next` is the oldest delivered position, `above` how many rows
/// lie between it and the top of its day's window (a hint that saves re-reading them; `None`
/// from a version-1 cursor, whose hint meant something else), and `start` where the export
/// began, from which a watch continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportCursor {
    pub next: Position,
    pub above: Option<u32>,
    pub start: Position,
}

/// Which export cursor format a gateway writes: version 2 by default; version 1 while a
/// fleet is upgraded, so replicas that read only version 1 still accept every cursor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExportCursorVersion {
    /// Written with offset 0, which every version-1 reader accepts: it re-anchors from the
    /// top of the trail, slower but exact.
    V1,
    #[default]
    V2,
}

/// Where a caller paging with cursors stands: after `next` (with `above`, the export
/// cursor's hint), with the first page's `count` and `count_cap`, which every later page
/// repeats, and the rows per day measured so far, which sizes the next page's window.
#[derive(Debug, Clone, PartialEq)]
pub struct PageToken {
    pub next: Position,
    pub above: Option<u32>,
    pub count: i64,
    pub count_cap: Option<i64>,
    pub density: f32,
}

/// Why a cursor was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("the cursor is malformed: it was not issued by this gateway, or was cut or changed")]
    Malformed,
    #[error("the cursor belongs to another `q` or filter than this request's")]
    OtherQuery,
    #[error("the cursor is an export's; pass a `watchCursor` or a watch's cursor")]
    ExportForWatch,
    #[error("the cursor is a watch's; pass the `cursor` of an export message")]
    WatchForExport,
    #[error(
        "the cursor is a page token; pass it as `page_token` (gRPC) or `after` (GraphQL) of the same query"
    )]
    PageForStream,
    #[error(
        "the token is a stream's cursor; pass a page's `next_page_token` (gRPC) or `endCursor` / an edge's `cursor` (GraphQL)"
    )]
    StreamForPage,
}

/// Encodes a watch position bound to the compiled `q`.
#[must_use]
pub fn encode_watch(q: &str, position: &Position) -> String {
    let mut out = header(VERSION_1, WATCH, q);
    position.write(&mut out);
    finish(out)
}

/// Encodes an export's progress bound to the compiled `q`, in the format `version`.
#[must_use]
pub fn encode_export(q: &str, cursor: &ExportCursor, version: ExportCursorVersion) -> String {
    let (mut out, hint) = match version {
        ExportCursorVersion::V1 => (header(VERSION_1, EXPORT, q), 0),
        ExportCursorVersion::V2 => (
            header(VERSION_2, EXPORT, q),
            cursor.above.map_or(0, |a| u64::from(a) + 1),
        ),
    };
    cursor.next.write(&mut out);
    write_varint(&mut out, hint);
    cursor.start.write(&mut out);
    finish(out)
}

/// Encodes where a caller paging with cursors stands, bound to the compiled `q`.
#[must_use]
pub fn encode_page(q: &str, token: &PageToken) -> String {
    let mut out = header(VERSION_2, PAGE, q);
    token.next.write(&mut out);
    write_varint(&mut out, token.above.map_or(0, |a| u64::from(a) + 1));
    write_varint(&mut out, zigzag(token.count));
    write_varint(&mut out, token.count_cap.map_or(0, |cap| zigzag(cap) + 1));
    out.extend_from_slice(&token.density.to_bits().to_be_bytes());
    finish(out)
}

/// Reads a page token issued for the compiled `q`.
pub fn decode_page(q: &str, text: &str) -> Result<PageToken, CursorError> {
    let (mut input, version) = open(q, text, PAGE)?;
    if version != VERSION_2 {
        return Err(CursorError::Malformed);
    }
    let next = Position::read(&mut input).ok_or(CursorError::Malformed)?;
    let malformed = || CursorError::Malformed;
    let hint = input.varint().ok_or_else(malformed)?;
    let count = input.varint().map(unzigzag).ok_or_else(malformed)?;
    let cap = input.varint().ok_or_else(malformed)?;
    let density = f32::from_bits(u32::from_be_bytes(input.array().ok_or_else(malformed)?));
    input.end()?;
    if next.at.is_none() || !density.is_finite() || density < 0.0 {
        return Err(CursorError::Malformed);
    }
    Ok(PageToken {
        next,
        above: match hint {
            0 => None,
            hint => Some(u32::try_from(hint - 1).map_err(|_| CursorError::Malformed)?),
        },
        count,
        count_cap: cap.checked_sub(1).map(unzigzag),
        density,
    })
}

/// Signed counts as unsigned varints (Coder's counts are never negative, but a cursor must
/// round-trip whatever Coder sent).
fn zigzag(value: i64) -> u64 {
    #[allow(clippy::cast_sign_loss, reason = "the zigzag encoding's bit pattern")]
    let encoded = ((value << 1) ^ (value >> 63)) as u64;
    encoded
}

fn unzigzag(value: u64) -> i64 {
    #[allow(
        clippy::cast_possible_wrap,
        reason = "the zigzag encoding's bit pattern"
    )]
    let decoded = ((value >> 1) as i64) ^ -((value & 1) as i64);
    decoded
}

pub fn decode_watch(q: &str, text: &str) -> Result<Position, CursorError> {
    let (mut input, version) = open(q, text, WATCH)?;
    if version != VERSION_1 {
        return Err(CursorError::Malformed);
    }
    let position = Position::read(&mut input).ok_or(CursorError::Malformed)?;
    input.end()?;
    Ok(position)
}

/// Reads an export cursor of either version; a version-1 offset is dropped (`above: None`).
pub fn decode_export(q: &str, text: &str) -> Result<ExportCursor, CursorError> {
    let (mut input, version) = open(q, text, EXPORT)?;
    let next = Position::read(&mut input).ok_or(CursorError::Malformed)?;
    let hint = input
        .varint()
        .filter(|hint| *hint <= u64::from(u32::MAX) + 1)
        .ok_or(CursorError::Malformed)?;
    let start = Position::read(&mut input).ok_or(CursorError::Malformed)?;
    input.end()?;
    Ok(ExportCursor {
        next,
        // Version 2 writes `above + 1`, with 0 for "not known".
        above: (version == VERSION_2)
            .then(|| hint.checked_sub(1).and_then(|h| u32::try_from(h).ok()))
            .flatten(),
        start,
    })
}

fn header(version: u8, kind: u8, q: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(version);
    out.push(kind);
    out.extend_from_slice(&fnv64(q.as_bytes()).to_be_bytes());
    out
}

fn finish(mut out: Vec<u8>) -> String {
    let check = checksum(&out);
    out.extend_from_slice(&check);
    URL_SAFE_NO_PAD.encode(out)
}

fn checksum(bytes: &[u8]) -> [u8; 4] {
    let [a, b, c, d, ..] = fnv64(bytes).to_be_bytes();
    [a, b, c, d]
}

/// Checks the checksum, version, kind and `q` binding, and returns the reader at the body
/// and the version.
fn open(q: &str, text: &str, kind: u8) -> Result<(Reader, u8), CursorError> {
    if text.len() > MAX_TEXT {
        return Err(CursorError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(text.trim())
        .map_err(|_| CursorError::Malformed)?;
    let Some((body, check)) = bytes.split_last_chunk::<4>() else {
        return Err(CursorError::Malformed);
    };
    if checksum(body) != *check || body.len() < 10 || !matches!(body[0], VERSION_1 | VERSION_2) {
        return Err(CursorError::Malformed);
    }
    match (body[1], kind) {
        (k, want) if k == want => {}
        (EXPORT, WATCH) => return Err(CursorError::ExportForWatch),
        (WATCH, EXPORT) => return Err(CursorError::WatchForExport),
        (PAGE, EXPORT | WATCH) => return Err(CursorError::PageForStream),
        (EXPORT | WATCH, PAGE) => return Err(CursorError::StreamForPage),
        _ => return Err(CursorError::Malformed),
    }
    if body[2..10] != fnv64(q.as_bytes()).to_be_bytes() {
        return Err(CursorError::OtherQuery);
    }
    Ok((
        Reader {
            bytes: body[10..].to_vec(),
            at: 0,
        },
        body[0],
    ))
}

fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(u8::try_from(value & 0x7f).unwrap_or(0) | 0x80);
        value >>= 7;
    }
    out.push(u8::try_from(value).unwrap_or(0));
}

struct Reader {
    bytes: Vec<u8>,
    at: usize,
}

impl Reader {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let slice = self.bytes.get(self.at..self.at + N)?;
        self.at += N;
        slice.try_into().ok()
    }

    fn varint(&mut self) -> Option<u64> {
        let mut value = 0_u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn end(&self) -> Result<(), CursorError> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(CursorError::Malformed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(at: Option<Instant>, ids: &[&str]) -> Position {
        Position::new(at, ids.iter().map(|id| fnv64(id.as_bytes())).collect())
    }

    #[test]
    fn cursors_round_trip_and_stay_bound_to_their_query() {
        let watch = position(Some((1_775_000_000, 123_456_000)), &["a", "b"]);
        let text = encode_watch("action:login", &watch);
        assert!(text.len() < 64, "{text}");
        assert_eq!(decode_watch("action:login", &text), Ok(watch.clone()));
        assert_eq!(
            decode_watch("action:logout", &text),
            Err(CursorError::OtherQuery)
        );
        assert_eq!(
            decode_export("action:login", &text),
            Err(CursorError::WatchForExport)
        );

        let export = ExportCursor {
            next: position(Some((-62_135_596_800, 0)), &["c"]),
            above: Some(4097),
            start: position(None, &[]),
        };
        let text = encode_export("", &export, ExportCursorVersion::V2);
        assert_eq!(decode_export("", &text), Ok(export.clone()));
        assert_eq!(decode_watch("", &text), Err(CursorError::ExportForWatch));
        let unknown = ExportCursor {
            above: None,
            ..export.clone()
        };
        let text = encode_export("", &unknown, ExportCursorVersion::V2);
        assert_eq!(decode_export("", &text), Ok(unknown.clone()));
        // Version 1 (what earlier gateways wrote, and what a fleet mid-upgrade writes): its
        // offset is not this walker's hint and is dropped.
        let text = encode_export("", &export, ExportCursorVersion::V1);
        assert_eq!(decode_export("", &text), Ok(unknown));
    }

    #[test]
    fn a_version_1_cursor_from_an_earlier_gateway_still_reads() {
        // Written by the gateway before export cursors had version 2: offset 57.
        let mut body = header(VERSION_1, EXPORT, "action:login");
        position(Some((1_775_000_000, 5)), &["r"]).write(&mut body);
        write_varint(&mut body, 57);
        position(Some((1_775_000_100, 0)), &["s"]).write(&mut body);
        let cursor = decode_export("action:login", &finish(body)).expect("version 1 reads");
        assert_eq!(cursor.above, None);
        assert_eq!(cursor.next, position(Some((1_775_000_000, 5)), &["r"]));
    }

    #[test]
    fn damaged_cursors_are_malformed_never_a_panic() {
        let text = encode_watch("q", &position(Some((1, 2)), &["x"]));
        for bad in [
            String::new(),
            "!!!".to_owned(),
            text[..text.len() - 2].to_owned(),
            format!("{text}A"),
            text.replace(&text[3..4], if &text[3..4] == "A" { "B" } else { "A" }),
        ] {
            assert_eq!(
                decode_watch("q", &bad),
                Err(CursorError::Malformed),
                "{bad:?}"
            );
        }
        // A well-formed frame around nonsense: a count of seen ids far beyond what follows.
        let mut body = header(VERSION_1, WATCH, "q");
        body.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0xff, 0xff, 0x03]);
        assert_eq!(
            decode_watch("q", &finish(body)),
            Err(CursorError::Malformed)
        );
    }
}
