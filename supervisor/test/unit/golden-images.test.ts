import t from 'tap';
import { goldenImages } from '../../src/app/golden-images.js';
import { parseConfig } from '../../src/config/config.js';
import { FakeDisks } from '../fakes/fake-disks.js';

t.test('golden images: each pool\'s, with its facts or its problem', async (t) => {
  const disks = new FakeDisks();
  disks.putImage('/srv/good.qcow2');
  disks.putImage('/srv/odd.vmdk', { format: 'vmdk', virtualSize: 512, actualSize: 512 });
  const config = parseConfig(
    ['good', 'odd', 'gone'].map((name, i) => `[[pool]]\nname = "${name}"\ngolden_image = "/srv/${name}.${name === 'odd' ? 'vmdk' : 'qcow2'}"\nsize = 1\nspice_port_base = ${5920 + i * 10}\n`).join('\n'),
    'x.toml',
  );
  t.same(await goldenImages(config, disks), [
    { pool: 'good', path: '/srv/good.qcow2', format: 'qcow2', virtualSize: 10 * 2 ** 30, actualSize: 3 * 2 ** 30 },
    { pool: 'odd', path: '/srv/odd.vmdk', format: 'vmdk', virtualSize: 512, actualSize: 512, problem: 'golden image /srv/odd.vmdk is vmdk, not qcow2 or raw' },
    { pool: 'gone', path: '/srv/gone.qcow2', problem: 'golden image /srv/gone.qcow2 does not exist' },
  ]);
});
