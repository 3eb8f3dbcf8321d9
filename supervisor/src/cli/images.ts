import { resolve } from 'node:path';
import type { SupervisorClient } from './client.js';
import type { ImageView } from '../domain/golden-store.js';
import { table } from './format.js';

/** An import copies the whole image before it answers: give it what a large image over a slow disk takes. */
const IMPORT_TIMEOUT_MS = 4 * 3600_000;

type Dict = Record<string, unknown>;

function row(d: Dict): ImageView {
  const opt = <T>(k: string, v: T | undefined) => (v === undefined ? {} : { [k]: v });
  const str = (k: string) => (typeof d[k] === 'string' ? (d[k] as string) : undefined);
  const num = (k: string) => (typeof d[k] === 'number' ? (d[k] as number) : undefined);
  return {
    name: str('Name') ?? '',
    path: str('Path') ?? '',
    stored: d['Stored'] === true,
    ...opt('format', str('Format')),
    ...opt('virtualSize', num('VirtualSize')),
    ...opt('actualSize', num('ActualSize')),
    ...opt('kernel', str('Kernel')),
    ...opt('initrd', str('Initrd')),
    currentOf: (d['CurrentOf'] as string[] | undefined) ?? [],
    previousOf: (d['PreviousOf'] as string[] | undefined) ?? [],
    liveVms: num('LiveVms') ?? 0,
    ...opt('problem', str('Problem')),
    ...opt('sha256', str('Sha256')),
    ...(num('Total') === undefined ? {} : { importing: { copied: num('Copied') ?? 0, total: num('Total') ?? 0 } }),
  };
}

function size(bytes: number | undefined): string {
  if (bytes === undefined) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export function formatImages(rows: readonly ImageView[]): string {
  if (rows.length === 0) return 'no golden images\n';
  const note = (r: ImageView) => {
    if (r.importing) return `importing: ${size(r.importing.copied)} of ${size(r.importing.total)}`;
    const parts = [r.stored ? '' : `outside the store: ${r.path}`, r.kernel ? 'own kernel' : '', r.problem ? `UNUSABLE: ${r.problem}` : ''];
    return parts.filter(Boolean).join('; ') || '-';
  };
  return table([
    ['IMAGE', 'FORMAT', 'ON DISK', 'VIRTUAL', 'CURRENT OF', 'PREVIOUS OF', 'LIVE VMS', 'NOTE'],
    ...rows.map((r) => [r.name, r.format ?? '-', size(r.actualSize), size(r.virtualSize), r.currentOf.join(',') || '-', r.previousOf.join(',') || '-', String(r.liveVms), note(r)]),
  ]);
}

/** tabulactl image ACTION …: what to print (json: the object for --json). */
export async function imageCommand(c: SupervisorClient, args: readonly string[], options: Readonly<Record<string, string | true>>): Promise<{ json: unknown; human: string }> {
  const [action, a = '', b = ''] = args;
  const path = (k: string) => (typeof options[k] === 'string' ? resolve(options[k] as string) : '');
  switch (action) {
    case 'import': {
      const name = typeof options['--name'] === 'string' ? options['--name'] : '';
      const [d] = (await c.root('ImportImage', 'ssss', [resolve(a), name, path('--kernel'), path('--initrd')], IMPORT_TIMEOUT_MS)) as [Dict];
      const r = { name: d['Name'], path: d['Path'], format: d['Format'], virtualSize: d['VirtualSize'], bytes: d['Bytes'], sha256: d['Sha256'], ...(d['Kernel'] ? { kernel: d['Kernel'] } : {}), ...(d['Initrd'] ? { initrd: d['Initrd'] } : {}) };
      return { json: r, human: `imported ${String(r.name)} (${String(r.format)}, ${size(r.bytes as number)}) as ${String(r.path)}\nsha256 ${String(r.sha256)}\n` };
    }
    case 'use':
      await c.pool(a, 'UseImage', 's', [b]);
      return { json: { pool: a, image: b }, human: `${a}: new clones come from ${b}; sessions under way finish on the old image\n` };
    case 'rollback':
      await c.pool(a, 'RollbackImage');
      return { json: { pool: a, rolledBack: true }, human: `${a}: back to its previous golden image\n` };
    default: {
      const [list] = (await c.root('ListImages')) as [Dict[]];
      const rows = list.map(row);
      return { json: rows, human: formatImages(rows) };
    }
  }
}
