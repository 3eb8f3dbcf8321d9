// docs/dbus/org.tabula.Supervisor1.xml is the documented contract: the running
// supervisor must export exactly its interfaces, members and signatures.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { makeTestRoot, REPO, run, TABULACTL, testConfig, waitFor, writeConfig, TEST_PREFIX } from '../helpers/env.js';
import { SupervisorProcess, tabulactl } from '../helpers/supervisor-process.js';
import { removeDomains } from '../helpers/virsh.js';

const POOL = `${TEST_PREFIX}-api`;
const root = await makeTestRoot('api');
const supervisor = new SupervisorProcess(await writeConfig(root, testConfig(root, [{ name: POOL, size: 1, spicePortBase: 5975 }])));

t.teardown(async () => {
  await supervisor.stop();
  await removeDomains(`tabula-${POOL}-`);
  await root.cleanup();
});

/** "iface member kind signature" for every member of the org.tabula interfaces in an introspection XML. */
function members(xml: string): string[] {
  const out: string[] = [];
  for (const iface of xml.matchAll(/<interface name="(org\.tabula[^"]*)">([\s\S]*?)<\/interface>/g)) {
    const [, name, body] = iface as unknown as [string, string, string];
    for (const p of body.matchAll(/<property name="(\w+)" type="([^"]+)" access="(\w+)"/g)) out.push(`${name} property ${p[1]} ${p[2]} ${p[3]}`);
    for (const m of body.matchAll(/<method name="(\w+)"\s*(?:\/>|>([\s\S]*?)<\/method>)/g)) {
      const args = [...(m[2] ?? '').matchAll(/<arg\b([^>]*)>/g)].map((a) => {
        const attr = (n: string) => new RegExp(`${n}="([^"]*)"`).exec(a[1] ?? '')?.[1] ?? '';
        return `${attr('direction') || 'in'}:${attr('type')}`;
      });
      out.push(`${name} method ${m[1]} (${args.join(',')})`);
    }
    for (const s of body.matchAll(/<signal name="(\w+)"/g)) out.push(`${name} signal ${s[1]}`);
  }
  return out.sort();
}

async function introspect(path: string): Promise<string> {
  const { stdout } = await run('busctl', ['--system', '--xml-interface', 'introspect', 'org.tabula.Supervisor1', path]);
  return stdout;
}

t.test('the exported interfaces match the documented contract', async (t) => {
  await supervisor.waitForLine(/event=supervisor-ready/);
  const vmPath = `/org/tabula/Supervisor1/vm/tabula_2d${POOL.replace(/-/g, '_2d')}_2d0`;
  await waitFor('VM object', async () => ((await introspect(vmPath).catch(() => '')).includes('org.tabula.Supervisor1.Vm') ? true : undefined), 60_000);
  const live = [
    ...members(await introspect('/org/tabula/Supervisor1')),
    ...members(await introspect(`/org/tabula/Supervisor1/pool/${POOL.replace(/-/g, '_2d')}`)),
    ...members(await introspect(vmPath)),
  ].sort();
  const documented = members(await readFile(join(REPO, 'docs/dbus/org.tabula.Supervisor1.xml'), 'utf8'));
  t.ok(documented.length > 20, 'the contract was parsed');
  t.same(live, documented);
});

t.test('the bus policy: root acts, group "tabula" only reads, anyone else is refused', async (t) => {
  const { stdout } = await run('getent', ['group', 'tabula']);
  const gid = stdout.split(':')[2] as string;
  const as = (groups: string[], ...args: string[]) =>
    run('setpriv', ['--reuid=65534', '--regid=65534', ...groups, process.execPath, TABULACTL, ...args]).then(
      (r) => ({ code: 0, out: r.stdout + r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
    );
  const reader = await as([`--groups=${gid}`], 'status');
  t.equal(reader.code, 0, 'a member of "tabula" reads the status');
  t.match(reader.out, POOL);
  const act = await as([`--groups=${gid}`], 'recycle', `tabula-${POOL}-0`);
  t.equal(act.code, 5, 'but may not recycle (exit 5)');
  t.match(act.out, /permission denied/);
  const stranger = await as(['--clear-groups'], 'status');
  t.equal(stranger.code, 5, 'anyone else may not even read');
  const root = await tabulactl('status');
  t.equal(root.code, 0, 'root reads');
});
