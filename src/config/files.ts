/**
 * Files a config refers to (TLS certificates and keys, CA bundles, JWT keys):
 * read relative to the config file's directory, checked, stored as text.
 * A value that itself starts with `-----BEGIN` is taken as inline PEM (handy
 * for configs built in memory). File contents are never echoed in messages.
 */
import { X509Certificate, createPrivateKey, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ValueError, formatValue } from './units.js';
import type { Parse } from './schema-check.js';

/** Text loaded from a file named in a config. */
export interface LoadedText {
  /** Absolute path it was read from, or `"(inline)"`. */
  readonly file: string;
  readonly text: string;
}

export interface LoadedPublicKey extends LoadedText {
  /** `spki`: a `-----BEGIN PUBLIC KEY-----` PEM; `jwks`: a JSON Web Key Set. */
  readonly format: 'spki' | 'jwks';
}

/** "ENOENT: no such file or directory, open '/x'" → "ENOENT: no such file or directory". */
export function osReason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const message = typeof e?.message === 'string' ? e.message.replace(/, \w+ '.*'$/s, '') : String(err);
  return e?.code && !message.startsWith(e.code) ? `${e.code}: ${message}` : message;
}

/** Read a text file named by a config value (a non-empty path, relative to `baseDir`). */
export function readText(baseDir: string, value: unknown): LoadedText {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new ValueError(`expected a file path, got ${formatValue(value)}`);
  }
  if (value.trimStart().startsWith('-----BEGIN')) return { file: '(inline)', text: value };
  const file = resolve(baseDir, value);
  try {
    return { file, text: readFileSync(file, 'utf8') };
  } catch (err) {
    throw new ValueError(`cannot read ${file} (${osReason(err)})`);
  }
}

const where = (t: LoadedText) => (t.file === '(inline)' ? 'inline value' : t.file);

function requireMarker(t: LoadedText, marker: string, what: string): void {
  if (!t.text.includes(`-----BEGIN ${marker}-----`)) {
    throw new ValueError(`expected ${what} (a PEM file with "-----BEGIN ${marker}-----"), got ${where(t)}`);
  }
}

/** A CA bundle: one or more PEM certificates. */
export function caBundle(baseDir: string): Parse<LoadedText> {
  return (v) => {
    const t = readText(baseDir, v);
    requireMarker(t, 'CERTIFICATE', 'CA certificates');
    return t;
  };
}

/** A server certificate (chain) in PEM. */
export function certificate(baseDir: string): Parse<LoadedText> {
  return (v) => {
    const t = readText(baseDir, v);
    requireMarker(t, 'CERTIFICATE', 'a certificate');
    try {
      new X509Certificate(t.text);
    } catch {
      throw new ValueError(`expected a certificate, but ${where(t)} does not parse as one`);
    }
    return t;
  };
}

/** Parse a private key; `undefined` when it does not parse. */
export function privateKeyObject(pem: string): KeyObject | undefined {
  try {
    return createPrivateKey(pem);
  } catch {
    return undefined;
  }
}

/** Whether the (first) certificate in `certPem` is for the private key `keyPem`. */
export function certMatchesKey(certPem: string, keyPem: string): boolean {
  const key = privateKeyObject(keyPem);
  try {
    return key !== undefined && new X509Certificate(certPem).checkPrivateKey(key);
  } catch {
    return false;
  }
}

/** A TLS private key in PEM (any type Node reads). */
export function tlsKey(baseDir: string): Parse<LoadedText> {
  return (v) => {
    const t = readText(baseDir, v);
    if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(t.text) || !privateKeyObject(t.text)) {
      throw new ValueError(`expected an unencrypted PEM private key, got ${where(t)}`);
    }
    return t;
  };
}

/** Whether a key can sign/verify EdDSA (Ed25519) or ES256 (EC P-256) tokens. */
export function isTokenKeyType(key: KeyObject): boolean {
  const type = key.asymmetricKeyType;
  return type === 'ed25519' || (type === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1');
}

/** A token verification key: SPKI PEM or JWKS JSON, Ed25519 or P-256. */
export function publicKey(baseDir: string): Parse<LoadedPublicKey> {
  return (v) => {
    const t = readText(baseDir, v);
    if (t.text.trimStart().startsWith('{')) {
      let jwks: unknown;
      try {
        jwks = JSON.parse(t.text);
      } catch {
        jwks = undefined;
      }
      const keys = (jwks as { keys?: unknown } | undefined)?.keys;
      if (!Array.isArray(keys) || keys.length === 0 || !keys.every((k) => typeof (k as { kty?: unknown })?.kty === 'string')) {
        throw new ValueError(`expected a JWKS JSON file ({"keys": [...]}), got ${where(t)}`);
      }
      const usable = keys.some((k) => {
        try {
          return isTokenKeyType(createPublicKey({ key: k as JsonWebKey, format: 'jwk' }));
        } catch {
          return false;
        }
      });
      if (!usable) throw new ValueError(`expected a JWKS with an Ed25519 or P-256 key (for EdDSA or ES256), got none in ${where(t)}`);
      return { ...t, format: 'jwks' };
    }
    requireMarker(t, 'PUBLIC KEY', 'an Ed25519 or P-256 public key or a JWKS JSON file');
    let key: KeyObject;
    try {
      key = createPublicKey(t.text);
    } catch {
      throw new ValueError(`expected an Ed25519 or P-256 public key, but ${where(t)} does not parse as one`);
    }
    if (!isTokenKeyType(key)) {
      throw new ValueError(`expected an Ed25519 or P-256 public key (for EdDSA or ES256), got a ${key.asymmetricKeyType} key in ${where(t)}`);
    }
    return { ...t, format: 'spki' };
  };
}

/** A token signing key: unencrypted PKCS8 PEM, Ed25519 or P-256. */
export function signingKey(baseDir: string): Parse<LoadedText> {
  return (v) => {
    const t = readText(baseDir, v);
    requireMarker(t, 'PRIVATE KEY', 'an Ed25519 or P-256 private key in PKCS8');
    const key = privateKeyObject(t.text);
    if (!key || !isTokenKeyType(key)) {
      throw new ValueError(`expected an unencrypted Ed25519 or P-256 private key in PKCS8, got ${where(t)}`);
    }
    return t;
  };
}
