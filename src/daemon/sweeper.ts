/**
 * The daemon's side of reaping: the automatic sweep for orphans (every interval, and soon after every
 * stop, restart and crash), and `agentpm reap` requests, one at a time so that two reapers never work
 * over the same processes. Finding and ending orphans is src/reap/; this decides when and reports it.
 */
import { DEFAULT_REAP_GRACE_MS } from '../config/defaults.js';
import type { OrphanInfo, ProcessRef, ReapOptions, ReapResult, UnmanagedReap } from '../protocol.js';
import type { ProcessTable } from '../proc/table.js';
import type { HomeView } from '../reap/find.js';
import type { ReapGuard } from '../reap/guard.js';
import { endOrphans, listOrphans, reap, type ReapContext } from '../reap/reap.js';
import { homeViewFromRegistry } from '../reap/views.js';
import { commandPattern, type CommandPattern } from '../reap/pattern.js';
import type { EventBus } from './events.js';

export interface SweeperHost {
  readonly table: ProcessTable;
  readonly events: EventBus;
  readonly home: string;
  /** What is live in this home right now (the daemon's own registry, not the file). */
  ownView(): HomeView;
  /** Apps with `reap: false`: their orphans are not swept automatically. */
  optedOut(): Set<string>;
  unmanagedPatterns(): UnmanagedReap[];
  log(message: string): void;
}

interface OrphanGroup {
  orphans: OrphanInfo[];
  reason: string;
  app: string | null;
  instance: string | null;
  pattern: CommandPattern | null;
  guard: ReapGuard;
}

export class OrphanSweeper {
  private interval: NodeJS.Timeout | undefined;
  private soon: NodeJS.Timeout | undefined;
  /** Sweeps and reaps run one at a time, in order: two at once would end the same orphans twice. */
  private chain: Promise<unknown> = Promise.resolve();
  private sweepQueued = false;

  constructor(private readonly host: SweeperHost) {}

  /** (Re)starts the periodic sweep. */
  every(intervalMs: number): void {
    if (this.interval) clearInterval(this.interval);
    this.interval = setInterval(() => this.schedule(0), intervalMs);
  }

  /** A sweep shortly (coalesced: at most one waiting to run). */
  schedule(delayMs: number): void {
    if (this.soon || this.sweepQueued) return;
    this.soon = setTimeout(() => {
      this.soon = undefined;
      this.sweepQueued = true;
      this.inTurn(() => {
        this.sweepQueued = false;
        return this.sweep();
      }).catch((error: unknown) => this.host.log(`orphan sweep failed: ${(error as Error).message}`));
    }, delayMs);
  }

  /** A sweep now, in turn with the others (a new daemon's, before it starts anything). */
  sweepNow(): Promise<void> {
    return this.inTurn(() => this.sweep());
  }

  /** `agentpm reap`: by hand, so apps with `reap: false` are included. */
  reapNow(options: ReapOptions): Promise<ReapResult> {
    return this.inTurn(() => reap(this.context(), options));
  }

  close(): void {
    if (this.interval) clearInterval(this.interval);
    if (this.soon) clearTimeout(this.soon);
  }

  private inTurn<T>(job: () => Promise<T>): Promise<T> {
    const run = this.chain.then(job, job);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private self(): ProcessRef {
    const proc = this.host.table.read(process.pid);
    if (!proc) throw new Error('cannot read the daemon\'s own /proc entry');
    return { pid: proc.pid, startTime: proc.startTime };
  }

  private context(): ReapContext {
    const { table, home } = this.host;
    return {
      table,
      home,
      viewOf: (other) => (other === home ? this.host.ownView() : homeViewFromRegistry(other, table)),
      daemon: true,
    };
  }

  /** Managed orphans of apps that allow it, and the unmanaged patterns opted into; one event per group. */
  private async sweep(): Promise<void> {
    const context = this.context();
    // The sweep has no caller but the daemon itself, which the guard protects with its ancestors anyway.
    const base: ReapOptions = { app: null, dryRun: true, allHomes: false, unmanaged: null, only: null, graceMs: DEFAULT_REAP_GRACE_MS, caller: this.self() };
    const optedOut = this.host.optedOut();
    const groups = new Map<string, OrphanGroup>();
    const managed = listOrphans(context, base);
    for (const item of managed.found) {
      if (item.app !== null && optedOut.has(item.app)) continue;
      const key = `managed:${item.instance}`;
      const group = groups.get(key) ?? { orphans: [], reason: item.why, app: item.app, instance: item.instance, pattern: null, guard: managed.guard };
      group.orphans.push(item);
      groups.set(key, group);
    }
    for (const pattern of this.host.unmanagedPatterns()) {
      try {
        const listing = listOrphans(context, { ...base, unmanaged: pattern });
        const unmanaged = listing.found.filter((item) => item.why === 'unmanaged-match');
        if (unmanaged.length > 0) groups.set(`unmanaged:${pattern.match}`, { orphans: unmanaged, reason: 'unmanaged-match', app: null, instance: null, pattern: commandPattern(pattern.match), guard: listing.guard });
      } catch (error) {
        // A pattern that overran its time budget (see pattern.ts) is skipped; the others still run.
        this.host.log(`unmanaged pattern ${pattern.match}: ${(error as Error).message}`);
      }
    }
    for (const group of groups.values()) {
      const { ended, survivors } = await endOrphans(this.host.table, group.orphans, DEFAULT_REAP_GRACE_MS, group.pattern, group.guard);
      const data = {
        count: ended,
        survivors,
        pids: group.orphans.map((item) => item.pid),
        memory: group.orphans.reduce((sum, item) => sum + item.rss, 0),
        ...(group.pattern ? { match: group.pattern.source } : {}),
      };
      this.host.events.emit('orphans-reaped', group.app, group.instance, group.reason, data);
    }
  }
}
