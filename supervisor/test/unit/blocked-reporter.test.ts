import t from 'tap';
import { BlockedReporter } from '../../src/app/blocked-reporter.js';
import type { VmNetwork } from '../../src/ports/vm-network.js';
import { MemoryLogger } from '../fakes/memory-logger.js';

/** Only the counters matter here. */
function network(counts: () => Map<string, number>): VmNetwork {
  const no = async () => undefined;
  return { apply: no, setWhitelist: no, forgetBlocked: no, remove: no, blockedCounts: async () => counts() };
}

t.test('each report tells only what was blocked since the last one, per VM address', async (t) => {
  let now = new Map([['10.88.0.5', 3]]);
  const logger = new MemoryLogger();
  const r = new BlockedReporter(network(() => now), 'tabula_vms', logger);
  await r.report();
  now = new Map([['10.88.0.5', 3], ['10.88.0.6', 2]]);
  await r.report();
  now = new Map([['10.88.0.5', 1]]); // forgotten and reused by a new VM
  await r.report();
  t.same(
    logger.records.filter((x) => x.event === 'vm-blocked').map((x) => x.fields),
    [
      { address: '10.88.0.5', packets: 3, total: 3 },
      { address: '10.88.0.6', packets: 2, total: 2 },
      { address: '10.88.0.5', packets: 1, total: 1 },
    ],
  );
});
