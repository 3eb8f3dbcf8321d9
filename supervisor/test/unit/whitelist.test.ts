import t, { type Test } from 'tap';
import { TabulaError } from '../../src/domain/errors.js';
import {
  ALWAYS_FORBIDDEN,
  cidrContains,
  cidrsOverlap,
  diffWhitelist,
  formatWhitelistEntry,
  mergeCidrs,
  normalizeWhitelist,
  parseCidr,
  parseWhitelist,
  parseWhitelistEntry,
  whitelistCidrs,
  whitelistCoversName,
  whitelistNames,
  type WhitelistEntry,
} from '../../src/domain/whitelist.js';

const VM_SUBNET = '10.88.0.0/24';
const STATION_LAN = '192.168.24.0/24';
const FORBIDDEN = [VM_SUBNET, STATION_LAN];

function refused(t: Test, text: string, message: RegExp, forbidden: readonly string[] = FORBIDDEN): void {
  let error: unknown;
  try {
    parseWhitelistEntry(text, forbidden);
  } catch (e) {
    error = e;
  }
  t.ok(error instanceof TabulaError && error.code === 'invalid-argument', `${JSON.stringify(text)} refused as invalid-argument`);
  t.match((error as Error | undefined)?.message ?? '', message, `${JSON.stringify(text)}: ${(error as Error | undefined)?.message}`);
}

t.test('names: exact and with subdomains, normalized', async (t) => {
  t.same(parseWhitelistEntry('example.org'), { kind: 'name', name: 'example.org', subdomains: false });
  t.same(parseWhitelistEntry('*.example.org'), { kind: 'name', name: 'example.org', subdomains: true });
  t.same(parseWhitelistEntry('  WWW.Example.ORG.  '), { kind: 'name', name: 'www.example.org', subdomains: false }, 'case, one trailing dot and outer spaces');
  t.same(parseWhitelistEntry('*.Portal.Library.example'), { kind: 'name', name: 'portal.library.example', subdomains: true });
  t.same(parseWhitelistEntry('a-b.c_d.example'), { kind: 'name', name: 'a-b.c_d.example', subdomains: false });
  t.same(parseWhitelistEntry('bücher.example'), { kind: 'name', name: 'xn--bcher-kva.example', subdomains: false }, 'IDN in its xn-- form');
  t.same(parseWhitelistEntry('1.2.3.4.example'), { kind: 'name', name: '1.2.3.4.example', subdomains: false }, 'digits are fine below the top');
  const label63 = 'a'.repeat(63);
  t.equal((parseWhitelistEntry(`${label63}.example`) as { name: string }).name, `${label63}.example`);
  const name253 = `${'a'.repeat(62)}.${'b'.repeat(62)}.${'c'.repeat(61)}.${'d'.repeat(61)}.org`;
  t.equal(name253.length, 253);
  t.equal((parseWhitelistEntry(name253) as { name: string }).name, name253);
});

t.test('addresses and ranges, canonical', async (t) => {
  t.same(parseWhitelistEntry('203.0.113.7'), { kind: 'cidr', cidr: '203.0.113.7/32' });
  t.same(parseWhitelistEntry('203.0.113.0/24', FORBIDDEN), { kind: 'cidr', cidr: '203.0.113.0/24' });
  t.same(parseWhitelistEntry('203.0.113.7/32'), { kind: 'cidr', cidr: '203.0.113.7/32' });
  t.same(parseWhitelistEntry('10.1.0.0/16', FORBIDDEN), { kind: 'cidr', cidr: '10.1.0.0/16' }, 'a private range the server does not use is allowed (an intranet portal)');
  t.same(parseWhitelistEntry('192.168.25.0/24', FORBIDDEN), { kind: 'cidr', cidr: '192.168.25.0/24' }, 'next to the station LAN is not on it');
});

t.test('refused, each with a message naming what is wrong', async (t) => {
  refused(t, '', /empty/);
  refused(t, '   ', /empty/);
  refused(t, 'example.org other.org', /whitespace/);
  refused(t, 'exa mple.org', /whitespace/);
  refused(t, '*', /names no host|wildcard/);
  refused(t, '*.', /names no host/);
  refused(t, '*.com', /whole top-level domain/);
  refused(t, '*.test', /whole top-level domain/);
  refused(t, 'com', /single label/);
  refused(t, 'localhost', /single label/);
  refused(t, '*example.org', /wildcard is only/);
  refused(t, 'www.*.example.org', /wildcard is only/);
  refused(t, '*.*.example.org', /wildcard is only/);
  refused(t, 'ex*mple.org', /wildcard is only/);
  refused(t, 'https://example.org/', /URL/);
  refused(t, 'example.org/path', /without a path/);
  refused(t, 'example.org:443', /no port/);
  refused(t, '2001:db8::1', /IPv6/);
  refused(t, 'example..org', /empty label/);
  refused(t, '.example.org', /empty label/);
  refused(t, 'example.org..', /empty label/);
  refused(t, '-bad.example.org', /starting or ending with "-"/);
  refused(t, 'bad-.example.org', /starting or ending with "-"/);
  refused(t, 'bad!.example.org', /character other than/);
  refused(t, 'a;b.example.org', /character other than/);
  refused(t, 'a"b.example.org', /character other than/);
  refused(t, `${'a'.repeat(64)}.example`, /label longer than 63/);
  refused(t, `${'a.'.repeat(126)}org`, /longer than 253/);
  // Names that look like addresses.
  refused(t, '1.2.3', /not an IPv4 address/);
  refused(t, '256.1.1.1', /not an IPv4 address/);
  refused(t, '010.0.0.1', /not an IPv4 address/);
  refused(t, '1.2.3.4.5', /not an IPv4 address/);
  refused(t, '203.0.113.7.', /not an IPv4 address/);
  refused(t, 'example.123', /looks like an IP address/);
  refused(t, '0x7f.1', /looks like an IP address/);
  // Ranges.
  refused(t, '203.0.113.7/24', /not the network address of a \/24; did you mean 203\.0\.113\.0\/24\?/);
  refused(t, '203.0.113.0/33', /prefix length/);
  refused(t, '203.0.113.0/', /prefix length/);
  refused(t, '203.0.113.0/a', /not a host name|prefix length/);
  refused(t, '0.0.0.0/0', /overlaps 0\.0\.0\.0\/8/);
  refused(t, '0.0.0.0', /overlaps 0\.0\.0\.0\/8/);
  refused(t, '127.0.0.1', /overlaps 127\.0\.0\.0\/8/);
  refused(t, '127.0.0.0/8', /overlaps 127\.0\.0\.0\/8/);
  refused(t, '169.254.24.1', /overlaps 169\.254\.0\.0\/16/);
  refused(t, '128.0.0.0/1', /overlaps 169\.254\.0\.0\/16/, []);
  refused(t, '224.0.0.1', /overlaps 224\.0\.0\.0\/4/);
  refused(t, '255.255.255.255', /overlaps 240\.0\.0\.0\/4/);
  refused(t, '10.88.0.5', /overlaps 10\.88\.0\.0\/24/); // the VM subnet itself
  refused(t, '10.0.0.0/8', /overlaps 10\.88\.0\.0\/24/); // a range holding the VM subnet
  refused(t, '192.168.24.0/25', /overlaps 192\.168\.24\.0\/24/); // part of the station LAN
});

t.test('format reads back to the same entry', async (t) => {
  const texts = ['example.org', '*.example.org', '203.0.113.7', '203.0.113.0/24', 'xn--bcher-kva.example'];
  for (const text of texts) {
    const entry = parseWhitelistEntry(text, FORBIDDEN);
    t.equal(formatWhitelistEntry(entry), text);
    t.same(parseWhitelistEntry(formatWhitelistEntry(entry), FORBIDDEN), entry);
  }
  t.equal(formatWhitelistEntry({ kind: 'cidr', cidr: '203.0.113.7/32' }), '203.0.113.7', 'a /32 is written as the address');
});

t.test('parseWhitelist: all or nothing, every bad entry named', async (t) => {
  const list = parseWhitelist(['b.example', '203.0.113.0/24', '*.a.example', 'b.example', 'A.example', '198.51.100.1'], FORBIDDEN);
  t.same(list.map(formatWhitelistEntry), ['a.example', '*.a.example', 'b.example', '198.51.100.1', '203.0.113.0/24'], 'deduplicated and ordered');
  try {
    parseWhitelist(['ok.example', '*.com', 'also.ok.example', '127.0.0.1'], FORBIDDEN);
    t.fail('should refuse');
  } catch (e) {
    t.ok(e instanceof TabulaError && e.code === 'invalid-argument');
    t.match((e as Error).message, /^whitelist refused: entry 2: "\*\.com" .*; entry 4: "127\.0\.0\.1" overlaps 127\.0\.0\.0\/8/);
  }
});

t.test('normalize keeps covered entries; the coverage helpers see through them', async (t) => {
  const list = parseWhitelist(['www.example.org', '*.example.org', '203.0.113.0/24', '203.0.113.9', 'other.example']);
  t.same(normalizeWhitelist(list).map(formatWhitelistEntry), ['other.example', '*.example.org', 'www.example.org', '203.0.113.0/24', '203.0.113.9']);
  t.same(whitelistCidrs(list), ['203.0.113.0/24'], 'a range inside another is left out of the set');
  t.same(
    whitelistNames(list).map(formatWhitelistEntry),
    ['other.example', '*.example.org', 'www.example.org'],
  );
  t.ok(whitelistCoversName(list, 'example.org'), 'a wildcard covers its bare name');
  t.ok(whitelistCoversName(list, 'a.b.example.org'));
  t.ok(whitelistCoversName(list, 'other.example'));
  t.notOk(whitelistCoversName(list, 'www.other.example'), 'an exact name covers no subdomain');
  t.notOk(whitelistCoversName(list, 'badexample.org'), 'whole labels only');
});

t.test('diff', async (t) => {
  const before = parseWhitelist(['a.example', '*.b.example', '203.0.113.0/24']);
  const after = parseWhitelist(['*.b.example', 'c.example', '203.0.113.0/24', '198.51.100.7']);
  const d = diffWhitelist(before, after);
  t.same(d.added.map(formatWhitelistEntry), ['c.example', '198.51.100.7']);
  t.same(d.removed.map(formatWhitelistEntry), ['a.example']);
  t.equal(d.namesRemoved, true);
  const onlyRanges = diffWhitelist(after, parseWhitelist(['*.b.example', 'c.example']));
  t.same(onlyRanges.removed.map(formatWhitelistEntry), ['198.51.100.7', '203.0.113.0/24']);
  t.equal(onlyRanges.namesRemoved, false, 'removing ranges needs no forgetting of learnt addresses');
  const exactToWild = diffWhitelist(parseWhitelist(['a.example']), parseWhitelist(['*.a.example']));
  t.equal(exactToWild.namesRemoved, true, 'narrowing or widening a name counts as removing the old form');
  t.same(diffWhitelist(before, [...before].reverse()), { added: [], removed: [], namesRemoved: false }, 'order does not matter');
});

t.test('CIDR helpers', async (t) => {
  t.same(parseCidr('10.0.0.0/8'), { network: 10 * 2 ** 24, length: 8 });
  t.equal(parseCidr('10.0.0.1/8'), undefined, 'host address with a prefix');
  t.equal(parseCidr('10.0.0.0/33'), undefined);
  t.equal(parseCidr('example.org'), undefined);
  const c = (s: string) => parseCidr(s) as NonNullable<ReturnType<typeof parseCidr>>;
  t.ok(cidrsOverlap(c('10.0.0.0/8'), c('10.88.0.0/24')));
  t.ok(cidrsOverlap(c('10.88.0.0/24'), c('10.0.0.0/8')));
  t.notOk(cidrsOverlap(c('10.88.0.0/24'), c('10.88.1.0/24')));
  t.ok(cidrContains(c('0.0.0.0/0'), c('203.0.113.7/32')));
  t.notOk(cidrContains(c('203.0.113.7/32'), c('203.0.113.0/24')));
  t.same(mergeCidrs(['203.0.113.128/25', '198.51.100.7/32', '203.0.113.0/24', '198.51.100.7/32', '203.0.114.0/24']), ['198.51.100.7/32', '203.0.113.0/24', '203.0.114.0/24']);
  t.throws(() => mergeCidrs(['203.0.113.7/24']), /not a canonical/);
  for (const f of ALWAYS_FORBIDDEN) t.ok(parseCidr(f), `${f} is canonical`);
});

// The type is a union: a consumer switching on kind gets the right fields.
t.test('entries are plain data', async (t) => {
  const e: WhitelistEntry = parseWhitelistEntry('*.example.org');
  t.same(JSON.parse(JSON.stringify(e)), e);
});
