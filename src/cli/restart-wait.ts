/**
 * `agentpm restart <names|all> --wait`, for upgrade scripts: restarts in batches (one at a time by
 * default, so memory never doubles across all agents), and waits until each app is ready: healthy when
 * it has a health check, otherwise online for its `readyAfter` (a few seconds), as the daemon judges it
 * (`ready` in `ls --json`, the same readiness that releases apps waiting on `dependsOn`). Apps go in start
 * order, dependencies first, and a batch never holds an app with one it depends on: each app restarts
 * once what it needs is ready again. `--wait-stable` waits for `minUptime` instead, the crash-loop window. Anything else (a crash into backoff, errored, a
 * timeout) is a failure reported per app, and the command exits non-zero. A timeout no app could meet
 * is refused before anything is restarted.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseDuration, formatDuration, formatSetting } from '../config/units.js';
import { wholeNumberFlag } from './flags.js';
import { AgentpmError } from '../errors.js';
import type { AppDetail, AppSummary, Target } from '../protocol.js';
import type { DaemonClient } from './client.js';
import { describeExit, renderTable } from './render.js';
import { startOrder, withDependencies, type Graph } from '../daemon/order.js';

export interface WaitOutcome {
  name: string;
  ok: boolean;
  status: string;
  pid: number | null;
  restarts: number;
  waitedMs: number;
  /** Why it is not ok, or null. */
  problem: string | null;
}

export interface WaitSummary {
  ok: boolean;
  apps: WaitOutcome[];
}

export interface WaitFlags {
  timeout?: string;
  parallel?: string;
  /** Wait for minUptime (stable in the crash-loop sense), not only for ready. */
  stable?: boolean;
}

const POLL_MS = 200;
const DEFAULT_TIMEOUT_MS = 60_000;

/** What an app must show after its restart, and for how long it must stay up to show it. */
interface Bar {
  /** false: the daemon's readiness (`ready`) is the bar; true: the crash-loop window. */
  stable: boolean;
  healthy: boolean;
  upMs: number;
  /** e.g. "online for 3s (readyAfter)" */
  describe: string;
}

function barFor(definition: AppDetail['definition'], stable: boolean): Bar {
  const upMs = stable ? definition.minUptimeMs : definition.health !== null ? 0 : definition.readyAfterMs;
  const up = upMs > 0 ? `online for ${formatSetting(upMs)} (${stable ? 'minUptime' : 'readyAfter'})` : '';
  const describe = definition.health !== null ? `healthy${up ? ` and ${up}` : ''}` : up || 'online';
  return { stable, healthy: definition.health !== null, upMs, describe };
}

export async function restartAndWait(client: DaemonClient, target: Target, flags: WaitFlags): Promise<WaitSummary> {
  const timeoutMs = flags.timeout === undefined ? DEFAULT_TIMEOUT_MS : parsed('--timeout', flags.timeout);
  const parallel = flags.parallel === undefined ? 1 : wholeNumberFlag('--parallel', flags.parallel, 1, 1000);
  const given = 'all' in target ? (await client.request({ type: 'ls' })).map((app) => app.name) : target.names;
  const bars = new Map<string, Bar>();
  const graph = new Map<string, readonly string[]>();
  for (const name of given) {
    const { definition } = await client.request({ type: 'show', name });
    bars.set(name, barFor(definition, flags.stable === true));
    graph.set(name, definition.dependsOn);
  }
  const names = startOrder(given.map((name) => ({ name })), graph).map((item) => item.name);
  // A timeout shorter than an app must stay up could only fail, after its tree was restarted for nothing.
  const unmeetable = [...bars].filter(([, bar]) => bar.upMs > timeoutMs);
  if (unmeetable.length > 0) {
    const list = unmeetable.map(([name, bar]) => `${name} needs ${bar.describe}`).join('; ');
    throw new AgentpmError(
      'invalid-argument',
      `--timeout ${formatSetting(timeoutMs)} is shorter than ${list}; nothing was restarted. Raise --timeout${flags.stable ? ', or drop --wait-stable to wait for ready only' : ''}.`,
    );
  }
  const outcomes: WaitOutcome[] = [];
  const list = new SharedList(client);
  for (const batch of batchesOf(names, parallel, graph)) {
    outcomes.push(...(await Promise.all(batch.map((name) => restartOne(client, list, name, bars.get(name) as Bar, timeoutMs)))));
  }
  return { ok: outcomes.every((outcome) => outcome.ok), apps: outcomes };
}

/** Up to `parallel` apps at once, in start order; an app never shares a batch with one it depends on. */
export function batchesOf(names: string[], parallel: number, graph: Graph): string[][] {
  const batches: string[][] = [];
  let current: string[] = [];
  for (const name of names) {
    const needs = new Set(withDependencies([name], graph));
    if (current.length >= parallel || current.some((other) => needs.has(other))) {
      batches.push(current);
      current = [];
    }
    current.push(name);
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

async function restartOne(client: DaemonClient, list: SharedList, name: string, bar: Bar, timeoutMs: number): Promise<WaitOutcome> {
  const started = Date.now();
  try {
    await client.request({ type: 'restart', target: { names: [name] } });
  } catch (error) {
    return { name, ok: false, status: 'unknown', pid: null, restarts: 0, waitedMs: Date.now() - started, problem: (error as Error).message };
  }
  let seen = await list.summaryOf(name, performance.now());
  const after = seen.app;
  // The instance we started must be the one that is up: a crash and a quick restart is not "ready".
  let firstPid = after.pid;
  const firstRestarts = after.restarts;
  const deadline = started + timeoutMs;
  for (let app = after; ; seen = await list.summaryOf(name, seen.sentAt), app = seen.app) {
    const waitedMs = Date.now() - started;
    const base = { name, status: app.status, pid: app.pid, restarts: app.restarts, waitedMs };
    // Waiting for its dependencies (dependsOn) is on the way up, as long as no restart of its own came between.
    const notYetStarted = firstPid === null && app.restarts === firstRestarts && (app.status === 'waiting' || app.status === 'starting');
    if (!notYetStarted) {
      firstPid ??= app.pid;
      if (app.status !== 'online' || app.pid !== firstPid) {
        return { ...base, ok: false, problem: `did not stay up: ${app.status}${app.lastExit ? `, last exit ${describeExit(app.lastExit)}` : ''}` };
      }
      const ready = bar.stable ? (!bar.healthy || app.health === 'healthy') && (app.uptimeMs ?? 0) >= bar.upMs : app.ready;
      if (ready) return { ...base, ok: true, problem: null };
    }
    if (Date.now() >= deadline) {
      const why = app.waitingFor ? ` (still waiting for ${app.waitingFor.join(', ')})` : bar.healthy ? ` (health is ${app.health})` : '';
      return { ...base, ok: false, problem: `not ${bar.describe} within ${formatSetting(timeoutMs)}${why}` };
    }
    await sleep(Math.min(POLL_MS, Math.max(1, deadline - Date.now())));
  }
}

/**
 * The apps of a batch are polled through one `ls` at a time, not one each: every `ls` after a change
 * makes the daemon read all of /proc again, and ten pollers every 200 ms at 3,000 processes kept it
 * busy, slowing the very restarts they waited for. An answer is shared only with a caller whose last
 * look (or restart) came before that `ls` was sent, so no app judges its restart from a list older than
 * the restart, nor sees the same list twice.
 */
export class SharedList {
  private latest: { sentAt: number; answer: Promise<AppSummary[]> } | null = null;

  constructor(private readonly client: Pick<DaemonClient, 'request'>) {}

  /** `name` in an `ls` sent after `after` (performance.now()), and when that `ls` was sent. */
  async summaryOf(name: string, after: number): Promise<{ app: AppSummary; sentAt: number }> {
    if (this.latest === null || this.latest.sentAt <= after) {
      const sentAt = performance.now();
      this.latest = { sentAt, answer: this.client.request({ type: 'ls' }) };
    }
    const { sentAt, answer } = this.latest;
    const app = (await answer).find((entry) => entry.name === name);
    if (!app) throw new AgentpmError('unknown-app', `${name} disappeared while restarting (deleted by someone else?)`);
    return { app, sentAt };
  }
}

function parsed(flag: string, text: string): number {
  const result = parseDuration(text);
  if (!result.ok) throw new AgentpmError('invalid-argument', `${flag}: ${result.message}`);
  return result.value;
}

export function renderWaitSummary(summary: WaitSummary): string {
  const rows = summary.apps.map((app) => [app.name, app.ok ? 'ok' : 'FAILED', app.status, app.pid === null ? '-' : String(app.pid), formatDuration(app.waitedMs), app.problem ?? '']);
  const table = renderTable([['name', 'result', 'status', 'pid', 'waited', 'problem'], ...rows]);
  const failed = summary.apps.filter((app) => !app.ok).length;
  return `${table}\n${failed === 0 ? `all ${summary.apps.length} app(s) restarted and ready` : `${failed} of ${summary.apps.length} app(s) did not come up`}`;
}
