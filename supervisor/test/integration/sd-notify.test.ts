// Under systemd (Type=notify, WatchdogSec=) the supervisor says READY=1 once
// the pool is reconciled, keeps STATUS= current and feeds the watchdog.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { makeTestRoot, testConfig, waitFor, writeConfig, TEST_PREFIX } from '../helpers/env.js';
import { SupervisorProcess } from '../helpers/supervisor-process.js';
import { removeDomains } from '../helpers/virsh.js';

const POOL = `${TEST_PREFIX}-notify`;
const root = await makeTestRoot('notify');
const socket = join(root.dir, 'notify.sock');

// The service manager's end: a datagram socket, as systemd provides (Node has none of its own).
const listener = spawn('python3', [
  '-u',
  '-c',
  `import socket,sys
s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); print("LISTENING", flush=True)
while True: print(s.recv(4096).decode().replace("\\n", "|"), flush=True)`,
  socket,
]);
const messages: string[] = [];
listener.stdout.setEncoding('utf8').on('data', (d: string) => messages.push(...d.split('\n').filter(Boolean)));
let supervisor: SupervisorProcess | undefined;

t.teardown(async () => {
  await supervisor?.stop();
  listener.kill();
  await removeDomains(`tabula-${POOL}-`);
  await root.cleanup();
});

t.test('READY=1 after reconciliation, STATUS= with pool counts, WATCHDOG=1 from the heartbeat', async (t) => {
  await waitFor('listener', async () => (messages.includes('LISTENING') ? true : undefined), 10_000, 50);
  const config = await writeConfig(root, testConfig(root, [{ name: POOL, size: 1, spicePortBase: 5970 }]));
  supervisor = new SupervisorProcess(config, { NOTIFY_SOCKET: socket, WATCHDOG_USEC: '2000000' });
  await waitFor('READY=1', async () => (messages.some((m) => m.includes('READY=1')) ? true : undefined), 60_000);
  await waitFor('clean in STATUS', async () => (messages.some((m) => m.includes(`STATUS=${POOL}: 1/1 clean`)) ? true : undefined), 120_000);
  const readyAt = messages.findIndex((m) => m.includes('READY=1'));
  t.equal(messages.filter((m) => m.includes('READY=1')).length, 1, 'READY=1 sent once');
  t.ok(messages.slice(0, readyAt).some((m) => m.startsWith('STATUS=')), 'STATUS= was sent before READY=1');
  const pings = messages.filter((m) => m.includes('WATCHDOG=1')).length;
  await new Promise((r) => setTimeout(r, 2500));
  t.ok(messages.filter((m) => m.includes('WATCHDOG=1')).length > pings, 'WATCHDOG=1 keeps coming while idle');
  await supervisor.stop();
  t.ok(messages.some((m) => m.includes('STOPPING=1')), 'STOPPING=1 on SIGTERM');
});
