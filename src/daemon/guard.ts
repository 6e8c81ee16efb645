/**
 * The memory-pressure guard: act before earlyoom and the kernel do, gracefully and predictably. When
 * available memory falls under the threshold (or PSI memory pressure rises over it), one victim is
 * chosen, the lowest `priority` first and then the largest tree, and restarted or stopped (its
 * `guardAction`) through the normal stop path. Then the guard waits for memory to recover before it
 * chooses another, so it never empties the machine in one burst. Off unless configured.
 */
import type { GuardSettings, MachineMemory } from '../protocol.js';
import { readMachineMemory } from '../proc/machine.js';
import type { App } from './app.js';
import type { EventBus } from './events.js';

export interface GuardCandidate {
  name: string;
  priority: number;
  memory: number;
}

export function underPressure(memory: MachineMemory, settings: GuardSettings): string | null {
  const available = memory.availableBytes;
  if (settings.minAvailableBytes !== null && available < settings.minAvailableBytes) {
    return `available memory ${available} bytes < ${settings.minAvailableBytes}`;
  }
  if (settings.minAvailablePercent !== null && memory.totalBytes > 0 && (available / memory.totalBytes) * 100 < settings.minAvailablePercent) {
    return `available memory ${((available / memory.totalBytes) * 100).toFixed(1)}% < ${settings.minAvailablePercent}%`;
  }
  if (settings.pressureSomeAvg10 !== null && memory.pressureSomeAvg10 !== null && memory.pressureSomeAvg10 > settings.pressureSomeAvg10) {
    return `memory pressure some avg10 ${memory.pressureSomeAvg10} > ${settings.pressureSomeAvg10}`;
  }
  return null;
}

/** Lowest priority first, then the largest tree; ties by name, so the choice is predictable. */
export function pickVictim(candidates: readonly GuardCandidate[]): GuardCandidate | null {
  return [...candidates].sort((a, b) => a.priority - b.priority || b.memory - a.memory || a.name.localeCompare(b.name))[0] ?? null;
}

export type GuardPhase = 'watching' | 'waiting-for-recovery';

export interface GuardHost {
  readonly events: EventBus;
  apps(): Iterable<App>;
  /** The app's tree memory at the last tick. */
  memoryOf(app: string): number;
  log(message: string): void;
}

/** The guard over the daemon's apps: one victim, then wait for memory to recover. */
export class MemoryGuard {
  private phase: GuardPhase = 'watching';

  constructor(private readonly host: GuardHost) {}

  /** On every monitor tick, with the settings of the moment (null: off). */
  check(guard: GuardSettings | null): void {
    if (!guard) return;
    const memory = readMachineMemory();
    const pressure = underPressure(memory, guard);
    if (this.phase === 'waiting-for-recovery') {
      if (pressure === null) {
        this.phase = 'watching';
        this.host.events.emit('guard', null, null, 'recovered', { availableBytes: memory.availableBytes });
      }
      return;
    }
    if (pressure === null) return;
    const online = [...this.host.apps()].filter((app) => app.status === 'online' && !app.enforcing && app.instance);
    const victim = pickVictim(online.map((app) => ({ name: app.name, priority: app.spec.priority, memory: this.host.memoryOf(app.name) })));
    const app = victim ? online.find((candidate) => candidate.name === victim.name) : undefined;
    const instance = app?.instance;
    if (!app || !instance) return;
    const action = app.spec.guardAction;
    this.host.log(`memory guard: ${pressure}; ${action === 'stop' ? 'stopping' : 'restarting'} ${app.name} (priority ${app.spec.priority}, tree ${victim?.memory} bytes), then waiting for memory to recover`);
    this.host.events.emit('guard', app.name, instance.id, 'memory-pressure', {
      availableBytes: memory.availableBytes,
      pressure: memory.pressureSomeAvg10,
      why: pressure,
      action,
      victim: app.name,
      treeBytes: victim?.memory ?? 0,
    });
    this.phase = 'waiting-for-recovery';
    app.endFor(instance.id, 'memory-pressure', action);
  }
}
