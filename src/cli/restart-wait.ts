/**
 * `agentpm restart <names|all> --wait`, for upgrade scripts: restarts in batches (one at a time by
 * default, so memory never doubles across all agents), and waits until each app is online and has
 * stayed up for its minUptime. Anything else (a crash into backoff, errored, a timeout) is a failure
 * reported per app, and the command exits non-zero.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseDuration, formatDuration } from '../config/units.js';
import { wholeNumberFlag } from './flags.js';
import { AgentpmError } from '../errors.js';
import type { AppSummary, Target } from '../protocol.js';
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

const POLL_MS = 200;
const DEFAULT_TIMEOUT_MS = 60_000;

export async function restartAndWait(client: DaemonClient, target: Target, flags: { timeout?: string; parallel?: string }): Promise<WaitSummary> {
  const timeoutMs = flags.timeout === undefined ? DEFAULT_TIMEOUT_MS : parsed('--timeout', flags.timeout);
  const parallel = flags.parallel === undefined ? 1 : wholeNumberFlag('--parallel', flags.parallel, 1, 1000);
  const names = 'all' in target ? (await client.request({ type: 'ls' })).map((app) => app.name) : target.names;
  const outcomes: WaitOutcome[] = [];
  for (let index = 0; index < names.length; index += parallel) {
    const batch = names.slice(index, index + parallel);
    outcomes.push(...(await Promise.all(batch.map((name) => restartOne(client, name, timeoutMs)))));
  }
  return { ok: outcomes.every((outcome) => outcome.ok), apps: outcomes };
}

async function restartOne(client: DaemonClient, name: string, timeoutMs: number): Promise<WaitOutcome> {
  const started = Date.now();
  const { definition } = await client.request({ type: 'show', name });
  const stableMs = definition.minUptimeMs;
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
    // The instance we started must be the one that is up: a crash and a quick restart is not "stable".
    if (app.status !== 'online' || app.pid !== firstPid) {
      return { ...base, ok: false, problem: `did not stay up: ${app.status}${app.lastExit ? `, last exit ${describeExit(app.lastExit)}` : ''}` };
    }
    // With a health check, healthy is the bar; without one, staying up for minUptime.
    if (app.health !== null ? app.health === 'healthy' : (app.uptimeMs ?? 0) >= stableMs) return { ...base, ok: true, problem: null };
    if (Date.now() >= deadline) {
      const wanted = app.health !== null ? `healthy (health is ${app.health})` : `stable for ${formatDuration(stableMs)} (minUptime)`;
      return { ...base, ok: false, problem: `not ${wanted} within ${formatDuration(timeoutMs)}` };
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
  return `${table}\n${failed === 0 ? `all ${summary.apps.length} app(s) restarted and stable` : `${failed} of ${summary.apps.length} app(s) did not come up`}`;
}
