/**
 * PM2 ecosystem files (`module.exports = { apps: [...] }` with PM2's snake_case fields): recognised,
 * mapped to agentpm's fields, and printed back as an `ecosystem.config.ts` (`agentpm import pm2`).
 * Pure: no files, no processes; the caller loads the file and reports the warnings.
 *
 * Paths keep their meaning when the file is used from its own directory (PM2 resolves them from the
 * directory `pm2` runs in, agentpm from the config file's): `cwd` relative to the file, `script`
 * relative to `cwd` (so `{ cwd: 'api', script: 'server.js' }` becomes `script: 'api/server.js'`).
 */
import { isAbsolute, join } from 'node:path';
import { APP_FIELDS, closest } from './resolve.js';

type Record_ = Record<string, unknown>;

/** PM2 field → agentpm field, for the fields with an equivalent. */
const MAPPED: Record<string, string> = {
  name: 'name',
  script: 'script',
  exec: 'script',
  args: 'args',
  cwd: 'cwd',
  env: 'env',
  interpreter: 'interpreter',
  exec_interpreter: 'interpreter',
  interpreter_args: 'interpreterArgs',
  node_args: 'interpreterArgs',
  interpreterArgs: 'interpreterArgs',
  max_memory_restart: 'maxMemory',
  kill_timeout: 'killTimeout',
  exp_backoff_restart_delay: 'restartDelay',
  restart_delay: 'restartDelay',
  max_restarts: 'maxRestarts',
  min_uptime: 'minUptime',
  autorestart: 'autorestart',
  watch: 'watch',
  ignore_watch: 'ignoreWatch',
  watch_delay: 'watchDelay',
  cron_restart: 'cronRestart',
  cron: 'cronRestart',
};

/** PM2 fields (and aliases) that agentpm has no equivalent for. */
export const PM2_UNMAPPED = [
  'name_prefix', 'filter_env', 'namespace', 'install_url', 'out_file', 'out', 'output', 'out_log', 'error_file', 'error', 'err', 'err_file',
  'err_log', 'log_file', 'log', 'disable_logs', 'log_type', 'log_date_format', 'time', 'pid_file', 'pid', 'source_map_support',
  'disable_source_map_support', 'wait_ready', 'instances', 'shutdown_with_message', 'listen_timeout', 'merge_logs',
  'combine_logs', 'vizion', 'autostart', 'stop_exit_codes', 'watch_options', 'execute_command', 'exec_mode', 'force', 'append_env_to_name',
  'post_update', 'trace', 'disable_trace', 'v8', 'event_loop_inspector', 'deep_monitoring', 'increment_var', 'instance_var', 'pmx',
  'automation', 'treekill', 'port', 'username', 'uid', 'user', 'gid', 'windowsHide', 'kill_retry_time', 'write', 'io',
] as const;

/** Values of unmapped fields that are exactly what agentpm does anyway: dropped without a warning. */
const SAME_AS_AGENTPM: Record<string, (value: unknown) => boolean> = {
  instances: (value) => value === 1,
  exec_mode: (value) => value === 'fork' || value === 'fork_mode',
  treekill: (value) => value === true,
  autostart: (value) => value === true,
};

/** Mapped fields whose PM2 value is in ms (a number), printed as durations. */
const DURATIONS = new Set(['kill_timeout', 'restart_delay', 'exp_backoff_restart_delay', 'min_uptime', 'watch_delay']);

const ENVIRONMENT_FIELD = /^env_.+$/;

export interface Pm2Mapping {
  /** The same config with agentpm's fields, for resolveApps. */
  config: { apps: Record_[] } & Record_;
  /** Fields with no equivalent, and approximations: printed, never fatal. */
  warnings: string[];
  /** Values that cannot be mapped: fatal, like any other config problem. */
  problems: string[];
}

/** A PM2 file is told apart by the fields only PM2 has (snake_case ones such as max_memory_restart, or instances, exec_mode...). */
export function isPm2Config(config: unknown): boolean {
  if (typeof config !== 'object' || config === null) return false;
  const { apps } = config as Record_;
  if (!Array.isArray(apps)) return false;
  if ('deploy' in config) return true;
  const ours = new Set<string>(APP_FIELDS);
  return apps.some(
    (app) =>
      typeof app === 'object' &&
      app !== null &&
      Object.keys(app).some((key) => !ours.has(key) && !ENVIRONMENT_FIELD.test(key) && (key in MAPPED || (PM2_UNMAPPED as readonly string[]).includes(key))),
  );
}

export function fromPm2(config: unknown, source: string): Pm2Mapping {
  const warnings: string[] = [];
  const problems: string[] = [];
  const input = config as Record_;
  const apps = Array.isArray(input['apps']) ? (input['apps'] as unknown[]) : [];
  /** field → the apps (and values) that set it, for one warning listing them all. */
  const unmapped = new Map<string, string[]>();
  const fixedDelays: string[] = [];
  const ours = new Set<string>(APP_FIELDS);
  const known = [...Object.keys(MAPPED), ...PM2_UNMAPPED, ...APP_FIELDS];

  const mapped = apps.map((app, index): Record_ => {
    if (typeof app !== 'object' || app === null || Array.isArray(app)) return app as Record_; // resolveApps reports it
    const pm2 = app as Record_;
    const label = typeof pm2['name'] === 'string' ? pm2['name'] : `apps[${index}]`;
    const where = `${source}: apps[${index}]${typeof pm2['name'] === 'string' ? ` ("${pm2['name']}")` : ''}`;
    const out: Record_ = {};
    const origin = new Map<string, string>();
    const set = (target: string, from: string, value: unknown): void => {
      const previous = origin.get(target);
      if (previous !== undefined) problems.push(`${where}: \`${previous}\` and \`${from}\` both set ${target}; keep one`);
      origin.set(target, from);
      out[target] = value;
    };

    // Both delays: PM2 uses the exponential one; agentpm's restart delay is always exponential.
    const bothDelays = pm2['exp_backoff_restart_delay'] !== undefined && pm2['restart_delay'] !== undefined;
    for (const [key, value] of Object.entries(pm2)) {
      if (value === undefined) continue;
      if (ENVIRONMENT_FIELD.test(key)) {
        out[key] = value;
      } else if (key in MAPPED) {
        if (key === 'restart_delay' && bothDelays) {
          warnings.push(`${where}: restart_delay ignored: exp_backoff_restart_delay is used (as PM2 does)`);
          continue;
        }
        if ((key === 'restart_delay' || key === 'exp_backoff_restart_delay') && value === 0) {
          // PM2's "no delay"; agentpm keeps its backoff rather than restart a crashing app in a tight loop.
          warnings.push(`${where}: ${key}: 0 left out: agentpm's default backoff applies (1s, doubling up to 60s)`);
          continue;
        }
        if (key === 'restart_delay') fixedDelays.push(label);
        const converted = convert(key, value, where, problems);
        if (converted !== undefined) set(MAPPED[key] as string, key, converted);
      } else if (ours.has(key)) {
        set(key, key, value);
      } else if ((PM2_UNMAPPED as readonly string[]).includes(key)) {
        if (SAME_AS_AGENTPM[key]?.(value)) continue;
        const shown = typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? `${label}: ${JSON.stringify(value)}` : label;
        unmapped.set(key, [...(unmapped.get(key) ?? []), shown]);
      } else {
        const suggestion = closest(key, known);
        problems.push(`${where}: unknown field \`${key}\`${suggestion ? `; did you mean \`${suggestion}\`?` : ''}`);
      }
    }

    // PM2 resolves `script` from `cwd`; agentpm from the config file's directory.
    const script = out['script'];
    const cwd = out['cwd'];
    if (typeof script === 'string' && typeof cwd === 'string' && !isAbsolute(script) && (script.includes('/') || /\.[A-Za-z0-9]+$/.test(script))) {
      out['script'] = join(cwd, script);
    }
    return out;
  });

  if (unmapped.size > 0) {
    const list = [...unmapped].map(([field, users]) => `${field} (${users.join(', ')})`).join('; ');
    warnings.unshift(`${source}: PM2 fields with no agentpm equivalent were ignored: ${list}`);
  }
  if ('deploy' in input) warnings.push(`${source}: PM2's \`deploy\` section has no agentpm equivalent and was ignored`);
  if (fixedDelays.length > 0) {
    warnings.push(
      `${source}: restart_delay (${fixedDelays.join(', ')}) became restartDelay, which doubles after each unstable exit (up to maxRestartDelay, 60s by default) instead of staying fixed`,
    );
  }
  const { deploy: _deploy, ...rest } = input;
  return { config: { ...rest, apps: mapped }, warnings, problems };
}

function convert(key: string, value: unknown, where: string, problems: string[]): unknown {
  const problem = (expected: string): undefined => {
    problems.push(`${where}: field \`${key}\`: expected ${expected}, got ${JSON.stringify(value) ?? String(value)}`);
    return undefined;
  };
  if (DURATIONS.has(key)) {
    if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? humanDuration(value) : problem('a number of ms');
    if (typeof value === 'string') return value; // '10s', '5m': checked by resolveApps
    return problem('a number of ms');
  }
  switch (key) {
    case 'max_memory_restart':
      if (typeof value === 'number') return humanSize(value);
      return typeof value === 'string' ? value : problem("a size such as '200M' or a number of bytes");
    case 'interpreter_args':
    case 'node_args':
    case 'interpreterArgs':
      if (typeof value === 'string') return value.split(/\s+/).filter(Boolean);
      return Array.isArray(value) ? value : problem('a string or an array of strings');
    case 'watch':
      return typeof value === 'string' ? [value] : value;
    case 'ignore_watch':
      return typeof value === 'string' ? [value] : value;
    default:
      return value;
  }
}

/** 3000 → '3s', 60000 → '1m', 1500 → '1500ms'. */
export function humanDuration(ms: number): string | number {
  if (ms === 0) return 0;
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

/** 209715200 → '200M'; sizes that are not whole K/M/G stay numbers of bytes. */
export function humanSize(bytes: number): string | number {
  for (const [unit, size] of [['G', 1024 ** 3], ['M', 1024 ** 2], ['K', 1024]] as const) if (bytes > 0 && bytes % size === 0) return `${bytes / size}${unit}`;
  return bytes;
}

/** The mapped config as an `ecosystem.config.ts`, with the warnings as comments. */
export function toEcosystemTs(config: Pm2Mapping['config'], options: { from: string; warnings: string[] }): string {
  const lines = [`// Converted from ${options.from} by \`agentpm import pm2\`.`];
  for (const warning of options.warnings) lines.push(`// ${warning.replace(/\n/g, ' ')}`);
  lines.push(`import { defineConfig } from 'agentpm';`, '', `export default defineConfig(${literal(config, '')});`, '');
  return lines.join('\n');
}

function literal(value: unknown, indent: string): string {
  if (typeof value === 'string') return quote(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (Array.isArray(value)) {
    if (value.every((item) => typeof item !== 'object' || item === null)) return `[${value.map((item) => literal(item, indent)).join(', ')}]`;
    const inner = `${indent}  `;
    return `[\n${value.map((item) => `${inner}${literal(item, inner)},`).join('\n')}\n${indent}]`;
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record_).filter(([, item]) => item !== undefined);
    if (entries.length === 0) return '{}';
    const inner = `${indent}  `;
    return `{\n${entries.map(([key, item]) => `${inner}${/^[A-Za-z_$][\w$]*$/.test(key) ? key : quote(key)}: ${literal(item, inner)},`).join('\n')}\n${indent}}`;
  }
  return 'undefined';
}

function quote(text: string): string {
  const json = JSON.stringify(text);
  return text.includes("'") ? json : `'${json.slice(1, -1).replace(/\\"/g, '"')}'`;
}
