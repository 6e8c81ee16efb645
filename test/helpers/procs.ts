/**
 * A reader of /proc for the tests, independent of agentpm's own process table, so that "nothing was
 * left behind" is checked by code that is not under test.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface SeenProcess {
  pid: number;
  ppid: number;
  sid: number;
  state: string;
  startTime: number;
  cmd: string;
  env: Map<string, string>;
}

export function readProcess(pid: number): SeenProcess | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const env = new Map<string, string>();
    try {
      for (const entry of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
        const eq = entry.indexOf('=');
        if (eq > 0) env.set(entry.slice(0, eq), entry.slice(eq + 1));
      }
    } catch {
      // unreadable: another user's process
    }
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
    } catch {
      // gone
    }
    return { pid, ppid: Number(rest[1]), sid: Number(rest[3]), state: rest[0] ?? '?', startTime: Number(rest[19]), cmd, env };
  } catch {
    return null;
  }
}

/** Live (not zombie) processes whose environment satisfies `match`. */
export function liveProcesses(match: (proc: SeenProcess) => boolean): SeenProcess[] {
  const found: SeenProcess[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const proc = readProcess(Number(entry));
    if (proc && proc.state !== 'Z' && proc.state !== 'X' && match(proc)) found.push(proc);
  }
  return found;
}

export function isAlivePid(pid: number): boolean {
  const proc = readProcess(pid);
  return proc !== null && proc.state !== 'Z' && proc.state !== 'X';
}

/**
 * The prefix of this run's test homes. Other runs of the suite may share the machine at the same time,
 * and their processes are not this run's to report or kill: the prefix names the run by the pid of the
 * `node --test` runner, the parent of every test file's process.
 */
export const TEST_HOME_PREFIX = `agentpm-test-${process.ppid}-`;

/** Processes carrying a test home of this run: what the suite must never leave behind. */
export function processesOfTestHomes(): SeenProcess[] {
  return liveProcesses((proc) => (proc.env.get('AGENTPM_HOME') ?? '').includes(`/${TEST_HOME_PREFIX}`));
}

/** The pids a fixture wrote to `file`, one per line, once there are `expected` of them. */
export function readPids(file: string, expected: number): number[] | undefined {
  try {
    const pids = readFileSync(file, 'utf8').trim().split('\n').map(Number);
    return pids.length === expected && pids.every((pid) => pid > 0) ? pids : undefined;
  } catch {
    return undefined;
  }
}
