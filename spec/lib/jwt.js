'use strict';
// Signed tokens for the tests, made with node's crypto: HS* (HMAC), RS* (RSA PKCS#1 v1.5), ES* (ECDSA, the JOSE
// R||S signature form). sign() takes any header, so a test can write tokens no library would (alg none, a lying alg).
const crypto = require('node:crypto');

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const HASH = { 256: 'sha256', 384: 'sha384', 512: 'sha512' };

function signature(alg, key, data) {
  const hash = HASH[alg.slice(2)];
  if (alg.startsWith('HS')) return crypto.createHmac(hash, key).update(data).digest();
  if (alg.startsWith('RS')) return crypto.sign(hash, Buffer.from(data), key);
  if (alg.startsWith('ES')) return crypto.sign(hash, Buffer.from(data), { key, dsaEncoding: 'ieee-p1363' });
  if (alg === 'none') return Buffer.alloc(0);
  throw new Error(`no such alg ${alg}`);
}

// header: at least {alg}; the signature is made with signAlg (default: header.alg) under key.
function sign(header, claims, key, signAlg) {
  const data = `${b64url(JSON.stringify({ typ: 'JWT', ...header }))}.${b64url(JSON.stringify(claims))}`;
  return `${data}.${b64url(signature(signAlg || header.alg, key, data))}`;
}

const now = () => Math.floor(Date.now() / 1000);

function keyPairs() {
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = (k) => k.export({ type: 'spki', format: 'pem' });
  return { rsa: { privateKey: rsa.privateKey, publicPem: pem(rsa.publicKey) }, ec: { privateKey: ec.privateKey, publicPem: pem(ec.publicKey) } };
}

module.exports = { sign, now, keyPairs, b64url };
