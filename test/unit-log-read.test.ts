/**
 * Reading the apps' log files (src/logs/): merge order by stamp, unstamped lines, --since, --grep and
 * --lines over current, rotated and compressed files, and following across rotation and truncation.
 * Real files in a temp directory.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { AgentpmError } from '../src/errors.js';
import { listLogFiles, streamFiles } from '../src/logs/files.js';
import { LogFollower } from '../src/logs/follow.js';
import { formatEntry, localTime } from '../src/logs/format.js';
import { formatStamp } from '../src/logs/line.js';
import { parseSince } from '../src/logs/since.js';
import { lastLines, lastLinesOfApp, mergeEntries, NO_FILTER, type Entry } from '../src/logs/tail.js';
import { commandPattern } from '../src/reap/pattern.js';
import { LogTail } from '../src/tui/log-tail.js';

let base: string;
let counter = 0;
before(() => {
  base = mkdtempSync(join(tmpdir(), 'agentpm-unit-logs-'));
});
after(() => rmSync(base, { recursive: true, force: true }));

function fresh(): string {
  counter += 1;
  return mkdtempSync(join(base, `case-${counter}-`));
}

const T0 = Date.UTC(2026, 10, 29, 10, 0, 0) * 1000;
/** A line as the relay writes it, `n` ms after T0. */
const stamped = (n: number, text: string): string => `${formatStamp(T0 + n * 1000)} ${text}\n`;
const texts = (entries: readonly Entry[]): string[] => entries.map((entry) => entry.text);
const grep = (source: string) => commandPattern(source, { one: 'one log line', many: 'log lines', consequence: 'nothing more was printed', advice: 'a literal word' });

test('out and err interleave by stamp; an unstamped line follows the previous stamped line of its file', async () => {
  const dir = fresh();
  writeFileSync(join(dir, 'bot.out.log'), stamped(1, 'o1') + 'o1-continued\n' + stamped(4, 'o4') + stamped(6, 'o6'));
  writeFileSync(join(dir, 'bot.err.log'), stamped(2, 'e2') + stamped(3, 'e3') + 'e3-trace\n' + stamped(5, 'e5'));
  const files = listLogFiles(dir).get('bot');
  assert.ok(files);
  const all = await lastLinesOfApp('bot', files, ['out', 'err'], 100, NO_FILTER);
  assert.deepEqual(texts(all), ['o1', 'o1-continued', 'e2', 'e3', 'e3-trace', 'o4', 'e5', 'o6']);
  assert.deepEqual(all.map((entry) => entry.stream), ['out', 'out', 'err', 'err', 'err', 'out', 'err', 'out']);
  assert.equal(all[1]?.micros, null, 'the unstamped line keeps no stamp of its own');
  // --lines counts the merged stream, not each file.
  assert.deepEqual(texts(await lastLinesOfApp('bot', files, ['out', 'err'], 3, NO_FILTER)), ['o4', 'e5', 'o6']);
  // Its stamp is found before the window: e3-trace sorts after e3, not first.
  assert.deepEqual(texts(await lastLinesOfApp('bot', files, ['out', 'err'], 4, NO_FILTER)), ['e3-trace', 'o4', 'e5', 'o6']);
  // The last line is an unstamped one whose stamped line is outside the window: it sorts at that
  // line's stamp (after o4), not before everything.
  writeFileSync(join(dir, 'late.out.log'), stamped(4, 'o4'));
  writeFileSync(join(dir, 'late.err.log'), stamped(5, 'e5') + 'e5-trace\n');
  const late = listLogFiles(dir).get('late');
  assert.ok(late);
  assert.deepEqual(texts(await lastLinesOfApp('late', late, ['out', 'err'], 1, NO_FILTER)), ['e5-trace']);
});

test('files written without the relay keep their own order: out before err, each exactly as written', async () => {
  const dir = fresh();
  writeFileSync(join(dir, 'old.out.log'), 'a\nb\n');
  writeFileSync(join(dir, 'old.err.log'), 'x\ny');
  const files = listLogFiles(dir).get('old');
  assert.ok(files);
  assert.deepEqual(texts(await lastLinesOfApp('old', files, ['out', 'err'], 10, NO_FILTER)), ['a', 'b', 'x', 'y']);
  assert.deepEqual(texts(await lastLinesOfApp('old', files, ['out', 'err'], 1, NO_FILTER)), ['y']);
});

test('apps merge by stamp too; one stream is never reordered, even where its stamps go back', () => {
  const entry = (app: string, at: number | null, text: string): Entry => ({ app, stream: 'out', micros: at, at, text });
  const merged = mergeEntries([
    [entry('a', 1, 'a1'), entry('a', 5, 'a5'), entry('a', 2, 'a2-after-clock-step')],
    [entry('b', null, 'b-undated'), entry('b', 3, 'b3'), entry('b', 6, 'b6')],
  ]);
  assert.deepEqual(texts(merged), ['b-undated', 'a1', 'b3', 'a5', 'a2-after-clock-step', 'b6']);
});

test('the last lines are read back through rotated files, plain and compressed, newest first', async () => {
  const dir = fresh();
  writeFileSync(join(dir, 'api.out.log.3.gz'), gzipSync(stamped(1, 'gen3-a') + stamped(2, 'gen3-b')));
  writeFileSync(join(dir, 'api.out.log.2.gz'), gzipSync(stamped(3, 'gen2-a') + stamped(4, 'gen2-b')));
  writeFileSync(join(dir, 'api.out.log.1'), stamped(5, 'gen1-a'));
  writeFileSync(join(dir, 'api.out.log'), stamped(6, 'current-a') + stamped(7, 'current-b'));
  const chain = listLogFiles(dir).get('api')?.out ?? [];
  assert.deepEqual(chain.map((file) => file.path.slice(dir.length + 1)), ['api.out.log', 'api.out.log.1', 'api.out.log.2.gz', 'api.out.log.3.gz']);
  const origin = { app: 'api', stream: 'out' } as const;
  assert.deepEqual(texts(await lastLines(chain, 2, NO_FILTER, origin)), ['current-a', 'current-b']);
  assert.deepEqual(texts(await lastLines(chain, 4, NO_FILTER, origin)), ['gen2-b', 'gen1-a', 'current-a', 'current-b']);
  assert.deepEqual(texts(await lastLines(chain, 100, NO_FILTER, origin)), ['gen3-a', 'gen3-b', 'gen2-a', 'gen2-b', 'gen1-a', 'current-a', 'current-b']);
  assert.deepEqual(streamFiles(join(dir, 'api.out.log')), chain, 'the TUI finds the same files from the current path');
  // The oldest generation deleted by a rotation after logs/ was listed: the others are still read.
  rmSync(join(dir, 'api.out.log.3.gz'));
  assert.deepEqual(texts(await lastLines(chain, 100, NO_FILTER, origin)), ['gen2-a', 'gen2-b', 'gen1-a', 'current-a', 'current-b']);
});

test('a large plain file and a large compressed one give exactly their last lines', async () => {
  const dir = fresh();
  const lines = Array.from({ length: 60_000 }, (_, index) => stamped(index, `line ${index} ${'x'.repeat(index % 97)}`)).join('');
  writeFileSync(join(dir, 'big.out.log.1.gz'), gzipSync(lines));
  writeFileSync(join(dir, 'big.out.log'), `${'y'.repeat(200_000)}\nlast, without a newline`);
  const chain = listLogFiles(dir).get('big')?.out ?? [];
  const origin = { app: 'big', stream: 'out' } as const;
  const tail = await lastLines(chain, 25_002, NO_FILTER, origin);
  assert.equal(tail.length, 25_002);
  assert.equal(tail[0]?.text, `line 35000 ${'x'.repeat(35000 % 97)}`, 'the compressed file is read back over several passes');
  assert.equal(tail.at(-3)?.text, `line 59999 ${'x'.repeat(59999 % 97)}`);
  assert.equal(tail.at(-2)?.text, 'y'.repeat(200_000), 'a line longer than a read block is whole');
  assert.equal(tail.at(-1)?.text, 'last, without a newline');
});

test('--since keeps lines from that moment on; unstamped lines go with the stamped line before them', async () => {
  const dir = fresh();
  writeFileSync(join(dir, 'w.out.log.1'), stamped(1, 'old') + 'old-trace\n' + stamped(10, 'recent') + 'recent-trace\n');
  writeFileSync(join(dir, 'w.out.log'), stamped(11, 'newer'));
  writeFileSync(join(dir, 'w.err.log'), 'undated\n' + stamped(12, 'err-new'));
  const files = listLogFiles(dir).get('w');
  assert.ok(files);
  const since = { since: T0 + 5000, grep: null };
  assert.deepEqual(texts(await lastLinesOfApp('w', files, ['out', 'err'], 100, since)), ['recent', 'recent-trace', 'newer', 'err-new']);
  assert.deepEqual(texts(await lastLinesOfApp('w', files, ['out', 'err'], 2, since)), ['newer', 'err-new']);
});

test('--grep matches the text without its stamp, with --lines counting matches', async () => {
  const dir = fresh();
  writeFileSync(join(dir, 'g.out.log.1'), stamped(1, 'error one') + stamped(2, 'fine'));
  writeFileSync(join(dir, 'g.out.log'), stamped(3, 'error two') + stamped(4, 'fine') + stamped(5, 'error three'));
  const files = listLogFiles(dir).get('g');
  assert.ok(files);
  assert.deepEqual(texts(await lastLinesOfApp('g', files, ['out'], 2, { since: null, grep: grep('^error') })), ['error two', 'error three']);
  assert.deepEqual(texts(await lastLinesOfApp('g', files, ['out'], 10, { since: null, grep: grep('^error') })), ['error one', 'error two', 'error three']);
  assert.deepEqual(texts(await lastLinesOfApp('g', files, ['out'], 10, { since: null, grep: grep('^2026') })), [], 'the stamp is not part of the text');
});

test('a catastrophic --grep is cut off with the reason instead of hanging', async () => {
  const dir = fresh();
  writeFileSync(join(dir, 'c.out.log'), stamped(1, `${'a'.repeat(40)}b`));
  const files = listLogFiles(dir).get('c');
  assert.ok(files);
  const started = Date.now();
  await assert.rejects(
    lastLinesOfApp('c', files, ['out'], 10, { since: null, grep: grep('(a+)+$') }),
    (error: unknown) => error instanceof AgentpmError && error.code === 'invalid-argument' && /took more than 200 ms on 1 log lines.*nothing more was printed/.test(error.message),
  );
  assert.ok(Date.now() - started < 5000);
});

test('log files are found by app, names with dots included; a plain generation wins over its compressed copy', () => {
  const dir = fresh();
  for (const name of ['my.app.out.log', 'my.app.err.log.2.gz', 'x.out.log.1', 'x.out.log.1.gz', 'notes.txt', 'x.out.log.tmp']) writeFileSync(join(dir, name), '');
  const found = listLogFiles(dir);
  assert.deepEqual([...found.keys()], ['my.app', 'x']);
  assert.deepEqual(found.get('my.app')?.err.map((file) => file.compressed), [true]);
  assert.deepEqual(found.get('x')?.out, [{ path: join(dir, 'x.out.log.1'), compressed: false }]);
  assert.deepEqual(listLogFiles(join(dir, 'missing')), new Map());
});

test('a follower survives rotation (reads the old file to its end first) and truncation, each line once', () => {
  const dir = fresh();
  const out = join(dir, 'f.out.log');
  const err = join(dir, 'f.err.log');
  writeFileSync(out, stamped(1, 'before') + 'half');
  const follower = new LogFollower();
  assert.equal(follower.add('f', 'out', out, null), stamped(1, 'before').length, 'goes on after the last complete line');
  follower.add('f', 'err', err, null);
  assert.deepEqual(texts(follower.poll()), []);
  appendFileSync(out, ` done\n${stamped(3, 'o3')}`);
  writeFileSync(err, stamped(2, 'e2'));
  assert.deepEqual(texts(follower.poll()), ['half done', 'e2', 'o3']);
  // The relay rotates: a last line into the old file, rename to .1, a new current file.
  appendFileSync(out, stamped(4, 'o4-last-of-old'));
  renameSync(out, `${out}.1`);
  appendFileSync(err, stamped(5, 'e5'));
  assert.deepEqual(texts(follower.poll()), ['o4-last-of-old', 'e5'], 'the old file is read to its end while the new one does not exist yet');
  appendFileSync(`${out}.1`, stamped(6, 'o6-late-write-to-old'));
  writeFileSync(out, stamped(7, 'o7-new-file'));
  assert.deepEqual(texts(follower.poll()), ['o6-late-write-to-old', 'o7-new-file']);
  appendFileSync(out, stamped(8, 'o8'));
  truncateSync(err, 0); // flushed
  appendFileSync(err, stamped(9, 'e9-after-flush'));
  assert.deepEqual(texts(follower.poll()), ['o8', 'e9-after-flush']);
  assert.deepEqual(texts(follower.poll()), []);
  follower.close();
});

test('--since reads durations back from now and dates in local time; anything else is refused with the forms', () => {
  const now = Date.UTC(2026, 10, 29, 12, 0, 0);
  assert.equal(parseSince('10m', now), (now - 600_000) * 1000);
  assert.equal(parseSince('2h', now), (now - 7_200_000) * 1000);
  assert.equal(parseSince('2026-11-29T10:00Z', now), Date.UTC(2026, 10, 29, 10) * 1000);
  assert.equal(parseSince('2026-11-29T10:00', now), new Date(2026, 10, 29, 10, 0).getTime() * 1000);
  assert.equal(parseSince('2026-11-29', now), new Date(2026, 10, 29).getTime() * 1000);
  assert.throws(() => parseSince('yesterday', now), (error: unknown) => error instanceof AgentpmError && error.code === 'invalid-argument' && /--since expects a duration.*got 'yesterday'/.test(error.message));
});

test('a printed line: app label padded, err marked, stamp in local time or a dash', () => {
  const layout = { labels: true, labelWidth: 7, color: false, timestamps: true };
  const micros = T0 + 123_456;
  assert.equal(formatEntry({ app: 'api', stream: 'out', micros, at: micros, text: 'hi' }, layout), `${localTime(micros)} api     | hi`);
  assert.equal(formatEntry({ app: 'api', stream: 'err', micros: null, at: micros, text: 'oops' }, layout), `${'-'.padEnd(23)} api/err | oops`);
  assert.match(localTime(micros), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.123$/);
  assert.equal(formatEntry({ app: 'api', stream: 'out', micros, at: micros, text: 'raw' }, { ...layout, labels: false, timestamps: false }), 'raw');
});

test("monit's log pane shows the same merged order, stamps stripped, then follows new lines", async () => {
  const dir = fresh();
  const files = { out: join(dir, 'm.out.log'), err: join(dir, 'm.err.log') };
  writeFileSync(files.out, stamped(1, 'o1') + stamped(3, 'o3'));
  writeFileSync(`${files.err}.1`, stamped(0, 'e0-rotated'));
  writeFileSync(files.err, stamped(2, 'e2') + 'e2-trace\n');
  const pane = new LogTail(4);
  pane.follow(files);
  for (let round = 0; round < 200 && !pane.poll(); round += 1) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.deepEqual(pane.lines, [
    { stream: 'out', text: 'o1' },
    { stream: 'err', text: 'e2' },
    { stream: 'err', text: 'e2-trace' },
    { stream: 'out', text: 'o3' },
  ]);
  appendFileSync(files.err, stamped(5, 'e5'));
  appendFileSync(files.out, stamped(4, 'o4'));
  assert.equal(pane.poll(), true);
  assert.deepEqual(pane.lines.slice(-2), [
    { stream: 'out', text: 'o4' },
    { stream: 'err', text: 'e5' },
  ]);
});
