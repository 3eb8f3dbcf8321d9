import { TabulaError } from './errors.js';
import { isIpv4, ipv4Number } from './firewall.js';

/**
 * One destination the VMs may reach.
 *
 * - `{ kind: 'name', name, subdomains: false }` — written `example.org`: that
 *   name only. Its subdomains get no answer from the VMs' resolver.
 * - `{ kind: 'name', name, subdomains: true }` — written `*.example.org`: the
 *   name itself **and** every name below it (`www.example.org`,
 *   `a.b.example.org`). The bare name is included because that is what staff
 *   mean by "the site and its subdomains", and because it is how dnsmasq
 *   matches domains anyway.
 * - `{ kind: 'cidr', cidr }` — written `203.0.113.7` or `203.0.113.0/24`:
 *   those IPv4 addresses, every protocol and port. Always held in canonical
 *   `a.b.c.d/len` form.
 *
 * Names are opened through DNS (the resolver adds the addresses it hands out
 * to an nftables set); addresses directly. IPv4 only: the VM network has no
 * IPv6.
 */
export type WhitelistEntry = { readonly kind: 'name'; readonly name: string; readonly subdomains: boolean } | { readonly kind: 'cidr'; readonly cidr: string };

/**
 * Ranges no whitelist entry may touch, whatever else the caller forbids: "this
 * network", loopback, link-local (the station LAN of the seed lives there),
 * multicast and the reserved block with the broadcast address. The caller adds
 * the VM subnet, the station LAN and any other network of the server.
 */
export const ALWAYS_FORBIDDEN: readonly string[] = Object.freeze(['0.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/4', '240.0.0.0/4']);

const MAX_NAME = 253;
const MAX_LABEL = 63;
/** Letters, digits, hyphen (not first or last); underscore too, which some real host names carry. */
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?$/;

/**
 * Reads one entry as staff write it (a config line, `tabulactl whitelist add`).
 * Surrounding whitespace is ignored; anything else that is not exactly one of
 * the three forms is refused with a message saying what is wrong:
 *
 * - names: at least two labels, each 1–63 of `a-z 0-9 - _`, 253 at most in
 *   all; upper case and one trailing dot are accepted and normalized;
 *   internationalized names are turned into their `xn--` form. A wildcard is
 *   only `*.` in front of a name of at least two labels (so no `*`, `*.com`,
 *   `*.test`). No URL, port or path. A name whose last label is all digits
 *   looks like an address and is refused (it is either a mistyped address or
 *   a trick).
 * - addresses: dotted quad without leading zeros, optionally `/len` (0–32).
 *   The address must be the network's own (`203.0.113.0/24`, not
 *   `203.0.113.7/24`): a host address with a prefix is more likely a mistake
 *   than a wish to open 256 addresses, so it is refused, naming the canonical
 *   form, rather than silently widened.
 * - an address range overlapping any of `forbidden` or {@link ALWAYS_FORBIDDEN}
 *   is refused, naming the range it touches.
 */
export function parseWhitelistEntry(text: string, forbidden: readonly string[] = []): WhitelistEntry {
  if (typeof text !== 'string') throw invalid('a whitelist entry must be text');
  const trimmed = text.trim();
  if (trimmed === '') throw invalid('a whitelist entry is empty');
  const shown = JSON.stringify(trimmed);
  if (/\s/.test(trimmed)) throw invalid(`${shown} contains whitespace: give one name or address per entry`);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) throw invalid(`${shown} is a URL: give the host name alone (example.org)`);
  if (/^[0-9.]+(\/.*)?$/.test(trimmed)) return { kind: 'cidr', cidr: parseCidrEntry(trimmed, shown, forbidden) };
  if (trimmed.includes('/')) throw invalid(`${shown} is not a host name: give the name alone (example.org), without a path`);
  if (trimmed.includes(':')) {
    if (/^[0-9a-f:.]+$/i.test(trimmed) && trimmed.split(':').length > 2) throw invalid(`${shown}: IPv6 is not supported, the VM network is IPv4 only`);
    throw invalid(`${shown}: no port: an entry opens every port of its destination`);
  }
  return parseName(trimmed, shown);
}

/**
 * Parses every entry, each against `forbidden`; refuses the whole list if any
 * entry is bad, with one message naming each bad entry (so nothing is ever
 * half-applied). The result is {@link normalizeWhitelist}ed.
 */
export function parseWhitelist(texts: readonly string[], forbidden: readonly string[] = []): WhitelistEntry[] {
  const entries: WhitelistEntry[] = [];
  const problems: string[] = [];
  texts.forEach((text, i) => {
    try {
      entries.push(parseWhitelistEntry(text, forbidden));
    } catch (e) {
      problems.push(`entry ${i + 1}: ${e instanceof Error ? e.message : String(e)}`);
    }
  });
  if (problems.length > 0) throw invalid(`whitelist refused: ${problems.join('; ')}`);
  return normalizeWhitelist(entries);
}

/** The text an entry is written as; {@link parseWhitelistEntry} reads it back to the same entry. A /32 is written as the bare address. */
export function formatWhitelistEntry(entry: WhitelistEntry): string {
  if (entry.kind === 'name') return entry.subdomains ? `*.${entry.name}` : entry.name;
  return entry.cidr.endsWith('/32') ? entry.cidr.slice(0, -3) : entry.cidr;
}

/**
 * Duplicates removed and a stable order (names by their labels from the top,
 * then ranges by address), so equal whitelists render equal files. Entries one
 * covers another are both kept: staff who list `www.example.org` and
 * `*.example.org` and later remove the wildcard still mean the first. (The
 * renderers take care of the overlap.)
 */
export function normalizeWhitelist(entries: readonly WhitelistEntry[]): WhitelistEntry[] {
  const byKey = new Map<string, WhitelistEntry>();
  for (const e of entries) byKey.set(formatWhitelistEntry(e), e);
  return [...byKey.values()].sort(compareEntries);
}

export interface WhitelistDiff {
  readonly added: readonly WhitelistEntry[];
  readonly removed: readonly WhitelistEntry[];
  /**
   * True when a name entry went away. Addresses learnt through DNS are not
   * remembered per name, so closing a removed name at once means forgetting
   * every learnt address (still-listed names are learnt again at their next
   * lookup).
   */
  readonly namesRemoved: boolean;
}

/** What changed from `before` to `after` (both as parsed; order and duplicates do not matter). */
export function diffWhitelist(before: readonly WhitelistEntry[], after: readonly WhitelistEntry[]): WhitelistDiff {
  const keys = (list: readonly WhitelistEntry[]) => new Set(list.map(formatWhitelistEntry));
  const had = keys(before);
  const has = keys(after);
  const added = normalizeWhitelist(after.filter((e) => !had.has(formatWhitelistEntry(e))));
  const removed = normalizeWhitelist(before.filter((e) => !has.has(formatWhitelistEntry(e))));
  return { added, removed, namesRemoved: removed.some((e) => e.kind === 'name') };
}

/** Does the whitelist let the VMs resolve `name` (lower case, no trailing dot)? */
export function whitelistCoversName(entries: readonly WhitelistEntry[], name: string): boolean {
  return entries.some((e) => e.kind === 'name' && (e.name === name || (e.subdomains && name.endsWith(`.${e.name}`))));
}

/** The address ranges of a whitelist, canonical, without ranges inside another. */
export function whitelistCidrs(entries: readonly WhitelistEntry[]): string[] {
  return mergeCidrs(entries.flatMap((e) => (e.kind === 'cidr' ? [e.cidr] : [])));
}

/** The name entries of a whitelist. */
export function whitelistNames(entries: readonly WhitelistEntry[]): Array<Extract<WhitelistEntry, { kind: 'name' }>> {
  return normalizeWhitelist(entries).flatMap((e) => (e.kind === 'name' ? [e] : []));
}

// ---- IPv4 ranges ----------------------------------------------------------------------------

export interface Cidr {
  /** The network address as a number. */
  readonly network: number;
  readonly length: number;
}

/**
 * A canonical `a.b.c.d/len` (or a bare address, as /32), or undefined for
 * anything else, including a host address with a prefix.
 */
export function parseCidr(text: string): Cidr | undefined {
  const m = /^([0-9.]+)(?:\/(3[0-2]|[12][0-9]|[0-9]))?$/.exec(text);
  if (m === null || !isIpv4(m[1])) return undefined;
  const length = m[2] === undefined ? 32 : Number(m[2]);
  const address = ipv4Number(m[1]);
  const network = maskOf(address, length);
  return network === address ? { network, length } : undefined;
}

export function formatCidr(c: Cidr): string {
  return `${ipv4Text(c.network)}/${c.length}`;
}

/** Whether two ranges share an address. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const length = Math.min(a.length, b.length);
  return maskOf(a.network, length) === maskOf(b.network, length);
}

/** Whether `outer` holds all of `inner`. */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  return outer.length <= inner.length && maskOf(inner.network, outer.length) === outer.network;
}

/** Whether `address` (dotted quad) is in `range`. */
export function cidrHas(range: Cidr, address: string): boolean {
  return isIpv4(address) && maskOf(ipv4Number(address), range.length) === range.network;
}

/**
 * Canonical ranges (each must parse) sorted by address, without duplicates or
 * ranges inside another: what an nftables interval set accepts, which refuses
 * overlapping elements.
 */
export function mergeCidrs(texts: readonly string[]): string[] {
  const ranges = texts.map((t) => {
    const c = parseCidr(t);
    if (c === undefined) throw invalid(`${JSON.stringify(t)} is not a canonical IPv4 range`);
    return c;
  });
  ranges.sort((a, b) => a.network - b.network || a.length - b.length);
  const kept: Cidr[] = [];
  for (const r of ranges) {
    const last = kept[kept.length - 1];
    if (last !== undefined && cidrContains(last, r)) continue;
    kept.push(r);
  }
  return kept.map(formatCidr);
}

export function ipv4Text(n: number): string {
  return [24, 16, 8, 0].map((shift) => String(Math.floor(n / 2 ** shift) % 256)).join('.');
}

function maskOf(address: number, length: number): number {
  const size = 2 ** (32 - length);
  return Math.floor(address / size) * size;
}

// ---- the parts of an entry -------------------------------------------------------------------

function parseCidrEntry(text: string, shown: string, forbidden: readonly string[]): string {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const lengthText = slash < 0 ? undefined : text.slice(slash + 1);
  if (!isIpv4(address)) {
    // All digits and dots, but no address: 1.2.3, 256.1.1.1, 010.0.0.1, 1.2.3.4.5.
    throw invalid(`${shown} is not an IPv4 address (four numbers 0-255 without leading zeros)`);
  }
  if (lengthText !== undefined && !/^(3[0-2]|[12][0-9]|[0-9])$/.test(lengthText)) {
    throw invalid(`${shown}: the prefix length must be a number from 0 to 32`);
  }
  const length = lengthText === undefined ? 32 : Number(lengthText);
  const network = maskOf(ipv4Number(address), length);
  const cidr = { network, length };
  if (network !== ipv4Number(address)) {
    throw invalid(`${shown}: ${address} is not the network address of a /${length}; did you mean ${formatCidr(cidr)}?`);
  }
  for (const f of [...ALWAYS_FORBIDDEN, ...forbidden]) {
    const range = parseCidr(f);
    if (range === undefined) throw new TabulaError('internal', `forbidden range ${JSON.stringify(f)} is not a canonical IPv4 range`);
    if (cidrsOverlap(range, cidr)) {
      throw invalid(`${shown} overlaps ${formatCidr(range)}, which the VMs must never reach (loopback, link-local, the server's own networks)`);
    }
  }
  return formatCidr(cidr);
}

function parseName(text: string, shown: string): WhitelistEntry {
  let rest = text.toLowerCase();
  let subdomains = false;
  if (rest.startsWith('*.')) {
    subdomains = true;
    rest = rest.slice(2);
  }
  if (rest.includes('*')) {
    throw invalid(`${shown}: a wildcard is only "*." in front of a whole name (*.example.org)`);
  }
  if (rest.endsWith('.')) rest = rest.slice(0, -1);
  if (/[^\x21-\x7e]/.test(rest)) rest = toAscii(rest, shown);
  if (rest === '') throw invalid(`${shown} names no host`);
  if (rest.length > MAX_NAME) throw invalid(`${shown} is longer than ${MAX_NAME} characters`);
  const labels = rest.split('.');
  for (const label of labels) {
    if (label === '') throw invalid(`${shown} has an empty label (two dots in a row, or a leading dot)`);
    if (label.length > MAX_LABEL) throw invalid(`${shown} has a label longer than ${MAX_LABEL} characters`);
    if (!LABEL.test(label)) throw invalid(`${shown} has a label with a character other than a-z, 0-9, "-" and "_", or one starting or ending with "-"`);
  }
  if (labels.length < 2) {
    throw invalid(
      subdomains
        ? `${shown} would open a whole top-level domain: a wildcard needs a name of at least two labels (*.example.org)`
        : `${shown} is a single label: give a fully qualified name (example.org)`,
    );
  }
  if (/^[0-9]+$/.test(labels[labels.length - 1] as string)) {
    throw invalid(`${shown} looks like an IP address but is not one; no top-level domain is all digits`);
  }
  return { kind: 'name', name: rest, subdomains };
}

/** Internationalized names in their `xn--` form, through the WHATWG URL parser (a global, no import). */
function toAscii(name: string, shown: string): string {
  try {
    const host = new URL(`http://${name}/`).hostname;
    if (host !== '' && /^[\x21-\x7e]+$/.test(host) && !host.startsWith('[')) return host;
  } catch {
    // fall through
  }
  throw invalid(`${shown} is not a valid internationalized name`);
}

function compareEntries(a: WhitelistEntry, b: WhitelistEntry): number {
  if (a.kind === 'name' && b.kind === 'name') {
    const ka = a.name.split('.').reverse().join('.');
    const kb = b.name.split('.').reverse().join('.');
    return ka < kb ? -1 : ka > kb ? 1 : Number(a.subdomains) - Number(b.subdomains);
  }
  if (a.kind === 'cidr' && b.kind === 'cidr') {
    const ca = parseCidr(a.cidr) as Cidr;
    const cb = parseCidr(b.cidr) as Cidr;
    return ca.network - cb.network || ca.length - cb.length;
  }
  return a.kind === 'name' ? -1 : 1;
}

function invalid(message: string): TabulaError {
  return new TabulaError('invalid-argument', message);
}
