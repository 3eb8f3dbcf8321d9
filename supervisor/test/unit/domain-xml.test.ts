import t from 'tap';
import { XMLParser } from 'fast-xml-parser';
import type { VmRecord } from '../../src/domain/vm.js';
import { AGENT_CHANNEL, renderDomainXml, type DomainSpec } from '../../src/render/domain-xml.js';
import { parseDomainXml } from '../../src/render/parse-domain.js';
import { METADATA_NS, parseVmRecord, renderVmRecord } from '../../src/render/vm-metadata.js';

const T0 = Date.UTC(2030, 4, 6, 7, 8, 9, 123);

const RECORD: VmRecord = { pool: 'desk', slot: 3, state: 'booting', createdAt: T0, stateSince: T0 + 1500, bootDeadline: T0 + 181_500 };

function spec(over: Partial<DomainSpec> = {}): DomainSpec {
  return {
    name: 'tabula-desk-3',
    hypervisor: 'kvm',
    memoryMiB: 2048,
    vcpus: 2,
    firmware: 'bios',
    video: 'qxl',
    overlayPath: '/var/lib/tabula/pools/desk/tabula-desk-3.qcow2',
    consoleLogPath: '/var/lib/tabula/pools/desk/tabula-desk-3.console.log',
    spice: { port: 5923, listen: '127.0.0.1', password: 's3cret' },
    record: RECORD,
    ...over,
  };
}

/** An independent reading of the XML, to check structure without trusting parseDomainXml. */
const reader = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', parseTagValue: false, parseAttributeValue: false });
type Node = Record<string, unknown>;
function domainNode(xml: string): Node {
  return (reader.parse(xml) as Node)['domain'] as Node;
}

t.test('name, record and spice port survive render then parse', async (t) => {
  t.same(parseDomainXml(renderDomainXml(spec())), { name: 'tabula-desk-3', uuid: '', active: false, agentConnected: false, spicePort: 5923, record: RECORD });
});

t.test('a record without boot deadline round-trips without one', async (t) => {
  const record: VmRecord = { pool: 'desk', slot: 0, state: 'clean', createdAt: T0, stateSince: T0 };
  const parsed = parseDomainXml(renderDomainXml(spec({ record })));
  t.same(parsed.record, record);
});

t.test('hostile values are escaped and read back exactly', async (t) => {
  const hostile = `x'"<>&amp;&lt;]]></domain><evil/>`;
  const record: VmRecord = { ...RECORD, pool: hostile };
  const xml = renderDomainXml(
    spec({ name: hostile, record, kernel: '/k', cmdline: hostile, initrd: `/i'"<>&`, overlayPath: `/o'"<>&`, spice: { port: 5923, listen: `'"<>&`, password: hostile } }),
  );
  t.notMatch(xml, /<evil/, 'nothing hostile became markup');
  const parsed = parseDomainXml(xml);
  t.equal(parsed.name, hostile);
  t.same(parsed.record, record);
  const d = domainNode(xml);
  const os = d['os'] as Node;
  t.equal(os['cmdline'], hostile);
  t.equal(os['initrd'], `/i'"<>&`);
  const graphics = (d['devices'] as Node)['graphics'] as Node;
  t.equal(graphics['@passwd'], hostile);
  t.equal(((graphics['listen'] as Node)['@address']), `'"<>&`);
  t.equal((((d['devices'] as Node)['disk'] as Node)['source'] as Node)['@file'], `/o'"<>&`);
});

t.test('every way a VM stops destroys it', async (t) => {
  const d = domainNode(renderDomainXml(spec()));
  t.equal(d['on_reboot'], 'destroy');
  t.equal(d['on_poweroff'], 'destroy');
  t.equal(d['on_crash'], 'destroy');
});

t.test('spice always has a password, on the configured address and a fixed port', async (t) => {
  const d = domainNode(renderDomainXml(spec({ spice: { port: 5999, listen: '10.0.0.1', password: 'pw' } })));
  const g = (d['devices'] as Node)['graphics'] as Node;
  t.match(g, { '@type': 'spice', '@port': '5999', '@autoport': 'no', '@passwd': 'pw' });
  t.equal((g['listen'] as Node)['@address'], '10.0.0.1');
});

t.test('the guest agent channel is there, and there is no network interface', async (t) => {
  const xml = renderDomainXml(spec());
  const devices = domainNode(xml)['devices'] as Node;
  t.equal(((devices['channel'] as Node)['target'] as Node)['@name'], AGENT_CHANNEL);
  t.equal(((devices['channel'] as Node)['target'] as Node)['@type'], 'virtio');
  t.notOk('interface' in devices);
  t.notMatch(xml, /<interface/);
});

t.test('the disk is the overlay, the serial console goes to the log file, SMBIOS carries the name', async (t) => {
  const d = domainNode(renderDomainXml(spec()));
  const devices = d['devices'] as Node;
  t.equal(((devices['disk'] as Node)['source'] as Node)['@file'], '/var/lib/tabula/pools/desk/tabula-desk-3.qcow2');
  t.equal(((devices['disk'] as Node)['driver'] as Node)['@type'], 'qcow2');
  t.equal(((devices['serial'] as Node)['source'] as Node)['@path'], '/var/lib/tabula/pools/desk/tabula-desk-3.console.log');
  const entries = ((d['sysinfo'] as Node)['system'] as Node)['entry'] as Node[];
  t.equal(entries.find((e) => e['@name'] === 'serial')?.['#text'], 'tabula-desk-3');
  t.equal(((d['os'] as Node)['smbios'] as Node)['@mode'], 'sysinfo');
});

t.test('hypervisor, firmware, video and kernel boot follow the spec', async (t) => {
  const bios = domainNode(renderDomainXml(spec()));
  t.equal(bios['@type'], 'kvm');
  t.notOk('@firmware' in (bios['os'] as Node));
  t.equal(((bios['os'] as Node)['boot'] as Node)['@dev'], 'hd');
  t.equal((((bios['devices'] as Node)['video'] as Node)['model'] as Node)['@type'], 'qxl');

  const uefi = domainNode(renderDomainXml(spec({ hypervisor: 'qemu', firmware: 'uefi', video: 'virtio', kernel: '/boot/vmlinuz', cmdline: 'quiet' })));
  t.equal(uefi['@type'], 'qemu');
  const os = uefi['os'] as Node;
  t.equal(os['@firmware'], 'efi');
  t.equal(os['kernel'], '/boot/vmlinuz');
  t.equal(os['cmdline'], 'quiet');
  t.notOk('initrd' in os, 'no empty initrd');
  t.notOk('boot' in os, 'kernel boot replaces disk boot');
  t.equal((((uefi['devices'] as Node)['video'] as Node)['model'] as Node)['@type'], 'virtio');
});

// What libvirt returns from GetXMLDesc for a running domain (trimmed).
const LIVE = `<domain type='kvm' id='5'>
  <name>tabula-desk-1</name>
  <uuid>2b3c9a4e-8f1d-4c55-9c41-0a6d0e1f2a3b</uuid>
  <metadata>
    <tabula:vm xmlns:tabula="urn:tabula:vm:1" pool="desk" slot="1" state="clean" created="2030-05-06T07:08:09.123Z" state-since="2030-05-06T07:09:00.000Z"/>
  </metadata>
  <memory unit='KiB'>2097152</memory>
  <currentMemory unit='KiB'>2097152</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <resource>
    <partition>/machine</partition>
  </resource>
  <os>
    <type arch='x86_64' machine='pc-q35-8.2'>hvm</type>
    <boot dev='hd'/>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' discard='unmap'/>
      <source file='/var/lib/tabula/pools/desk/tabula-desk-1.qcow2' index='2'/>
      <backingStore type='file' index='3'>
        <format type='qcow2'/>
        <source file='/srv/golden/desk.qcow2'/>
        <backingStore/>
      </backingStore>
      <target dev='vda' bus='virtio'/>
      <alias name='virtio-disk0'/>
    </disk>
    <controller type='virtio-serial' index='0'>
      <alias name='virtio-serial0'/>
    </controller>
    <channel type='spicevmc'>
      <target type='virtio' name='com.redhat.spice.0' state='connected'/>
      <alias name='channel1'/>
    </channel>
    <channel type='unix'>
      <source mode='bind' path='/run/libvirt/qemu/channel/5-tabula-desk-1/org.qemu.guest_agent.0'/>
      <target type='virtio' name='org.qemu.guest_agent.0' state='connected'/>
      <alias name='channel0'/>
      <address type='virtio-serial' controller='0' bus='0' port='1'/>
    </channel>
    <graphics type='vnc' port='5900' autoport='yes'/>
    <graphics type='spice' port='5921' autoport='no' listen='127.0.0.1'>
      <listen type='address' address='127.0.0.1'/>
    </graphics>
  </devices>
  <seclabel type='dynamic' model='dac' relabel='yes'>
    <label>+64055:+994</label>
  </seclabel>
</domain>
`;

t.test('live libvirt XML of a running domain is read', async (t) => {
  t.same(parseDomainXml(LIVE), {
    name: 'tabula-desk-1',
    uuid: '2b3c9a4e-8f1d-4c55-9c41-0a6d0e1f2a3b',
    active: true,
    agentConnected: true,
    spicePort: 5921,
    record: { pool: 'desk', slot: 1, state: 'clean', createdAt: Date.UTC(2030, 4, 6, 7, 8, 9, 123), stateSince: Date.UTC(2030, 4, 6, 7, 9, 0) },
  });
});

t.test('an agent channel that is not connected, or another channel connected, is not "up"', async (t) => {
  t.equal(parseDomainXml(LIVE.replace("name='org.qemu.guest_agent.0' state='connected'", "name='org.qemu.guest_agent.0' state='disconnected'")).agentConnected, false);
  const onlySpice = LIVE.replace(/<channel type='unix'>[\s\S]*?<\/channel>/, '');
  t.equal(parseDomainXml(onlySpice).agentConnected, false, 'the spice channel being connected proves nothing');
});

t.test('inactive XML (no id) is a stopped domain', async (t) => {
  const inactive = LIVE.replace(" id='5'", '').replace(" state='connected'", '').replace(" state='connected'", '');
  const d = parseDomainXml(inactive);
  t.equal(d.active, false);
  t.equal(d.agentConnected, false);
  t.equal(d.record?.state, 'clean');
  t.equal(parseDomainXml(LIVE.replace("id='5'", "id='-1'")).active, false, "id -1 is libvirt's 'not running'");
});

t.test('a spice port libvirt has not assigned yet is left out', async (t) => {
  t.notOk('spicePort' in parseDomainXml(LIVE.replace("port='5921' autoport='no'", "port='-1' autoport='yes'")));
  t.notOk('spicePort' in parseDomainXml(LIVE.replace(/<graphics type='spice'[\s\S]*?<\/graphics>/, '')));
});

t.test('metadata under a foreign namespace or element is not taken as ours', async (t) => {
  const foreignNs = LIVE.replace('xmlns:tabula="urn:tabula:vm:1"', 'xmlns:tabula="urn:someone-else:vm:1"');
  t.notOk('record' in parseDomainXml(foreignNs));
  const otherTool = LIVE.replace(/<tabula:vm [^>]*\/>/, '<other:vm xmlns:other="urn:other:1" pool="desk" slot="1" state="clean"/>');
  t.notOk('record' in parseDomainXml(otherTool));
  const otherElement = LIVE.replace('<tabula:vm ', '<tabula:pool ');
  t.notOk('record' in parseDomainXml(otherElement));
  t.notOk('record' in parseDomainXml(LIVE.replace(/<metadata>[\s\S]*?<\/metadata>/, '')), 'no metadata at all');
});

t.test('our record is found next to other tools\' metadata and under any prefix', async (t) => {
  const crowded = LIVE.replace(
    '<metadata>',
    '<metadata>\n    <libosinfo:libosinfo xmlns:libosinfo="http://libosinfo.org/xmlns/libvirt/domain/1.0"><libosinfo:os id="http://debian.org/debian/12"/></libosinfo:libosinfo>',
  );
  t.equal(parseDomainXml(crowded).record?.slot, 1);
  const otherPrefix = LIVE.replace('<tabula:vm xmlns:tabula=', '<tb:vm xmlns:tb=');
  t.equal(parseDomainXml(otherPrefix).record?.state, 'clean');
  const defaultNs = LIVE.replace('<tabula:vm xmlns:tabula=', '<vm xmlns=');
  t.equal(parseDomainXml(defaultNs).record?.pool, 'desk');
});

t.test('a record of ours with an unknown state parses as dirty', async (t) => {
  const d = parseDomainXml(LIVE.replace('state="clean"', 'state="zombie"'));
  t.equal(d.record?.state, 'dirty');
  t.equal(d.record?.slot, 1);
});

t.test('parseVmRecord: missing or bad pool/slot is no record; bad times read as 0', async (t) => {
  const ok = { pool: 'desk', slot: '2', state: 'clean', created: '2030-01-01T00:00:00.000Z', 'state-since': 'soon' };
  t.same(parseVmRecord(ok), { pool: 'desk', slot: 2, state: 'clean', createdAt: Date.UTC(2030, 0, 1), stateSince: 0 });
  t.equal(parseVmRecord({ ...ok, slot: '-1' }), undefined);
  t.equal(parseVmRecord({ ...ok, slot: '1.5' }), undefined);
  t.equal(parseVmRecord({ slot: '1', state: 'clean' }), undefined);
  t.equal(parseVmRecord({ pool: 'desk', state: 'clean' }), undefined);
});

t.test('renderVmRecord writes the namespace only when asked', async (t) => {
  t.match(renderVmRecord(RECORD, true), new RegExp(`^<tabula:vm xmlns:tabula="${METADATA_NS}" `));
  t.match(renderVmRecord(RECORD, false), /^<vm pool="desk" slot="3" state="booting" created="2030-05-06T07:08:09.123Z" state-since="2030-05-06T07:08:10.623Z" boot-deadline="2030-05-06T07:11:10.623Z"\/>$/);
});

t.test('a VM network: one virtio NIC on the VM bridge with its port isolated; none without', async (t) => {
  const xml = renderDomainXml(spec({ bridge: 'tabula-vms' }));
  t.match(xml, /<interface type='bridge'>\s*<source bridge='tabula-vms'\/>\s*<model type='virtio'\/>\s*<port isolated='yes'\/>\s*<\/interface>/);
  t.notMatch(renderDomainXml(spec()), /<interface/);
});
