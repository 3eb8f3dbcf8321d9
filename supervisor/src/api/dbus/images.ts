import dbus from 'dbus-next';
import type { ImportedImage } from '../../app/image-import.js';
import type { ImageView } from '../../domain/golden-store.js';

// Images as a{sv}: absent values are absent keys; sizes in bytes (t).

const str = (v: string | undefined) => (v === undefined ? undefined : new dbus.Variant('s', v));
const bytes = (v: number | undefined) => (v === undefined ? undefined : new dbus.Variant('t', BigInt(Math.max(0, Math.round(v)))));

function dict(entries: Record<string, dbus.Variant | undefined>): Record<string, dbus.Variant> {
  return Object.fromEntries(Object.entries(entries).filter((e): e is [string, dbus.Variant] => e[1] !== undefined));
}

export function imageDict(v: ImageView): Record<string, dbus.Variant> {
  return dict({
    Name: str(v.name),
    Path: str(v.path),
    Stored: new dbus.Variant('b', v.stored),
    Format: str(v.format),
    VirtualSize: bytes(v.virtualSize),
    ActualSize: bytes(v.actualSize),
    Kernel: str(v.kernel),
    Initrd: str(v.initrd),
    CurrentOf: new dbus.Variant('as', [...v.currentOf]),
    PreviousOf: new dbus.Variant('as', [...v.previousOf]),
    LiveVms: new dbus.Variant('u', v.liveVms),
    Problem: str(v.problem),
    Sha256: str(v.sha256),
    Copied: bytes(v.importing?.copied),
    Total: bytes(v.importing?.total),
  });
}

export function importedDict(i: ImportedImage): Record<string, dbus.Variant> {
  return dict({
    Name: str(i.name),
    Path: str(i.path),
    Format: str(i.format),
    VirtualSize: bytes(i.virtualSize),
    Bytes: bytes(i.bytes),
    Sha256: str(i.sha256),
    Kernel: str(i.kernel),
    Initrd: str(i.initrd),
  });
}
