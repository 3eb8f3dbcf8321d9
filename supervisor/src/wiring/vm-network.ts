import type { JournalLogger } from '../adapters/journal-logger.js';
import { FileWhitelistStore } from '../adapters/file-whitelist-store.js';
import { IpLinks } from '../adapters/ip-links.js';
import { NftVmNetwork } from '../adapters/nft-vm-network.js';
import type { SystemClock } from '../adapters/system-clock.js';
import { VmDnsService } from '../adapters/vm-dns-service.js';
import { BlockedReporter } from '../app/blocked-reporter.js';
import { WhitelistKeeper } from '../app/whitelist-keeper.js';
import type { Config } from '../config/config.js';
import { asTabulaError } from '../domain/errors.js';

// The VM network's part of the composition root.

/**
 * The VMs' network: the bridge, the VM table (applied before the host routes
 * anything, so VMs are never unconfined), and the resolver of whitelisted
 * names. A failure leaves VMs without a way out, never with an open one.
 */
export async function startVmNetwork(config: Config, logger: JournalLogger): Promise<{ keeper: WhitelistKeeper; dns: VmDnsService; blocked: BlockedReporter } | undefined> {
  const net = config.vmNetwork;
  if (!net) return undefined;
  const links = new IpLinks();
  const dns = new VmDnsService({ dir: `${config.stateDir}/vm-network`, logger });
  const network = new NftVmNetwork();
  const keeper = new WhitelistKeeper(net, { network, resolver: dns, store: new FileWhitelistStore(`${config.stateDir}/whitelist.json`), logger });
  try {
    await links.ensureBridge(net.bridge, net.serverAddress, net.prefixLength);
    const entries = await keeper.load();
    await network.apply(keeper.spec());
    await links.enableForwarding();
    await dns.apply({ bridge: net.bridge, subnet: net.subnet, serverAddress: net.serverAddress, leaseSeconds: net.leaseSeconds, upstreams: net.upstreams, table: net.table, dnsTtl: net.dnsTtl }, entries);
    logger.notice('vm-network-ready', { bridge: net.bridge, subnet: net.subnet, whitelist: keeper.list().length });
  } catch (e) {
    const err = asTabulaError(e);
    logger.err('vm-network-failed', { code: err.code, error: err.message });
  }
  return { keeper, dns, blocked: new BlockedReporter(network, net.table, logger) };
}

/** How often the VMs' blocked attempts are summed up in the journal. */
const BLOCKED_REPORT_MS = 15_000;

export async function reportBlocked(reporter: BlockedReporter, clock: SystemClock, stop: AbortSignal): Promise<void> {
  while (!stop.aborted) {
    await clock.sleep(BLOCKED_REPORT_MS, stop);
    if (!stop.aborted) await reporter.report();
  }
}
