/**
 * Are pids.current and cpu.stat cheaper than a /proc pass (issue 11)? 1,000 processes in one
 * instance-like cgroup on the hybrid layout (unified hierarchy for membership and cpu.stat, v1 pids for
 * pids.current), timed against the full scan and a members-only pass. Root only; everything it creates
 * (processes, two cgroups under this process's own) is removed at the end.
 * Run: node --import tsx bench/cgroup-counters.ts
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync, writeFileSync, existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { createProcessTable } from '../src/proc/platform.js';

const N = 1000;
const own = (prefix: string): string => (readFileSync('/proc/self/cgroup', 'latin1').split('\n').find((line) => line.split(':')[1] === prefix)?.split(':')[2] ?? '/');
const name = `cgroup-counters-${process.pid}`;
const unified = `/sys/fs/cgroup/unified${own('')}/${name}`.replace('//', '/');
const pids = `/sys/fs/cgroup/pids${own('pids')}/${name}`.replace('//', '/');
mkdirSync(unified);
mkdirSync(pids);
const members = (): number[] => readFileSync(`${unified}/cgroup.procs`, 'latin1').split('\n').filter(Boolean).map(Number);
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
const time = (fn: () => unknown, rounds = 21): number => {
  const samples: number[] = [];
  for (let i = 0; i < rounds; i += 1) {
    const start = performance.now();
    fn();
    samples.push(performance.now() - start);
  }
  return median(samples);
};
const holder = spawn('/bin/sh', ['-c', `echo $$ > ${unified}/cgroup.procs; echo $$ > ${pids}/cgroup.procs; i=0; while [ $i -lt ${N} ]; do sleep 300 & i=$((i+1)); done; wait`], { stdio: 'ignore' });
try {
  const deadline = Date.now() + 60_000;
  while (members().length < N + 1 && Date.now() < deadline) await sleep(100);
  const table = await createProcessTable();
  const scan = time(() => table.scan());
  const machine = table.scan().byPid.size;
  const memberPass = time(() => members().map((pid) => table.read(pid)));
  const attribution = (() => {
    const snapshot = table.scan();
    return time(() => members().map((pid) => snapshot.byPid.get(pid)));
  })();
  const counters = time(() => [readFileSync(`${pids}/pids.current`, 'latin1'), readFileSync(`${unified}/cpu.stat`, 'latin1')]);
  const snapshot = table.scan();
  const live = members().map((pid) => snapshot.byPid.get(pid)).filter((proc) => proc !== undefined);
  const threads = Number(readFileSync(`${pids}/pids.current`, 'latin1'));
  const usageUsec = Number(/usage_usec (\d+)/.exec(readFileSync(`${unified}/cpu.stat`, 'latin1'))?.[1]);
  const ticks = live.reduce((sum, proc) => sum + proc.cpuTicks, 0);
  console.log(JSON.stringify({
    membersInCgroup: live.length,
    processesOnMachine: machine,
    fullProcScanMs: +scan.toFixed(2),
    memberOnlyProcPassMs: +memberPass.toFixed(2),
    cgroupProcsLookupInSnapshotMs: +attribution.toFixed(3),
    pidsCurrentPlusCpuStatMs: +counters.toFixed(3),
    pidsCurrent: threads,
    cpuStatUsageMs: Math.round(usageUsec / 1000),
    procCpuMs: Math.round((ticks / table.clockTicksPerSecond) * 1000),
  }, null, 1));
} finally {
  writeFileSync(`${unified}/cgroup.kill`, '1');
  const deadline = Date.now() + 10_000;
  while (members().length > 0 && Date.now() < deadline) await sleep(50);
  holder.kill('SIGKILL');
  await sleep(100);
  for (const dir of [unified, pids]) if (existsSync(dir)) rmdirSync(dir);
}
