/** The server's own network links. */
export interface Links {
  /** Makes sure `address`/32 sits on an interface `name` of its own, with no ports, that is up (idempotent). */
  ensureDummyAddress(name: string, address: string): Promise<void>;
  /** Makes sure a bridge `name` exists with `address/prefix` on it and is up (idempotent). */
  ensureBridge(name: string, address: string, prefixLength: number): Promise<void>;
  /** The host routes IPv4 (the VMs reach whitelisted hosts through it); only once the VM table confines them. */
  enableForwarding(): Promise<void>;
}
