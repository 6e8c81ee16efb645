// A contained stop polls its own cgroup's members, never the whole of /proc: with 3,000 processes on
// the machine, ten stops at once (restart --parallel 10) each reading every /proc/<pid>/stat every
// 50 ms kept the daemon busy for seconds. Real processes in a real cgroup2 directory of the test's own.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { terminateContained } from '../src/cgroup/instance.js';
import { LinuxProcessTable } from '../src/proc/linux.js';
import type { ProcessTable } from '../src/proc/table.js';
import { procsIn, removeTrees } from './helpers/cgroups.js';
import { isAlivePid } from './helpers/procs.js';
import { waitFor } from './helpers/rig.js';

const unified = readFileSync('/proc/mounts', 'latin1').split('\n').map((line) => line.split(' ')).find(([, , type]) => type === 'cgroup2')?.[1];
const ownPath = /^0::(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'latin1'))?.[1];
const usable = unified !== undefined && ownPath !== undefined && process.getuid?.() === 0;

test('a contained stop reads its members by pid, with no pass over all of /proc', { skip: usable ? false : 'needs root and a cgroup2 hierarchy' }, async () => {
  const dir = join(unified!, ownPath === '/' ? '' : ownPath!, `agentpm-test-scoped-${process.pid}`);
  mkdirSync(dir);
  const pids: number[] = [];
  after(async () => {
    for (const pid of pids) if (isAlivePid(pid)) process.kill(pid, 'SIGKILL');
    await removeTrees(existsSync(dir) ? [dir] : []);
  });
  // The root waits until it is in the cgroup, so that its children are born there.
  const root = spawn('sh', ['-c', 'read go; sleep 600 & sleep 600 & wait'], { stdio: ['pipe', 'ignore', 'ignore'] });
  pids.push(root.pid!);
  writeFileSync(join(dir, 'cgroup.procs'), String(root.pid));
  root.stdin.end('go\n');
  const members = await waitFor(() => (procsIn(dir).length === 3 ? procsIn(dir) : null), 'the root and its two sleeps in the cgroup', 5000);
  pids.push(...members);

  const table = new LinuxProcessTable();
  let wholeScans = 0;
  const counted: ProcessTable = Object.assign(Object.create(table) as ProcessTable, {
    scan: () => {
      wholeScans += 1;
      return table.scan();
    },
  });
  const result = await terminateContained(counted, { backend: 'cgroup2', dirs: { unified: dir } }, { signal: 'SIGTERM', graceMs: 5000, exclude: new Set(), keepDetached: null });

  assert.deepEqual(result, { seen: 3, survivors: 0 });
  assert.equal(wholeScans, 0, 'the stop scanned all of /proc');
  for (const pid of members) assert.equal(isAlivePid(pid), false, `member ${pid} outlived the stop`);
  assert.equal(existsSync(dir), false, 'the cgroup was not removed');
});
