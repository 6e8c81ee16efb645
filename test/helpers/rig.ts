/**
 * A test rig: a temporary AGENTPM_HOME, the real CLI (bin/agentpm, compiled), a real daemon on a real
 * socket, and a teardown that ends everything the test started and fails if agentpm itself left
 * anything behind. Use with `await using rig = await Rig.create()` or call dispose() in finally.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AppDetail, AppSummary } from '../../src/protocol.js';
import { isAlivePid, liveProcesses, readProcess, TEST_HOME_PREFIX } from './procs.js';
import { cgroupsBelow, findTrees, noteTreeName, procsIn, removeTreeOf, treeNameOf } from './cgroups.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = join(ROOT, 'bin', 'agentpm');
export const FIXTURES = join(ROOT, 'test', 'fixtures');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export async function waitFor<T>(probe: () => T | undefined | null | false | Promise<T | undefined | null | false>, what: string, timeoutMs = 10_000, intervalMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== null && value !== false) return value;
      last = value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${String(last)})`);
    await sleep(intervalMs);
  }
}

export class Rig {
  /** PIDs the test started itself (outside agentpm), killed at teardown. */
  readonly ownPids = new Set<number>();

  private constructor(readonly home: string, readonly env: NodeJS.ProcessEnv) {}

  /** `home`: a directory of the test's own (e.g. on a small filesystem it mounted); by default a fresh temp dir. */
  static async create(extraEnv: Record<string, string> = {}, options: { home?: string } = {}): Promise<Rig> {
    const home = options.home ?? mkdtempSync(join(tmpdir(), TEST_HOME_PREFIX));
    const env: NodeJS.ProcessEnv = { ...process.env, AGENTPM_HOME: home, AGENTPM_TICK_MS: '200', NO_COLOR: '1', ...extraEnv };
    delete env['AGENTPM_APP'];
    delete env['AGENTPM_INSTANCE'];
    noteTreeName(home);
    return new Rig(home, env);
  }

  /** Runs the CLI, from the repository unless `cwd` says otherwise. */
  cli(args: string[], options: { timeoutMs?: number; env?: Record<string, string>; cwd?: string } = {}): Promise<CliResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, ...args], { env: { ...this.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'], cwd: options.cwd ?? ROOT });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`agentpm ${args.join(' ')} did not finish within ${options.timeoutMs ?? 30_000} ms\n${stdout}\n${stderr}`));
      }, options.timeoutMs ?? 30_000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  /** Runs the CLI and fails with its output unless it exits 0. */
  async ok(args: string[]): Promise<string> {
    const result = await this.cli(args);
    if (result.code !== 0) throw new Error(`agentpm ${args.join(' ')} exited ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
    return result.stdout;
  }

  async ls(): Promise<AppSummary[]> {
    return JSON.parse(await this.ok(['ls', '--json'])) as AppSummary[];
  }

  async app(name: string): Promise<AppSummary> {
    const app = (await this.ls()).find((entry) => entry.name === name);
    if (!app) throw new Error(`no app ${name} in ls`);
    return app;
  }

  async show(name: string): Promise<AppDetail> {
    return JSON.parse(await this.ok(['show', name, '--json'])) as AppDetail;
  }

  /** Live processes tagged with this rig's home. */
  tagged(): { pid: number; app: string | undefined; instance: string | undefined; cmd: string }[] {
    return liveProcesses((proc) => proc.env.get('AGENTPM_HOME') === this.home && proc.env.has('AGENTPM_INSTANCE')).map((proc) => ({
      pid: proc.pid,
      app: proc.env.get('AGENTPM_APP'),
      instance: proc.env.get('AGENTPM_INSTANCE'),
      cmd: proc.cmd,
    }));
  }

  /** Live instance ids per app, from /proc: more than one for an app means two trees. */
  instancesByApp(): Map<string, Set<string>> {
    const byApp = new Map<string, Set<string>>();
    for (const proc of this.tagged()) {
      const instances = byApp.get(proc.app ?? '?') ?? new Set<string>();
      instances.add(proc.instance ?? '?');
      byApp.set(proc.app ?? '?', instances);
    }
    return byApp;
  }

  /** The log relay's pid, if one runs for this home. */
  relayPid(): number | undefined {
    return liveProcesses((proc) => proc.env.get('AGENTPM_HOME') === this.home && proc.cmd.includes('dist/logs/relay/main.js'))[0]?.pid;
  }

  /** The daemon's pid, if one runs for this home. */
  daemonPid(): number | undefined {
    return liveProcesses((proc) => proc.env.get('AGENTPM_HOME') === this.home && proc.cmd.includes('dist/daemon/main.js'))[0]?.pid;
  }

  /**
   * Stops everything: `agentpm kill`, then SIGKILL by pid for anything still tagged with this home
   * (only this test's processes carry it) and for the pids the test started. Throws if agentpm's own
   * kill left tagged processes behind, so a leak fails the test that caused it.
   */
  async dispose(): Promise<void> {
    let leaked: string[] = [];
    const tree = new Set([treeNameOf(this.home)]);
    try {
      const killed = await this.cli(['kill'], { timeoutMs: 60_000 });
      await waitFor(() => this.daemonPid() === undefined, 'the daemon to exit', 5000).catch(() => undefined);
      // After `kill` the relay exits by itself once the stopped apps' FIFOs are drained; whatever is
      // left of it (a test that killed the daemon) is ended below by pid, as every process of this home.
      await waitFor(() => this.relayPid() === undefined, 'the log relay to exit', 3000).catch(() => undefined);
      leaked = this.tagged().map((proc) => `${proc.pid} ${proc.cmd}`);
      // A daemon that ran `kill` removes its whole cgroup tree; without one (killed by a test), the tree is the rig's to remove.
      if (killed.stdout.includes('daemon stopped')) {
        for (const dir of findTrees(tree)) leaked.push(...cgroupsBelow(dir).map((cgroup) => `cgroup ${cgroup} (members: ${procsIn(cgroup).map((pid) => `${pid} ${readProcess(pid)?.cmd ?? '?'}`).join(', ') || 'none'})`));
      }
    } finally {
      await removeTreeOf(this.home);
      for (let round = 0; round < 50; round += 1) {
        const pids = [...liveProcesses((proc) => proc.env.get('AGENTPM_HOME') === this.home).map((proc) => proc.pid), ...[...this.ownPids].filter(isAlivePid)];
        if (pids.length === 0) break;
        for (const pid of pids) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
        await sleep(20);
      }
      rmSync(this.home, { recursive: true, force: true });
    }
    if (leaked.length > 0) throw new Error(`agentpm kill left ${leaked.length} tagged process(es) or cgroup(s) behind:\n${leaked.join('\n')}`);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}
