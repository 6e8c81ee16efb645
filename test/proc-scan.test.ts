/**
 * The Linux process table against real processes: a scan re-reads the `stat` it keeps open (fresh
 * figures, never a stale or reused pid's), and closes what it kept once a process is gone.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { LinuxProcessTable, keptFdBudget } from '../src/proc/linux.js';
import { waitFor } from './helpers/rig.js';

const started: ChildProcess[] = [];
// One table, as in the daemon: every table in a process shares one budget of kept descriptors.
const table = new LinuxProcessTable();

function start(command: string, args: string[]): ChildProcess {
  const child = spawn(command, args, { stdio: 'ignore' });
  started.push(child);
  return child;
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));
}

function openDescriptors(): number {
  return readdirSync('/proc/self/fd').length;
}

/** The pids among `pids` whose /proc/<pid>/stat this process holds open. */
function statHeldFor(pids: readonly number[]): number[] {
  const wanted = new Set(pids.map((pid) => `/proc/${pid}/stat`));
  const held: number[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // the descriptor readdir itself used
    }
    if (wanted.has(target)) held.push(Number(target.split('/')[2]));
  }
  return held;
}

after(async () => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await Promise.all(started.map(exited));
});

describe('LinuxProcessTable.scan', () => {
  test('a later scan reads the figures of that moment, not the first read of the process', async () => {
    const busy = start(process.execPath, ['-e', 'for (;;) {}']);
    const pid = busy.pid as number;
    const first = await waitFor(() => table.scan().byPid.get(pid), 'the busy child in a scan');
    // 20 ticks = 200 ms of CPU: only a real re-read of its stat can see them.
    const later = await waitFor(() => {
      const proc = table.scan().byPid.get(pid);
      return proc && proc.cpuTicks >= first.cpuTicks + 20 ? proc : null;
    }, 'the busy child to use 200 ms of CPU', 15_000, 50);
    assert.equal(later.startTime, first.startTime);
    busy.kill('SIGKILL');
    await exited(busy);
  });

  test('every process a scan lists is what a fresh read of its pid gives (same process, same parent)', async () => {
    const sleeper = start('sleep', ['60']);
    table.scan(); // opens and keeps
    const snapshot = table.scan(); // reads through what it kept
    let compared = 0;
    for (const [pid, proc] of snapshot.byPid) {
      const fresh = table.read(pid);
      if (!fresh) continue; // gone in between
      // pid + start time name one process; parents and names of other processes may change meanwhile.
      assert.equal(fresh.startTime, proc.startTime, `pid ${pid}`);
      compared += 1;
    }
    assert.ok(compared > 1);
    assert.equal(snapshot.byPid.get(sleeper.pid as number)?.ppid, process.pid);
    sleeper.kill('SIGKILL');
    await exited(sleeper);
  });

  test('a process that is gone leaves the scan, and its kept descriptor is closed', async () => {
    const children = Array.from({ length: 20 }, () => start('sleep', ['60']));
    const pids = children.map((child) => child.pid as number);
    const seen = table.scan();
    for (const pid of pids) assert.ok(seen.byPid.has(pid), `pid ${pid} listed`);
    // On a machine with more processes than the budget, the newest are read by a fresh open instead.
    if (seen.byPid.size + pids.length < keptFdBudget()) assert.deepEqual(statHeldFor(pids).sort(), [...pids].sort(), 'each listed process has its stat kept open');
    for (const child of children) child.kill('SIGKILL');
    await Promise.all(children.map(exited)); // reaped: the pids are free
    const after = table.scan();
    for (const pid of pids) assert.equal(after.byPid.get(pid)?.startTime === seen.byPid.get(pid)?.startTime, false, `pid ${pid} gone`);
    assert.deepEqual(statHeldFor(pids), [], 'no descriptor of a gone process stays open');
  });

  test('kept descriptors do not leak into the processes the daemon spawns', () => {
    table.scan();
    const held = openDescriptors();
    assert.ok(held > 10, 'the scan keeps descriptors');
    const inChild = Number(spawnSync('sh', ['-c', 'ls /proc/$$/fd | wc -l'], { encoding: 'utf8' }).stdout.trim());
    assert.ok(inChild < 10, `a child sees ${inChild} descriptors`);
  });
});
