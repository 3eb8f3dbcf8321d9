import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { PasswordHasher } from '../../ports/admin-credentials.js';

/** Cost parameters (N = 2^15, r = 8: 32 MiB and some 0.1 s a try on a small server). */
export interface ScryptCost {
  readonly logN: number;
  readonly r: number;
  readonly p: number;
}

export const DEFAULT_COST: ScryptCost = { logN: 15, r: 8, p: 1 };
const KEY_BYTES = 32;
const SALT_BYTES = 16;

function derive(password: string, salt: Buffer, cost: ScryptCost): Promise<Buffer> {
  const N = 2 ** cost.logN;
  const options: ScryptOptions = { N, r: cost.r, p: cost.p, maxmem: 256 * N * cost.r };
  return new Promise((resolve, reject) => scrypt(password.normalize('NFC'), salt, KEY_BYTES, options, (e, key) => (e ? reject(e) : resolve(key))));
}

/**
 * The admin password as `scrypt$ln=15,r=8,p=1$SALT$HASH` (base64): the
 * parameters travel with the hash, so a later, costlier setting still
 * verifies passwords set before it. Passwords are NFC-normalised, so the
 * same text typed on another keyboard layout matches.
 */
export class ScryptPasswordHasher implements PasswordHasher {
  readonly #cost: ScryptCost;

  constructor(cost: ScryptCost = DEFAULT_COST) {
    this.#cost = cost;
  }

  async hash(password: string): Promise<string> {
    const salt = randomBytes(SALT_BYTES);
    const key = await derive(password, salt, this.#cost);
    const { logN, r, p } = this.#cost;
    return `scrypt$ln=${logN},r=${r},p=${p}$${salt.toString('base64')}$${key.toString('base64')}`;
  }

  async verify(password: string, stored: string): Promise<boolean> {
    const parsed = parseRecord(stored);
    if (parsed === undefined) return false;
    const key = await derive(password, parsed.salt, parsed.cost);
    return key.length === parsed.key.length && timingSafeEqual(key, parsed.key);
  }
}

function parseRecord(stored: string): { cost: ScryptCost; salt: Buffer; key: Buffer } | undefined {
  const m = /^scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(stored.trim());
  if (!m) return undefined;
  const cost = { logN: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  // Bounds keep a tampered record from asking for gigabytes or hours.
  if (cost.logN < 10 || cost.logN > 17 || cost.r < 1 || cost.r > 8 || cost.p < 1 || cost.p > 4) return undefined;
  const salt = Buffer.from(m[4] as string, 'base64');
  const key = Buffer.from(m[5] as string, 'base64');
  if (salt.length < 8 || key.length !== KEY_BYTES) return undefined;
  return { cost, salt, key };
}
