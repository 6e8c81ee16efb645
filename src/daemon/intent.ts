/**
 * Finding the tree of an intended spawn (see SpawnIntent) that a dead daemon never recorded.
 */
import type { AppSpec } from '../protocol.js';
import { isAlive, type ProcInfo, type ProcSnapshot, type ProcessTable } from '../proc/table.js';
import type { SpawnIntent } from './registry.js';
import { commandFor } from './spawn.js';

/**
 * The root of an intended instance, if the spawn happened: the first process carrying the instance's
 * tag, leading its own session (the root is spawned with setsid) and running the app's command (under
 * a cgroup backend, once the exec shim has become the app).
 */
export function findIntendedRoot(table: ProcessTable, snapshot: ProcSnapshot, home: string, spec: AppSpec, intent: SpawnIntent): ProcInfo | null {
  const { file, args } = commandFor(spec);
  let root: ProcInfo | null = null;
  for (const proc of snapshot.byPid.values()) {
    if (!isAlive(proc) || proc.sid !== proc.pid) continue;
    const tags = table.tags(proc, true);
    if (tags?.instance !== intent.id || tags.home !== home || tags.app !== spec.name) continue;
    if (root === null || proc.startTime < root.startTime) root = proc;
  }
  if (root && table.cmdline(root, true) !== [file, ...args].join(' ')) return null;
  return root;
}
