import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { formatStamp, parseLine, StampClock, STAMP_LENGTH } from '../src/logs/line.js';

test('a stamp round-trips through parseLine with microseconds', () => {
  const micros = Date.UTC(2026, 10, 29, 10, 4, 37) * 1000 + 123456;
  const stamp = formatStamp(micros);
  assert.equal(stamp, '2026-11-29T10:04:37.123456Z');
  assert.equal(stamp.length, STAMP_LENGTH);
  assert.deepEqual(parseLine(`${stamp} hello world`), { micros, text: 'hello world' });
  assert.deepEqual(parseLine(`${stamp} `), { micros, text: '' });
});

test('a line without a stamp is kept whole, with no time', () => {
  assert.deepEqual(parseLine('plain output'), { micros: null, text: 'plain output' });
  assert.deepEqual(parseLine('2026-11-29T10:04:37Z short stamp'), { micros: null, text: '2026-11-29T10:04:37Z short stamp' });
});

test('the stamp clock never repeats and never goes back, even when the wall clock does', () => {
  const walls = [1000, 1000, 1000, 900, 2000];
  const clock = new StampClock(() => walls.shift() ?? 0);
  assert.deepEqual([clock.next(), clock.next(), clock.next(), clock.next(), clock.next()], [1000, 1001, 1002, 1003, 2000]);
});
