/**
 * From what a user wrote (AppConfig, from a config file or from CLI flags) to a fully resolved AppSpec.
 * Every problem is collected and reported at once, each naming the source, the app, the field, the bad
 * value and what is allowed; a config with any problem starts nothing.
 */
import { existsSync, statSync } from 'node:fs';
import { constants } from 'node:os';
import { basename, extname, isAbsolute, resolve } from 'node:path';
import { AgentpmError } from '../errors.js';
import { LIMIT_ACTIONS, LIST_LIMITS, MEMORY_METRICS, type AppDefinition, type CronRestart, type DaemonSettings, type LogPolicy } from '../protocol.js';
import { resolveGuard, resolveGuardAction, resolveHealth, resolveNotify } from './alerts.js';
import { splitCommandLine } from './command-line.js';
import { resolveMetrics } from './metrics.js';
import { resolveLogs } from './logs.js';
import { DEFAULT_UNMANAGED_MIN_AGE_MS, DEFAULTS } from './defaults.js';
import { MAX_COUNT, parseCpu, parseDuration, parseSize } from './units.js';
import { kernelLimitProblems } from '../cgroup/limits.js';
import { maskText } from '../secrets.js';
import { cronProblem } from '../cron.js';
import { describeCycle, findCycle, graphOf, startOrder, unknownDependencies, type Graph } from '../daemon/order.js';

export interface ResolveContext {
  /** Where the config came from, for messages: a file path or 'command line'. */
  source: string;
  /** Relative scripts and cwds resolve against this directory. */
  baseDir: string;
  /** The named environment to apply (`--env production`: each app's `env_production` over its `env`). */
  environment?: string | null;
}

export const APP_FIELDS = [
  'name',
  'script',
  'args',
  'cwd',
  'interpreter',
  'interpreterArgs',
  'env',
  'stopSignal',
  'killTimeout',
  'autorestart',
  'restartDelay',
  'maxRestartDelay',
  'minUptime',
  'readyAfter',
  'maxRestarts',
  'restartWindow',
  'maxMemory',
  'maxChildren',
  'hardMemory',
  'maxTasks',
  'maxCpu',
  'memoryMetric',
  'memoryBreachTicks',
  'childrenBreachTicks',
  'onLimit',
  'reap',
  'watch',
  'ignoreWatch',
  'watchDelay',
  'notify',
  'health',
  'hangTimeout',
  'priority',
  'guardAction',
  'oomScoreAdj',
  'dependsOn',
  'cronRestart',
  'logs',
] as const;

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** A named environment block: `env_production`, `env_staging`... */
const ENVIRONMENT_FIELD = /^env_(.+)$/;

type Record_ = Record<string, unknown>;

/**
 * Definitions only: the environment an app starts from is the caller's, sent once with the start
 * request (see protocol.ts), never copied into each definition.
 */
export function resolveApps(config: unknown, context: ResolveContext): AppDefinition[] {
  const problems: string[] = [];
  if (typeof config !== 'object' || config === null || !Array.isArray((config as Record_)['apps'])) {
    throw new AgentpmError('invalid-config', `${context.source}: expected an object with an \`apps\` array, e.g. export default defineConfig({ apps: [{ script: 'bot.ts' }] })`);
  }
  const apps = (config as { apps: unknown[] }).apps;
  if (apps.length === 0) throw new AgentpmError('invalid-config', `${context.source}: \`apps\` is empty; add at least one app`);
  const environment = context.environment ?? null;
  if (environment !== null) {
    const defined = new Set(apps.flatMap((app) => (typeof app === 'object' && app !== null ? Object.keys(app).flatMap((key) => ENVIRONMENT_FIELD.exec(key)?.[1] ?? []) : [])));
    if (!defined.has(environment)) {
      throw new AgentpmError(
        'invalid-config',
        `${context.source}: no app defines the environment '${environment}' (env_${environment}); ${
          defined.size > 0 ? `environments defined: ${[...defined].sort().join(', ')}` : 'no app has named environments (add env_<name> blocks next to env)'
        }`,
      );
    }
  }
  const specs: AppDefinition[] = [];
  // The config's top-level `logs` is each app's default; an app's own fields win.
  const logsDefault = resolveLogs((config as Record_)['logs'], 'logs', (field, message) => problems.push(`${context.source}: field \`${field}\`: ${message}`));
  apps.forEach((app, index) => {
    const spec = resolveApp(app, index, { ...context, logsDefault }, problems);
    if (spec) specs.push(spec);
  });
  const uses = new Map<string, number>();
  for (const spec of specs) uses.set(spec.name, (uses.get(spec.name) ?? 0) + 1);
  for (const [name, count] of uses) {
    if (count > 1) problems.push(`${context.source}: app name "${name}" is used by ${count} apps; names must be unique (set \`name\`)`);
  }
  // Across apps, once each app is valid by itself (a name that failed would read as an unknown dependency).
  const graph = graphOf(specs);
  if (problems.length === 0) problems.push(...dependencyProblems(graph, context.source));
  if (problems.length > 0) {
    throw new AgentpmError('invalid-config', `${problems.length === 1 ? 'invalid configuration' : `${problems.length} problems in the configuration`}; nothing was started:\n  ${problems.join('\n  ')}`);
  }
  // Dependencies first: a config sent in several requests (see cli/start-batches.ts) never names an app not sent yet.
  return startOrder(specs, graph);
}

/**
 * `dependsOn` across the config: every name is an app of the same config (a typo is caught here, not by an
 * app waiting forever), and no cycle.
 */
function dependencyProblems(graph: Graph, source: string): string[] {
  const problems: string[] = [];
  const names = [...graph.keys()];
  for (const { app, missing } of unknownDependencies(graph)) {
    for (const name of missing) {
      const suggestion = closest(name, names.filter((other) => other !== app));
      problems.push(
        `${source}: app "${app}": field \`dependsOn\`: no app named "${name}" in this config${suggestion ? `; did you mean "${suggestion}"?` : `; its apps: ${names.join(', ')}`}`,
      );
    }
  }
  const cycle = findCycle(graph);
  if (cycle) problems.push(`${source}: \`dependsOn\` forms a cycle: ${describeCycle(cycle)}; none of ${[...new Set(cycle)].join(', ')} could ever start. Remove one of these dependencies`);
  return problems;
}

function resolveApp(input: unknown, index: number, context: ResolveContext & { logsDefault: LogPolicy }, problems: string[]): AppDefinition | null {
  let where = `${context.source}: apps[${index}]`;
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    problems.push(`${where}: expected an object such as { script: 'bot.ts' }`);
    return null;
  }
  const app = input as Record_;
  const before = problems.length;
  const problem = (field: string, message: string): void => {
    problems.push(`${where}: field \`${field}\`: ${message}`);
  };
  const script = app['script'];
  if (typeof script !== 'string' || script.trim() === '') {
    problem('script', `required: the path of the script to run, got ${show(script)}`);
  }
  const name = app['name'] ?? (typeof script === 'string' ? basename(script, extname(script)) : undefined);
  if (name === undefined) {
    // no script either: that problem is already reported
  } else if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
    problem('name', `expected 1-64 characters of letters, digits, '.', '_' or '-' (not first), got ${show(name)}`);
  } else {
    where += ` ("${name}")`;
  }
  for (const key of Object.keys(app)) {
    if (!(APP_FIELDS as readonly string[]).includes(key) && !ENVIRONMENT_FIELD.test(key)) {
      const suggestion = closest(key, APP_FIELDS);
      problems.push(`${where}: unknown field \`${key}\`${suggestion ? `; did you mean \`${suggestion}\`?` : `; known fields: ${APP_FIELDS.join(', ')}`}`);
    }
  }

  const cwdInput = app['cwd'];
  if (cwdInput !== undefined && typeof cwdInput !== 'string') problem('cwd', `expected a directory path, got ${show(cwdInput)}`);
  const cwd = resolve(context.baseDir, typeof cwdInput === 'string' ? cwdInput : '.');
  if (typeof cwdInput === 'string' && !isDirectory(cwd)) problem('cwd', `${cwd} is not a directory`);

  let scriptPath = typeof script === 'string' ? script : '';
  if (scriptPath !== '') {
    const candidate = resolve(context.baseDir, scriptPath);
    const pathLike = scriptPath.includes('/') || extname(scriptPath) !== '';
    if (isDirectory(candidate)) problem('script', `${candidate} is a directory; name the file to run`);
    else if (existsSync(candidate)) scriptPath = candidate;
    else if (pathLike || isAbsolute(scriptPath)) problem('script', `${candidate} does not exist; check the path (relative paths start at ${context.baseDir})`);
    // otherwise a bare command such as `sleep`, looked up on PATH when spawned
  }

  const args = app['args'];
  let argList: string[] = [];
  if (typeof args === 'string') {
    // A string of arguments is split into words as a shell would, quotes and backslashes included.
    const split = splitCommandLine(args);
    if (split.unterminated !== null) problem('args', `unterminated ${split.unterminated} quote in ${show(args)}; close it, or give args as an array of strings`);
    argList = split.words;
  }
  else if (Array.isArray(args) && args.every((arg) => typeof arg === 'string')) argList = args as string[];
  else if (args !== undefined) problem('args', `expected a string or an array of strings, got ${show(args)}`);

  const interpreter = app['interpreter'];
  if (interpreter !== undefined && (typeof interpreter !== 'string' || interpreter === '')) problem('interpreter', `expected a program such as 'node', 'python3' or 'none', got ${show(interpreter)}`);
  const interpreterArgs = app['interpreterArgs'];
  if (interpreterArgs !== undefined && !(Array.isArray(interpreterArgs) && interpreterArgs.every((arg) => typeof arg === 'string'))) {
    problem('interpreterArgs', `expected an array of strings, got ${show(interpreterArgs)}`);
  }

  // `env`, then the selected named environment over it; every env_<name> block is checked either way.
  const readEnv = (field: string, into: Record<string, string>): void => {
    const input = app[field];
    if (input === undefined) return;
    if (typeof input !== 'object' || input === null || Array.isArray(input)) return problem(field, `expected an object of NAME: value, got ${show(input)}`);
    for (const [key, value] of Object.entries(input)) {
      if (['string', 'number', 'boolean'].includes(typeof value)) into[key] = String(value);
      else problem(`${field}.${key}`, `expected a string, number or boolean, got ${show(value)}`);
    }
  };
  const env: Record<string, string> = {};
  const selected: Record<string, string> = {};
  readEnv('env', env);
  for (const field of Object.keys(app).filter((key) => ENVIRONMENT_FIELD.test(key))) readEnv(field, field === `env_${context.environment ?? ''}` ? selected : {});
  Object.assign(env, selected);

  const stopSignal = app['stopSignal'] ?? DEFAULTS.stopSignal;
  if (typeof stopSignal !== 'string' || !(stopSignal in constants.signals)) {
    problem('stopSignal', `expected a signal name such as 'SIGTERM', 'SIGINT' or 'SIGHUP', got ${show(stopSignal)}`);
  }
  const flag = (field: string, fallback: boolean): boolean => {
    const value = app[field] ?? fallback;
    if (typeof value === 'boolean') return value;
    problem(field, `expected true or false, got ${show(value)}`);
    return fallback;
  };

  const duration = (field: string, fallback: number): number => {
    const value = app[field];
    if (value === undefined) return fallback;
    const parsed = typeof value === 'string' || typeof value === 'number' ? parseDuration(value) : { ok: false as const, message: `expected a duration such as '10s', got ${show(value)}` };
    if (parsed.ok) return parsed.value;
    problem(field, parsed.message);
    return fallback;
  };
  const count = (field: string, allowZero: boolean): number | null => {
    const value = app[field];
    if (value === undefined || value === null) return null;
    if (typeof value === 'number' && Number.isInteger(value) && (allowZero ? value >= 0 : value > 0) && value <= MAX_COUNT) return value;
    problem(field, `expected a whole number from ${allowZero ? 0 : 1} to ${MAX_COUNT}, got ${show(value)}`);
    return null;
  };
  let maxMemoryBytes: number | null = null;
  if (app['maxMemory'] !== undefined) {
    const value = app['maxMemory'];
    const parsed = typeof value === 'string' || typeof value === 'number' ? parseSize(value) : { ok: false as const, message: `expected a size such as '1.5G', got ${show(value)}` };
    if (parsed.ok && parsed.value > 0) maxMemoryBytes = parsed.value;
    else problem('maxMemory', parsed.ok ? `must be more than 0, got ${show(value)}` : parsed.message);
  }
  let hardMemoryBytes: number | false | null = null;
  if (app['hardMemory'] === false) hardMemoryBytes = false;
  else if (app['hardMemory'] !== undefined) {
    const value = app['hardMemory'];
    const parsed = typeof value === 'string' || typeof value === 'number' ? parseSize(value) : { ok: false as const, message: `expected a size such as '2G', or false for no kernel cap, got ${show(value)}` };
    if (parsed.ok && parsed.value > 0) hardMemoryBytes = parsed.value;
    else problem('hardMemory', parsed.ok ? `must be more than 0 (false for no kernel cap), got ${show(value)}` : parsed.message);
  }
  let maxTasks: number | false | null = null;
  if (app['maxTasks'] === false) maxTasks = false;
  else if (app['maxTasks'] !== undefined) maxTasks = count('maxTasks', false);
  let maxCpuPercent: number | null = null;
  if (app['maxCpu'] !== undefined) {
    const value = app['maxCpu'];
    const parsed = typeof value === 'string' || typeof value === 'number' ? parseCpu(value) : { ok: false as const, message: `expected a share of CPU such as '150%' (of one core) or a number of cores such as 1.5, got ${show(value)}` };
    if (parsed.ok) maxCpuPercent = parsed.value;
    else problem('maxCpu', parsed.message);
  }

  const choice = <T extends string>(field: string, allowed: readonly T[], fallback: T): T => {
    const value = app[field];
    if (value === undefined) return fallback;
    if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
    problem(field, `expected one of ${allowed.map((item) => `'${item}'`).join(', ')}, got ${show(value)}`);
    return fallback;
  };

  const watchInput = app['watch'];
  let watch: string[] | null = null;
  if (watchInput === true) watch = [cwd];
  else if (Array.isArray(watchInput) && watchInput.every((item) => typeof item === 'string' && item !== '')) watch = watchInput.map((item) => resolve(cwd, item as string));
  else if (watchInput !== undefined && watchInput !== false) problem('watch', `expected true, false or an array of paths, got ${show(watchInput)}`);
  if (watch !== null && watch.length > LIST_LIMITS.watchPaths) problem('watch', `at most ${LIST_LIMITS.watchPaths} paths, got ${watch.length}; watch their parent directories instead`);
  const ignoreInput = app['ignoreWatch'];
  if (ignoreInput !== undefined && !(Array.isArray(ignoreInput) && ignoreInput.every((item) => typeof item === 'string'))) {
    problem('ignoreWatch', `expected an array of paths or globs, got ${show(ignoreInput)}`);
  } else if (Array.isArray(ignoreInput) && ignoreInput.length > LIST_LIMITS.ignorePatterns) {
    problem('ignoreWatch', `at most ${LIST_LIMITS.ignorePatterns} patterns, got ${ignoreInput.length}; use globs`);
  }

  const integerIn = <T extends number | null>(field: string, min: number, max: number, fallback: T): number | T => {
    const value = app[field];
    if (value === undefined) return fallback;
    if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return value;
    problem(field, `expected a whole number from ${min} to ${max}, got ${show(value)}`);
    return fallback;
  };

  const spec: AppDefinition = {
    name: typeof name === 'string' ? name : '',
    script: scriptPath,
    args: argList,
    cwd,
    interpreter: typeof interpreter === 'string' ? interpreter : null,
    interpreterArgs: Array.isArray(interpreterArgs) ? (interpreterArgs as string[]) : [],
    env,
    stopSignal: String(stopSignal),
    killTimeoutMs: duration('killTimeout', DEFAULTS.killTimeout),
    autorestart: flag('autorestart', DEFAULTS.autorestart),
    restartDelayMs: duration('restartDelay', DEFAULTS.restartDelay),
    maxRestartDelayMs: duration('maxRestartDelay', DEFAULTS.maxRestartDelay),
    minUptimeMs: duration('minUptime', DEFAULTS.minUptime),
    readyAfterMs: duration('readyAfter', DEFAULTS.readyAfter),
    maxRestarts: count('maxRestarts', false) ?? DEFAULTS.maxRestarts,
    restartWindowMs: duration('restartWindow', DEFAULTS.restartWindow),
    maxMemoryBytes,
    maxChildren: count('maxChildren', true),
    hardMemoryBytes,
    maxTasks,
    maxCpuPercent,
    memoryMetric: choice('memoryMetric', MEMORY_METRICS, DEFAULTS.memoryMetric),
    memoryBreachTicks: count('memoryBreachTicks', false) ?? DEFAULTS.memoryBreachTicks,
    childrenBreachTicks: count('childrenBreachTicks', false) ?? DEFAULTS.childrenBreachTicks,
    onLimit: choice('onLimit', LIMIT_ACTIONS, DEFAULTS.onLimit),
    reap: flag('reap', DEFAULTS.reap),
    watch,
    ignoreWatch: Array.isArray(ignoreInput) ? (ignoreInput as string[]) : [],
    watchDelayMs: duration('watchDelay', DEFAULTS.watchDelay),
    notify: resolveNotify(app['notify'], 'notify', problem),
    health: resolveHealth(app['health'], 'health', problem),
    hangTimeoutMs: app['hangTimeout'] === undefined ? null : duration('hangTimeout', 0) || null,
    priority: integerIn('priority', -1_000_000, 1_000_000, DEFAULTS.priority),
    guardAction: resolveGuardAction(app['guardAction'], 'guardAction', problem),
    oomScoreAdj: integerIn('oomScoreAdj', -1000, 1000, null),
    dependsOn: resolveDependsOn(app['dependsOn'], typeof name === 'string' ? name : '', problem),
    cronRestart: resolveCronRestart(app['cronRestart'], problem),
    logs: resolveLogs(app['logs'], 'logs', problem, context.logsDefault),
  };
  for (const item of kernelLimitProblems(spec)) problem(item.field, item.message);
  return problems.length === before ? spec : null;
}

function resolveDependsOn(input: unknown, self: string, problem: (field: string, message: string) => void): string[] {
  if (input === undefined) return [];
  if (!Array.isArray(input) || !input.every((item) => typeof item === 'string')) {
    problem('dependsOn', `expected an array of app names such as ['gateway', 'worker'], got ${show(input)}`);
    return [];
  }
  const names = input as string[];
  if (names.length > LIST_LIMITS.dependsOn) problem('dependsOn', `at most ${LIST_LIMITS.dependsOn} apps, got ${names.length}`);
  const bad = names.filter((item) => !NAME_PATTERN.test(item));
  if (bad.length > 0) problem('dependsOn', `not app names: ${bad.map(show).join(', ')}`);
  if (names.includes(self)) problem('dependsOn', `an app cannot depend on itself ("${self}")`);
  return [...new Set(names)];
}

function resolveCronRestart(input: unknown, problem: (field: string, message: string) => void): CronRestart | null {
  if (input === undefined) return null;
  const example = `e.g. '0 4 * * *' or { schedule: '0 4 * * *', timezone: 'Europe/Berlin' }`;
  let schedule: CronRestart;
  if (typeof input === 'string') schedule = { schedule: input.trim(), timezone: null };
  else if (typeof input === 'object' && input !== null && !Array.isArray(input)) {
    const { schedule: text, timezone, ...rest } = input as Record_;
    for (const key of Object.keys(rest)) problem(`cronRestart.${key}`, `unknown field; expected schedule and timezone`);
    if (typeof text !== 'string' || text.trim() === '') {
      problem('cronRestart.schedule', `required: a cron expression, ${example}; got ${show(text)}`);
      return null;
    }
    if (timezone !== undefined && (typeof timezone !== 'string' || timezone === '')) {
      problem('cronRestart.timezone', `expected an IANA time zone such as 'Europe/Berlin', got ${show(timezone)}`);
      return null;
    }
    schedule = { schedule: text.trim(), timezone: typeof timezone === 'string' ? timezone : null };
  } else {
    problem('cronRestart', `expected a cron expression or { schedule, timezone }, ${example}; got ${show(input)}`);
    return null;
  }
  const found = cronProblem(schedule);
  if (found) problem('cronRestart', found);
  return schedule;
}

/** Splits an argument string like a shell would for simple cases: spaces separate, quotes group. */
/** The config's top-level daemon settings (`reap`, `notify`, `guard`, `metrics`), validated like the apps. */
export function resolveDaemonSettings(config: unknown, source: string): Partial<DaemonSettings> | null {
  const settings: Partial<DaemonSettings> = { ...resolveReapSettings(config, source) };
  const problems: string[] = [];
  const problem = (where: string, message: string): void => {
    problems.push(`${source}: ${where}: ${message}`);
  };
  const top = config as Record_;
  if (top['notify'] !== undefined) settings.notify = resolveNotify(top['notify'], 'notify', problem);
  if (top['guard'] !== undefined) settings.guard = resolveGuard(top['guard'], 'guard', problem);
  if (top['metrics'] !== undefined) {
    const metrics = resolveMetrics(top['metrics'], problem);
    if (metrics !== undefined) settings.metrics = metrics;
  }
  if (problems.length > 0) throw new AgentpmError('invalid-config', `invalid configuration; nothing was started:\n  ${problems.join('\n  ')}`);
  return Object.keys(settings).length > 0 ? settings : null;
}

/** The config's top-level `reap` section. */
export function resolveReapSettings(config: unknown, source: string): Partial<DaemonSettings> | null {
  const section = (config as Record_)['reap'];
  if (section === undefined) return null;
  const problems: string[] = [];
  const where = `${source}: reap`;
  if (typeof section !== 'object' || section === null || Array.isArray(section)) {
    throw new AgentpmError('invalid-config', `${where}: expected an object such as { interval: '30s', unmanaged: [{ match: 'mcp-server', olderThan: '10m' }] }`);
  }
  const settings: Partial<DaemonSettings> = {};
  const { interval, unmanaged, ...rest } = section as Record_;
  for (const key of Object.keys(rest)) {
    const suggestion = closest(key, ['interval', 'unmanaged']);
    problems.push(`${where}: unknown field \`${key}\`${suggestion ? `; did you mean \`${suggestion}\`?` : ''}`);
  }
  if (interval !== undefined) {
    const parsed = typeof interval === 'string' || typeof interval === 'number' ? parseDuration(interval) : { ok: false as const, message: `expected a duration, got ${show(interval)}` };
    if (parsed.ok && parsed.value >= 1000) settings.reapIntervalMs = parsed.value;
    else problems.push(`${where}.interval: ${parsed.ok ? `must be at least 1s, got ${show(interval)}` : parsed.message}`);
  }
  if (unmanaged !== undefined) {
    if (!Array.isArray(unmanaged)) problems.push(`${where}.unmanaged: expected an array of { match, olderThan }, got ${show(unmanaged)}`);
    else if (unmanaged.length > LIST_LIMITS.unmanagedPatterns) problems.push(`${where}.unmanaged: at most ${LIST_LIMITS.unmanagedPatterns} patterns, got ${unmanaged.length}; combine them with |`);
    else {
      settings.unmanaged = [];
      unmanaged.forEach((entry: unknown, index) => {
        const at = `${where}.unmanaged[${index}]`;
        const { match, olderThan } = (entry ?? {}) as Record_;
        if (typeof match !== 'string' || match === '') return problems.push(`${at}.match: required, a regular expression matched against command lines`);
        if (match.length > LIST_LIMITS.patternLength) return problems.push(`${at}.match: at most ${LIST_LIMITS.patternLength} characters, got ${match.length}`);
        try {
          new RegExp(match);
        } catch (error) {
          return problems.push(`${at}.match: not a valid regular expression: ${(error as Error).message}`);
        }
        const age = olderThan === undefined ? { ok: true as const, value: DEFAULT_UNMANAGED_MIN_AGE_MS } : typeof olderThan === 'string' || typeof olderThan === 'number' ? parseDuration(olderThan) : { ok: false as const, message: `expected a duration, got ${show(olderThan)}` };
        if (!age.ok) return problems.push(`${at}.olderThan: ${age.message}`);
        settings.unmanaged?.push({ match, olderThanMs: age.value });
        return undefined;
      });
    }
  }
  if (problems.length > 0) throw new AgentpmError('invalid-config', `invalid configuration; nothing was started:\n  ${problems.join('\n  ')}`);
  return settings;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** A bad value as quoted in an error message, its credentials masked. */
function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return maskText(`'${value}'`);
  try {
    return maskText(JSON.stringify(value) ?? String(value));
  } catch {
    return String(value);
  }
}

/** The known name closest to a misspelt one, if it is close enough to be what was meant. */
export function closest(input: string, candidates: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const distance = editDistance(input.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(input.length / 3)) ? best : null;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
