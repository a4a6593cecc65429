// MD5 (RFC 1321) and HMAC-MD5 (RFC 2104), written by hand: the login hash of the cobra protocol is
// base64(HMAC-MD5(secret, nonce)) and WebCrypto offers no MD5. Checked against the RFCs' test
// vectors by server/dashboard/test/md5.test.js. Loaded as a plain script (window.CobraMd5) or
// by Node's require (module.exports).
(function (root) {
  'use strict';

  const S = [7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
    5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
    4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
    6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21];
  const K = new Uint32Array(64);
  for (let i = 0; i < 64; i++) K[i] = Math.floor(Math.abs(Math.sin(i + 1)) * 4294967296) >>> 0;

  /** MD5 of a Uint8Array: a 16-byte Uint8Array. */
  function md5(bytes) {
    const len = bytes.length;
    const padded = new Uint8Array(((len + 8) >>> 6) * 64 + 64);
    padded.set(bytes);
    padded[len] = 0x80;
    const view = new DataView(padded.buffer);
    // Length in bits, little-endian 64 bits (messages here are far below 2^32 bits' high word).
    view.setUint32(padded.length - 8, (len * 8) >>> 0, true);
    view.setUint32(padded.length - 4, Math.floor(len / 0x20000000), true);
    let a0 = 0x67452301, b0 = 0xefcdab89, c0 = 0x98badcfe, d0 = 0x10325476;
    const M = new Uint32Array(16);
    for (let off = 0; off < padded.length; off += 64) {
      for (let i = 0; i < 16; i++) M[i] = view.getUint32(off + i * 4, true);
      let a = a0, b = b0, c = c0, d = d0;
      for (let i = 0; i < 64; i++) {
        let f, g;
        if (i < 16) { f = (b & c) | (~b & d); g = i; }
        else if (i < 32) { f = (d & b) | (~d & c); g = (5 * i + 1) % 16; }
        else if (i < 48) { f = b ^ c ^ d; g = (3 * i + 5) % 16; }
        else { f = c ^ (b | ~d); g = (7 * i) % 16; }
        f = (f + a + K[i] + M[g]) >>> 0;
        a = d; d = c; c = b;
        b = (b + ((f << S[i]) | (f >>> (32 - S[i])))) >>> 0;
      }
      a0 = (a0 + a) >>> 0; b0 = (b0 + b) >>> 0; c0 = (c0 + c) >>> 0; d0 = (d0 + d) >>> 0;
    }
    const out = new Uint8Array(16);
    const ov = new DataView(out.buffer);
    ov.setUint32(0, a0, true); ov.setUint32(4, b0, true); ov.setUint32(8, c0, true); ov.setUint32(12, d0, true);
    return out;
  }

  /** HMAC-MD5(key, message), both Uint8Array: a 16-byte Uint8Array. */
  function hmacMd5(key, message) {
    if (key.length > 64) key = md5(key);
    const k = new Uint8Array(64);
    k.set(key);
    const inner = new Uint8Array(64 + message.length);
    const outer = new Uint8Array(64 + 16);
    for (let i = 0; i < 64; i++) { inner[i] = k[i] ^ 0x36; outer[i] = k[i] ^ 0x5c; }
    inner.set(message, 64);
    outer.set(md5(inner), 64);
    return md5(outer);
  }

  function toHex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  function toBase64(bytes) {
    let s = '';
    for (const b of bytes) s += String.fromCharCode(b);
    return btoa(s);
  }

  const utf8 = (s) => new TextEncoder().encode(s);

  /** The `auth/authenticate` hash: base64(HMAC-MD5(key = utf8(secret), message = utf8(nonce))). */
  function authHash(secret, nonce) {
    return toBase64(hmacMd5(utf8(secret), utf8(nonce)));
  }

  const api = { md5, hmacMd5, authHash, toHex, toBase64, utf8 };
  if (typeof module !== 'undefined' && module.exports) module.exports = api;
  else root.CobraMd5 = api;
})(typeof window !== 'undefined' ? window : globalThis);
