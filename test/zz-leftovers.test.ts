/**
 * Runs last (files run one at a time, in name order): the whole suite must leave no process behind
 * that carries a test home. Anything found is reported and then killed by pid (only test processes
 * carry these homes).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rmSync } from 'node:fs';
import { findTrees, notedTreeNames, removeTrees, TREE_NAMES_FILE } from './helpers/cgroups.js';
import { processesOfTestHomes } from './helpers/procs.js';
import { waitFor } from './helpers/rig.js';

test('the suite leaves zero AGENTPM-tagged processes behind', async () => {
  // Orphans that died a moment ago can linger as zombies until PID 1 reaps them; those are dead, and
  // processesOfTestHomes skips them. Give a process that is exiting right now a brief moment.
  const left = await waitFor(() => {
    const found = processesOfTestHomes();
    return found.length === 0 ? [] : undefined;
  }, 'no test-home processes', 3000).catch(() => processesOfTestHomes());
  for (const proc of left) {
    try {
      process.kill(proc.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  assert.deepEqual(left.map((proc) => `${proc.pid} ${proc.cmd}`), []);
});

test('the suite leaves no agentpm cgroup of its test homes in any hierarchy', async () => {
  const left = findTrees(notedTreeNames());
  await removeTrees(left);
  rmSync(TREE_NAMES_FILE, { force: true });
  assert.deepEqual(left, []);
});
