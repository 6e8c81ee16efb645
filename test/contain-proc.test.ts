// The containment cases under the proc backend (see helpers/containment-cases.ts), and the fallback a
// daemon without cgroup access gets.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { DaemonStatus } from '../src/protocol.js';
import { containmentCases } from './helpers/containment-cases.js';
import { CLI, Rig } from './helpers/rig.js';

containmentCases('proc');

const NOBODY = 65534;

test('a daemon without cgroup access (another user, no delegation) falls back to proc and says how to get containment; the CLI tries a delegated scope and falls back silently', { skip: process.getuid?.() === 0 ? false : 'needs root to run as uid 65534' }, async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  chownSync(rig.home, NOBODY, NOBODY);
  // A user manager as the CLI sees one: its socket, and a systemd-run on PATH (a stand-in the test controls).
  const runtime = join(rig.home, 'runtime');
  mkdirSync(join(runtime, 'systemd'), { recursive: true });
  writeFileSync(join(runtime, 'systemd', 'private'), '');
  const fake = join(runtime, 'systemd-run');
  const env = { ...rig.env, AGENTPM_CONTAINMENT: '', XDG_RUNTIME_DIR: runtime, PATH: `${runtime}:${process.env['PATH'] ?? ''}` };
  const asNobody = (args: string[]): ReturnType<typeof spawnSync> =>
    spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, CLI, ...args], { env, encoding: 'utf8', timeout: 30_000 });
  const launchedBy = (systemdRun: string): DaemonStatus => {
    writeFileSync(fake, systemdRun, { mode: 0o755 });
    const started = asNobody(['daemon', 'start']);
    assert.equal(started.status, 0, String(started.stderr));
    const status = JSON.parse(String(asNobody(['daemon', 'status', '--json']).stdout)) as DaemonStatus;
    assert.equal(asNobody(['daemon', 'stop']).status, 0);
    return status;
  };

  // A user manager that refuses the scope: the plain launch, and no containment.
  const refused = launchedBy('#!/bin/sh\necho "Failed to connect to bus" >&2\nexit 1\n');
  assert.equal(refused.containment.launcher, 'direct');
  assert.equal(refused.containment.backend, 'proc');
  assert.match(refused.containment.reason, /not writable by uid 65534/);
  assert.match(refused.containment.enable ?? '', /Delegate=yes/);
  // One that runs it (the stand-in execs the command, as systemd-run --scope does once the scope exists).
  const scoped = launchedBy('#!/bin/sh\nwhile [ "$1" != -- ]; do shift; done\nshift\nexec "$@"\n');
  assert.equal(scoped.containment.launcher, 'systemd-scope');
  writeFileSync(fake, '#!/bin/sh\nexit 1\n', { mode: 0o755 });
  assert.equal(asNobody(['daemon', 'start']).status, 0);
  assert.match(String(asNobody(['daemon', 'status']).stdout), /containment  proc: .*launched directly\)\n\s+to get containment: .*startup systemd --user/);
  asNobody(['daemon', 'stop']);
});
