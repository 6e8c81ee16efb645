/**
 * Kernel containment: the one interface the daemon uses, whatever the machine offers. A backend puts
 * each instance in a cgroup of its own (membership no process can leave by itself, a kill no fork can
 * outrun), or, where cgroups cannot be written, leaves attribution to the /proc inference (`proc`).
 */

export const BACKENDS = ['cgroup2', 'hybrid', 'cgroup1', 'proc'] as const;
export type BackendKind = (typeof BACKENDS)[number];
export type CgroupBackend = Exclude<BackendKind, 'proc'>;

/**
 * The hierarchies a backend uses: `unified` is the cgroup2 hierarchy (membership, cgroup.kill,
 * cgroup.freeze; limits too when its controllers are enabled), the others are cgroup v1 controllers.
 */
export const HIERARCHIES = ['memory', 'pids', 'cpu', 'freezer', 'unified'] as const;
export type Hierarchy = (typeof HIERARCHIES)[number];
export type CgroupDirs = Partial<Record<Hierarchy, string>>;

/**
 * An instance's cgroup, one directory per hierarchy (absolute paths). Recorded in the registry, so a
 * new daemon reads the same membership whatever backend it chose itself.
 */
export interface InstanceCgroup {
  backend: CgroupBackend;
  dirs: CgroupDirs;
}

/** What `daemon status` shows: the backend, why, and what would give a better one. */
export interface ContainmentInfo {
  backend: BackendKind;
  reason: string;
  /** How to get (better) containment; null when nothing better is possible. */
  enable: string | null;
  /** How the daemon was launched: 'systemd-scope' (a delegated scope), 'systemd-unit', or 'direct'. */
  launcher: string;
  /** The home's cgroup per hierarchy; empty for `proc`. */
  dirs: CgroupDirs;
}

export interface Containment {
  readonly info: ContainmentInfo;
  /**
   * The cgroup of a new instance, created (with the limits of its app once those are wired); null when
   * this backend creates none. Throws an AgentpmError('spawn-failed') naming the directory it could not make.
   */
  create(app: string, instanceId: string): InstanceCgroup | null;
  /** The cgroup an instance of this id has (or would have): for an intent a dead daemon never recorded. */
  expected(app: string, instanceId: string): InstanceCgroup | null;
  /** Where what an instance of a `reap: false` app detaches goes, so that its stop does not end it. */
  detachedDirs(app: string): CgroupDirs | null;
  /** Instance cgroups of this home not in `live` (ids): what is left of instances that are gone. */
  stale(live: ReadonlySet<string>): InstanceCgroup[];
  /** Removes an app's cgroups (delete): its detached processes go back to the daemon's own cgroup. */
  removeApp(app: string): void;
  /**
   * At the daemon's exit: back into its own cgroup, and every empty cgroup of the home removed. With
   * `everything` (agentpm kill), detached processes are released first so that the whole tree goes.
   */
  shutdown(everything: boolean): void;
}
