/**
 * What a home's registry file says is alive, for reaping without that home's daemon (no daemon running,
 * or another home with --all-homes). An instance counts as live if its root is still the process that
 * was started: same pid and start time. The tag is not asked for here: liveness only protects processes
 * from being reaped, and a root that rewrote its environment (setproctitle) must keep its children.
 */
import { statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { homePaths } from '../home.js';
import type { InstanceRef } from '../proc/tree.js';
import { isAlive, type ProcessTable } from '../proc/table.js';
import { loadRegistry } from '../daemon/registry.js';
import type { HomeView } from './find.js';

export function homeViewFromRegistry(home: string, table: ProcessTable): HomeView | null {
  // A relative AGENTPM_HOME names nothing certain: it depends on the directory it was read from.
  if (!isAbsolute(home)) return null;
  try {
    // Only homes of this user: another user's registry is not ours to act on (loadRegistry also refuses
    // a registry that is not this user's regular file).
    if (statSync(home).uid !== process.getuid?.()) return null;
  } catch {
    return null;
  }
  const loaded = loadRegistry(homePaths(home).registry);
  if (!loaded.ok) return null;
  const live: InstanceRef[] = [];
  // Pids and start times recorded in another boot name nothing now (an early boot service may match).
  const sameBoot = loaded.registry.bootId === null || loaded.registry.bootId === table.bootId;
  for (const app of sameBoot ? loaded.registry.apps : []) {
    // A tree spawned just before its daemon died is known only by its intent: the next daemon adopts it.
    if (app.spawning) live.push({ id: app.spawning.id, rootPid: 0, rootStartTime: 0, rootIsChild: false, followDetached: true });
    const instance = app.instance;
    if (!instance) continue;
    const root = table.read(instance.pid);
    if (!root || !isAlive(root) || root.startTime !== instance.startTime) continue;
    live.push({ id: instance.id, rootPid: instance.pid, rootStartTime: instance.startTime, rootIsChild: true });
  }
  return { home, apps: new Set(loaded.registry.apps.map((app) => app.spec.name)), live };
}
