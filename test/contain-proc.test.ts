// The containment cases under the proc backend (see helpers/containment-cases.ts), and the fallback a
// daemon without cgroup access gets.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync } from 'node:fs';
import { test } from 'node:test';
import type { DaemonStatus } from '../src/protocol.js';
import { containmentCases } from './helpers/containment-cases.js';
import { CLI, Rig } from './helpers/rig.js';

containmentCases('proc');

const NOBODY = 65534;

test('a daemon without cgroup access (another user, no delegation) falls back to proc and says how to get containment', { skip: process.getuid?.() === 0 ? false : 'needs root to run as uid 65534' }, async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  chownSync(rig.home, NOBODY, NOBODY);
  const env = { ...rig.env, AGENTPM_CONTAINMENT: '' };
  const asNobody = (args: string[]): ReturnType<typeof spawnSync> =>
    spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, CLI, ...args], { env, encoding: 'utf8', timeout: 30_000 });
  const started = asNobody(['daemon', 'start']);
  assert.equal(started.status, 0, String(started.stderr));
  const status = JSON.parse(String(asNobody(['daemon', 'status', '--json']).stdout)) as DaemonStatus;
  assert.equal(status.containment.backend, 'proc');
  assert.match(status.containment.reason, /not writable by uid 65534/);
  assert.match(status.containment.enable ?? '', /Delegate=yes/);
  assert.match(String(asNobody(['daemon', 'status']).stdout), /to get containment: .*startup systemd --user/);
  assert.equal(asNobody(['daemon', 'stop']).status, 0);
});
