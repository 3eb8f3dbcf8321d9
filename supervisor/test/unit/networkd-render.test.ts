import t from 'tap';
import { TabulaError } from '../../src/domain/errors.js';
import { renderUnmanagedLink, UNMANAGED_LINK_FILE } from '../../src/render/networkd.js';

t.test('the station interface is matched by name and left unmanaged', async (t) => {
  const unit = renderUnmanagedLink('enp2s0', 'the station LAN of /etc/tabula/supervisor.toml');
  t.match(unit, /^\[Match\]\nName=enp2s0\n\n\[Link\]\nUnmanaged=yes\n$/m);
  t.match(unit.split('\n')[0], /^# .*the station LAN of \/etc\/tabula\/supervisor.toml\.$/);
});

t.test('the file sorts before the management network unit, so it is the one networkd picks', async (t) => {
  t.ok(UNMANAGED_LINK_FILE < '80-tabula-management.network');
  t.match(UNMANAGED_LINK_FILE, /\.network$/);
});

t.test('a name that is not an interface name is refused, so nothing can add a directive', async (t) => {
  for (const bad of ['', 'en p1', 'eth0\nUnmanaged=no', 'a-name-longer-than-15', 'eth0*']) {
    t.throws(() => renderUnmanagedLink(bad, 'x'), TabulaError, JSON.stringify(bad));
  }
});

t.test('a line break in the reason cannot start a new line of the unit', async (t) => {
  const unit = renderUnmanagedLink('eth1', 'one\n[Match]\nName=*');
  t.equal(unit.split('\n').filter((l) => l.startsWith('Name=')).length, 1);
});
