/** The server's own network links. */
export interface Links {
  /** Makes sure `address`/32 sits on an interface `name` of its own, with no ports, that is up (idempotent). */
  ensureDummyAddress(name: string, address: string): Promise<void>;
}
