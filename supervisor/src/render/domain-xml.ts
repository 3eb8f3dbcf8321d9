import type { VmRecord } from '../domain/vm.js';
import { renderVmRecord } from './vm-metadata.js';
import { esc } from './xml.js';

/** The name of the virtio-serial port the qemu guest agent (or our test guest) opens when it is up. */
export const AGENT_CHANNEL = 'org.qemu.guest_agent.0';

export interface DomainSpec {
  readonly name: string;
  readonly hypervisor: 'kvm' | 'qemu';
  readonly memoryMiB: number;
  readonly vcpus: number;
  readonly firmware: 'bios' | 'uefi';
  readonly video: 'qxl' | 'vga' | 'virtio';
  readonly overlayPath: string;
  readonly consoleLogPath: string;
  readonly kernel?: string;
  readonly initrd?: string;
  readonly cmdline?: string;
  /** No password: ticketing off for good (QEMU can never be given one later). */
  readonly spice: { readonly port: number; readonly listen: string; readonly password?: string };
  /** The VM bridge its one NIC is plugged into; none: no network at all. */
  readonly bridge?: string;
  readonly record: VmRecord;
}

/**
 * A disposable pool VM. Choices that matter:
 * - The guest's name goes in SMBIOS (system serial), readable by any OS.
 * - Reboot, power-off and crash all destroy the domain: each ends the visitor's
 *   session, and a VM is never started twice.
 * - Spice gets a password unless the pool turns tickets off: a domain defined
 *   without one runs with ticketing disabled and can never be given one later.
 * - At most one NIC, on the supervisor's VM bridge, with its port isolated: a
 *   VM reaches no other VM even below IP, and only what the VM table allows.
 */
export function renderDomainXml(s: DomainSpec): string {
  const firmware = s.firmware === 'uefi' ? " firmware='efi'" : '';
  const kernelBoot = s.kernel
    ? [`<kernel>${esc(s.kernel)}</kernel>`, s.initrd ? `<initrd>${esc(s.initrd)}</initrd>` : '', s.cmdline ? `<cmdline>${esc(s.cmdline)}</cmdline>` : '']
        .filter(Boolean)
        .map((l) => `    ${l}`)
        .join('\n')
    : "    <boot dev='hd'/>";
  const video = s.video === 'qxl' ? "<model type='qxl' vram='65536' heads='1' primary='yes'/>" : `<model type='${s.video}' heads='1' primary='yes'/>`;
  return `<domain type='${s.hypervisor}'>
  <name>${esc(s.name)}</name>
  <metadata>
    ${renderVmRecord(s.record, true)}
  </metadata>
  <memory unit='MiB'>${s.memoryMiB}</memory>
  <vcpu>${s.vcpus}</vcpu>
  <sysinfo type='smbios'>
    <system>
      <entry name='manufacturer'>Tabula</entry>
      <entry name='product'>Tabula disposable desktop</entry>
      <entry name='serial'>${esc(s.name)}</entry>
    </system>
  </sysinfo>
  <os${firmware}>
    <type arch='x86_64' machine='q35'>hvm</type>
${kernelBoot}
    <smbios mode='sysinfo'/>
  </os>
  <features><acpi/><apic/></features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' discard='unmap'/>
      <source file='${esc(s.overlayPath)}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <controller type='virtio-serial' index='0'/>
    <channel type='unix'>
      <source mode='bind'/>
      <target type='virtio' name='${AGENT_CHANNEL}'/>
    </channel>
${s.bridge === undefined ? '' : `    <interface type='bridge'>
      <source bridge='${esc(s.bridge)}'/>
      <model type='virtio'/>
      <port isolated='yes'/>
    </interface>
`}    <serial type='file'>
      <source path='${esc(s.consoleLogPath)}'/>
      <target port='0'/>
    </serial>
    <graphics type='spice' port='${s.spice.port}' autoport='no'${s.spice.password === undefined ? '' : ` passwd='${esc(s.spice.password)}'`}>
      <listen type='address' address='${esc(s.spice.listen)}'/>
    </graphics>
    <video>${video}</video>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}
