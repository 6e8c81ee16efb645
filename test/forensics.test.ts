import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Rig, waitFor } from './helpers/rig.js';

const MEMORY_CGROUPS = '/sys/fs/cgroup/memory';

function canUseMemoryCgroup(): boolean {
  try {
    const probe = join(MEMORY_CGROUPS, `agentpm-probe-${process.pid}`);
    mkdirSync(probe);
    rmdirSync(probe);
    return true;
  } catch {
    return false;
  }
}

// A real kernel OOM kill, confined to a memory cgroup (v1) of 96 MB so nothing else is at risk.
// The /proc inference's forensics: a kill in a cgroup agentpm does not own, seen through the machine's
// oom_kill counter (a cgroup backend reads the instance's own counter instead: see the containment cases).
test('a kernel OOM kill is recorded as oom-killed', { skip: canUseMemoryCgroup() ? false : 'needs a writable cgroup v1 memory controller (root)' }, async (t) => {
  const rig = await Rig.create({ AGENTPM_CONTAINMENT: 'proc' });
  const cgroup = join(MEMORY_CGROUPS, `agentpm-test-oom-${process.pid}`);
  t.after(async () => {
    await rig.dispose();
    if (existsSync(cgroup)) await waitFor(() => {
      try {
        rmdirSync(cgroup);
        return true;
      } catch {
        return undefined;
      }
    }, 'the test cgroup to empty', 5000);
  });
  mkdirSync(cgroup);
  writeFileSync(join(cgroup, 'memory.limit_in_bytes'), String(96 * 1024 * 1024));
  const script = join(rig.home, 'hog.mjs');
  const go = join(rig.home, 'go');
  // Waits until the test has moved it into the cgroup, then allocates 10 MB every 20 ms (at most 1 GB).
  writeFileSync(
    script,
    `import { existsSync } from 'node:fs';
const held = [];
const timer = setInterval(() => {
  if (!existsSync(${JSON.stringify(go)})) return;
  if (held.length < 100) held.push(Buffer.alloc(10 * 1024 * 1024, 1));
}, 20);`,
  );
  await rig.ok(['start', script, '--name', 'hog', '--no-autorestart']);
  const app = await waitFor(async () => {
    const summary = await rig.app('hog');
    return summary.pid ? summary : undefined;
  }, 'the app');
  writeFileSync(join(cgroup, 'cgroup.procs'), String(app.pid));
  writeFileSync(go, '');
  const ended = await waitFor(async () => {
    const summary = await rig.app('hog');
    return summary.status === 'stopped' ? summary : undefined;
  }, 'the OOM kill', 15_000);
  assert.equal(ended.lastExit?.signal, 'SIGKILL');
  assert.equal(ended.lastExit?.reason, 'oom-killed');
});
