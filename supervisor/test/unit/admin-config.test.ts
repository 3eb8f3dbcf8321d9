import t from 'tap';
import { parseConfig } from '../../src/config/config.js';
import { renderAdminGuard, renderAdminGuardRemoval } from '../../src/render/admin-guard.js';

const BASE = `[supervisor]
state_dir = "/srv/tabula"

[stations]
interface = "lan0"
address = "169.254.24.1"
`;

t.test('no [admin] section: no admin page', async (t) => {
  t.equal(parseConfig(BASE, 'x.toml').admin, undefined);
});

t.test('[admin] defaults: every address, HTTPS on 443, no loopback HTTP, files in STATE_DIR/admin', async (t) => {
  t.same(parseConfig(`${BASE}\n[admin]\n`, 'x.toml').admin, { listen: [], httpsPort: 443, dir: '/srv/tabula/admin', sessionIdleMs: 30 * 60_000 });
  const c = parseConfig(`${BASE}\n[admin]\nlisten = ["192.0.2.5", "2001:db8::5"]\nhttps_port = 8443\nhttp_loopback_port = 8080\nsession_idle = 10\n`, 'x.toml');
  t.same(c.admin, { listen: ['192.0.2.5', '2001:db8::5'], httpsPort: 8443, httpLoopbackPort: 8080, dir: '/srv/tabula/admin', sessionIdleMs: 600_000 });
});

t.test('refused: the station LAN address, clashing ports, unknown keys; naming line and key', async (t) => {
  t.throws(() => parseConfig(`${BASE}\n[admin]\nlisten = ["169.254.24.1"]\n`, 'x.toml'), { code: 'config-invalid', message: /x\.toml: line 9: admin\.listen: 169\.254\.24\.1 is the station LAN's address/ });
  t.throws(() => parseConfig(`${BASE}\n[admin]\nhttps_port = 8443\nhttp_loopback_port = 8443\n`, 'x.toml'), { message: /admin\.http_loopback_port: 8443 is also https_port/ });
  t.throws(() => parseConfig(`${BASE}\n[admin]\nhttps_port = 5905\n`, 'x.toml'), { message: /admin\.https_port: 5905 is also a station port/ });
  t.throws(() => parseConfig(`${BASE}\n[admin]\nlisten = ["example.org"]\n`, 'x.toml'), { message: /line 9: admin\.listen\[0\]: must be an IP address/ });
  t.throws(() => parseConfig(`${BASE}\n[admin]\npassword = "x"\n`, 'x.toml'), { message: /unknown key 'password'/ });
  t.throws(() => parseConfig(`${BASE}\n[admin]\nhttps_port = 0\n`, 'x.toml'), { message: /admin\.https_port/ });
});

t.test('the guard table: one rule dropping the admin ports on the station interface', async (t) => {
  const doc = renderAdminGuard('tabula_admin', 'lan0', [8080, 443, 443]);
  t.same(doc.nftables.slice(1, 4), [
    { add: { table: { family: 'inet', name: 'tabula_admin' } } },
    { flush: { table: { family: 'inet', name: 'tabula_admin' } } },
    { add: { chain: { family: 'inet', table: 'tabula_admin', name: 'input', type: 'filter', hook: 'input', prio: 0, policy: 'accept' } } },
  ]);
  const rule = (doc.nftables[4] as { add: { rule: { expr: unknown[] } } }).add.rule;
  t.same(rule.expr, [
    { match: { op: '==', left: { meta: { key: 'iifname' } }, right: 'lan0' } },
    { match: { op: '==', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: { set: [443, 8080] } } },
    { counter: null },
    { drop: null },
  ]);
  t.match(renderAdminGuard('t', 'lan0', [443]).nftables[4], { add: { rule: { expr: [{}, { match: { right: 443 } }] } } }, 'one port: no set');
  t.same(renderAdminGuardRemoval('t').nftables.slice(1), [{ add: { table: { family: 'inet', name: 't' } } }, { delete: { table: { family: 'inet', name: 't' } } }]);
});
