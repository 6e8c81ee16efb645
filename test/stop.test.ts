import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { isAlivePid, liveProcesses, readPids, readProcess } from './helpers/procs.js';
import { FIXTURES, Rig, waitFor } from './helpers/rig.js';

const TREE = join(FIXTURES, 'tree.mjs');

test('stop ends a whole tree: a TERM-ignoring root and child, a setsid grandchild whose parent exited', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const pidfile = join(rig.home, 'pids');
  await rig.ok(['start', TREE, '--name', 'tree', '--kill-timeout', '500ms', '--env', 'CHILDREN=2', '--env', 'STUBBORN=1', '--env', 'SETSID=1', '--env', 'IGNORE_TERM=1', '--env', `PIDFILE=${pidfile}`]);
  const pids = await waitFor(() => readPids(pidfile, 5), 'the tree to write its pids');
  assert.ok(pids.every(isAlivePid), 'every process of the tree runs before the stop');
  const setsidGrandchild = pids[4] as number;
  await waitFor(
    async () => (await rig.show('tree')).tree.some((proc) => proc.pid === setsidGrandchild && proc.ppid !== pids[0]) || undefined,
    'show to list the reparented setsid grandchild (found by its tag)',
  );

  await rig.ok(['stop', 'tree']);

  assert.deepEqual(pids.filter(isAlivePid), [], 'no process of the tree survives the stop');
  assert.equal(isAlivePid(setsidGrandchild), false);
  assert.deepEqual(rig.tagged(), []);
  const app = await rig.app('tree');
  assert.equal(app.status, 'stopped');
  assert.equal(app.lastExit?.reason, 'stopped');
});

test('a member that cleared its environment, left the session and lost its parent is still ended, with what it forks', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const pidfile = join(rig.home, 'hidden.pid');
  const script = join(rig.home, 'hider.sh');
  // The hidden process: no AGENTPM_* tag (env -i), its own session (setsid), ignores TERM (and so do
  // the sleeps it forks). The root exits on TERM, so once the stop begins nothing links the hidden one
  // to the app; it forks one more sleep after that.
  writeFileSync(
    script,
    `setsid env -i /bin/bash -c 'trap "" TERM; echo $$ > "${pidfile}"; sleep 600 & while kill -0 $PPID 2>/dev/null; do sleep 0.05; done; sleep 600 & wait' &\nwait\n`,
  );
  await rig.ok(['start', script, '--name', 'hider', '--kill-timeout', '1s']);
  const hidden = await waitFor(() => readPids(pidfile, 1)?.[0], 'the hidden process');
  rig.ownPids.add(hidden); // untagged: the rig's cleanup could not find it otherwise
  const ofHiddenSession = (): number[] => liveProcesses((candidate) => candidate.sid === hidden).map((candidate) => candidate.pid);
  t.after(() => {
    for (const pid of ofHiddenSession()) process.kill(pid, 'SIGKILL'); // started by this test, in its session
  });
  const proc = readProcess(hidden);
  assert.equal(proc?.env.size, 0, 'it carries no tag');
  assert.equal(proc?.sid, hidden, 'it leads its own session');

  await rig.ok(['stop', 'hider']);

  assert.equal(isAlivePid(hidden), false, 'the hidden member was killed after the grace');
  assert.deepEqual(ofHiddenSession(), [], 'nothing it forked survives, before or after it became untraceable');
});

test('restart and delete leave nothing of the previous tree', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const pidfile = join(rig.home, 'pids');
  await rig.ok(['start', TREE, '--name', 'tree', '--kill-timeout', '300ms', '--env', 'CHILDREN=2', '--env', 'STUBBORN=1', '--env', `PIDFILE=${pidfile}`]);
  const first = await waitFor(() => readPids(pidfile, 4), 'the first tree');

  await rig.ok(['restart', 'tree']);
  assert.deepEqual(first.filter(isAlivePid), [], 'the old tree is gone after restart');
  const second = await waitFor(() => {
    const pids = readPids(pidfile, 4);
    return pids && pids[0] !== first[0] ? pids : undefined;
  }, 'the new tree');
  const app = await rig.app('tree');
  assert.equal(app.status, 'online');
  assert.equal(app.pid, second[0]);
  assert.equal(app.restarts, 1);
  assert.equal(new Set(rig.tagged().map((proc) => proc.instance)).size, 1, 'one instance alive');

  await rig.ok(['delete', 'tree']);
  assert.deepEqual(second.filter(isAlivePid), []);
  assert.deepEqual(await rig.ls(), []);
});

test('a new process forked after the stop began is found and ended too', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  // The root keeps forking `sleep` every 20 ms and ignores SIGTERM: the stop must chase every new
  // child through the grace period and SIGKILL them all at the end.
  const script = join(rig.home, 'forker.mjs');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(
    script,
    `import { spawn } from 'node:child_process';
process.on('SIGTERM', () => {});
let n = 0;
setInterval(() => { if (n++ < 200) spawn('sleep', ['600'], { stdio: 'ignore' }); }, 20);`,
  );
  await rig.ok(['start', script, '--name', 'forker', '--kill-timeout', '400ms']);
  await waitFor(async () => (await rig.app('forker')).processes >= 5 || undefined, 'some children');
  await rig.ok(['stop', 'forker']);
  assert.deepEqual(rig.tagged(), []);
});

test('a restart that was queued behind a delete is refused: no tree runs on outside the app list', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  await rig.ok(['start', TREE, '--name', 'doomed', '--kill-timeout', '3s', '--env', 'CHILDREN=1', '--env', 'IGNORE_TERM=1']);
  const deleting = rig.cli(['delete', 'doomed']);
  await waitFor(async () => (await rig.app('doomed')).status === 'stopping', 'the delete to be ending the tree');
  const restarting = rig.cli(['restart', 'doomed']);

  const [deleted, restarted] = await Promise.all([deleting, restarting]);
  assert.equal(deleted.code, 0, deleted.stderr);
  assert.notEqual(restarted.code, 0, 'the restart cannot run on a deleted app');
  assert.match(restarted.stderr, /doomed was removed/);
  assert.deepEqual(await rig.ls(), []);
  assert.deepEqual(rig.tagged(), [], 'no tree was started for the deleted app');
});
