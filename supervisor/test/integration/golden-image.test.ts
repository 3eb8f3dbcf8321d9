// The test golden image itself: boots under TCG, knows its name, keeps its
// marker across a reboot on the same overlay, and leaves the golden image as it was.
import t from 'tap';
import { join } from 'node:path';
import { REPO, run } from '../helpers/env.js';

t.test('image/test-golden/check.sh passes', async (t) => {
  const { stdout } = await run('bash', [join(REPO, 'image/test-golden/check.sh')], { timeout: 300_000 });
  t.match(stdout, /test-golden check: 6 passed, 0 failed/);
});
