import t from 'tap';
import { ScryptPasswordHasher } from '../../src/adapters/admin/scrypt-password.js';
import { checkNewPassword, MIN_PASSWORD_LENGTH } from '../../src/api/http/admin/password-rules.js';

// A low cost keeps the test fast; the format and checks are the same at any cost.
const hasher = new ScryptPasswordHasher({ logN: 10, r: 8, p: 1 });

t.test('the record verifies its password and no other', async (t) => {
  const record = await hasher.hash('correct horse battery');
  t.match(record, /^scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/, 'scheme, parameters, salt, hash');
  t.notMatch(record, /correct horse/, 'the password itself is not in it');
  t.equal(await hasher.verify('correct horse battery', record), true);
  t.equal(await hasher.verify('correct horse batterY', record), false);
  t.equal(await hasher.verify('', record), false);
});

t.test('each hash has its own salt', async (t) => {
  const [a, b] = [await hasher.hash('same password'), await hasher.hash('same password')];
  t.not(a, b);
  t.equal(await hasher.verify('same password', b), true);
});

t.test('the parameters travel with the record: a costlier hasher still verifies an older record', async (t) => {
  const older = await hasher.hash('kept across upgrades');
  t.equal(await new ScryptPasswordHasher({ logN: 11, r: 8, p: 1 }).verify('kept across upgrades', older), true);
});

t.test('composed and decomposed accents are the same password', async (t) => {
  const record = await hasher.hash('caf\u00e9 au lait!');
  t.equal(await hasher.verify('cafe\u0301 au lait!', record), true);
});

t.test('a damaged or hostile record verifies nothing', async (t) => {
  const record = await hasher.hash('some password');
  const [scheme, params, salt, hash] = record.split('$') as [string, string, string, string];
  for (const [why, bad] of [
    ['not a record', 'hello'],
    ['hash cut short', `${scheme}$${params}$${salt}$${hash.slice(0, 10)}`],
    ['another scheme', `bcrypt$${params}$${salt}$${hash}`],
    ['a cost of gigabytes', `${scheme}$ln=24,r=8,p=1$${salt}$${hash}`],
    ['another salt', `${scheme}$${params}$${Buffer.from('0123456789abcdef').toString('base64')}$${hash}`],
  ] as const) {
    t.equal(await hasher.verify('some password', bad), false, why);
  }
});

t.test('a new password must be long enough and typed twice the same', async (t) => {
  const long = 'x'.repeat(MIN_PASSWORD_LENGTH);
  t.doesNotThrow(() => checkNewPassword(long, long));
  t.throws(() => checkNewPassword('short', 'short'), { code: 'invalid-argument', message: /too short: at least 10/ });
  t.throws(() => checkNewPassword(long, `${long}!`), { code: 'invalid-argument', message: /differ/ });
  t.throws(() => checkNewPassword(' '.repeat(12), ' '.repeat(12)), { code: 'invalid-argument', message: /only spaces/ });
  t.throws(() => checkNewPassword('y'.repeat(2000), 'y'.repeat(2000)), { code: 'invalid-argument', message: /too long/ });
});
