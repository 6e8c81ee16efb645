import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatBytes, formatDuration, parseDuration, parseSize, type Parsed } from '../src/config/units.js';

const KiB = 1024;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

function value(parsed: Parsed): number {
  assert.ok(parsed.ok, `expected a value, got an error: ${parsed.ok ? '' : parsed.message}`);
  return parsed.value;
}

function message(parsed: Parsed): string {
  assert.ok(!parsed.ok, `expected an error, got ${parsed.ok ? parsed.value : ''}`);
  return parsed.message;
}

describe('parseSize', () => {
  test("'512M' is 512 MiB", () => {
    assert.equal(value(parseSize('512M')), 512 * MiB);
  });

  test("'1.5G' is 1.5 GiB", () => {
    assert.equal(value(parseSize('1.5G')), 1.5 * GiB);
    assert.equal(value(parseSize('1.5G')), 1_610_612_736);
  });

  test('units are binary, case-insensitive, with an optional B and optional spaces', () => {
    assert.equal(value(parseSize('1k')), KiB);
    assert.equal(value(parseSize('1KB')), KiB);
    assert.equal(value(parseSize('2mb')), 2 * MiB);
    assert.equal(value(parseSize(' 3 G ')), 3 * GiB);
    assert.equal(value(parseSize('1T')), 1024 ** 4);
    assert.equal(value(parseSize('100B')), 100);
    assert.equal(value(parseSize('100')), 100);
  });

  test('a number is bytes, rounded to a whole byte', () => {
    assert.equal(value(parseSize(1024)), 1024);
    assert.equal(value(parseSize(0)), 0);
    assert.equal(value(parseSize(10.6)), 11);
  });

  test('a fractional size rounds to a whole byte', () => {
    assert.equal(value(parseSize('1.0001K')), 1024); // 1024.1024
  });

  test('bad strings are rejected with a message that quotes the input and shows examples', () => {
    for (const bad of ['', 'lots', '12X', '1.5GiB', '-1G', 'G', '1.2.3M', '1e3']) {
      const text = message(parseSize(bad));
      assert.match(text, /expected a size such as '512M', '1\.5G' or a number of bytes/);
      assert.ok(text.endsWith(`got '${bad}'`), text);
    }
  });

  test('negative and non-finite numbers are rejected', () => {
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      const text = message(parseSize(bad));
      assert.match(text, /expected a size such as '512M' or '1\.5G'/);
      assert.ok(text.endsWith(`got ${bad}`), text);
    }
  });
});

describe('parseDuration', () => {
  test("'500ms', '10s', '5m', '1h' and '1d'", () => {
    assert.equal(value(parseDuration('500ms')), 500);
    assert.equal(value(parseDuration('10s')), 10_000);
    assert.equal(value(parseDuration('5m')), 300_000);
    assert.equal(value(parseDuration('1h')), 3_600_000);
    assert.equal(value(parseDuration('1d')), 86_400_000);
  });

  test('fractions, spaces and a bare number (ms)', () => {
    assert.equal(value(parseDuration('1.5s')), 1_500);
    assert.equal(value(parseDuration(' 2 m ')), 120_000);
    assert.equal(value(parseDuration('250')), 250);
  });

  test('durations longer than a Node.js timer can wait (~24.8 days) are refused, not turned into 1 ms', () => {
    assert.equal(value(parseDuration('24d')), 24 * 86_400_000);
    assert.match(message(parseDuration('30d')), /at most 24d .* got '30d'/);
    assert.match(message(parseDuration(2 ** 31)), /at most 24d/);
  });

  test('a number is milliseconds, rounded', () => {
    assert.equal(value(parseDuration(1500)), 1500);
    assert.equal(value(parseDuration(0)), 0);
    assert.equal(value(parseDuration(2.5)), 3);
  });

  test('bad strings are rejected with a message that quotes the input and shows examples', () => {
    for (const bad of ['', 'soon', '10S', '10 sec', '-5s', '5w', 's', '1h30m']) {
      const text = message(parseDuration(bad));
      assert.match(text, /expected a duration such as '500ms', '10s', '5m', '1h' or a number of ms/);
      assert.ok(text.endsWith(`got '${bad}'`), text);
    }
  });

  test('negative and non-finite numbers are rejected', () => {
    for (const bad of [-1, Number.NaN, Number.NEGATIVE_INFINITY]) {
      const text = message(parseDuration(bad));
      assert.match(text, /expected a duration such as '10s' or a number of ms/);
      assert.ok(text.endsWith(`got ${bad}`), text);
    }
  });
});

describe('formatBytes', () => {
  test('rounds before choosing the unit', () => {
    assert.equal(formatBytes(1024 ** 2 - 1), '1.0 MB');
    assert.equal(formatBytes(99.97 * 1024), '100 KB');
    assert.equal(formatBytes(1.5 * 1024 ** 3), '1.5 GB');
  });

  test('below 1 KiB in bytes', () => {
    assert.equal(formatBytes(0), '0 B');
    assert.equal(formatBytes(1023), '1023 B');
  });

  test('one decimal below 100, none from 100 on', () => {
    assert.equal(formatBytes(1024), '1.0 KB');
    assert.equal(formatBytes(1536), '1.5 KB');
    assert.equal(formatBytes(15.5 * MiB), '15.5 MB');
    assert.equal(formatBytes(99 * GiB), '99.0 GB');
    assert.equal(formatBytes(512 * MiB), '512 MB');
    assert.equal(formatBytes(1.5 * GiB), '1.5 GB');
    assert.equal(formatBytes(150 * KiB), '150 KB');
  });

  test('picks the largest unit below the value, up to TB', () => {
    assert.equal(formatBytes(MiB), '1.0 MB');
    assert.equal(formatBytes(GiB), '1.0 GB');
    assert.equal(formatBytes(1024 ** 4), '1.0 TB');
    assert.equal(formatBytes(2 * 1024 ** 5), '2048 TB');
  });
});

describe('formatDuration', () => {
  test('seconds below a minute, rounded down', () => {
    assert.equal(formatDuration(0), '0s');
    assert.equal(formatDuration(999), '0s');
    assert.equal(formatDuration(59_999), '59s');
  });

  test('minutes below an hour', () => {
    assert.equal(formatDuration(60_000), '1m');
    assert.equal(formatDuration(3_599_999), '59m');
  });

  test('hours below two days, then days', () => {
    assert.equal(formatDuration(3_600_000), '1h');
    assert.equal(formatDuration(47 * 3_600_000), '47h');
    assert.equal(formatDuration(48 * 3_600_000), '2d');
    assert.equal(formatDuration(10 * 86_400_000 + 5), '10d');
  });
});

test('parseSize: bounded at 1 PiB, as text and as a number', () => {
  assert.deepEqual(parseSize('1024T'), { ok: true, value: 1024 ** 5 });
  for (const input of ['1025T', '99999999999999999999999T', 1024 ** 5 + 1, 1e30]) {
    const parsed = parseSize(input);
    assert.equal(parsed.ok, false, String(input));
    if (!parsed.ok) assert.match(parsed.message, /sizes are at most 1024T/);
  }
});
