/**
 * What `ls`, `show` and `daemon status` say about the apps, built from the figures of the last scan.
 * Read-only: nothing here changes an app. Secrets in commands and definitions are masked here.
 */
import { appLogPaths } from '../home.js';
import { streamSizes } from '../logs/maintenance.js';
import { maskCommand, maskDefinition } from '../secrets.js';
import { treeOrder } from '../proc/tree.js';
import type { ProcessTable } from '../proc/table.js';
import type { AppDetail, AppLogInfo, AppSummary, LogStream, RelayStatus, TreeProcess } from '../protocol.js';
import type { BackendKind } from '../cgroup/types.js';
import type { App } from './app.js';
import type { TreeFigures } from './monitor.js';
import { isReady } from './readiness.js';
import type { RelayLink } from './relay-link.js';

/** Instances whose logs are written directly (no relay), and why: `show` and `daemon status` say so. */
export type Unrotated = ReadonlyMap<string, { instance: string; why: string }>;

export function summarize(app: App, figures: TreeFigures, idleContainment: BackendKind): AppSummary {
  const instance = app.instance;
  return {
    name: app.name,
    status: app.status,
    pid: instance?.pid ?? null,
    restarts: app.restarts,
    uptimeMs: instance && app.status === 'online' ? Date.now() - instance.startedAt : null,
    memory: figures.memory,
    processes: figures.processes,
    children: figures.children,
    cpu: figures.cpu,
    health: app.spec.health && app.instance ? app.health : null,
    limits: { memory: app.spec.maxMemoryBytes, children: app.spec.maxChildren },
    lastExit: app.exits[0] ?? null,
    containment: instance ? (instance.cgroup?.backend ?? 'proc') : idleContainment,
    nextStartAt: app.nextStartAt ? new Date(app.nextStartAt).toISOString() : null,
    waitingFor: app.waitingFor,
    ready: isReady(app, Date.now()),
  };
}

export interface DetailContext {
  home: string;
  table: ProcessTable;
  relay: RelayLink;
  unrotated: Unrotated;
  idleContainment: BackendKind;
  /** The next planned cron restart (ms since the epoch), or null. */
  nextScheduledRestart: () => number | null;
}

/** `show`: the summary plus the definition, the tree with per-process figures, logs and exits. */
export async function describe(app: App, figures: TreeFigures, context: DetailContext): Promise<AppDetail> {
  const byPid = new Map(figures.members.map((item) => [item.proc.pid, item]));
  const tree: TreeProcess[] = treeOrder(figures.members.map((item) => item.proc)).map(({ proc }) => ({
    pid: proc.pid,
    ppid: proc.ppid,
    rss: byPid.get(proc.pid)?.memory ?? proc.rssBytes,
    cpu: byPid.get(proc.pid)?.cpu ?? 0,
    cmd: maskCommand(context.table.cmdline(proc)),
  }));
  const { baseEnv: _hidden, ...spec } = app.spec;
  return {
    ...summarize(app, figures, context.idleContainment),
    instance: app.instance?.id ?? null,
    definition: maskDefinition(spec),
    logs: appLogPaths(context.home, app.name),
    logFiles: await logInfo(app, context),
    tree,
    exits: app.exits,
    nextScheduledRestart: isoOrNull(context.nextScheduledRestart()),
  };
}

/** Each stream's files and sizes, the policy, and whether the current instance's logs go through the relay. */
async function logInfo(app: App, context: DetailContext): Promise<AppLogInfo> {
  const status = await context.relay.status();
  const paths = appLogPaths(context.home, app.name);
  const unrotated = context.unrotated.get(app.name);
  const notRotatedWhy = unrotated && unrotated.instance === app.instance?.id ? unrotated.why : null;
  const stream = (name: LogStream) => ({
    path: paths[name],
    ...streamSizes(paths[name]),
    dropped: status ? (status.streams.find((entry) => entry.app === app.name && entry.stream === name)?.dropped ?? 0) : null,
  });
  return { policy: app.spec.logs, rotated: notRotatedWhy === null, notRotatedWhy, out: stream('out'), err: stream('err') };
}

/** The relay for `daemon status`, or why there is none, and the live instances that write without it. */
export async function relayStatus(
  relay: RelayLink,
  unrotated: Unrotated,
  liveInstance: (app: string) => string | undefined,
): Promise<{ relay: RelayStatus | null; relayProblem: string | null; unrotated: { app: string; instance: string; why: string }[] }> {
  const status = await relay.status();
  const direct = [...unrotated.entries()].filter(([name, entry]) => liveInstance(name) === entry.instance).map(([app, entry]) => ({ app, ...entry }));
  return { relay: status, relayProblem: status ? null : (relay.problem ?? 'no log relay is connected'), unrotated: direct };
}

function isoOrNull(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}
