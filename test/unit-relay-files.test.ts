/**
 * The relay's pieces on real files and a real FIFO: rotation at line boundaries with `keep`, a line
 * larger than maxSize, and the held partial line (written after a quiet time, or at 64 KiB).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { LogPolicy } from '../src/protocol.js';
import { FifoSource, MAX_PARTIAL_BYTES } from '../src/logs/relay/fifo-source.js';
import { LogFile } from '../src/logs/relay/log-file.js';
import { parseRelayRequest } from '../src/logs/relay/control.js';
import { waitFor } from './helpers/rig.js';

function scratch(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'agentpm-unit-relay-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function logFile(path: string, policy: LogPolicy): LogFile {
  return new LogFile(path, { policy: () => policy, stampLine: (text) => Buffer.from(`S ${text}\n`), log: () => undefined });
}

test('rotation: between lines, never past maxSize, keeping `keep` files; a line larger than maxSize gets a file of its own', (t) => {
  const dir = scratch(t);
  const path = join(dir, 'a.out.log');
  const file = logFile(path, { maxSizeBytes: 100, keep: 2, compress: false });
  const lines = Array.from({ length: 30 }, (_, n) => Buffer.from(`line ${String(n).padStart(3, '0')}\n`)); // 9 bytes each
  file.write(lines.slice(0, 20));
  file.write(lines.slice(20));
  file.close();
  assert.deepEqual(readdirSync(dir).sort(), ['a.out.log', 'a.out.log.1', 'a.out.log.2']);
  const text = ['a.out.log.2', 'a.out.log.1', 'a.out.log'].map((name) => readFileSync(join(dir, name), 'utf8'));
  for (const part of text) assert.ok(part.length <= 100 && part.endsWith('\n'), JSON.stringify(part));
  assert.ok(text.join('').endsWith('line 029\n'));
  assert.equal(text.join(''), lines.slice(30 - text.join('').split('\n').length + 1).map(String).join(''), 'the newest lines, each once, in order');

  const big = Buffer.from(`${'x'.repeat(150)}\n`);
  const again = logFile(path, { maxSizeBytes: 100, keep: 2, compress: false });
  again.write([big, lines[0] as Buffer]);
  again.close();
  assert.equal(readFileSync(join(dir, 'a.out.log.1'), 'utf8'), big.toString(), 'the big line alone, whole');
  assert.equal(readFileSync(path, 'utf8'), 'line 000\n');

  const none = logFile(join(dir, 'b.out.log'), { maxSizeBytes: 100, keep: 0, compress: false });
  none.write(lines);
  none.close();
  assert.deepEqual(readdirSync(dir).filter((name) => name.startsWith('b.')), ['b.out.log'], 'keep 0: no rotated file');
});

test('a FIFO source holds a line until its newline, writes it after a quiet time, and cuts one at 64 KiB', async (t) => {
  const dir = scratch(t);
  const path = join(dir, 'app.0123456789ab.out.fifo');
  execFileSync('mkfifo', ['-m', '600', path]);
  const writer = openSync(path, constants.O_RDWR);
  t.after(() => closeSync(writer));
  const got: string[] = [];
  const source = FifoSource.open(path, { app: 'app', instance: '0123456789ab', stream: 'out' }, {
    lines: (_source, lines) => got.push(...lines.map((line) => line.toString())),
    stampLine: (text) => Buffer.from(`S ${text.toString()}\n`),
    ended: () => undefined,
    log: () => undefined,
  });
  t.after(() => source.stop());
  writeSync(writer, 'one\ntw');
  await waitFor(() => got.length === 1, 'the whole line');
  assert.deepEqual(got, ['S one\n']);
  writeSync(writer, 'o\nprompt> ');
  await waitFor(() => got.length === 2, 'the completed line');
  assert.equal(got[1], 'S two\n');
  await waitFor(() => got.length === 3, 'the partial line after a quiet time', 3000);
  assert.equal(got[2], 'S prompt> \n');
  // In two writes, each within the pipe's buffer: the reader runs in this very process.
  writeSync(writer, 'y'.repeat(40_000));
  await new Promise((resolve) => setTimeout(resolve, 100));
  writeSync(writer, 'y'.repeat(MAX_PARTIAL_BYTES - 40_000 + 10));
  await waitFor(() => got.length === 4, 'the cut line');
  assert.equal(got[3]?.length, MAX_PARTIAL_BYTES + 3);
});

test('the relay refuses a malformed control request with the reason, and accepts the real ones', () => {
  const refused = (value: unknown): string => {
    const parsed = parseRelayRequest(value);
    assert.equal(parsed.ok, false, JSON.stringify(value));
    return parsed.ok ? '' : parsed.message;
  };
  assert.match(refused({ id: 1, type: 'bogus' }), /unknown type "bogus"/);
  assert.match(refused({ type: 'status' }), /id must be an integer/);
  assert.match(refused({ id: 1, type: 'status', extra: 1 }), /unknown field extra/);
  assert.match(refused({ id: 1, type: 'flush', apps: ['../etc'] }), /apps must be null or a list of app names/);
  assert.match(refused({ id: 1, type: 'policy', policies: { bot: { maxSizeBytes: 10, keep: 1, compress: false } } }), /bad policy for "bot"/);
  assert.match(refused({ id: 1, type: 'attach' }), /attach needs fifos/);
  for (const request of [
    { id: 1, type: 'hello', version: '0.1.0' },
    { id: 2, type: 'attach', fifos: ['/home/run/bot.abc.out.fifo'] },
    { id: 3, type: 'policy', policies: { bot: { maxSizeBytes: 1024, keep: 0, compress: true } } },
    { id: 4, type: 'flush', apps: null },
    { id: 5, type: 'hand-over' },
  ]) {
    assert.equal(parseRelayRequest(request).ok, true, JSON.stringify(request));
  }
});

test('a FIFO whose writers are all gone before it is opened is read to its end and removed, not waited on for ever', async (t) => {
  const dir = scratch(t);
  const path = join(dir, 'app.0123456789ab.err.fifo');
  execFileSync('mkfifo', ['-m', '600', path]);
  let ended = false;
  const source = FifoSource.open(path, { app: 'app', instance: '0123456789ab', stream: 'err' }, {
    lines: () => undefined,
    stampLine: (text) => Buffer.from(`S ${text.toString()}\n`),
    ended: () => (ended = true),
    log: () => undefined,
  });
  t.after(() => source.stop());
  // Linux reports no hang-up for a FIFO opened with no writer until one has come and gone: only a read says EOF.
  await waitFor(() => ended && !existsSync(path), 'the FIFO to be ended and removed', 2000);
  assert.equal(source.finished, true);
});
