/**
 * Plain-text rendering of daemon answers for people. Scripts use --json, which prints the daemon's
 * answer as it is.
 */
import { kernelLimitProblems, kernelLimitsFor } from '../cgroup/limits.js';
import { formatBytes, formatDuration } from '../config/units.js';
import { unreachable } from '../errors.js';
import type { AgentEvent, AppDetail, AppStatus, AppSummary, ExitRecord } from '../protocol.js';
import type { ContainmentInfo } from '../cgroup/types.js';

export function renderTable(rows: string[][], decorate: (row: number, column: number, padded: string) => string = (_r, _c, cell) => cell): string {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
  return rows
    .map((row, rowIndex) =>
      row
        .map((cell, column) => decorate(rowIndex, column, column === row.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
        .join('  '),
    )
    .join('\n');
}

const useColor = process.stdout.isTTY === true && !('NO_COLOR' in process.env);
const STATUS_COLOR: Record<AppStatus, number> = { online: 32, waiting: 36, starting: 36, stopping: 33, backoff: 33, stopped: 90, errored: 31 };

function colorStatus(status: AppStatus, text: string): string {
  return useColor ? `\x1b[${STATUS_COLOR[status]}m${text}\x1b[0m` : text;
}

export function describeExit(exit: ExitRecord | null): string {
  if (!exit) return '-';
  if (exit.limit) return `${exit.reason} (${describeLimit(exit.reason, exit.limit.measured, exit.limit.limit)})`;
  const detail = exit.signal ?? (exit.code !== null ? `code ${exit.code}` : '');
  return detail ? `${exit.reason} (${detail})` : exit.reason;
}

function statusCell(app: AppSummary): string {
  if (app.health === 'unhealthy') return `${app.status} (unhealthy)`;
  // Rounded up: "next in 0s" would read as "now" for most of the last second.
  if (app.status === 'waiting' && app.waitingFor) return `waiting (${app.waitingFor.join(', ')})`;
  if (app.status === 'backoff' && app.nextStartAt) return `backoff (next in ${formatDuration(Math.max(0, Date.parse(app.nextStartAt) - Date.now()) + 999)})`;
  return app.status;
}

export function renderList(apps: AppSummary[]): string {
  if (apps.length === 0) return 'no apps; start one with `agentpm start <script>` or `agentpm start ecosystem.config.ts`';
  const header = ['name', 'status', 'pid', 'uptime', 'restarts', 'memory', 'cpu', 'procs', 'last exit'];
  const rows = apps.map((app) => [
    app.name,
    statusCell(app),
    app.pid === null ? '-' : String(app.pid),
    app.uptimeMs === null ? '-' : formatDuration(app.uptimeMs),
    String(app.restarts),
    app.memory > 0 ? formatBytes(app.memory) + (app.limits.memory ? ` / ${formatBytes(app.limits.memory)}` : '') : '-',
    app.processes > 0 ? `${app.cpu.toFixed(0)}%` : '-',
    app.limits.children !== null ? `${app.processes} (≤${app.limits.children + 1})` : String(app.processes),
    describeExit(app.lastExit),
  ]);
  return renderTable([header, ...rows], (row, column, cell) => {
    const app = apps[row - 1];
    // Colour after padding, so escape codes do not skew the column widths.
    return app && column === 1 ? colorStatus(app.status, cell) : cell;
  });
}

export function renderDetail(app: AppDetail): string {
  const { definition } = app;
  const lines = [
    `${app.name}: ${colorStatus(app.status, app.status)}${app.pid ? ` (pid ${app.pid}, instance ${app.instance})` : ''}`,
    `  script       ${[definition.script, ...definition.args].join(' ')}`,
    `  cwd          ${definition.cwd}`,
    `  interpreter  ${definition.interpreter ?? 'by extension'}${definition.interpreterArgs.length ? ` ${definition.interpreterArgs.join(' ')}` : ''}`,
    `  uptime       ${app.uptimeMs === null ? '-' : formatDuration(app.uptimeMs)}    restarts ${app.restarts}`,
    `  memory       ${formatBytes(app.memory)} in ${app.processes} process(es)${app.limits.memory ? `, limit ${formatBytes(app.limits.memory)}` : ''}${app.limits.children !== null ? `, children limit ${app.limits.children}` : ''}`,
    ...kernelCapsLine(definition),
    `  containment  ${app.containment}${app.containment === 'proc' ? ' (inferred from /proc: a process that clears its tags and leaves the session escapes)' : ' (a cgroup of its own)'}`,
    `  stop         ${definition.stopSignal}, SIGKILL after ${definition.killTimeoutMs} ms`,
    `  restart      ${definition.autorestart ? `backoff ${definition.restartDelayMs}-${definition.maxRestartDelayMs} ms, stable after ${definition.minUptimeMs} ms` : 'off'}${definition.maxRestarts ? `, give up after ${definition.maxRestarts} in ${definition.restartWindowMs} ms` : ''}`,
    ...renderLogFiles(app),
  ];
  if (app.nextStartAt) lines.push(`  next start   ${app.nextStartAt}`);
  if (definition.dependsOn.length > 0) lines.push(`  depends on   ${definition.dependsOn.join(', ')}${app.waitingFor ? ` (waiting for ${app.waitingFor.join(', ')})` : ''}`);
  if (definition.cronRestart) {
    const { schedule, timezone } = definition.cronRestart;
    lines.push(`  cron restart ${schedule}${timezone ? ` (${timezone})` : ' (local time)'}, next ${app.nextScheduledRestart ?? 'none (not running)'}`);
  }
  const env = Object.entries(definition.env);
  if (env.length > 0) lines.push('  env', ...env.map(([key, value]) => `    ${key}=${value}`));
  if (app.tree.length > 0) {
    lines.push('  tree');
    const depth = new Map<number, number>();
    for (const proc of app.tree) {
      const level = (depth.get(proc.ppid) ?? -1) + 1;
      depth.set(proc.pid, level);
      const figures = `${formatBytes(proc.rss).padStart(9)} ${`${proc.cpu.toFixed(0)}%`.padStart(5)}`;
      lines.push(`    ${String(proc.pid).padEnd(8)}${figures}  ${'  '.repeat(level)}${proc.cmd.slice(0, 100)}`);
    }
  }
  if (app.exits.length > 0) {
    lines.push('  exits (newest first)');
    for (const exit of app.exits.slice(0, 10)) {
      lines.push(`    ${exit.at}  ${describeExit(exit)}  after ${formatDuration(exit.uptimeMs)}${exit.leftovers ? `, ${describeLeftovers(exit)}` : ''}`);
    }
  }
  return lines.join('\n');
}

/**
 * The caps a cgroup backend gives the kernel, as derived for this definition before its start (the tasks cap
 * may grow by the root's threads counted once it runs); none when nothing is capped.
 */
function kernelCapsLine(definition: AppDetail['definition']): string[] {
  if (kernelLimitProblems(definition).length > 0) return [];
  const caps = kernelLimitsFor(definition, null);
  const parts = [
    caps.memoryMaxBytes !== null ? `memory ${formatBytes(caps.memoryMaxBytes)}` : null,
    caps.pidsMax !== null ? `${caps.pidsMax} tasks` : null,
    caps.cpu !== null ? `cpu ${String((caps.cpu.quotaUs / caps.cpu.periodUs) * 100)}%` : null,
  ].filter((part) => part !== null);
  return parts.length > 0 ? [`  kernel caps  ${parts.join(', ')} (under a cgroup backend)`] : [];
}

/** Each stream's file, its size and its rotated files' total, the policy, lines dropped, and why logs are not rotated if they are not. */
function renderLogFiles(app: AppDetail): string[] {
  const info = app.logFiles;
  const { policy } = info;
  const lines = [`  logs         rotated at ${formatBytes(policy.maxSizeBytes)}, ${policy.keep} kept${policy.compress ? ', gzipped' : ''}`];
  for (const stream of [info.out, info.err]) {
    const dropped = stream.dropped ? `, ${stream.dropped} line(s) dropped (disk full)` : '';
    lines.push(`    ${stream.path}  ${formatBytes(stream.size)}${stream.rotatedFiles > 0 ? ` (${formatBytes(stream.totalSize)} with ${stream.rotatedFiles} rotated)` : ''}${dropped}`);
  }
  if (!info.rotated) lines.push(`    not rotated: this instance writes its files directly (${info.notRotatedWhy ?? 'no relay'})`);
  return lines;
}

function describeRelayEvent(reason: string | null, data: Record<string, unknown>): string {
  switch (reason) {
    case 'started':
      return `log relay started (pid ${String(data['pid'])})`;
    case 'connected':
      return `log relay found running (pid ${String(data['pid'])}), re-adopted`;
    case 'lost':
      return `log relay (pid ${String(data['pid'])}) died; starting a new one`;
    case 'replaced':
      return `log relay of agentpm ${String(data['version'])} (pid ${String(data['pid'])}) hands over to ${String(data['by'])}`;
    case 'unavailable':
      return `log relay unavailable: ${String(data['message'])}; new instances write their logs directly, unrotated`;
    default:
      return `log relay: ${String(reason)}`;
  }
}

/** After an exit of its own, the tree's other processes were left behind; after a stop, they went with it. */
function describeLeftovers(exit: ExitRecord): string {
  const byItself = exit.reason === 'exited' || exit.reason === 'crashed' || exit.reason === 'killed-by-signal' || exit.reason === 'oom-killed' || exit.reason === 'vanished';
  return byItself ? `${exit.leftovers} left behind (killed)` : `${exit.leftovers} more process(es) of its tree ended with it`;
}

function describeLimit(reason: string, measured: number, limit: number): string {
  return reason === 'memory-limit' ? `${formatBytes(measured)} > ${formatBytes(limit)}` : `${measured} children > ${limit}`;
}

function numberOf(data: Record<string, unknown>, key: string): number {
  const value = data[key];
  return typeof value === 'number' ? value : 0;
}

/** One line per event, for people; `events --json` prints the events themselves. */
export function describeEvent(event: AgentEvent): string {
  const who = event.app ? `${event.app}${event.instance ? `#${event.instance.slice(0, 6)}` : ''}` : 'daemon';
  return `${event.at}  ${who.padEnd(20)} ${event.type.padEnd(16)} ${describeEventText(event)}`;
}

/** What happened, without when and to whom: shared by `events` and `monit`. */
export function describeEventText(event: AgentEvent): string {
  return describeEventParts(event).text;
}

export interface EventParts {
  text: string;
  /**
   * What must stay in view when the line is cut to a narrow pane (see format.ts truncateKeeping), most
   * complete first: the cause with its figure (`memory-limit (211 MB > 200 MB)`), then the figure alone
   * for a pane too narrow for both; or a cause, a count. Each is a part of `text`.
   */
  keys: string[];
  /** The start of `text` that says what its type says (`exited: `): a view that shows the type may drop it. */
  lead: string;
}

export function describeEventParts(event: AgentEvent): EventParts {
  const data = event.data;
  let text: string;
  let key: string | null = null;
  let figure: string | null = null;
  let lead = '';
  switch (event.type) {
    case 'state':
      text = `${String(data['from'])} → ${String(data['to'])}${Array.isArray(data['waitingFor']) ? ` for ${(data['waitingFor'] as unknown[]).map(String).join(', ')} to be ready` : ''}${event.reason === 'root-exited' ? ' (it exited by itself; ending what it left)' : ''}`;
      break;
    case 'spawn':
      text = `started, pid ${numberOf(data, 'pid')}`;
      break;
    case 'exit': {
      const detail = data['signal'] ?? (data['code'] !== null && data['code'] !== undefined ? `code ${String(data['code'])}` : null);
      const message = typeof data['message'] === 'string' ? `: ${data['message']}` : '';
      const after = numberOf(data, 'uptimeMs') ? ` after ${formatDuration(numberOf(data, 'uptimeMs'))}` : '';
      // At a limit, the figure against the limit is the cause (as in the table); the signal is only how it ended.
      lead = 'exited: ';
      if (typeof data['limit'] === 'number') {
        figure = describeLimit(String(event.reason), numberOf(data, 'measured'), numberOf(data, 'limit'));
        key = `${String(event.reason)} (${figure})`;
        text = `${lead}${key}${detail ? `, ${String(detail)}` : ''}${message}${after}`;
      } else {
        key = `${String(event.reason)}${detail ? ` (${String(detail)})` : ''}`;
        text = `${lead}${key}${message}${after}`;
      }
      break;
    }
    case 'adopt':
      text = event.reason === 'unproven' ? `not adopted: ${String(data['message'])}` : `adopted by a new daemon, pid ${numberOf(data, 'pid')}`;
      break;
    case 'leftovers-killed':
      key = `killed ${numberOf(data, 'count')} process(es)`;
      text = `${key} left behind${event.reason === 'daemon-down' ? ' while no daemon ran' : ''}`;
      break;
    case 'limit-breach':
      if (data['action'] === 'kernel-oom-kill') {
        // Not a breach the daemon acted on: the kernel's cap took a process, and the app lives on.
        figure = `${numberOf(data, 'kills')} process(es)`;
        key = `the kernel OOM-killed ${figure}`;
        text = `${key} in the app's cgroup at its hard memory cap (${formatBytes(numberOf(data, 'limit'))})`;
        break;
      }
      figure = describeLimit(String(event.reason), numberOf(data, 'measured'), numberOf(data, 'limit'));
      key = `${String(event.reason)}: ${figure}`;
      text = `${key}; action ${String(data['action'])}`;
      break;
    case 'offender-killed':
      key = `(${String(event.reason)})`;
      text = `ended offending process(es) ${(data['pids'] as number[] | undefined)?.join(', ') ?? ''} ${key}; the app keeps running`;
      break;
    case 'orphans-reaped':
      key = `reaped ${numberOf(data, 'count')} orphaned process(es) (${String(event.reason)})`;
      text = `${key}${Array.isArray(data['pids']) ? `: ${(data['pids'] as number[]).join(', ')}` : ''}`;
      break;
    case 'backoff':
      key = `restarting in ${numberOf(data, 'delayMs')} ms`;
      text = `${key} (unstable exit ${numberOf(data, 'unstableExits')} in a row)`;
      break;
    case 'give-up':
      key = `gave up after ${numberOf(data, 'restartsInWindow')} restarts within ${formatDuration(numberOf(data, 'windowMs'))}`;
      text = `${key}: errored (restart it by hand)`;
      break;
    case 'daemon':
      // Events about the daemon's own services (the registry, the metrics endpoint) say what happened.
      text = typeof data['message'] === 'string' ? data['message'] : `daemon ${String(event.reason)} (pid ${numberOf(data, 'pid')})`;
      break;
    case 'watch': {
      const files = Array.isArray(data['files']) ? (data['files'] as unknown[]).map(String) : [];
      const count = numberOf(data, 'changes');
      const paths = Array.isArray(data['paths']) ? (data['paths'] as unknown[]).map(String) : [];
      if (event.reason === 'restart') text = `file change: restarting (${count} change${count === 1 ? '' : 's'}${files.length > 0 ? `: ${files.join(', ')}${count > files.length ? ', …' : ''}` : ''})`;
      else if (event.reason === 'ready') text = `watching ${paths.join(', ')} for changes`;
      else text = `watching failed: ${String(data['message'] ?? event.reason)}`;
      break;
    }
    case 'health':
      key = event.reason === 'failed' ? `health check failed ${numberOf(data, 'failures')} time(s) in a row` : `now ${String(event.reason)}`;
      text = event.reason === 'failed' ? `${key}: ${String(data['message'] ?? '')}` : `${key}${data['message'] ? ` (${String(data['message'])})` : ''}`;
      break;
    case 'guard': {
      const available = `${formatBytes(numberOf(data, 'availableBytes'))} available`;
      if (event.reason === 'memory-pressure') {
        key = `${String(data['action'])} ${String(data['victim'])}`;
        text = `memory pressure (${available}${typeof data['pressure'] === 'number' ? `, PSI some avg10 ${String(data['pressure'])}` : ''}): ${key}`;
      } else {
        text = `memory recovered (${available})`;
      }
      break;
    }
    case 'notify-failed':
      text = `alert hook failed (${String(data['hook'])}): ${String(data['message'] ?? event.reason)}`;
      break;
    case 'relay':
      text = describeRelayEvent(event.reason, data);
      break;
    default:
      return unreachable(event.type);
  }
  return { text, keys: [key, figure].filter((part): part is string => part !== null), lead };
}

/** `daemon status`: the backend, why, how the daemon was launched, and how to get (better) containment. */
export function renderContainment(info: ContainmentInfo): string {
  const lines = [`containment  ${info.backend}: ${info.reason} (daemon launched ${info.launcher === 'direct' ? 'directly' : `in a ${info.launcher}`})`];
  if (info.enable) lines.push(`             to get containment: ${info.enable}`);
  return lines.join('\n');
}
