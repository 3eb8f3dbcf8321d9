import { execFile } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { chmod, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TabulaError } from '../../domain/errors.js';
import { ensurePrivateDir, readPrivate } from './private-files.js';

const run = promisify(execFile);
const OPENSSL_TIMEOUT_MS = 60_000;
/** Ten years: nobody renews a self-signed appliance certificate, and browsers ask once per exception anyway. */
const DAYS = 3650;

export interface Certificate {
  readonly cert: string;
  readonly key: string;
  /** SHA-256 fingerprint, for staff to compare with what the browser shows. */
  readonly fingerprint: string;
  /** Made now (rather than found from an earlier start). */
  readonly created: boolean;
}

/**
 * The admin page's TLS certificate in DIR (tls.crt, tls.key 0600): the one
 * made on the first start is used on every later one; a new one is made only
 * when there is none, or what is there is unusable (damaged, expired, key and
 * certificate apart).
 */
export async function ensureCertificate(dir: string, names: { readonly dns: readonly string[]; readonly ips: readonly string[] }, now = Date.now()): Promise<Certificate> {
  const crtPath = join(dir, 'tls.crt');
  const keyPath = join(dir, 'tls.key');
  await ensurePrivateDir(dir);
  const found = usable(await readPrivate(crtPath), await readPrivate(keyPath), now);
  if (found) return { ...found, created: false };

  const san = [...names.dns.map((n) => `DNS:${n}`), ...names.ips.map((a) => `IP:${a}`)].join(',');
  const [tmpCrt, tmpKey] = [`${crtPath}.new`, `${keyPath}.new`];
  try {
    // prime256v1: every browser takes it, and making it is instant (RSA keys take a while on a small CPU).
    await run(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', tmpKey, '-out', tmpCrt, '-days', String(DAYS), '-subj', `/O=Tabula/CN=${names.dns[0] ?? 'tabula'}`, ...(san ? ['-addext', `subjectAltName=${san}`] : [])],
      { timeout: OPENSSL_TIMEOUT_MS },
    );
    await chmod(tmpKey, 0o600);
    await chmod(tmpCrt, 0o644);
    // The key first: a crash between the renames leaves a pair that does not match, which the next start replaces.
    await rename(tmpKey, keyPath);
    await rename(tmpCrt, crtPath);
  } catch (e) {
    await rm(tmpKey, { force: true });
    await rm(tmpCrt, { force: true });
    const stderr = (e as { stderr?: string }).stderr?.trim().split('\n').at(-1);
    throw new TabulaError('command-failed', `cannot make the admin page's certificate with openssl: ${stderr || (e as Error).message}`, { cause: e });
  }
  const made = usable(await readPrivate(crtPath), await readPrivate(keyPath), now);
  if (!made) throw new TabulaError('internal', `openssl made a certificate in ${dir} that does not match its key`);
  return { ...made, created: true };
}

function usable(cert: string | undefined, key: string | undefined, now: number): { cert: string; key: string; fingerprint: string } | undefined {
  if (cert === undefined || key === undefined) return undefined;
  try {
    const x509 = new X509Certificate(cert);
    if (Date.parse(x509.validTo) <= now || !x509.checkPrivateKey(createPrivateKey(key))) return undefined;
    return { cert, key, fingerprint: x509.fingerprint256 };
  } catch {
    return undefined;
  }
}
