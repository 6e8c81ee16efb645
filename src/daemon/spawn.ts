/**
 * Starting one instance of an app: its own session (setsid, so the tree is findable by session id),
 * stdin closed, stdout and stderr on the descriptors of its log sink (see log-sink.ts: the relay's
 * FIFOs, or the files). Nothing is piped through the daemon, so apps keep running and logging when it
 * dies (PM2's node apps died with its daemon, of EPIPE on its pipe). Every process of the tree
 * inherits the AGENTPM_* tags. Under a cgroup backend it goes through the exec shim (cgroup/shim.ts),
 * which enters the instance's cgroup and then becomes the app: the same pid, no process in between.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname } from 'node:path';
import { AgentpmError } from '../errors.js';
import type { AppSpec } from '../protocol.js';
import type { ProcessTable } from '../proc/table.js';
import { awaitJoined, checkExecutable, shimCommand } from '../cgroup/shim.js';
import type { InstanceCgroup } from '../cgroup/types.js';

export interface ExitStatus {
  code: number | null;
  signal: string | null;
}

export interface SpawnedInstance {
  id: string;
  pid: number;
  startTime: number;
  startedAt: number;
  child: ChildProcess;
  exited: Promise<ExitStatus>;
}

/** Tags that must never leak from the caller's environment into the daemon or an app's root. */
export const INSTANCE_TAGS = ['AGENTPM_APP', 'AGENTPM_INSTANCE'] as const;

const require = createRequire(import.meta.url);
let tsxLoader: string | undefined;

/** tsx's loader, by absolute path: the app's cwd need not have tsx installed. */
function tsxLoaderPath(): string {
  tsxLoader ??= require.resolve('tsx');
  return tsxLoader;
}

export function commandFor(spec: Pick<AppSpec, 'script' | 'args' | 'interpreter' | 'interpreterArgs'>): { file: string; args: string[] } {
  const interpreter = spec.interpreter ?? interpreterByExtension(spec.script);
  if (interpreter === 'none') return { file: spec.script, args: spec.args };
  if (interpreter === 'tsx') {
    // In-process loader rather than the tsx CLI: no wrapper process whose memory would hide the agent's.
    return { file: process.execPath, args: ['--import', tsxLoaderPath(), ...spec.interpreterArgs, spec.script, ...spec.args] };
  }
  const file = interpreter === 'node' ? process.execPath : interpreter;
  return { file, args: [...spec.interpreterArgs, spec.script, ...spec.args] };
}

export function interpreterByExtension(script: string): string {
  switch (extname(script)) {
    case '.ts':
    case '.mts':
    case '.cts':
      return 'tsx';
    case '.js':
    case '.mjs':
    case '.cjs':
      return 'node';
    case '.py':
      return 'python3';
    case '.sh':
      return 'bash';
    default:
      return 'none';
  }
}

export function newInstanceId(): string {
  return randomBytes(6).toString('hex');
}

export function instanceEnv(spec: AppSpec, home: string, instanceId: string): Record<string, string> {
  const env: Record<string, string> = { ...spec.baseEnv, ...spec.env };
  for (const tag of INSTANCE_TAGS) delete env[tag];
  env['AGENTPM_APP'] = spec.name;
  env['AGENTPM_INSTANCE'] = instanceId;
  env['AGENTPM_HOME'] = home;
  return env;
}

/**
 * `output`: the instance's stdout and stderr; the caller closes its own copies after the spawn. `cgroup`:
 * the instance's own cgroup, entered through the exec shim before the app runs (see cgroup/shim.ts).
 */
export async function spawnInstance(spec: AppSpec, home: string, table: ProcessTable, id: string, output: { out: number; err: number }, cgroup: InstanceCgroup | null = null): Promise<SpawnedInstance> {
  const command = commandFor(spec);
  const env = instanceEnv(spec, home, id);
  const unrunnable = cgroup ? checkExecutable(command.file, spec.cwd, env['PATH']) : null;
  if (unrunnable) throw new AgentpmError('spawn-failed', `cannot start ${spec.name}: ${command.file}: ${unrunnable}; check the script path and interpreter`);
  const { file, args } = cgroup ? shimCommand(cgroup, command) : command;
  const { out, err } = output;
  let child: ChildProcess;
  try {
    child = spawn(file, args, {
      cwd: spec.cwd,
      env,
      stdio: ['ignore', out, err],
      detached: true,
    });
  } catch (error) {
    throw new AgentpmError('spawn-failed', `cannot start ${spec.name}: ${(error as Error).message}`);
  }
  let status: ExitStatus | null = null;
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => resolve((status = { code, signal })));
  });
  const pid = child.pid;
  if (pid === undefined) {
    const error = await new Promise<Error>((resolve) => child.once('error', resolve));
    throw new AgentpmError('spawn-failed', `cannot start ${spec.name}: ${file}: ${error.message}; check the script path and interpreter`);
  }
  child.on('error', () => {
    // After a successful spawn the only errors are failed kill() calls, which agentpm never makes through
    // the handle (it signals by verified pid). Listening keeps a stray one from crashing the daemon.
  });
  setOomScore(pid, spec.oomScoreAdj);
  // The child cannot have been reaped yet (libuv reaps on a later loop turn), so its stat is readable.
  let startTime: number;
  try {
    startTime = table.read(pid)?.startTime ?? -1;
  } catch (error) {
    // Without its start time it could never be signalled safely: end it now, while it is surely ours
    // (our unreaped child, leading its own new process group).
    killOwnGroup(pid);
    throw new AgentpmError('spawn-failed', `cannot start ${spec.name}: cannot read its /proc entry (${(error as Error).message})`);
  }
  if (cgroup) {
    try {
      await awaitJoined(cgroup, pid, () => status);
    } catch (error) {
      if (status === null) killOwnGroup(pid);
      throw new AgentpmError('spawn-failed', `cannot start ${spec.name}: ${(error as Error).message}`);
    }
  }
  return { id, pid, startTime, startedAt: Date.now(), child, exited };
}

function killOwnGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/**
 * The app's oom_score_adj, so the kernel and earlyoom pick the right victim when it comes to that.
 * Without one, a daemon protected from the OOM killer (OOMScoreAdjust=-500 in its unit) would pass
 * that protection to every agent; agents are the ones to sacrifice before their supervisor, so each
 * root then starts at 0 (raising a score needs no privilege; lowering one needs CAP_SYS_RESOURCE).
 */
function setOomScore(pid: number, wanted: number | null): void {
  try {
    const value = wanted ?? (Number(readFileSync('/proc/self/oom_score_adj', 'latin1')) < 0 ? 0 : null);
    if (value !== null) writeFileSync(`/proc/${pid}/oom_score_adj`, String(value));
  } catch {
    // no /proc, or not permitted: the child keeps the daemon's score
  }
}
