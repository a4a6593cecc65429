// Known-answer tests of the dashboard's hand-written MD5 / HMAC-MD5 (RFC 1321 §A.5, RFC 2104 §2
// and RFC 2202 §2) and the protocol's test vector. Run: node server/dashboard/test/md5.test.js
'use strict';
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { md5, hmacMd5, authHash, toHex, utf8 } = require('../md5.js');

const md5Vectors = [
  ['', 'd41d8cd98f00b204e9800998ecf8427e'],
  ['a', '0cc175b9c0f1b6a831c399e269772661'],
  ['abc', '900150983cd24fb0d6963f7d28e17f72'],
  ['message digest', 'f96b697d7cb7938d525a2f31aaf161d0'],
  ['abcdefghijklmnopqrstuvwxyz', 'c3fcd3d76192e4007dfb496cca67e13b'],
  ['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', 'd174ab98d277d9f5a5611c2c9f419d9f'],
  ['12345678901234567890123456789012345678901234567890123456789012345678901234567890', '57edf4a22be3c955ac49da2e2107b67a'],
];
for (const [input, want] of md5Vectors) assert.equal(toHex(md5(utf8(input))), want, `md5(${input})`);

const hmacVectors = [
  [new Uint8Array(16).fill(0x0b), utf8('Hi There'), '9294727a3638bb1c13f48ef8158bfc9d'],
  [utf8('Jefe'), utf8('what do ya want for nothing?'), '750c783e6ab0b503eaa86e310a5db738'],
  [new Uint8Array(16).fill(0xaa), new Uint8Array(50).fill(0xdd), '56be34521d144c88dbb8c733f0e8b3f6'],
  [new Uint8Array(80).fill(0xaa), utf8('Test Using Larger Than Block-Size Key - Hash Key First'), '6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd'],
];
for (const [key, msg, want] of hmacVectors) assert.equal(toHex(hmacMd5(key, msg)), want);

// docs/spec protocol.md: secret `secret-key`, nonce `nonce`.
assert.equal(authHash('secret-key', 'nonce'), 'G12A8Dt0RdjHNx8P0lci9w==');

// Every length around the 55/56/64-byte padding boundaries, and non-ASCII, against Node's own.
for (let n = 0; n < 300; n++) {
  const s = 'é'.repeat(n % 7) + 'x'.repeat(n);
  assert.equal(toHex(md5(utf8(s))), crypto.createHash('md5').update(s).digest('hex'), `length ${n}`);
  const key = 'k'.repeat(n % 130);
  assert.equal(authHash(key, s), crypto.createHmac('md5', key).update(s).digest('base64'), `hmac ${n}`);
}
console.log('md5.test.js: ok');
