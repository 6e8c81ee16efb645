/**
 * daemon.log stays bounded and loses no line: the copy-and-truncate of daemon-log.ts run by a real
 * process writing through its stdout, stderr and appends (as the daemon does), and the real daemon
 * rotating its log under AGENTPM_DAEMON_LOG_MAX.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { daemonLogLimits, DEFAULT_DAEMON_LOG_LIMITS } from '../src/daemon/daemon-log.js';
import { ROOT, Rig, waitFor } from './helpers/rig.js';

test('a writer rotating its own log through stdout, stderr and appends loses and doubles no line, and each file stays bounded', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'agentpm-daemon-log-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const log = join(dir, 'daemon.log');
  const maxBytes = 16 * 1024;
  const total = 60_000;
  const script = join(dir, 'writer.mjs');
  // Like the daemon: synchronous writes in bursts across many turns of the event loop, a check on a timer.
  writeFileSync(
    script,
    `import { DaemonLogBound } from ${JSON.stringify(join(ROOT, 'dist/daemon/daemon-log.js'))};
import { appendOwnedFile } from ${JSON.stringify(join(ROOT, 'dist/safe-files.js'))};
const [path, total] = [process.argv[2], Number(process.argv[3])];
const bound = new DaemonLogBound(path, { maxBytes: ${maxBytes}, keep: 100000 });
let rotations = 0;
const timer = setInterval(() => { if (bound.check()) rotations += 1; }, 1);
let i = 0;
const burst = () => {
  for (let k = 0; k < 40 && i < total; k += 1, i += 1) {
    const text = 'line ' + i + '\\n';
    if (i % 3 === 0) process.stdout.write(text);
    else if (i % 3 === 1) process.stderr.write(text);
    else appendOwnedFile(path, text);
  }
  if (i < total) setImmediate(burst);
  else { clearInterval(timer); appendOwnedFile(path + '.rotations', String(rotations)); }
};
burst();
`,
  );
  // Opened as the CLI opens it for the daemon (client.ts): one O_APPEND descriptor for stdout and stderr.
  const fd = openSync(log, 'a', 0o600);
  const child = spawn(process.execPath, [script, log, String(total)], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 0);
  const rotations = Number(readFileSync(`${log}.rotations`, 'utf8'));
  assert.ok(rotations >= 20, `rotated ${rotations} times`);
  const generations: string[] = [];
  for (let generation = rotations; generation >= 1; generation -= 1) generations.push(`${log}.${generation}`);
  generations.push(log);
  const numbers: number[] = [];
  let largest = 0;
  for (const file of generations) {
    const text = readFileSync(file, 'utf8');
    largest = Math.max(largest, Buffer.byteLength(text));
    for (const row of text.split('\n')) if (row !== '') numbers.push(Number(/^line (\d+)$/.exec(row)?.[1]));
  }
  assert.equal(numbers.length, total, 'no line lost or doubled');
  assert.ok(numbers.every((n, index) => n === index), 'every line once, in the order written');
  // Past the limit by at most what is written between two checks.
  assert.ok(largest < 4 * maxBytes, `largest file ${largest} bytes`);
  t.diagnostic(`${total} lines, ${rotations} rotations, largest file ${largest} bytes (limit ${maxBytes})`);
});

test('the real daemon keeps daemon.log under AGENTPM_DAEMON_LOG_MAX with 2 older copies, every line of the kept copies once', async (t) => {
  const rig = await Rig.create({ AGENTPM_DAEMON_LOG_MAX: '4K' });
  t.after(() => rig.dispose());
  const log = join(rig.home, 'daemon.log');
  const batch = (name: string): string => Array.from({ length: 400 }, (_, i) => `${name} line ${i}\n`).join('');
  // Over the limit before the daemon starts: rotated at once.
  writeFileSync(log, batch('first'), { mode: 0o600 });
  await rig.ok(['daemon', 'start']);
  await waitFor(() => existsSync(`${log}.1`) && readFileSync(`${log}.1`, 'utf8').includes('first line 399'), 'the first rotation');
  assert.ok(statSync(log).size < 4096);
  // The daemon checks about once a second: each batch goes in right after a rotation was seen, so none
  // is written during one (the daemon's own lines are safe from that; another writer's are not).
  appendFileSync(log, batch('second'));
  await waitFor(() => existsSync(`${log}.2`) && readFileSync(`${log}.1`, 'utf8').includes('second line 399'), 'the second rotation');
  appendFileSync(log, batch('third'));
  await waitFor(() => readFileSync(`${log}.1`, 'utf8').includes('third line 399'), 'the third rotation');
  assert.equal(existsSync(`${log}.3`), false, 'only 2 copies are kept');
  const kept = [readFileSync(`${log}.2`, 'utf8'), readFileSync(`${log}.1`, 'utf8'), readFileSync(log, 'utf8')].join('');
  for (const name of ['second', 'third']) {
    for (let i = 0; i < 400; i += 1) assert.equal(kept.split(`${name} line ${i}\n`).length - 1, 1, `${name} line ${i} once`);
  }
  assert.ok(!kept.includes('first line'), 'the oldest copy was dropped');
  assert.ok(Buffer.byteLength(kept) < 3 * 8192, `${Buffer.byteLength(kept)} bytes in all`);
  const tail = await rig.ok(['daemon', 'logs', '--lines', '3']);
  assert.match(tail, /third line 399\n$/, `daemon logs reads back into daemon.log.1:\n${tail}`);
});

test('AGENTPM_DAEMON_LOG_MAX is a size; a bad or tiny one keeps the default and says why', () => {
  assert.deepEqual(daemonLogLimits({}), { limits: DEFAULT_DAEMON_LOG_LIMITS, problem: null });
  assert.deepEqual(daemonLogLimits({ AGENTPM_DAEMON_LOG_MAX: '2M' }).limits, { maxBytes: 2 * 1024 * 1024, keep: 2 });
  assert.match(daemonLogLimits({ AGENTPM_DAEMON_LOG_MAX: 'lots' }).problem ?? '', /AGENTPM_DAEMON_LOG_MAX=lots ignored \(expected a size/);
  assert.match(daemonLogLimits({ AGENTPM_DAEMON_LOG_MAX: '10' }).problem ?? '', /at least 1024 bytes/);
});
