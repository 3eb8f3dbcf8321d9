import type { FirewallSpec } from '../../src/domain/firewall.js';
import type { Conntrack, Firewall, TrackedFlow } from '../../src/ports/firewall.js';

/** Records every ruleset applied; the last one is "the kernel's". */
export class FakeFirewall implements Firewall {
  readonly applied: FirewallSpec[] = [];

  async apply(spec: FirewallSpec): Promise<void> {
    this.applied.push(spec);
  }

  async remove(): Promise<void> {
    this.applied.length = 0;
  }

  forwards(): FirewallSpec['forwards'] {
    return this.applied.at(-1)?.forwards ?? [];
  }
}

/** Established console connections, set by the test: "address:port" → flows. */
export class FakeConntrack implements Conntrack {
  readonly #flows = new Map<string, TrackedFlow[]>();

  connect(address: string, port: number, source: string): void {
    const key = `${address}:${port}`;
    this.#flows.set(key, [...(this.#flows.get(key) ?? []), { source, sourcePort: 40000 + (this.#flows.get(key)?.length ?? 0) }]);
  }

  disconnect(address: string, port: number): void {
    this.#flows.delete(`${address}:${port}`);
  }

  async established(address: string, port: number): Promise<TrackedFlow[]> {
    return this.#flows.get(`${address}:${port}`) ?? [];
  }

  async kill(address: string, port: number): Promise<void> {
    this.disconnect(address, port);
  }
}
