//! The spool's on-disk record format: pure encoding and decoding, no I/O.
//!
//! A spool file is a 16-byte header (`MAGIC`, the format version as u32 LE, and the CRC-32 of those 12 bytes,
//! so a damaged version is told apart from a newer one) followed by records:
//!
//! ```text
//! len: u32 LE | crc: u32 LE | payload: len bytes
//! ```
//!
//! `crc` is the CRC-32 (IEEE) of the four `len` bytes followed by the payload, so a damaged length is caught
//! as surely as a damaged payload. The payload's first byte is its kind:
//!
//! - `1` append: `id: u64 LE | channel count: u16 LE | (len: u16 LE | UTF-8)* | message len: u32 LE | UTF-8`
//! - `2` ack: `id: u64 LE` (the entry with this id is no longer pending)

use super::Entry;

/// First bytes of every spool file.
pub(crate) const MAGIC: &[u8; 8] = b"CBRSPOOL";
/// Format version written after [`MAGIC`].
pub(crate) const VERSION: u32 = 1;
/// Size of the file header.
pub(crate) const HEADER_LEN: u64 = 16;
/// Size of a record's frame (length and CRC) before its payload.
pub(crate) const FRAME_LEN: usize = 8;

const KIND_APPEND: u8 = 1;
const KIND_ACK: u8 = 2;

/// The file header bytes.
pub(crate) fn header() -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    let crc = crc32fast::hash(&h[..12]);
    h[12..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// The version of a header, or `None` if it is damaged or not a spool header.
pub(crate) fn header_version(h: &[u8; HEADER_LEN as usize]) -> Option<u32> {
    let crc = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
    (&h[..8] == MAGIC && crc32fast::hash(&h[..12]) == crc)
        .then(|| u32::from_le_bytes([h[8], h[9], h[10], h[11]]))
}

/// One decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    Append(Entry),
    Ack(u64),
}

/// Why an entry cannot be encoded (the caller turns it into a `SpoolError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EncodeError {
    /// More than `u16::MAX` channels.
    TooManyChannels,
    /// A channel name longer than `u16::MAX` bytes.
    ChannelTooLong,
    /// A message longer than `u32::MAX` bytes.
    MessageTooLong,
}

/// Size of the framed record `encode_append` produces for `entry`.
pub(crate) fn append_len(entry: &Entry) -> u64 {
    let channels: usize = entry.channels.iter().map(|c| 2 + c.len()).sum();
    (FRAME_LEN + 1 + 8 + 2 + channels + 4 + entry.message.len()) as u64
}

/// Size of a framed ack record.
pub(crate) const ACK_LEN: u64 = (FRAME_LEN + 1 + 8) as u64;

/// Appends the framed append record of `entry` to `out`.
pub(crate) fn encode_append(entry: &Entry, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let count = u16::try_from(entry.channels.len()).map_err(|_| EncodeError::TooManyChannels)?;
    let msg_len = u32::try_from(entry.message.len()).map_err(|_| EncodeError::MessageTooLong)?;
    let start = begin(out);
    out.push(KIND_APPEND);
    out.extend_from_slice(&entry.id.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    for channel in &entry.channels {
        let len = u16::try_from(channel.len()).map_err(|_| {
            out.truncate(start);
            EncodeError::ChannelTooLong
        })?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(channel.as_bytes());
    }
    out.extend_from_slice(&msg_len.to_le_bytes());
    out.extend_from_slice(entry.message.as_bytes());
    finish(out, start);
    Ok(())
}

/// Appends the framed ack record of `id` to `out`.
pub(crate) fn encode_ack(id: u64, out: &mut Vec<u8>) {
    let start = begin(out);
    out.push(KIND_ACK);
    out.extend_from_slice(&id.to_le_bytes());
    finish(out, start);
}

fn begin(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_LEN]);
    start
}

fn finish(out: &mut [u8], start: usize) {
    // Payloads are bounded by the spool size (u64) but framed in u32: encode_append checked each part, and
    // the sum of a u16 count of u16 names plus a u32 message could still overflow, so saturate: an
    // oversized record then fails its CRC on load instead of aliasing a shorter one.
    let payload_len = u32::try_from(out.len() - start - FRAME_LEN).unwrap_or(u32::MAX);
    out[start..start + 4].copy_from_slice(&payload_len.to_le_bytes());
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&out[start..start + 4]);
    hasher.update(&out[start + FRAME_LEN..]);
    let crc = hasher.finalize();
    out[start + 4..start + FRAME_LEN].copy_from_slice(&crc.to_le_bytes());
}

/// What stops decoding at some offset: everything from there on is skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The file ends in the middle of a record (a crash during a write).
    Truncated,
    /// The length field announces more than the spool may hold.
    BadLength(u32),
    /// The CRC does not match the bytes.
    CrcMismatch,
    /// The CRC matches but the payload does not parse (a bug or a foreign writer).
    BadPayload(&'static str),
}

/// Decodes the record at the start of `buf`, returning it and its framed size.
/// `max_payload` bounds the length field so a damaged length cannot make the reader trust a huge slice.
pub(crate) fn decode(buf: &[u8], max_payload: u64) -> Result<(Record, usize), DecodeError> {
    if buf.len() < FRAME_LEN {
        return Err(DecodeError::Truncated);
    }
    let len_bytes: [u8; 4] = [buf[0], buf[1], buf[2], buf[3]];
    let len = u32::from_le_bytes(len_bytes);
    if u64::from(len) > max_payload {
        return Err(DecodeError::BadLength(len));
    }
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let total = FRAME_LEN + len as usize;
    if buf.len() < total {
        return Err(DecodeError::Truncated);
    }
    let payload = &buf[FRAME_LEN..total];
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len_bytes);
    hasher.update(payload);
    if hasher.finalize() != crc {
        return Err(DecodeError::CrcMismatch);
    }
    let record = parse_payload(payload).map_err(DecodeError::BadPayload)?;
    Ok((record, total))
}

fn parse_payload(payload: &[u8]) -> Result<Record, &'static str> {
    let mut r = Reader(payload);
    let record = match r.u8()? {
        KIND_APPEND => {
            let id = r.u64()?;
            let count = r.u16()?;
            let mut channels = Vec::with_capacity(usize::from(count).min(r.0.len() / 2));
            for _ in 0..count {
                let len = r.u16()?;
                channels.push(r.string(usize::from(len))?);
            }
            let len = r.u32()?;
            let message = r.string(len as usize)?;
            Record::Append(Entry {
                id,
                channels,
                message,
            })
        }
        KIND_ACK => Record::Ack(r.u64()?),
        _ => return Err("unknown record kind"),
    };
    if !r.0.is_empty() {
        return Err("trailing bytes in record");
    }
    Ok(record)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err("record shorter than its fields");
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, &'static str> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, &'static str> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, &'static str> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn string(&mut self, n: usize) -> Result<String, &'static str> {
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "invalid UTF-8 in record")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            id: 42,
            channels: vec!["a".into(), "engine_fps_id".into()],
            message: r#"{"fps":30}"#.into(),
        }
    }

    #[test]
    fn append_round_trips_and_len_matches() {
        let mut buf = Vec::new();
        encode_append(&entry(), &mut buf).unwrap();
        assert_eq!(buf.len() as u64, append_len(&entry()));
        let (rec, n) = decode(&buf, 1 << 20).unwrap();
        assert_eq!(n, buf.len());
        assert_eq!(rec, Record::Append(entry()));
    }

    #[test]
    fn ack_round_trips() {
        let mut buf = Vec::new();
        encode_ack(7, &mut buf);
        assert_eq!(buf.len() as u64, ACK_LEN);
        assert_eq!(decode(&buf, 1 << 20).unwrap(), (Record::Ack(7), buf.len()));
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let mut buf = Vec::new();
        encode_append(&entry(), &mut buf).unwrap();
        for i in 0..buf.len() * 8 {
            let mut bad = buf.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(
                decode(&bad, 1 << 20).is_err(),
                "flip of bit {i} went unnoticed"
            );
        }
    }

    #[test]
    fn every_truncation_is_detected() {
        let mut buf = Vec::new();
        encode_append(&entry(), &mut buf).unwrap();
        for n in 0..buf.len() {
            assert_eq!(
                decode(&buf[..n], 1 << 20),
                Err(DecodeError::Truncated),
                "cut at {n}"
            );
        }
    }

    #[test]
    fn huge_length_is_refused_before_reading() {
        let mut buf = vec![0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0];
        buf.extend_from_slice(&[0; 16]);
        assert_eq!(
            decode(&buf, 1 << 20),
            Err(DecodeError::BadLength(0x7fff_ffff))
        );
    }

    #[test]
    fn oversized_channel_is_refused_and_leaves_buffer_clean() {
        let mut buf = vec![1, 2, 3];
        let e = Entry {
            id: 1,
            channels: vec!["x".repeat(70_000)],
            message: "{}".into(),
        };
        assert_eq!(
            encode_append(&e, &mut buf),
            Err(EncodeError::ChannelTooLong)
        );
        assert_eq!(buf, vec![1, 2, 3]);
    }
}
