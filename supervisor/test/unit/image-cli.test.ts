// tabulactl image and the golden image in a VM's libvirt record.
import t from 'tap';
import { checkOptions, parseCommandLine } from '../../src/cli/commands.js';
import { formatImages } from '../../src/cli/images.js';
import type { TabulaError } from '../../src/domain/errors.js';
import type { VmRecord } from '../../src/domain/vm.js';
import { renderDomainXml } from '../../src/render/domain-xml.js';
import { parseDomainXml } from '../../src/render/parse-domain.js';

const NOW = Date.UTC(2030, 0, 1, 12);

function checked(argv: string[]): string {
  try {
    const p = parseCommandLine(argv);
    if (p.kind === 'run') checkOptions(p, NOW);
  } catch (e) {
    t.equal((e as TabulaError).code, 'invalid-argument', `${argv.join(' ')}: a usage error (exit 2)`);
    return (e as TabulaError).message;
  }
  return 'accepted';
}

t.test('tabulactl image: its actions, their arguments and options', async (t) => {
  t.equal(checked(['image', 'list', '--json']), 'accepted');
  t.equal(checked(['image', 'import', '/srv/win.qcow2', '--name', 'win-2025', '--kernel', 'vmlinuz', '--initrd', 'initrd.img']), 'accepted');
  t.equal(checked(['image', 'use', 'desk', 'win-2025']), 'accepted');
  t.equal(checked(['image', 'rollback', 'desk']), 'accepted');
  const p = parseCommandLine(['image', 'import', 'win.qcow2', '--name', 'w']);
  t.same(p.kind === 'run' ? [p.args, p.options] : [], [['import', 'win.qcow2'], { '--name': 'w' }]);
  t.match(checked(['image']), /image takes/);
  t.match(checked(['image', 'delete', 'x']), /image: expected list, import FILE, use POOL NAME or rollback POOL, not "delete"/);
  t.match(checked(['image', 'use', 'desk']), /image use takes 2 arguments/);
  t.match(checked(['image', 'list', 'x']), /image list takes no arguments/);
  t.match(checked(['image', 'rollback', 'desk', '--name', 'x']), /image rollback: --name is for image import/);
  t.match(checked(['image', 'import', 'a.qcow2', '--initrd', 'i']), /--initrd needs --kernel/);
  const help = parseCommandLine(['image', '--help']);
  t.match(help.kind === 'help' ? help.text : '', /use POOL NAME: new clones of POOL come from NAME[\s\S]*rollback POOL/);
});

t.test('tabulactl image list: a table for people', async (t) => {
  const text = formatImages([
    { name: 'desk.qcow2', path: '/srv/desk.qcow2', stored: false, format: 'qcow2', virtualSize: 64 * 2 ** 20, actualSize: 393216, currentOf: [], previousOf: ['desk'], liveVms: 1 },
    { name: 'v2.qcow2', path: '/var/lib/tabula/images/v2.qcow2', stored: true, format: 'qcow2', virtualSize: 40 * 2 ** 30, actualSize: 3.5 * 2 ** 30, kernel: '/k', currentOf: ['desk', 'lab'], previousOf: [], liveVms: 3 },
    { name: 'big', path: '/var/lib/tabula/images/big', stored: true, currentOf: [], previousOf: [], liveVms: 0, importing: { copied: 2 ** 30, total: 4 * 2 ** 30 } },
  ]);
  t.match(text, /^IMAGE\s+FORMAT\s+ON DISK\s+VIRTUAL\s+CURRENT OF\s+PREVIOUS OF\s+LIVE VMS\s+NOTE\n/);
  t.match(text, /\ndesk\.qcow2\s+qcow2\s+384\.0 KiB\s+64\.0 MiB\s+-\s+desk\s+1\s+outside the store: \/srv\/desk\.qcow2\n/);
  t.match(text, /\nv2\.qcow2\s+qcow2\s+3\.5 GiB\s+40\.0 GiB\s+desk,lab\s+-\s+3\s+own kernel\n/);
  t.match(text, /\nbig\s+-\s+-\s+-\s+-\s+-\s+0\s+importing: 1\.0 GiB of 4\.0 GiB\n/);
  t.equal(formatImages([]), 'no golden images\n');
});

t.test("a VM's record keeps the golden image it was cloned from", async (t) => {
  const record: VmRecord = { pool: 'desk', slot: 0, state: 'clean', createdAt: NOW, stateSince: NOW, golden: `/var/lib/tabula/images/win 2025 "x" & <y>.qcow2` };
  const xml = renderDomainXml({
    name: 'tabula-desk-0',
    hypervisor: 'qemu',
    memoryMiB: 512,
    vcpus: 1,
    firmware: 'bios',
    video: 'vga',
    overlayPath: '/o.qcow2',
    consoleLogPath: '/c.log',
    spice: { port: 5920, listen: '127.0.0.1', password: 'p' },
    record,
  });
  t.same(parseDomainXml(xml).record, record);
});
