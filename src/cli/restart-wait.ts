/**
 * `agentpm restart <names|all> --wait`, for upgrade scripts: restarts in batches (one at a time by
 * default, so memory never doubles across all agents), and waits until each app is ready: healthy when
 * it has a health check, otherwise online for its `readyAfter` (a few seconds). `--wait-stable` waits
 * for `minUptime` instead, the crash-loop window. Anything else (a crash into backoff, errored, a
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
  healthy: boolean;
  upMs: number;
  /** e.g. "online for 3s (readyAfter)" */
  describe: string;
}

function barFor(definition: AppDetail['definition'], stable: boolean): Bar {
  const upMs = stable ? definition.minUptimeMs : definition.health !== null ? 0 : definition.readyAfterMs;
  const up = upMs > 0 ? `online for ${formatSetting(upMs)} (${stable ? 'minUptime' : 'readyAfter'})` : '';
  const describe = definition.health !== null ? `healthy${up ? ` and ${up}` : ''}` : up || 'online';
  return { healthy: definition.health !== null, upMs, describe };
}

export async function restartAndWait(client: DaemonClient, target: Target, flags: WaitFlags): Promise<WaitSummary> {
  const timeoutMs = flags.timeout === undefined ? DEFAULT_TIMEOUT_MS : parsed('--timeout', flags.timeout);
  const parallel = flags.parallel === undefined ? 1 : wholeNumberFlag('--parallel', flags.parallel, 1, 1000);
  const names = 'all' in target ? (await client.request({ type: 'ls' })).map((app) => app.name) : target.names;
  const bars = new Map<string, Bar>();
  for (const name of names) bars.set(name, barFor((await client.request({ type: 'show', name })).definition, flags.stable === true));
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
  for (let index = 0; index < names.length; index += parallel) {
    const batch = names.slice(index, index + parallel);
    outcomes.push(...(await Promise.all(batch.map((name) => restartOne(client, name, bars.get(name) as Bar, timeoutMs)))));
  }
  return { ok: outcomes.every((outcome) => outcome.ok), apps: outcomes };
}

async function restartOne(client: DaemonClient, name: string, bar: Bar, timeoutMs: number): Promise<WaitOutcome> {
  const started = Date.now();
  try {
    await client.request({ type: 'restart', target: { names: [name] } });
  } catch (error) {
    return { name, ok: false, status: 'unknown', pid: null, restarts: 0, waitedMs: Date.now() - started, problem: (error as Error).message };
  }
  const after = await summaryOf(client, name);
  const firstPid = after.pid;
  const deadline = started + timeoutMs;
  for (let app = after; ; app = await summaryOf(client, name)) {
    const waitedMs = Date.now() - started;
    const base = { name, status: app.status, pid: app.pid, restarts: app.restarts, waitedMs };
    // The instance we started must be the one that is up: a crash and a quick restart is not "ready".
    if (app.status !== 'online' || app.pid !== firstPid) {
      return { ...base, ok: false, problem: `did not stay up: ${app.status}${app.lastExit ? `, last exit ${describeExit(app.lastExit)}` : ''}` };
    }
    if ((!bar.healthy || app.health === 'healthy') && (app.uptimeMs ?? 0) >= bar.upMs) return { ...base, ok: true, problem: null };
    if (Date.now() >= deadline) {
      return { ...base, ok: false, problem: `not ${bar.describe} within ${formatSetting(timeoutMs)}${bar.healthy ? ` (health is ${app.health})` : ''}` };
    }
    await sleep(Math.min(POLL_MS, Math.max(1, deadline - Date.now())));
  }
}

async function summaryOf(client: DaemonClient, name: string): Promise<AppSummary> {
  const app = (await client.request({ type: 'ls' })).find((entry) => entry.name === name);
  if (!app) throw new AgentpmError('unknown-app', `${name} disappeared while restarting (deleted by someone else?)`);
  return app;
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
