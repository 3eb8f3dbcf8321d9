import { XMLParser } from 'fast-xml-parser';
import type { DomainSnapshot, VmRecord } from '../domain/vm.js';
import { AGENT_CHANNEL } from './domain-xml.js';
import { METADATA_NS, parseVmRecord } from './vm-metadata.js';


type Node = Record<string, unknown>;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  parseAttributeValue: false,
  parseTagValue: false,
  isArray: (name) => ['channel', 'graphics'].includes(name),
});

/** Reads what the pool needs from libvirt's domain XML (GetXMLDesc). */
export function parseDomainXml(xml: string): DomainSnapshot {
  const doc = parser.parse(xml) as Node;
  const domain = (doc['domain'] ?? {}) as Node;
  const id = domain['@id'];
  const devices = (domain['devices'] ?? {}) as Node;
  const channels = (devices['channel'] ?? []) as Node[];
  const agent = channels.map((c) => c['target'] as Node | undefined).find((t) => t?.['@name'] === AGENT_CHANNEL);
  const spice = ((devices['graphics'] ?? []) as Node[]).find((g) => g['@type'] === 'spice');
  const port = spice ? Number(spice['@port']) : NaN;
  const record = findRecord(domain['metadata']);
  return {
    name: text(domain['name']),
    uuid: text(domain['uuid']),
    active: id !== undefined && id !== '-1',
    agentConnected: agent?.['@state'] === 'connected',
    ...(Number.isInteger(port) && port > 0 ? { spicePort: port } : {}),
    ...(record ? { record } : {}),
  };
}

function findRecord(metadata: unknown): VmRecord | undefined {
  if (!metadata || typeof metadata !== 'object') return undefined;
  for (const [key, value] of Object.entries(metadata as Node)) {
    const [prefix, local] = key.includes(':') ? key.split(':', 2) : ['', key];
    if (local !== 'vm' || !value || typeof value !== 'object') continue;
    const attrs = value as Node;
    const ns = attrs[prefix ? `@xmlns:${prefix}` : '@xmlns'];
    if (ns !== METADATA_NS) continue;
    const plain: Record<string, string> = {};
    for (const [k, v] of Object.entries(attrs)) if (k.startsWith('@') && typeof v === 'string') plain[k.slice(1)] = v;
    return parseVmRecord(plain);
  }
  return undefined;
}

function text(v: unknown): string {
  return typeof v === 'string' ? v : v === undefined ? '' : String(v);
}
