/**
 * The v1 limit writers and readers against the real kernel: a cgroup `agentpm-test-<pid>` created under this
 * process's own cgroup in each v1 hierarchy (never at a hierarchy's root, where it would escape the limits the
 * host puts on the test), limits written and read back, then enforced on a process of the test's own: a fork
 * beyond pids.max is refused, an allocation beyond memory.limit_in_bytes is OOM-killed and counted. Every
 * cgroup is removed in cleanup, after its processes (started here) are gone.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readLimitsV1, readOomKillsV1, readTasks, writeLimitsV1, type V1Dirs } from '../src/cgroup/limit-files.js';
import { kernelLimitsFor, type KernelLimits } from '../src/cgroup/limits.js';
import { waitFor } from './helpers/rig.js';

const MB = 1024 * 1024;
const NAME = `agentpm-test-${process.pid}`;

/** This process's cgroup in a v1 hierarchy, if that hierarchy is mounted at /sys/fs/cgroup/<controller>. */
function ownV1Dir(controller: string): string | null {
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const [, controllers, path] = line.split(':');
    if (controllers === undefined || path === undefined || !controllers.split(',').includes(controller)) continue;
    const mount = join('/sys/fs/cgroup', controllers);
    const dir = join(mount, path);
    return existsSync(join(dir, 'cgroup.procs')) ? dir : null;
  }
  return null;
}

const PYTHON = ['/usr/bin/python3', 'python3'].find((candidate) => spawnSync(candidate, ['-c', 'pass']).status === 0) ?? null;
const parents = { memory: ownV1Dir('memory'), pids: ownV1Dir('pids'), cpu: ownV1Dir('cpu') };
const skip =
  process.getuid?.() !== 0 ? 'creating v1 cgroups needs root' : !parents.memory || !parents.pids || !parents.cpu ? 'no v1 memory, pids and cpu hierarchies here' : PYTHON === null ? 'needs python3' : false;

describe('cgroup v1 limits on the real kernel', { skip }, () => {
  const dirs: Required<{ [K in keyof V1Dirs]: string }> = { memory: '', pids: '', cpu: '' };

  before(() => {
    for (const controller of ['memory', 'pids', 'cpu'] as const) {
      dirs[controller] = join(parents[controller] as string, NAME);
      mkdirSync(dirs[controller]);
    }
  });

  after(async () => {
    for (const dir of Object.values(dirs)) {
      if (dir === '' || !existsSync(dir)) continue;
      // Only what this test started can be in its own cgroup: end leftovers of a failed run, then remove it.
      const members = (): number[] => readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
      for (const pid of members()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await waitFor(() => members().length === 0, `${dir} empty`, 5_000);
      rmdirSync(dir);
    }
  });

  test('written limits read back from the kernel; "no limit" reads back as null', () => {
    const limits: KernelLimits = { memoryMaxBytes: 64 * MB, memoryOomGroup: true, pidsMax: 4, cpu: { quotaUs: 50_000, periodUs: 100_000 } };
    assert.deepEqual(writeLimitsV1(dirs, limits), { applied: ['memory', 'pids', 'cpu'], unavailable: [], failed: [] });
    assert.deepEqual(readLimitsV1(dirs), { memoryMaxBytes: 64 * MB, pidsMax: 4, cpu: { quotaUs: 50_000, periodUs: 100_000 } });
    assert.equal(readTasks(dirs.pids), 0);
    assert.equal(readOomKillsV1(dirs.memory), 0);

    const none: KernelLimits = { memoryMaxBytes: null, memoryOomGroup: true, pidsMax: null, cpu: null };
    assert.deepEqual(writeLimitsV1(dirs, none), { applied: [], unavailable: [], failed: [] });
    assert.deepEqual(readLimitsV1(dirs), { memoryMaxBytes: null, pidsMax: null, cpu: null });

    // A derived set, as a backend would write it: the kernel takes the page-rounded cap exactly.
    const derived = kernelLimitsFor({ maxMemoryBytes: 100 * MB + 1, hardMemoryBytes: null, maxChildren: 3, maxTasks: null, maxCpuPercent: 150, onLimit: 'restart' }, null);
    assert.deepEqual(writeLimitsV1(dirs, derived).applied, ['memory', 'pids', 'cpu']);
    assert.deepEqual(readLimitsV1(dirs), { memoryMaxBytes: derived.memoryMaxBytes, pidsMax: 32 + 3 * 16 + 64, cpu: { quotaUs: 150_000, periodUs: 100_000 } });
  });

  test('a value the kernel refuses is reported failed, the others still apply', () => {
    // A quota below the kernel's 1 ms minimum: EINVAL.
    const result = writeLimitsV1(dirs, { memoryMaxBytes: 64 * MB, memoryOomGroup: true, pidsMax: 10, cpu: { quotaUs: 10, periodUs: 100_000 } });
    assert.deepEqual(result.applied, ['memory', 'pids']);
    assert.equal(result.failed[0]?.limit, 'cpu');
    assert.match(result.failed[0]?.message ?? '', /^EINVAL/);
  });

  test('pids.max is enforced: forks beyond it are refused', () => {
    writeLimitsV1(dirs, { memoryMaxBytes: null, memoryOomGroup: true, pidsMax: 4, cpu: null });
    // Enters the cgroup first (one task), then tries 8 forks: 3 fit. Each child sleeps until killed.
    const script = `
import json, os, time
open(${JSON.stringify(join(dirs.pids, 'cgroup.procs'))}, 'w').write(str(os.getpid()))
kids, refused = [], 0
for _ in range(8):
    try:
        pid = os.fork()
    except OSError:
        refused += 1
        continue
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    kids.append(pid)
current = int(open(${JSON.stringify(join(dirs.pids, 'pids.current'))}).read())
for pid in kids:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
print(json.dumps({'started': len(kids), 'refused': refused, 'current': current}))
`;
    const run = spawnSync(PYTHON as string, ['-c', script], { encoding: 'utf8', timeout: 20_000, killSignal: 'SIGKILL' });
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), { started: 3, refused: 5, current: 4 });
  });

  test('memory.limit_in_bytes is enforced in the cgroup, and its own oom_kill counter records it', () => {
    writeLimitsV1(dirs, { memoryMaxBytes: 64 * MB, memoryOomGroup: true, pidsMax: null, cpu: null });
    const before = readOomKillsV1(dirs.memory);
    assert.equal(typeof before, 'number', 'this kernel has the oom_kill line');
    // Touches 256 MB page by page: far over the cap, killed by the kernel inside the cgroup.
    const script = `
import os
open(${JSON.stringify(join(dirs.memory, 'cgroup.procs'))}, 'w').write(str(os.getpid()))
block = bytearray(256 * 1024 * 1024)
for i in range(0, len(block), 4096):
    block[i] = 1
print('survived')
`;
    const run = spawnSync(PYTHON as string, ['-c', script], { encoding: 'utf8', timeout: 20_000, killSignal: 'SIGTERM' });
    assert.equal(run.signal, 'SIGKILL', `expected an OOM kill, got status ${String(run.status)} ${run.signal ?? ''} ${run.stdout}${run.stderr}`);
    assert.equal(readOomKillsV1(dirs.memory), (before as number) + 1);
  });
});
