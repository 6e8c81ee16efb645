/**
 * `agentpm logs` through the real CLI: fixture files in the relay's format (stamped lines, rotated and
 * compressed generations) in a temp home, a follower across rotation and flush, and a real app.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, renameSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { formatStamp } from '../src/logs/line.js';
import { localTime } from '../src/logs/format.js';
import { CLI, Rig, waitFor } from './helpers/rig.js';

/** Stamps an hour ago, one ms apart, so --since 30m excludes them and --since 2h does not. */
const T0 = (Date.now() - 3_600_000) * 1000;
const at = (n: number): number => T0 + n * 1000;
const line = (n: number, text: string): string => `${formatStamp(at(n))} ${text}\n`;

function logsDir(rig: Rig): string {
  const dir = join(rig.home, 'logs');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** Two apps, each with out and err, rotated and compressed generations, and one unstamped line. */
function writeFixtures(dir: string): void {
  writeFileSync(join(dir, 'api.out.log.2.gz'), gzipSync(line(1, 'api says 1') + line(2, 'api says 2')));
  writeFileSync(join(dir, 'api.out.log.1'), line(4, 'api says 4') + 'a trace line of 4\n');
  writeFileSync(join(dir, 'api.out.log'), line(7, 'api says 7'));
  writeFileSync(join(dir, 'api.err.log.1.gz'), gzipSync(line(3, 'api warns 3')));
  writeFileSync(join(dir, 'api.err.log'), line(6, 'api warns 6'));
  writeFileSync(join(dir, 'worker.out.log'), line(5, 'worker says 5') + line(9, 'worker says 9'));
  writeFileSync(join(dir, 'worker.err.log'), line(8, 'worker fails 8'));
}

test('logs with no name shows every app in arrival order, labelled, err marked; --lines counts per app', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  writeFixtures(logsDir(rig));
  const everything = [
    'api        | api says 1',
    'api        | api says 2',
    'api/err    | api warns 3',
    'api        | api says 4',
    'api        | a trace line of 4',
    'worker     | worker says 5',
    'api/err    | api warns 6',
    'api        | api says 7',
    'worker/err | worker fails 8',
    'worker     | worker says 9',
  ].join('\n');
  assert.equal(await rig.ok(['logs', '--lines', '100']), `${everything}\n`);
  assert.equal(await rig.ok(['logs', 'all', '--lines', '100']), `${everything}\n`);
  // The last 2 of each app, merged: api 6 and 7, worker 8 and 9.
  assert.equal(await rig.ok(['logs', '--lines', '2']), 'api/err    | api warns 6\napi        | api says 7\nworker/err | worker fails 8\nworker     | worker says 9\n');
  // Reading back through .1 and .2.gz: out and err of one app merged, the last 5 of them.
  assert.equal(await rig.ok(['logs', 'api', '--lines', '5']), 'api/err | api warns 3\napi     | api says 4\napi     | a trace line of 4\napi/err | api warns 6\napi     | api says 7\n');
  assert.equal(await rig.ok(['logs', 'api', '--err']), 'api warns 3\napi warns 6\n', 'one stream of one app: the bare lines');
  assert.equal(await rig.ok(['logs', 'worker', 'api', '--out', '--lines', '1']), 'api    | api says 7\nworker | worker says 9\n');
});

test('logs --timestamps, --since and --grep filter and annotate; bad input is refused with the fix', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const dir = logsDir(rig);
  writeFixtures(dir);
  appendFileSync(join(dir, 'worker.out.log'), `${formatStamp(Date.now() * 1000)} worker says now\n`);
  assert.equal(await rig.ok(['logs', '--since', '30m']), 'worker     | worker says now\n', 'labels are as wide for every app shown');
  assert.equal((await rig.ok(['logs', '--since', '2h'])).split('\n').length - 1, 11, 'every line of the last two hours (more than the default 20 would be too)');
  assert.equal(await rig.ok(['logs', 'api', '--grep', 'warns|trace', '--lines', '2']), 'api     | a trace line of 4\napi/err | api warns 6\n');
  assert.equal(
    await rig.ok(['logs', 'api', '--out', '--timestamps', '--lines', '2']),
    `${localTime(at(4))} a trace line of 4`.replace(localTime(at(4)), '-'.padEnd(23)) + `\n${localTime(at(7))} api says 7\n`,
  );

  const unknown = await rig.cli(['logs', 'ghost']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no logs for ghost in .*\/logs \(apps with logs: api, worker\); check the name with `agentpm ls`/);
  const since = await rig.cli(['logs', '--since', 'yesterday']);
  assert.equal(since.code, 1);
  assert.match(since.stderr, /--since expects a duration back from now \(10m, 2h, 1d; at most 24d\) or a date/);
  const syntax = await rig.cli(['logs', '--grep', '(']);
  assert.equal(syntax.code, 1);
  assert.match(syntax.stderr, /--grep: Invalid regular expression.*give a JavaScript regular expression/);
  writeFileSync(join(dir, 'evil.out.log'), line(10, `${'a'.repeat(40)}b`));
  const started = Date.now();
  const catastrophic = await rig.cli(['logs', 'evil', '--grep', '(a+)+$']);
  assert.equal(catastrophic.code, 1);
  assert.match(catastrophic.stderr, /took more than 200 ms on \d+ log lines .*nothing more was printed/);
  assert.ok(Date.now() - started < 10_000, 'refused, not hung');
});

test('logs --follow goes on across rotation (the old file read to its end first) and flush, each line once', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const dir = logsDir(rig);
  const out = join(dir, 'svc.out.log');
  const err = join(dir, 'svc.err.log');
  writeFileSync(out, line(1, 'o1'));
  writeFileSync(err, line(2, `e2 ${'long '.repeat(40)}`));
  const follower = spawn(process.execPath, [CLI, 'logs', 'svc', '--follow'], { env: rig.env, stdio: ['ignore', 'pipe', 'pipe'] });
  rig.ownPids.add(follower.pid as number);
  t.after(() => follower.kill('SIGKILL'));
  let output = '';
  follower.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const seen = (text: string) => waitFor(() => output.includes(text) || undefined, text);
  await seen('e2');
  appendFileSync(out, line(3, 'o3 written just before rotation'));
  renameSync(out, `${out}.1`);
  appendFileSync(`${out}.1`, line(4, 'o4 written to the old file after its rename'));
  await seen('o4');
  writeFileSync(out, line(5, 'o5 in the new file'));
  await seen('o5');
  appendFileSync(`${out}.1`, line(6, 'o6 never shown: the writer had moved on to the new file'));
  truncateSync(err, 0); // flushed
  appendFileSync(err, line(7, 'e7'));
  appendFileSync(out, line(8, 'o8'));
  await seen('o8');
  assert.deepEqual(
    output.trim().split('\n').map((text) => /^(\S+) *\| (\S+)/.exec(text)?.slice(1).join(' ')),
    ['svc o1', 'svc/err e2', 'svc o3', 'svc o4', 'svc o5', 'svc/err e7', 'svc o8'],
  );
});

test('a real app writing out and err: every line once, each stream in order, and in arrival order once lines are stamped', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const script = join(rig.home, 'mixed.mjs');
  writeFileSync(
    script,
    "let i = 0; const timer = setInterval(() => { (i % 3 === 0 ? console.error : console.log)(`line ${i}`); i += 1; if (i === 30) clearInterval(timer); }, 5); setInterval(() => {}, 60000);",
  );
  await rig.ok(['start', script, '--name', 'mixed']);
  const printed = await waitFor(async () => {
    const text = await rig.ok(['logs', 'mixed', '--lines', '100', '--timestamps']);
    return text.includes('line 29') ? text.trim().split('\n') : undefined;
  }, 'all 30 lines');
  const parsed = printed.map((row) => /^(.{23}) (mixed(?:\/err)?) *\| line (\d+)$/.exec(row));
  assert.ok(parsed.every((match) => match !== null), printed.join('\n'));
  const numbers = parsed.map((match) => Number(match?.[3]));
  assert.deepEqual([...numbers].sort((a, b) => a - b), Array.from({ length: 30 }, (_, i) => i), 'every line exactly once');
  for (const match of parsed) assert.equal(match?.[2], Number(match?.[3]) % 3 === 0 ? 'mixed/err' : 'mixed', 'labelled with its stream');
  const ofStream = (err: boolean) => numbers.filter((n) => (n % 3 === 0) === err);
  assert.deepEqual(ofStream(true), [...ofStream(true)].sort((a, b) => a - b), 'err in its order');
  assert.deepEqual(ofStream(false), [...ofStream(false)].sort((a, b) => a - b), 'out in its order');
  // Through the log relay every line is stamped, and then out and err interleave exactly as written
  // (5 ms apart); written straight to the files they carry no stamp and each stream stays whole.
  if (parsed.every((match) => match?.[1] !== '-'.padEnd(23))) assert.deepEqual(numbers, Array.from({ length: 30 }, (_, i) => i), 'arrival order');
  assert.equal((await rig.ok(['logs', 'mixed', '--lines', '4'])).split('\n').length - 1, 4, '--lines counts out and err together');
});

test('logs --follow with no name picks up an app that starts writing later; --grep filters followed lines too', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const dir = logsDir(rig);
  writeFileSync(join(dir, 'first.out.log'), line(1, 'first keep 1') + line(2, 'first drop 2'));
  const follower = spawn(process.execPath, [CLI, 'logs', '--follow', '--grep', 'keep'], { env: rig.env, stdio: ['ignore', 'pipe', 'pipe'] });
  rig.ownPids.add(follower.pid as number);
  t.after(() => follower.kill('SIGKILL'));
  let output = '';
  follower.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await waitFor(() => output.includes('first keep 1') || undefined, 'the backlog');
  writeFileSync(join(dir, 'later.out.log'), line(3, 'later keep 3') + line(4, 'later drop 4'));
  writeFileSync(join(dir, 'later.err.log'), line(5, 'later keep 5'));
  appendFileSync(join(dir, 'first.out.log'), line(6, 'first keep 6'));
  await waitFor(() => output.includes('later/err | later keep 5') || undefined, 'the new app, found by the rescan of logs/');
  await waitFor(() => output.includes('first keep 6') || undefined, 'more of the first app');
  assert.doesNotMatch(output, /drop/);
  assert.deepEqual(output.match(/keep \d/g)?.sort(), ['keep 1', 'keep 3', 'keep 5', 'keep 6']);
});
