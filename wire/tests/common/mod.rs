//! What the interop tests of this crate share.

use std::io::Read;

use bytes::BytesMut;

/// Reads from `s` into `buf` until `f` yields something from the accumulated bytes; panics if
/// the peer closes first.
pub(crate) fn read_until<T>(
    s: &mut impl Read,
    buf: &mut BytesMut,
    mut f: impl FnMut(&mut BytesMut) -> Option<T>,
) -> T {
    loop {
        if let Some(t) = f(buf) {
            return t;
        }
        let mut chunk = [0u8; 16384];
        let n = s.read(&mut chunk).expect("read from the peer");
        assert!(n > 0, "peer closed early");
        buf.extend_from_slice(&chunk[..n]);
    }
}
