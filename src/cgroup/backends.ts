/**
 * The backends. Each cgroup backend differs only in the hierarchies it writes (`cgroup2`: the unified
 * one; `hybrid`: v1 memory, pids, cpu, freezer for limits plus the unified one for membership and
 * cgroup.kill; `cgroup1`: the v1 ones, the freezer for membership and killing); the layout is the same:
 *
 *   <daemon's own cgroup>/agentpm-<hash of the home>/daemon              the daemon itself (a leaf)
 *                                                   /apps/<app>/<instance> one per instance
 *                                                   /apps/<app>/detached   what a `reap: false` app leaves
 *
 * Always under the daemon's own cgroup, never at a hierarchy's root: the host's limits on the daemon
 * keep applying to its apps. The daemon sits in a leaf because cgroup v2 allows no processes in a cgroup
 * that enables controllers for its children. Only directories named here are ever created or removed.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentpmError } from '../errors.js';
import { childGroups, dirsEntries, ensureDir, membershipDir, moveProcess, readProcs, removeTree } from './cgroupfs.js';
import type { CgroupBackend, CgroupDirs, Containment, ContainmentInfo, InstanceCgroup } from './types.js';

export const DETACHED = 'detached';

/** A directory name for an app that cannot be taken for a cgroup interface file (cgroup.procs, memory.max…). */
export function appDirName(app: string): string {
  return /^(cgroup|memory|pids|cpu|cpuacct|cpuset|io|blkio|freezer|hugetlb|rdma|misc|devices|net_cls|net_prio|perf_event|notify_on_release|release_agent|tasks)($|\.)/.test(app) || app === DETACHED
    ? `_${app}`
    : app;
}

export class ProcContainment implements Containment {
  constructor(readonly info: ContainmentInfo) {}
  create(): InstanceCgroup | null {
    return null;
  }
  expected(): InstanceCgroup | null {
    return null;
  }
  detachedDirs(): CgroupDirs | null {
    return null;
  }
  stale(): InstanceCgroup[] {
    return [];
  }
  removeApp(): void {}
  shutdown(): void {}
}

export class CgroupContainment implements Containment {
  /** The home's tree per hierarchy. */
  private readonly home: CgroupDirs;

  constructor(
    readonly info: ContainmentInfo,
    private readonly backend: CgroupBackend,
    /** The daemon's own cgroup per hierarchy. */
    private readonly own: CgroupDirs,
    treeName: string,
  ) {
    this.home = this.map((dir) => join(dir, treeName), own);
    this.info = { ...info, dirs: this.home };
  }

  /** Creates the tree and moves the daemon into its leaf; throws when the kernel refuses. */
  setup(): void {
    const leaf = this.map((dir) => join(dir, 'daemon'));
    for (const [, dir] of dirsEntries(this.home)) {
      ensureDir(join(dir, 'daemon'));
      ensureDir(join(dir, 'apps'));
    }
    if (!moveProcess(process.pid, leaf)) throw new Error(`cannot move the daemon into ${membershipDir(leaf)}`);
    // Limits in a pure v2 tree need the controllers passed down to the instances (best effort: what the
    // parent does not offer cannot be enabled here).
    this.enableControllers(this.home.unified);
    this.enableControllers(this.home.unified && join(this.home.unified, 'apps'));
  }

  create(app: string, instanceId: string): InstanceCgroup {
    const cgroup = this.expected(app, instanceId);
    try {
      this.enableControllers(this.home.unified && join(this.home.unified, 'apps', appDirName(app)), true);
      for (const [, dir] of dirsEntries(cgroup.dirs)) ensureDir(dir);
    } catch (error) {
      throw new AgentpmError('spawn-failed', `cannot create its cgroup (${(error as Error).message}); set AGENTPM_CONTAINMENT=proc to run without cgroups`);
    }
    return cgroup;
  }

  expected(app: string, instanceId: string): InstanceCgroup {
    return { backend: this.backend, dirs: this.map((dir) => join(dir, 'apps', appDirName(app), instanceId)) };
  }

  detachedDirs(app: string): CgroupDirs {
    const dirs = this.map((dir) => join(dir, 'apps', appDirName(app), DETACHED));
    for (const [, dir] of dirsEntries(dirs)) ensureDir(dir);
    return dirs;
  }

  stale(live: ReadonlySet<string>): InstanceCgroup[] {
    const base = membershipDir(this.home);
    if (base === null) return [];
    const found: InstanceCgroup[] = [];
    for (const app of childGroups(join(base, 'apps'))) {
      for (const id of childGroups(join(base, 'apps', app))) {
        if (id === DETACHED || live.has(id)) continue;
        found.push({ backend: this.backend, dirs: this.map((dir) => join(dir, 'apps', app, id)) });
      }
    }
    return found;
  }

  removeApp(app: string): void {
    const appDirs = this.map((dir) => join(dir, 'apps', appDirName(app)));
    this.release(this.map((dir) => join(dir, DETACHED), appDirs));
    for (const [, dir] of dirsEntries(appDirs)) removeTree(dir);
  }

  shutdown(everything: boolean): void {
    // The daemon's helpers (the log relay, which outlives it) go back with it: they are no app's, and the
    // tree must be removable once its apps are gone.
    const leaf = this.map((dir) => join(dir, 'daemon'));
    moveProcess(process.pid, this.own);
    if (everything) {
      const base = membershipDir(this.home);
      for (const app of base ? childGroups(join(base, 'apps')) : []) this.release(this.map((dir) => join(dir, 'apps', app, DETACHED)));
    }
    // After `kill`, every app is gone: what is still exiting (a member being reaped, a helper started
    // late) gets a bounded moment. Otherwise running apps keep their cgroups, and one pass removes the rest.
    for (let attempt = 0; attempt < (everything ? 50 : 1); attempt += 1) {
      if (attempt > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      this.release(leaf);
      if (dirsEntries(this.home).map(([, dir]) => removeTree(dir)).every(Boolean)) return;
    }
  }

  /** What a `reap: false` app detached goes back to the daemon's own cgroup, where it would be without agentpm. */
  private release(dirs: CgroupDirs): void {
    const from = membershipDir(dirs);
    for (const pid of (from && readProcs(from)) || []) moveProcess(pid, this.own);
  }

  private map(to: (dir: string) => string, from: CgroupDirs = this.home): CgroupDirs {
    const out: CgroupDirs = {};
    for (const [hierarchy, dir] of dirsEntries(from)) out[hierarchy] = to(dir);
    return out;
  }

  private enableControllers(dir: string | undefined, create = false): void {
    if (!dir || this.backend !== 'cgroup2') return;
    try {
      if (create) ensureDir(dir);
      const available = readFileSync(join(dir, 'cgroup.controllers'), 'latin1').split(/\s+/);
      const wanted = ['memory', 'pids', 'cpu'].filter((name) => available.includes(name));
      if (wanted.length > 0) writeFileSync(join(dir, 'cgroup.subtree_control'), wanted.map((name) => `+${name}`).join(' '));
    } catch {
      // not offered by the parent: membership and kill still work, limits stay the tick's
    }
  }
}
