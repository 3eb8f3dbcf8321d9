// The metrics endpoint over real HTTP on loopback: no libvirt needed.
import { createServer } from 'node:net';
import t from 'tap';
import { HttpMetricsServer } from '../../src/adapters/http-metrics-server.js';

const HOST = '127.0.0.1';
const BODY = '# HELP up_pools Pools.\n# TYPE up_pools gauge\nup_pools 2\n';

t.test('GET /metrics serves the rendered text with the 0.0.4 content type, fresh each scrape', async (t) => {
  let n = 0;
  const server = await new HttpMetricsServer().listen(HOST, 0, () => `${BODY}scrapes ${++n}\n`);
  t.teardown(() => server.dispose());
  t.ok(server.port > 0, 'port 0 gives the actual port');
  const res = await fetch(`http://${HOST}:${server.port}/metrics`);
  t.equal(res.status, 200);
  t.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  t.equal(await res.text(), `${BODY}scrapes 1\n`);
  t.equal(await (await fetch(`http://${HOST}:${server.port}/metrics?x=1`)).text(), `${BODY}scrapes 2\n`, 'a query string is ignored');
  const head = await fetch(`http://${HOST}:${server.port}/metrics`, { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(await head.text(), '', 'HEAD has no body');
});

t.test('/ points to /metrics; other paths are 404, other methods 405', async (t) => {
  const server = await new HttpMetricsServer().listen(HOST, 0, () => BODY);
  t.teardown(() => server.dispose());
  const base = `http://${HOST}:${server.port}`;
  const root = await fetch(`${base}/`);
  t.equal(root.status, 200);
  t.match(await root.text(), /\/metrics/);
  const missing = await fetch(`${base}/nope`);
  t.equal(missing.status, 404);
  await missing.text();
  const post = await fetch(`${base}/metrics`, { method: 'POST', body: 'x' });
  t.equal(post.status, 405);
  t.equal(post.headers.get('allow'), 'GET, HEAD');
  await post.text();
});

t.test('a render that throws gives 500 with one line, and the server keeps serving', async (t) => {
  let fail = true;
  const server = await new HttpMetricsServer().listen(HOST, 0, () => {
    if (fail) throw new Error('collector broke\nsecond line');
    return BODY;
  });
  t.teardown(() => server.dispose());
  const res = await fetch(`http://${HOST}:${server.port}/metrics`);
  t.equal(res.status, 500);
  t.equal(await res.text(), 'cannot render metrics: collector broke\n');
  fail = false;
  t.equal(await (await fetch(`http://${HOST}:${server.port}/metrics`)).text(), BODY);
});

t.test('dispose closes kept-alive connections and frees the port', async (t) => {
  const server = await new HttpMetricsServer().listen(HOST, 0, () => BODY);
  await (await fetch(`http://${HOST}:${server.port}/metrics`)).text(); // leaves a keep-alive connection open
  server.dispose();
  await t.rejects(fetch(`http://${HOST}:${server.port}/metrics`), 'no longer answers');
  const again = await new HttpMetricsServer().listen(HOST, server.port, () => BODY);
  t.equal(again.port, server.port, 'the same port can be taken again');
  again.dispose();
});

t.test('listen errors name the address', async (t) => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, HOST, resolve));
  t.teardown(() => blocker.close());
  const taken = (blocker.address() as { port: number }).port;
  await t.rejects(new HttpMetricsServer().listen(HOST, taken, () => BODY), { name: 'TabulaError', code: 'internal', retryable: true, message: new RegExp(`${HOST}:${taken}.*EADDRINUSE`) });
  // 192.0.2.0/24 is TEST-NET-1: never an address of this machine.
  await t.rejects(new HttpMetricsServer().listen('192.0.2.1', 0, () => BODY), { code: 'invalid-argument', message: /192\.0\.2\.1:0/ });
  await t.rejects(new HttpMetricsServer().listen(HOST, 70000, () => BODY), { code: 'invalid-argument', message: /127\.0\.0\.1:70000/ });
});
