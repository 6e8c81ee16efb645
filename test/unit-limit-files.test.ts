/**
 * The cgroup limit files on directory fixtures: the v2 controllers cannot be enabled on the project's
 * machines (hybrid layout), so a temporary directory holds the files a cgroup would have, written as the
 * kernel shows them. The v1 writers also run against the real kernel in cgroup-v1-limits.test.ts.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, beforeEach, describe, test } from 'node:test';
import { readLimitsV1, readLimitsV2, readOomKillsV1, readOomKillsV2, readTasks, writeLimitsV1, writeLimitsV2 } from '../src/cgroup/limit-files.js';
import type { KernelLimits } from '../src/cgroup/limits.js';

const MB = 1024 * 1024;
const LIMITS: KernelLimits = { memoryMaxBytes: 500 * MB, memoryOomGroup: true, pidsMax: 896, cpu: { quotaUs: 150_000, periodUs: 100_000 } };
const NO_LIMITS: KernelLimits = { memoryMaxBytes: null, memoryOomGroup: true, pidsMax: null, cpu: null };

const root = mkdtempSync(join(tmpdir(), 'agentpm-unit-limit-files-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dir: string;
let serial = 0;
beforeEach(() => {
  serial += 1;
  dir = join(root, String(serial));
  mkdirSync(dir);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Files as a fresh cgroup shows them. */
function fixture(files: Record<string, string>, at = dir): void {
  for (const [name, text] of Object.entries(files)) writeFileSync(join(at, name), text);
}
const read = (name: string, at = dir): string => readFileSync(join(at, name), 'utf8');

const FRESH_V2 = { 'memory.max': 'max\n', 'memory.oom.group': '0\n', 'pids.max': 'max\n', 'cpu.max': 'max 100000\n', 'memory.events': 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n', 'pids.current': '1\n' };

describe('cgroup v2 files', () => {
  test('every limit written in the kernel format and read back', () => {
    fixture(FRESH_V2);
    assert.deepEqual(writeLimitsV2(dir, LIMITS), { applied: ['memory', 'pids', 'cpu'], unavailable: [], failed: [] });
    assert.equal(read('memory.max'), String(500 * MB));
    assert.equal(read('memory.oom.group'), '1');
    assert.equal(read('pids.max'), '896');
    assert.equal(read('cpu.max'), '150000 100000');
    assert.deepEqual(readLimitsV2(dir), { ...LIMITS, memoryOomGroup: true });
  });

  test('kill-offender leaves memory.oom.group off', () => {
    fixture({ ...FRESH_V2, 'memory.oom.group': '1\n' });
    writeLimitsV2(dir, { ...LIMITS, memoryOomGroup: false });
    assert.equal(read('memory.oom.group'), '0');
  });

  test('no limit is written as max, so a re-used cgroup keeps no stale cap, and reads back as null', () => {
    fixture({ ...FRESH_V2, 'memory.max': '1048576\n', 'pids.max': '10\n', 'cpu.max': '5000 100000\n' });
    assert.deepEqual(writeLimitsV2(dir, NO_LIMITS), { applied: [], unavailable: [], failed: [] });
    assert.equal(read('memory.max'), 'max');
    assert.equal(read('pids.max'), 'max');
    assert.equal(read('cpu.max'), 'max');
    assert.deepEqual(readLimitsV2(dir), { memoryMaxBytes: null, memoryOomGroup: false, pidsMax: null, cpu: null });
  });

  test('a controller that is not enabled (no files) is unavailable, the others still apply, no file is created', () => {
    // The machine's hybrid layout: a v2 cgroup with no controller files at all.
    fixture({ 'cgroup.procs': '' });
    assert.deepEqual(writeLimitsV2(dir, LIMITS), { applied: [], unavailable: ['memory', 'pids', 'cpu'], failed: [] });
    for (const name of ['memory.max', 'memory.oom.group', 'pids.max', 'cpu.max']) assert.equal(existsSync(join(dir, name)), false, name);
    assert.deepEqual(readLimitsV2(dir), { memoryMaxBytes: null, memoryOomGroup: null, pidsMax: null, cpu: null });
    // Only pids enabled.
    fixture({ 'pids.max': 'max\n' });
    assert.deepEqual(writeLimitsV2(dir, LIMITS), { applied: ['pids'], unavailable: ['memory', 'cpu'], failed: [] });
    // Clearing limits that are not available is not a problem worth reporting.
    assert.deepEqual(writeLimitsV2(dir, NO_LIMITS), { applied: [], unavailable: [], failed: [] });
  });

  test('a kernel without memory.oom.group (before 4.19) still gets the memory cap', () => {
    const { 'memory.oom.group': _group, ...files } = FRESH_V2;
    fixture(files);
    assert.deepEqual(writeLimitsV2(dir, LIMITS).applied, ['memory', 'pids', 'cpu']);
    assert.equal(existsSync(join(dir, 'memory.oom.group')), false);
  });

  test('a file that refuses the write is reported failed with its error, never thrown', () => {
    // A directory in place of the file: EISDIR, whoever runs the test (root would write through mode bits).
    fixture({ 'memory.max': 'max\n', 'cpu.max': 'max 100000\n' });
    mkdirSync(join(dir, 'pids.max'));
    const result = writeLimitsV2(dir, LIMITS);
    assert.deepEqual(result.applied, ['memory', 'cpu']);
    assert.equal(result.failed.length, 1);
    assert.equal(result.failed[0]?.limit, 'pids');
    assert.equal(result.failed[0]?.file, join(dir, 'pids.max'));
    assert.match(result.failed[0]?.message ?? '', /^EISDIR/);
  });

  test('oom kills are read from memory.events (oom_kill, not oom or oom_group_kill)', () => {
    fixture({ 'memory.events': 'low 0\nhigh 12\nmax 40\noom 3\noom_kill 2\noom_group_kill 1\n' });
    assert.equal(readOomKillsV2(dir), 2);
    fixture({ 'memory.events': 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n' });
    assert.equal(readOomKillsV2(dir), 0);
  });

  test('oom kills: null without the memory controller or without the line', () => {
    assert.equal(readOomKillsV2(dir), null);
    fixture({ 'memory.events': 'low 0\nhigh 0\nmax 0\noom 0\n' });
    assert.equal(readOomKillsV2(dir), null);
  });

  test('tasks now: pids.current, null without the controller', () => {
    assert.equal(readTasks(dir), null);
    fixture({ 'pids.current': '37\n' });
    assert.equal(readTasks(dir), 37);
  });
});

describe('cgroup v1 files', () => {
  let memory: string;
  let pids: string;
  let cpu: string;
  beforeEach(() => {
    [memory, pids, cpu] = ['memory', 'pids', 'cpu'].map((name) => {
      const path = join(dir, name);
      mkdirSync(path);
      return path;
    }) as [string, string, string];
    fixture({ 'memory.limit_in_bytes': '9223372036854771712\n', 'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 0\n' }, memory);
    fixture({ 'pids.max': 'max\n', 'pids.current': '3\n' }, pids);
    fixture({ 'cpu.cfs_quota_us': '-1\n', 'cpu.cfs_period_us': '100000\n' }, cpu);
  });

  test('every limit written in the kernel format and read back', () => {
    assert.deepEqual(writeLimitsV1({ memory, pids, cpu }, { ...LIMITS, cpu: { quotaUs: 50_000, periodUs: 100_000 } }), { applied: ['memory', 'pids', 'cpu'], unavailable: [], failed: [] });
    assert.equal(read('memory.limit_in_bytes', memory), String(500 * MB));
    assert.equal(read('pids.max', pids), '896');
    assert.equal(read('cpu.cfs_period_us', cpu), '100000');
    assert.equal(read('cpu.cfs_quota_us', cpu), '50000');
    assert.deepEqual(readLimitsV1({ memory, pids, cpu }), { memoryMaxBytes: 500 * MB, pidsMax: 896, cpu: { quotaUs: 50_000, periodUs: 100_000 } });
  });

  test("no limit: memory -1, pids max, quota -1; the kernel's unlimited memory value reads back as null", () => {
    fixture({ 'memory.limit_in_bytes': '1048576\n' }, memory);
    fixture({ 'pids.max': '10\n' }, pids);
    fixture({ 'cpu.cfs_quota_us': '5000\n' }, cpu);
    assert.deepEqual(writeLimitsV1({ memory, pids, cpu }, NO_LIMITS), { applied: [], unavailable: [], failed: [] });
    assert.equal(read('memory.limit_in_bytes', memory), '-1');
    assert.equal(read('pids.max', pids), 'max');
    assert.equal(read('cpu.cfs_quota_us', cpu), '-1');
    // What the kernel shows after those writes.
    fixture({ 'memory.limit_in_bytes': '9223372036854771712\n' }, memory);
    assert.deepEqual(readLimitsV1({ memory, pids, cpu }), { memoryMaxBytes: null, pidsMax: null, cpu: null });
  });

  test('a hierarchy that is not mounted (no directory given) or lacks the file is unavailable', () => {
    assert.deepEqual(writeLimitsV1({ memory, pids: null }, LIMITS), { applied: ['memory'], unavailable: ['pids', 'cpu'], failed: [] });
    rmSync(join(memory, 'memory.limit_in_bytes'));
    assert.deepEqual(writeLimitsV1({ memory, pids, cpu: join(dir, 'absent') }, LIMITS), { applied: ['pids'], unavailable: ['memory', 'cpu'], failed: [] });
    assert.equal(existsSync(join(memory, 'memory.limit_in_bytes')), false, 'no file is created');
    assert.deepEqual(readLimitsV1({}), { memoryMaxBytes: null, pidsMax: null, cpu: null });
  });

  test('oom kills from memory.oom_control; null on kernels before 4.13 (no oom_kill line)', () => {
    fixture({ 'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 4\n' }, memory);
    assert.equal(readOomKillsV1(memory), 4);
    fixture({ 'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\n' }, memory);
    assert.equal(readOomKillsV1(memory), null);
    assert.equal(readOomKillsV1(join(dir, 'absent')), null);
  });

  test('tasks now: the same pids.current file', () => {
    assert.equal(readTasks(pids), 3);
  });
});
