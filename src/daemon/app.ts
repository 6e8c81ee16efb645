/**
 * One app's lifecycle, as one explicit state machine.
 *
 *                 start / restart / revive
 *   stopped ──────────────────────────────▶ starting ──spawned──▶ online
 *    ▲  │ ...while a dependency is not ready  ▲  ▲  │                 │
 *    │  ▼                                     │  │  │ spawn failed    │ root exited by itself, or a
 *    │ waiting ────── dependencies ready ─────┘  │  ▼                 │ limit was enforced
 *    │  ▲                             delay over │                    │
 *    │  └─── delay over, a dependency not ready ── backoff ◀──────── stopping (the whole tree is ended)
 *    │                                              │                  │
 *    └──── stop (waiting too) / no autorestart ─────┴──────────────────┘
 *                                                   │ maxRestarts within the window
 *                                                   ▼
 *                                                errored ── start / restart ──▶ starting (or waiting)
 *
 * `waiting` is entered instead of `starting` whenever a spawn is due (start, restart, revive, the end of a
 * backoff) while an app named in `dependsOn` is not ready (see readiness.ts); the monitor tick releases it
 * into `starting` once all are. A dependency that never becomes ready leaves it waiting, never crash-looping.
 *
 * Every operation on an app (user requests, the app's own exits, limit enforcement) runs one at a time
 * through `exclusive`, so a transition never interleaves with another: "stop while starting", "restart
 * while in backoff" and "exit while stopping" each see a settled state. Two live trees under one name
 * cannot happen: a new instance is spawned only after the old one is confirmed gone.
 */
import { isDeepStrictEqual } from 'node:util';
import { AgentpmError } from '../errors.js';
import type { AppSpec, AppStatus, EventType, ExitReason, ExitRecord, HealthState } from '../protocol.js';
import { signalIfSameProcess } from '../proc/kill.js';
import { isAlive, type ProcessTable } from '../proc/table.js';
import { EMPTY_HISTORY, decideRestart, type RestartHistory } from './backoff.js';
import { classifyExit } from './forensics.js';
import type { LimitDecision } from './limits.js';
import type { PersistedApp, PersistedInstance, SpawnIntent } from './registry.js';
import { newInstanceId, type ExitStatus } from './spawn.js';

export interface Instance extends PersistedInstance {
  /** The exit status, when the root is our child; null for an instance adopted from an earlier daemon. */
  exited: Promise<ExitStatus> | null;
  /** The app's `reap` setting when the instance started: whether detached processes count as its own. */
  followDetached: boolean;
  /** pids.max was derived again from the tasks the started instance has (cgroup backends, see cgroup/limits.ts). */
  tasksCounted?: boolean;
  /** OOM kills in the instance's cgroup already reported. */
  oomKillsSeen?: number;
}

export type AppState =
  | { id: 'stopped' }
  /** `on`: the dependencies not ready yet. */
  | { id: 'waiting'; on: string[] }
  | { id: 'starting' }
  | { id: 'online'; instance: Instance }
  | { id: 'stopping'; instance: Instance }
  | { id: 'backoff'; until: number; timer: NodeJS.Timeout }
  | { id: 'errored' };

/** What an app needs from the daemon around it; the supervisor provides it. */
export interface AppHost {
  readonly table: ProcessTable;
  /** Starts the instance with this id (its processes carry it as their tag). */
  spawn(spec: AppSpec, instanceId: string): Promise<Instance>;
  /**
   * Writes the registry now, or throws (a full disk): what must be on disk before it happens (an
   * intent to spawn) is never done unrecorded.
   */
  persistNow(): void;
  /** Ends every process of the instance (signal, grace, KILL); how many were alive, how many survived. */
  terminate(instance: Instance, signal: NodeJS.Signals, graceMs: number): Promise<{ seen: number; survivors: number }>;
  /** Freezes and kills the whole instance at once (a fork storm). */
  contain(instance: Instance): Promise<{ seen: number; survivors: number }>;
  /** Whether any process of the instance is stopped (SIGSTOP): a containment was under way. */
  isFrozen(instance: Instance): boolean;
  /** Ends the given processes and their descendants only; the rest of the instance keeps running. */
  terminateSubtrees(instance: Instance, pids: { pid: number; startTime: number }[], graceMs: number): Promise<number>;
  /** The app's dependencies (dependsOn) that are not ready now; empty when it may start. */
  waitingFor(app: App): string[];
  /** Whether the kernel OOM-killed in the instance: its own cgroup's counter, else the machine's rose recently. */
  oomKillRose(instance: Instance): boolean;
  changed(app: App): void;
  emit(type: EventType, app: App, instance: string | null, reason: string | null, data?: Record<string, unknown>): void;
  log(app: App, message: string): void;
}

const MAX_EXITS_KEPT = 20;
/** How long to wait for a dead root's exit status to arrive from the child handle. */
const EXIT_STATUS_WAIT_MS = 2000;
/** Grace for an offending descendant: short, the agent itself keeps running. */
const OFFENDER_GRACE_MS = 2000;

export class App {
  state: AppState = { id: 'stopped' };
  desired: 'running' | 'stopped' = 'stopped';
  restarts = 0;
  history: RestartHistory = EMPTY_HISTORY;
  exits: ExitRecord[] = [];
  /** A limit action is queued or running: the monitor does not decide another until it is done. */
  enforcing = false;
  /** The health check's verdict on the current instance (see health.ts). */
  health: HealthState = 'starting';
  private queue: Promise<unknown> = Promise.resolve();
  /** Operations queued or running. */
  private pending = 0;
  private disposedFlag = false;
  /** A scheduled restart is queued or running (see restartOnSchedule). */
  private scheduledUnderWay = false;
  /** See hold(). */
  held: PersistedInstance | null = null;
  /** The instance being spawned, recorded before the spawn (see SpawnIntent). */
  spawning: SpawnIntent | null = null;

  constructor(
    public spec: AppSpec,
    private readonly host: AppHost,
  ) {}

  /** Retired: deleted, or left to the next daemon at shutdown. No operation runs on it any more. */
  get disposed(): boolean {
    return this.disposedFlag;
  }

  get name(): string {
    return this.spec.name;
  }

  get status(): AppStatus {
    return this.state.id;
  }

  /** The instance whose processes are alive or being ended, if any. */
  get instance(): Instance | null {
    return this.state.id === 'online' || this.state.id === 'stopping' ? this.state.instance : null;
  }

  /** Alive in the user's sense: start must be refused, restart used instead. */
  get active(): boolean {
    return this.state.id === 'waiting' || this.state.id === 'starting' || this.state.id === 'online' || this.state.id === 'backoff' || this.state.id === 'stopping';
  }

  /** What a waiting app waits for; null in any other state. */
  get waitingFor(): string[] | null {
    return this.state.id === 'waiting' ? this.state.on : null;
  }

  get nextStartAt(): number | null {
    return this.state.id === 'backoff' ? this.state.until : null;
  }

  start(spec?: AppSpec): Promise<void> {
    return this.exclusive(async () => {
      if (this.active) {
        throw new AgentpmError('already-running', `${this.name} is already running; use \`agentpm restart ${this.name}\`, or start with --replace`);
      }
      if (spec) this.spec = spec;
      this.desired = 'running';
      this.history = EMPTY_HISTORY;
      await this.spawnNow();
    });
  }

  stop(): Promise<void> {
    return this.exclusive(async () => {
      this.desired = 'stopped';
      await this.endCurrent('stopped', null);
      this.transition({ id: 'stopped' });
    });
  }

  /** Ends the tree and retires the app: every operation queued behind this one is refused (delete). */
  remove(): Promise<void> {
    return this.exclusive(async () => {
      this.desired = 'stopped';
      await this.endCurrent('stopped', null);
      this.transition({ id: 'stopped' });
      this.dispose();
    });
  }

  /**
   * A restart of the daemon's own (a watched file changed): judged when its turn comes, so that a stop
   * queued before it is not undone.
   */
  restartIfWanted(): Promise<void> {
    return this.exclusive(async () => {
      if (this.desired === 'running') await this.restartNow();
    });
  }

  /** Stops the current tree completely, then starts a new one; a manual restart clears errored and the backoff. */
  restart(spec?: AppSpec): Promise<void> {
    return this.exclusive(() => this.restartNow(spec));
  }

  /**
   * A restart by the app's schedule (cronRestart): only of a tree that is online, and never queued behind
   * another operation (a scheduled restart that is still ending a slow tree is not followed by another).
   */
  restartOnSchedule(): 'restarting' | 'busy' | 'not-online' {
    if (this.pending > 0 || this.scheduledUnderWay) return 'busy';
    if (this.state.id !== 'online' || this.disposed) return 'not-online';
    this.scheduledUnderWay = true;
    this.exclusiveInBackground('restarting on schedule', async () => {
      try {
        if (this.state.id === 'online') await this.restartNow(undefined, 'scheduled');
      } finally {
        this.scheduledUnderWay = false;
      }
    });
    return 'restarting';
  }

  /**
   * Called on every monitor tick: a waiting app whose dependencies are all ready now starts (and one whose
   * list of unready dependencies changed says so). Through the queue like every transition; spawnNow
   * checks the dependencies again when its turn comes.
   */
  releaseIfReady(): void {
    if (this.state.id !== 'waiting' || this.disposed || this.pending > 0) return;
    const blockers = this.host.waitingFor(this);
    if (blockers.length > 0 && isDeepStrictEqual(blockers, this.state.on)) return;
    this.exclusiveInBackground('starting after its dependencies', async () => {
      if (this.state.id === 'waiting') await this.spawnNow();
    });
  }

  private async restartNow(spec?: AppSpec, reason: ExitReason = 'stopped'): Promise<void> {
    if (spec) this.spec = spec;
    this.desired = 'running';
    const hadInstance = this.instance !== null;
    // Cleared before the stop, so a daemon that dies mid-restart leaves no crash-loop delay behind.
    this.history = EMPTY_HISTORY;
    await this.endCurrent(reason, null);
    if (hadInstance) this.restarts += 1;
    await this.spawnNow();
  }

  /** Signals the root process only (as PM2's sendSignal does), after checking it is still the same process. */
  signal(signal: NodeJS.Signals): Promise<void> {
    return this.exclusive(async () => {
      const instance = this.instance;
      if (!instance) throw new AgentpmError('invalid-argument', `${this.name} is ${this.status}; it has no process to signal. Start it first.`);
      signalIfSameProcess(this.host.table, instance, signal);
    });
  }

  /** The root of the current instance is gone (from the child handle, or seen missing by the monitor). */
  rootExited(instanceId: string, status: ExitStatus | null): void {
    this.exclusiveInBackground('handling the exit', async () => {
      if (this.disposed || this.state.id !== 'online' || this.state.instance.id !== instanceId) return; // already handled
      const instance = this.state.instance;
      this.transition({ id: 'stopping', instance }, 'root-exited');
      const oomKillRose = this.host.oomKillRose(instance);
      const { seen } = await this.host.terminate(instance, this.stopSignal, this.spec.killTimeoutMs);
      if (seen > 0) this.host.emit('leftovers-killed', this, instance.id, null, { count: seen });
      this.recordExit(instance, status, null, oomKillRose, seen, null);
      this.scheduleRestart(instance);
    });
  }

  /** Acts on a limit breach the monitor decided on (see limits.ts). */
  enforceLimit(instanceId: string, decision: Exclude<LimitDecision, { kind: 'none' }>): void {
    this.enforcing = true;
    this.exclusiveInBackground('enforcing a limit', async () => {
      try {
        if (this.disposed || this.state.id !== 'online' || this.state.instance.id !== instanceId) return;
        const instance = this.state.instance;
        const limit = { measured: decision.measured, limit: decision.limit };
        this.host.emit('limit-breach', this, instance.id, decision.reason, { ...limit, action: decision.kind });
        if (decision.kind === 'kill-offender') {
          const victims = decision.victims.map((item) => ({ pid: item.proc.pid, startTime: item.proc.startTime }));
          const ended = await this.host.terminateSubtrees(instance, victims, Math.min(OFFENDER_GRACE_MS, this.spec.killTimeoutMs));
          const data = { pids: victims.map((victim) => victim.pid), memory: decision.victims.map((item) => item.memory), ended };
          this.host.emit('offender-killed', this, instance.id, decision.reason, data);
          return;
        }
        if (decision.kind === 'contain') {
          this.transition({ id: 'stopping', instance });
          const { seen } = await this.host.contain(instance);
          const status = instance.exited ? await withTimeout(instance.exited, EXIT_STATUS_WAIT_MS) : null;
          this.recordExit(instance, status, decision.reason, false, Math.max(0, seen - 1), limit);
        } else {
          await this.endCurrent(decision.reason, limit);
        }
        this.scheduleRestart(instance);
      } finally {
        this.enforcing = false;
      }
    });
  }

  /**
   * Ends the current instance for a reason of the daemon's own (a failed health check, a hang, memory
   * pressure) through the normal stop path, then restarts it with backoff, or leaves it stopped.
   */
  endFor(instanceId: string, reason: ExitReason, then: 'restart' | 'stop'): void {
    this.enforcing = true;
    this.exclusiveInBackground(`ending the app (${reason})`, async () => {
      try {
        if (this.disposed || this.state.id !== 'online' || this.state.instance.id !== instanceId) return;
        const instance = this.state.instance;
        if (then === 'stop') this.desired = 'stopped';
        await this.endCurrent(reason, null);
        this.scheduleRestart(instance);
      } finally {
        this.enforcing = false;
      }
    });
  }

  /**
   * Re-adopts a live instance found by a new daemon (identity already verified). `ending`: the previous
   * daemon died while ending it; it is adopted as `stopping`, which the next tick finishes (recoverIfStuck).
   */
  adopt(instance: Instance, ending = false): void {
    this.spawning = null;
    this.transition({ id: ending ? 'stopping' : 'online', instance });
    this.host.emit('adopt', this, instance.id, null, { pid: instance.pid });
  }

  /**
   * A remembered root with the right pid and start time but without agentpm's tag (a root that rewrote
   * its environment, or a registry that is not this daemon's): neither adopted nor signalled. It stays
   * recorded, its processes are protected from reaping, and no new tree starts while it lives.
   */
  hold(instance: PersistedInstance): void {
    this.held = instance;
    this.transition({ id: 'errored' });
  }

  private refuseBesideHeld(): void {
    const held = this.held;
    if (!held) return;
    const proc = this.host.table.read(held.pid);
    if (proc && isAlive(proc) && proc.startTime === held.startTime) {
      throw new AgentpmError(
        'already-running',
        `pid ${held.pid}, which may be ${this.name}'s previous root (its start time matches, its agentpm tag is gone), still runs: ` +
          `end it yourself (kill ${held.pid}), then try again. agentpm starts no second copy beside it.`,
      );
    }
    this.held = null;
  }

  /** Restores a backoff that was pending when the previous daemon stopped. */
  resumeBackoff(until: number): void {
    this.enterBackoff(until);
  }

  /**
   * The previous daemon's instance ended while no daemon watched it (or while one was ending it): an
   * exit like any other, restarted through the backoff, so that a daemon restart never resets a crash
   * loop into an immediate start.
   */
  resumeAfterGone(previous: PersistedInstance): void {
    this.exclusiveInBackground('restarting after the previous daemon', async () => {
      this.recordExit(previous, null, null, false, 0, null);
      this.scheduleRestart(previous);
    });
  }

  /** Starts the app now (a new daemon found it meant to be running but dead). */
  revive(): Promise<void> {
    return this.exclusive(() => this.spawnNow());
  }

  toPersisted(): PersistedApp {
    const instance = this.instance ?? this.held;
    return {
      spec: this.spec,
      desired: this.desired,
      status: this.status,
      instance: instance
        ? { id: instance.id, pid: instance.pid, startTime: instance.startTime, startedAt: instance.startedAt, rootSeenAlive: instance.rootSeenAlive, ...(instance.cgroup ? { cgroup: instance.cgroup } : {}) }
        : null,
      spawning: this.spawning,
      restarts: this.restarts,
      history: this.history,
      nextStartAt: this.nextStartAt,
      exits: this.exits,
    };
  }

  /**
   * Cancels timers and stops reacting to exits; the processes are left alone for the next daemon,
   * which will see any exit that happens from now on.
   */
  dispose(): void {
    this.disposedFlag = true;
    if (this.state.id === 'backoff') clearTimeout(this.state.timer);
  }

  private get stopSignal(): NodeJS.Signals {
    return this.spec.stopSignal as NodeJS.Signals;
  }

  private async spawnNow(): Promise<void> {
    this.refuseBesideHeld();
    const blockers = this.host.waitingFor(this);
    if (blockers.length > 0) {
      this.transition({ id: 'waiting', on: blockers });
      return;
    }
    this.spawning = { id: newInstanceId(), at: Date.now() };
    this.transition({ id: 'starting' });
    let instance: Instance;
    try {
      // The intent is on disk before the process exists: a daemon killed at any moment from here on
      // leaves a tree the next daemon can find by its id (and adopt or end) before it starts another.
      this.host.persistNow();
      instance = await this.host.spawn(this.spec, this.spawning.id);
    } catch (error) {
      this.spawning = null;
      const message = (error as Error).message;
      this.pushExit({ code: null, signal: null, reason: 'spawn-failed', limit: null, at: new Date().toISOString(), instance: '', uptimeMs: 0, leftovers: 0 });
      this.host.emit('exit', this, null, 'spawn-failed', { message });
      // A registry that cannot be written (a full disk) is no fault of the app's: tried again through
      // the backoff, so it starts by itself once there is room. The request still fails (see saved()).
      const unrecorded = error instanceof AgentpmError && error.code === 'registry-unwritable';
      if (!unrecorded && this.history.consecutive === 0 && this.desired === 'running') {
        // A start that fails outright is the user's to fix: report it instead of looping on it.
        this.desired = 'stopped';
        this.transition({ id: 'errored' });
        throw error;
      }
      this.scheduleRestart(null);
      return;
    }
    this.host.emit('spawn', this, instance.id, null, { pid: instance.pid });
    this.spawning = null;
    this.transition({ id: 'online', instance });
    instance.exited?.then((status) => this.rootExited(instance.id, status));
  }

  /** Ends the current instance's whole tree, or cancels a pending backoff. */
  private async endCurrent(reason: ExitReason, limit: ExitRecord['limit']): Promise<void> {
    if (this.state.id === 'backoff') {
      clearTimeout(this.state.timer);
      return;
    }
    const instance = this.instance;
    if (!instance) return;
    this.transition({ id: 'stopping', instance });
    const { seen, survivors } = await this.host.terminate(instance, this.stopSignal, this.spec.killTimeoutMs);
    if (survivors > 0) this.host.log(this, `${survivors} process(es) of ${instance.id} survived SIGKILL (stuck in the kernel?)`);
    const status = instance.exited ? await withTimeout(instance.exited, EXIT_STATUS_WAIT_MS) : null;
    this.recordExit(instance, status, reason, false, Math.max(0, seen - 1), limit);
  }

  private scheduleRestart(previous: Pick<PersistedInstance, 'id' | 'startedAt'> | null): void {
    if (this.desired !== 'running' || !this.spec.autorestart) {
      this.desired = 'stopped';
      this.transition({ id: 'stopped' });
      return;
    }
    const now = Date.now();
    const uptime = previous ? now - previous.startedAt : 0;
    const decision = decideRestart(this.spec, this.history, uptime, now);
    this.history = decision.history;
    if (decision.action === 'give-up') {
      this.host.emit('give-up', this, previous?.id ?? null, null, { restartsInWindow: decision.restartsInWindow, windowMs: this.spec.restartWindowMs, maxRestarts: this.spec.maxRestarts });
      this.transition({ id: 'errored' });
      return;
    }
    this.host.emit('backoff', this, previous?.id ?? null, null, { delayMs: decision.delayMs, unstableExits: decision.history.consecutive });
    this.enterBackoff(now + decision.delayMs);
  }

  private enterBackoff(until: number): void {
    const timer = setTimeout(() => {
      this.exclusiveInBackground('restarting', async () => {
        if (this.state.id !== 'backoff' || this.state.timer !== timer) return;
        this.restarts += 1;
        await this.spawnNow();
      });
    }, Math.max(0, until - Date.now()));
    this.transition({ id: 'backoff', until, timer });
  }

  private recordExit(instance: Pick<PersistedInstance, 'id' | 'startedAt'>, status: ExitStatus | null, stopReason: ExitReason | null, oomKillRose: boolean, leftovers: number, limit: ExitRecord['limit']): void {
    const { reason, signal } = classifyExit({
      code: status?.code ?? null,
      signal: status?.signal ?? null,
      stopReason,
      oomKillRose,
      statusKnown: status !== null,
    });
    const record: ExitRecord = {
      code: status?.code ?? null,
      signal,
      reason,
      limit,
      at: new Date().toISOString(),
      instance: instance.id,
      uptimeMs: Date.now() - instance.startedAt,
      leftovers,
    };
    this.pushExit(record);
    const { code, uptimeMs } = record;
    this.host.emit('exit', this, instance.id, reason, { code, signal, uptimeMs, leftovers, ...(limit ? limit : {}) });
  }

  private pushExit(record: ExitRecord): void {
    this.exits = [record, ...this.exits].slice(0, MAX_EXITS_KEPT);
  }

  /** `why`: set when the change was not agentpm's doing (the root exited by itself). */
  private transition(next: AppState, why: 'root-exited' | null = null): void {
    const from = this.state.id;
    this.state = next;
    const detail = next.id === 'waiting' ? { waitingFor: next.on } : {};
    if (from !== next.id) this.host.emit('state', this, this.instance?.id ?? null, why, { from, to: next.id, ...detail });
    this.host.changed(this);
  }

  private exclusive<T>(operation: () => Promise<T>): Promise<T> {
    const guarded = async (): Promise<T> => {
      // Deleted (or the daemon is shutting down) while this waited: it must not start a tree nobody supervises.
      if (this.disposed) throw new AgentpmError('unknown-app', `${this.name} was removed before this could run`);
      this.pending += 1;
      try {
        return await operation();
      } finally {
        this.pending -= 1;
      }
    };
    const run = this.queue.then(guarded, guarded);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * An operation that failed half-way (a bug, an unexpected error from the OS) can leave the app in
   * `stopping` with nobody ending its tree. The monitor calls this on every tick: with no operation
   * under way, the tree is ended again and the app moves on as after any exit. The instance is kept in
   * `stopping` until then, so a new tree can never start beside a live old one.
   */
  recoverIfStuck(): void {
    if (this.pending > 0 || this.disposed || this.state.id !== 'stopping') return;
    const instance = this.state.instance;
    this.host.log(this, `instance ${instance.id} was left stopping (by a failed operation, or a daemon that died mid-stop); ending its tree again`);
    this.exclusiveInBackground('recovering', async () => {
      if (this.state.id !== 'stopping' || this.state.instance !== instance) return;
      // A tree frozen by a containment that was cut short is killed as it is: a graceful signal would
      // continue it, and a fork storm with it.
      const { seen } = this.host.isFrozen(instance) ? await this.host.contain(instance) : await this.host.terminate(instance, this.stopSignal, this.spec.killTimeoutMs);
      const status = instance.exited ? await withTimeout(instance.exited, EXIT_STATUS_WAIT_MS) : null;
      this.recordExit(instance, status, this.desired === 'stopped' ? 'stopped' : null, false, Math.max(0, seen - 1), null);
      this.scheduleRestart(instance);
    });
  }

  private exclusiveInBackground(what: string, operation: () => Promise<void>): void {
    this.exclusive(operation).catch((error: unknown) => {
      // Deleted, or left to the next daemon, while this waited: nothing failed, there is nothing to do.
      if (!this.disposed) this.host.log(this, `${what} failed: ${(error as Error).message}`);
    });
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
