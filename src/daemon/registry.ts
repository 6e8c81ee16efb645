/**
 * The registry on disk: app definitions, desired state, the live instance's identity (root pid + start
 * time + instance id) and restart counters. Written atomically (temp file, fsync, rename) on every
 * change, mode 0600, because it holds the apps' environments. A new daemon reads it to re-adopt.
 */
import { readdirSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { AgentpmError } from '../errors.js';
import { ADDED_SPEC_DEFAULTS } from '../config/defaults.js';
import type { AppSpec, AppStatus, DaemonSettings, ExitRecord } from '../protocol.js';
import { readOwnedFile, writeOwnedFileAtomic } from '../safe-files.js';
import type { RestartHistory } from './backoff.js';
import type { InstanceCgroup } from '../cgroup/types.js';

export const REGISTRY_VERSION = 1;

export interface PersistedInstance {
  id: string;
  pid: number;
  startTime: number;
  /** ms since the epoch */
  startedAt: number;
  /**
   * When the root was last known alive (clock ticks since boot): what proves, after the root died, that
   * a session of its pid is still its own (see proc/tree.ts). As of the last write of the registry.
   */
  rootSeenAlive?: number;
  /**
   * The instance's own cgroup, when a cgroup backend contained it: its membership is the instance, for
   * this daemon and the next one. Absent under `proc` (and in registries written before containment).
   */
  cgroup?: InstanceCgroup;
}

/**
 * An instance about to be spawned, written before the spawn: a daemon that dies between the spawn and
 * the next write leaves a tree that only its tags name, and the next daemon finds it by this id (adopts
 * it, or ends it) before it starts anything.
 */
export interface SpawnIntent {
  id: string;
  /** ms since the epoch when the spawn was decided */
  at: number;
}

export interface PersistedApp {
  spec: AppSpec;
  desired: 'running' | 'stopped';
  status: AppStatus;
  instance: PersistedInstance | null;
  /** Absent in registries written before intents existed. */
  spawning?: SpawnIntent | null;
  restarts: number;
  history: RestartHistory;
  /** ms since the epoch when a pending backoff ends */
  nextStartAt: number | null;
  exits: ExitRecord[];
}

export interface RegistryFile {
  version: typeof REGISTRY_VERSION;
  /** The boot the instances were recorded in; after a reboot none of them can be alive. */
  bootId: string | null;
  apps: PersistedApp[];
  settings?: Partial<DaemonSettings>;
}

/**
 * A registry (or a `save` dump) written by an older agentpm lacks the definition fields added since;
 * they are filled in with the values that mean "as before", so that upgrading agentpm and running
 * `agentpm daemon restart` re-adopts every app instead of failing on a missing field.
 */
export function upgradeSpec(saved: AppSpec): AppSpec {
  return { ...ADDED_SPEC_DEFAULTS, ...saved };
}

export type LoadResult = { ok: true; registry: RegistryFile } | { ok: false; problem: string };

export function loadRegistry(path: string): LoadResult {
  let text: string;
  try {
    text = readOwnedFile(path).toString('utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { ok: true, registry: { version: REGISTRY_VERSION, bootId: null, apps: [] } };
    return { ok: false, problem: `cannot read ${path}: ${(error as Error).message}` };
  }
  try {
    const parsed = JSON.parse(text) as Partial<RegistryFile>;
    if (parsed.version !== REGISTRY_VERSION || !Array.isArray(parsed.apps)) {
      return { ok: false, problem: `${path} has registry version ${String(parsed.version)}, expected ${REGISTRY_VERSION}` };
    }
    const registry = parsed as RegistryFile;
    return { ok: true, registry: { ...registry, apps: registry.apps.map((app) => ({ ...app, spec: upgradeSpec(app.spec) })) } };
  } catch (error) {
    return { ok: false, problem: `${path} is not valid JSON: ${(error as Error).message}` };
  }
}

/**
 * Temp file, fsync, rename: a reader sees the old registry or the new one, never a mix. A write that
 * fails (a full disk) removes its partial temp file and throws; the old registry stays as it was.
 */
export function saveRegistry(path: string, registry: RegistryFile): void {
  writeAtomically(path, JSON.stringify(registry, null, 1));
}

/** The registry's way of writing a private file (also `agentpm save`'s dump). */
export function writeAtomically(path: string, text: string): void {
  // Without following a symlink planted at the name or the temp name (see safe-files.ts).
  writeOwnedFileAtomic(path, text);
}

/**
 * Temp files (of writeAtomically) of writers that died mid-write (kill -9 between open and rename). Only the daemon holding
 * the home's lock calls this, so no live writer's file is removed.
 */
export function removeStaleTempFiles(path: string): string[] {
  const prefix = `${basename(path)}.`;
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dirname(path));
  } catch {
    return removed;
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || !/^\d+\.tmp$/.test(name.slice(prefix.length))) continue;
    rmSync(join(dirname(path), name), { force: true });
    removed.push(name);
  }
  return removed;
}

/** A registry (or dump) that could not be written: the file, why (a full disk named as such), and what follows. */
export function unwritable(path: string, error: unknown, consequence: string): AgentpmError {
  const code = (error as NodeJS.ErrnoException).code;
  const why =
    code === 'ENOSPC' || code === 'EDQUOT'
      ? `the disk holding it is full (${code}); free space there (df -h ${dirname(path)})`
      : `${(error as Error).message}; check that the directory is writable`;
  return new AgentpmError('registry-unwritable', `cannot write ${path}: ${why}. ${consequence}`);
}
