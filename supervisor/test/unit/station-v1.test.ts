import t from 'tap';
import { parseMessage } from '../../src/api/station/v1.js';

t.test('v1 messages: a word and key=value fields, nothing else', async (t) => {
  t.same(parseMessage('HELLO station=kiosk-3'), { word: 'HELLO', fields: { station: 'kiosk-3' } });
  t.same(parseMessage('REQUEST'), { word: 'REQUEST', fields: {} });
  t.same(parseMessage('REQUEST  pool=linux '), { word: 'REQUEST', fields: { pool: 'linux' } }, 'extra spaces are tolerated');
  t.same(parseMessage('READY a=1 b=x=y'), { word: 'READY', fields: { a: '1', b: 'x=y' } }, 'only the first = splits');
  t.equal(parseMessage('hello station=x'), undefined, 'words are upper case');
  t.equal(parseMessage('HELLO station'), undefined, 'a field without =');
  t.equal(parseMessage('HELLO =x'), undefined, 'a field without a key');
  t.equal(parseMessage(''), undefined, 'an empty line');
  t.equal(parseMessage('PING\u0000'), undefined, 'control characters are not a word');
});
