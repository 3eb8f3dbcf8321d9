const FAMILY = 'inet';

/**
 * The admin page's guard on the station LAN: one table of its own with one
 * rule, "nothing from the station interface to the admin ports". The
 * station table (render/firewall.ts) guards the consoles only and accepts
 * the rest, and a station can address any of the server's addresses through
 * its LAN interface, so refusing the station address alone would not do.
 * Applied as one transaction, like the other tables.
 */
export function renderAdminGuard(table: string, lanInterface: string, ports: readonly number[]): { nftables: unknown[] } {
  const t = { family: FAMILY, name: table };
  const sorted = [...new Set(ports)].sort((a, b) => a - b);
  return {
    nftables: [
      { metainfo: { json_schema_version: 1 } },
      { add: { table: t } },
      { flush: { table: t } },
      // Policy accept: this table only ever drops what its rule names.
      { add: { chain: { family: FAMILY, table, name: 'input', type: 'filter', hook: 'input', prio: 0, policy: 'accept' } } },
      {
        add: {
          rule: {
            family: FAMILY,
            table,
            chain: 'input',
            expr: [
              { match: { op: '==', left: { meta: { key: 'iifname' } }, right: lanInterface } },
              { match: { op: '==', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: sorted.length === 1 ? sorted[0] : { set: sorted } } },
              { counter: null },
              { drop: null },
            ],
            comment: 'no admin page from the station LAN',
          },
        },
      },
    ],
  };
}

/** Removes the table; no error when it is absent. */
export function renderAdminGuardRemoval(table: string): { nftables: unknown[] } {
  const t = { family: FAMILY, name: table };
  return { nftables: [{ metainfo: { json_schema_version: 1 } }, { add: { table: t } }, { delete: { table: t } }] };
}
