/**
 * `agentpm start X`: what X means, and the requests that start it.
 *
 * One rule, in this order:
 *  1. a config file (`ecosystem.*`, `*.config.*`, `.json`): every app of it;
 *  2. an existing file: that script;
 *  3. the name of an app the daemon knows (unless --name names another app): that app, with its saved
 *     definition; options that would change the definition are refused, pointing to --replace or the config;
 *  4. otherwise a command on PATH (`agentpm start sleep -- 100`), or a command string (`agentpm start
 *     "npm run dev"`: split as a shell splits it, see command-string.ts), named after its program.
 * A stopped app is started by name all day, as with PM2; a bare name never overwrites a definition.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { AgentpmError } from '../errors.js';
import type { LoadedConfig } from '../config/load.js';
import type { AppDefinition, DaemonSettings, IfRunning, StartResult } from '../protocol.js';
import type { DaemonClient } from './client.js';
import { commandOfString, isCommandString } from './command-string.js';
import { normalizeSignal } from './flags.js';
import { callerEnv, mergeStartResults, startBatches } from './start-batches.js';

export interface StartOptions {
  name?: string;
  cwd?: string;
  env: string[];
  interpreter?: string;
  interpreterArgs?: string;
  killTimeout?: string;
  stopSignal?: string;
  autorestart: boolean;
  restartDelay?: string;
  maxRestarts?: string;
  maxMemory?: string;
  maxChildren?: string;
  maxCpu?: string;
  maxTasks?: string;
  onLimit?: string;
  only?: string;
  replace?: boolean;
  json?: boolean;
}

/** Options that make a definition: with a config they belong in the file, with a known app in a new start. */
const DEFINING_OPTIONS = ['name', 'cwd', 'interpreter', 'interpreterArgs', 'killTimeout', 'stopSignal', 'restartDelay', 'maxRestarts', 'maxMemory', 'maxChildren', 'maxTasks', 'maxCpu', 'onLimit'] as const;

const APP_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function flagOf(option: string): string {
  return `--${option.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
}

/** The definition-changing options given, as flags, in the order they are listed. */
function definingFlags(args: string[], options: StartOptions, except: readonly string[] = []): string[] {
  const flags = DEFINING_OPTIONS.filter((key) => options[key] !== undefined && !except.includes(key)).map(flagOf);
  if (!options.autorestart) flags.push('--no-autorestart');
  if (options.env.length > 0) flags.push('--env');
  if (options.only !== undefined) flags.push('--only');
  if (args.length > 0) flags.push('arguments after --');
  return flags;
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** A whole number from a flag, or the text itself so that validation reports it as given. */
function wholeNumber(text: string): number | string {
  return /^\d+$/.test(text) ? Number(text) : text;
}


export type StartPlan =
  | { kind: 'config'; loaded: LoadedConfig }
  | { kind: 'script'; apps: AppDefinition[] }
  | { kind: 'saved'; name: string };

/** `connect` is called only when the daemon is needed: a config with an error starts no daemon. */
export async function planStart(target: string, args: string[], options: StartOptions, connect: () => Promise<DaemonClient>): Promise<StartPlan> {
  const { isConfigFile } = await import('../config/load.js');
  // A command string ends with whatever its last argument is (`node build.config.js`): unless a file has
  // that whole name, it is a command, not a config.
  const commandString = isCommandString(target) && !isFile(resolve(target));
  if (isConfigFile(target) && !commandString) return { kind: 'config', loaded: await loadConfig(target, args, options) };
  const maybeName = !isFile(resolve(target)) && APP_NAME.test(target) && (options.name === undefined || options.name === target);
  if (maybeName && (await (await connect()).request({ type: 'ls' })).some((app) => app.name === target)) {
    const flags = definingFlags(args, options, ['name']);
    if (flags.length > 0) {
      const { definition } = await (await connect()).request({ type: 'show', name: target });
      throw new AgentpmError(
        'invalid-argument',
        `${target} is an app agentpm knows: \`agentpm start ${target}\` starts it with its saved definition, so ${flags.join(', ')} cannot apply. ` +
          `To change its definition, start its script again with the new options and --replace (agentpm start ${definition.script} --name ${target} ... --replace), ` +
          'or edit its config file and run `agentpm start <config>`.',
      );
    }
    return { kind: 'saved', name: target };
  }
  if (commandString) {
    const command = commandOfString(target, args, isConfigFile);
    return { kind: 'script', apps: await scriptDefinition(command.script, command.args, options) };
  }
  return { kind: 'script', apps: await scriptDefinition(target, args, options) };
}

/** Sends the plan: returns what the daemon did. */
export async function executeStart(plan: StartPlan, options: StartOptions, client: DaemonClient): Promise<StartResult> {
  if (plan.kind === 'saved') return client.request({ type: 'start-saved', names: [plan.name], ifRunning: options.replace ? 'replace' : 'refuse' });
  const settings: Partial<DaemonSettings> | null = plan.kind === 'config' ? plan.loaded.settings : null;
  const apps = plan.kind === 'config' ? plan.loaded.apps : plan.apps;
  // Re-running start with a config applies it (restarting only what changed); a script started twice is refused.
  const ifRunning: IfRunning = options.replace ? 'replace' : plan.kind === 'config' ? 'apply' : 'refuse';
  const batches = startBatches(apps, callerEnv(), ifRunning);
  if (settings) await client.request({ type: 'settings', settings });
  const results: StartResult[] = [];
  for (const body of batches) results.push(await client.request(body));
  return mergeStartResults(results);
}

async function loadConfig(target: string, args: string[], options: StartOptions): Promise<LoadedConfig> {
  const given = definingFlags(args, options).filter((flag) => flag !== '--env' && flag !== '--only');
  if (given.length > 0) {
    throw new AgentpmError('invalid-argument', `${target} is a config file; options such as ${given[0]} apply to a single script. Set them in the config instead.`);
  }
  // For a config file, --env names an environment: each app's env_<name> over its env (PM2 style).
  const [environment, ...more] = options.env;
  if (more.length > 0 || environment?.includes('=')) {
    throw new AgentpmError(
      'invalid-argument',
      `with a config file, --env takes one environment name (its apps' env_<name> blocks), e.g. --env production; got ${options.env.map((item) => `'${item}'`).join(', ')}. Set variables in the config's env or env_<name> instead.`,
    );
  }
  const only = options.only?.split(',').map((name) => name.trim()).filter(Boolean);
  if (options.only !== undefined && only?.length === 0) throw new AgentpmError('invalid-argument', `--only expects app names separated by commas, got '${options.only}'`);
  const { loadConfigIsolated } = await import('../config/isolated.js');
  const loaded = await loadConfigIsolated(resolve(target), { environment: environment ?? null, only: only ?? null });
  for (const warning of loaded.warnings ?? []) process.stderr.write(`agentpm: warning: ${warning}\n`);
  return loaded;
}

async function scriptDefinition(target: string, args: string[], options: StartOptions): Promise<AppDefinition[]> {
  if (options.only !== undefined) throw new AgentpmError('invalid-argument', `--only selects apps of a config file; ${target} is a script`);
  const { resolveApps } = await import('../config/resolve.js');
  const env: Record<string, string> = {};
  for (const pair of options.env) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new AgentpmError('invalid-argument', `--env expects NAME=value, got '${pair}' (a bare name such as --env production selects an environment of a config file)`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const app: Record<string, unknown> = { script: target, args, env, autorestart: options.autorestart };
  if (options.name !== undefined) app['name'] = options.name;
  if (options.interpreter !== undefined) app['interpreter'] = options.interpreter;
  if (options.interpreterArgs !== undefined) app['interpreterArgs'] = options.interpreterArgs.split(' ').filter(Boolean);
  if (options.killTimeout !== undefined) app['killTimeout'] = options.killTimeout;
  if (options.stopSignal !== undefined) app['stopSignal'] = normalizeSignal(options.stopSignal);
  if (options.restartDelay !== undefined) app['restartDelay'] = options.restartDelay;
  if (options.maxRestarts !== undefined) app['maxRestarts'] = wholeNumber(options.maxRestarts);
  if (options.maxMemory !== undefined) app['maxMemory'] = options.maxMemory;
  if (options.maxChildren !== undefined) app['maxChildren'] = wholeNumber(options.maxChildren);
  if (options.maxTasks !== undefined) app['maxTasks'] = wholeNumber(options.maxTasks);
  if (options.maxCpu !== undefined) app['maxCpu'] = options.maxCpu;
  if (options.onLimit !== undefined) app['onLimit'] = options.onLimit;
  const baseDir = process.cwd();
  if (options.cwd !== undefined) app['cwd'] = resolve(baseDir, options.cwd);
  return resolveApps({ apps: [app] }, { source: 'command line', baseDir });
}
