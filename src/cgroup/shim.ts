/**
 * Entering the instance's cgroup before the app runs its first instruction. Node cannot run code
 * between fork and exec, and a helper that double-forks in its first milliseconds would escape a pid
 * written afterwards. So the instance is spawned as `/bin/sh -c SHIM`: the shell writes its own pid
 * into the instance's cgroup.procs of every hierarchy, then `exec`s the app, which keeps the pid: no
 * wrapper process remains, and everything the app forks is born inside.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentpmError } from '../errors.js';
import { membershipDir, procsFiles, readProcs } from './cgroupfs.js';
import type { InstanceCgroup } from './types.js';

/** The shim's exit code when it could not enter the cgroup (then the app never ran). */
export const SHIM_FAILED_EXIT = 213;
const SHIM =
  'while [ "$1" != -- ]; do { echo $$ >"$1"; } 2>/dev/null || { echo "agentpm: cannot enter the cgroup $1" >&2; exit ' +
  SHIM_FAILED_EXIT +
  '; }; shift; done; shift; exec "$@"';
const JOIN_WAIT_MS = 5000;

export function shimCommand(cgroup: InstanceCgroup, command: { file: string; args: string[] }): { file: string; args: string[] } {
  return { file: '/bin/sh', args: ['-c', SHIM, 'agentpm-shim', ...procsFiles(cgroup.dirs), '--', command.file, ...command.args] };
}

/**
 * What spawn would have refused without the shim (Node's execvp fails with ENOENT or EACCES): checked
 * before, so a wrong script path still fails the start with that reason instead of a shell exit 127.
 */
export function checkExecutable(file: string, cwd: string, path: string | undefined): string | null {
  const candidates = file.includes('/') ? [isAbsolute(file) ? file : resolve(cwd, file)] : (path ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter).filter(Boolean).map((dir) => join(resolve(cwd, dir), file));
  let problem = 'ENOENT';
  for (const candidate of candidates) {
    try {
      if (!statSync(candidate).isFile()) {
        problem = 'EACCES';
        continue;
      }
      accessSync(candidate, constants.X_OK);
      return null;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EACCES') problem = 'EACCES';
    }
  }
  return `spawn ${file} ${problem}`;
}

/**
 * Waits until the shim has entered the cgroup (its pid is in the membership directory, written last),
 * or exited (the app ran and ended already). Bounded: a shim that neither joins nor exits in time is reported as a failed spawn.
 */
export async function awaitJoined(cgroup: InstanceCgroup, pid: number, exited: () => { code: number | null; signal: string | null } | null): Promise<void> {
  const dir = membershipDir(cgroup.dirs);
  if (dir === null) return;
  const ends = Date.now() + JOIN_WAIT_MS;
  for (let wait = 1; ; wait = Math.min(wait * 2, 20)) {
    if (readProcs(dir)?.includes(pid)) return;
    const status = exited();
    // Any other exit came from the app itself, which ran (inside): its exit is handled like any other.
    if (status && status.code !== SHIM_FAILED_EXIT) return;
    if (status) {
      throw new AgentpmError(
        'spawn-failed',
        `it could not enter its cgroup ${dir} (the exec shim exited ${SHIM_FAILED_EXIT}; see the app's error log); unset AGENTPM_CONTAINMENT or set it to proc to run without cgroups`,
      );
    }
    if (Date.now() > ends) throw new AgentpmError('spawn-failed', `it did not enter its cgroup ${dir} within ${JOIN_WAIT_MS / 1000}s`);
    await sleep(wait);
  }
}
