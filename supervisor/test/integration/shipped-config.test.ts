import t from 'tap';
import { readFile } from 'node:fs/promises';
import { parseConfig } from '../../src/config/config.js';

// The config files the project ships: the appliance's own (what the server
// image boots with) and the documented example with every key. A key renamed
// in the schema must not leave either behind.
const root = new URL('../../../', import.meta.url).pathname;

for (const [file, pools] of [
  ['appliance/rootfs/etc/tabula/supervisor.toml', ['desktop']],
  ['appliance/tabula/supervisor.toml', null],
] as const) {
  t.test(file, async (t) => {
    const config = parseConfig(await readFile(root + file, 'utf8'), file);
    t.ok(config.pools.length > 0, 'it has a pool');
    if (pools) t.same(config.pools.map((p) => p.name), pools);
  });
}

t.test('the example names the factory-reset command the appliance ships', async (t) => {
  const config = parseConfig(await readFile(root + 'appliance/tabula/supervisor.toml', 'utf8'), 'example');
  t.same(config.factoryResetCommand, ['/usr/lib/tabula/factory-reset']);
});

t.test('the appliance serves the admin page over HTTPS on every management address', async (t) => {
  const config = parseConfig(await readFile(root + 'appliance/rootfs/etc/tabula/supervisor.toml', 'utf8'), 'appliance');
  t.ok(config.admin, 'an [admin] section');
  t.same(config.admin?.listen, [], 'every address');
  t.equal(config.admin?.httpsPort, 443);
  t.equal(config.admin?.httpLoopbackPort, undefined, 'no plain HTTP');
});
