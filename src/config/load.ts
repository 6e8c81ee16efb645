/**
 * Loading a config file: `.ts/.mts/.cts` through tsx (loaded only when needed, so other commands do
 * not pay for it), `.js/.mjs/.cjs` by import, `.json` by parsing. The export is `default` (or
 * `module.exports`), a `defineConfig({ apps })` object, or a PM2 ecosystem file (mapped, see pm2.ts).
 * `import ... from 'agentpm'` in a config resolves to the running agentpm wherever the config lives.
 */
import { existsSync, readFileSync } from 'node:fs';
import Module, { register } from 'node:module';
import { basename, dirname, extname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { AgentpmError } from '../errors.js';
import type { AppDefinition, DaemonSettings } from '../protocol.js';
import { fromPm2, isPm2Config, toEcosystemTs } from './pm2.js';
import { resolveApps, resolveDaemonSettings } from './resolve.js';
import { graphOf, withDependencies } from '../daemon/order.js';
import type { RunnableConfig } from './typecheck-cache.js';

const CONFIG_EXTENSIONS = ['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs', '.json'];

/** `ecosystem.*`, `*.config.*` and any `.json` are configs; every other file is a script to run. */
export function isConfigFile(path: string): boolean {
  const name = basename(path);
  const extension = extname(name);
  if (!CONFIG_EXTENSIONS.includes(extension)) return false;
  return extension === '.json' || name.startsWith('ecosystem.') || name.slice(0, -extension.length).endsWith('.config');
}

export interface LoadedConfig {
  apps: AppDefinition[];
  /** From the top-level `reap` section, if any. */
  settings: Partial<DaemonSettings> | null;
  /** For the user, never fatal: e.g. the PM2 fields that have no equivalent. */
  warnings?: string[];
}

export interface LoadOptions {
  /** `--env production`: each app's `env_production` over its `env`. */
  environment?: string | null;
  /** `--only a,b`: these apps only (the whole file is still validated). */
  only?: string[] | null;
}

export interface LoadHooks {
  /** Called once the file itself starts to run (after the type check), for the time limit. */
  running?: () => void;
  /** Called when a `.ts` config is about to be type-checked (not when a remembered success is used). */
  typeChecking?: (file: string) => void;
  /** Where successful type checks are remembered (see typecheck-cache.ts); without it, every load checks. */
  typecheckCache?: string;
  /** Where a type-checked config is kept compiled, to run without tsx; without it, tsx runs it. */
  compiledConfigs?: string;
  /** What the type-check cache did, for AGENTPM_DEBUG_CONFIG. */
  debug?: (message: string) => void;
}

export async function loadConfigFile(path: string, options: LoadOptions = {}, hooks: LoadHooks = {}): Promise<LoadedConfig> {
  const file = resolve(path);
  const warnings: string[] = [];
  let runnable: RunnableConfig | null = null;
  if (['.ts', '.mts', '.cts'].includes(extname(file)) && existsSync(file)) {
    const { checkConfigCached } = await import('./typecheck-cache.js');
    // The compiled copy imports `agentpm` through the same resolver as any config: without it (running
    // from the sources), tsx.
    const compiledDir = hooks.compiledConfigs !== undefined && resolveSelf() ? hooks.compiledConfigs : null;
    const checked = await checkConfigCached(file, { cachePath: hooks.typecheckCache ?? null, compiledDir, checking: hooks.typeChecking, debug: hooks.debug });
    const errors = checked.errors;
    runnable = checked.runnable;
    if (errors === null) warnings.push(`${file} was not type-checked: no TypeScript compiler found (npm i -D typescript)`);
    else if (errors.length > 0) {
      throw new AgentpmError('invalid-config', `${file} has type errors; it was not run and nothing was started:\n  ${errors.join('\n  ')}`);
    }
  }
  hooks.running?.();
  let exported = await importConfig(file, runnable);
  if (isPm2Config(exported)) {
    const mapped = fromPm2(exported, file);
    if (mapped.problems.length > 0) throw configProblems(mapped.problems, 'nothing was started');
    warnings.push(...mapped.warnings);
    exported = mapped.config;
  }
  let apps = resolveApps(exported, { source: file, baseDir: dirname(file), environment: options.environment ?? null });
  const chosen = options.only;
  if (chosen && chosen.length > 0) {
    const names = apps.map((app) => app.name);
    const unknown = chosen.filter((name) => !names.includes(name));
    if (unknown.length > 0) {
      throw new AgentpmError('invalid-argument', `--only: no app named ${unknown.join(', ')} in ${file}; its apps: ${names.join(', ')}`);
    }
    // What the chosen apps depend on comes along (as with docker compose up <service>): without it they
    // would only wait. The apps keep the config's start order.
    const only = new Set(withDependencies(chosen, graphOf(apps)));
    const added = apps.filter((app) => only.has(app.name) && !chosen.includes(app.name)).map((app) => app.name);
    if (added.length > 0) warnings.push(`--only: also starting ${added.join(', ')}, which ${chosen.join(', ')} depend${chosen.length === 1 ? 's' : ''} on (dependsOn)`);
    apps = apps.filter((app) => only.has(app.name));
  }
  return { apps, settings: resolveDaemonSettings(exported, file), warnings };
}

/** `agentpm import pm2 <file>`: the equivalent ecosystem.config.ts, and what could not be carried over. */
export async function convertPm2File(path: string, hooks: LoadHooks = {}): Promise<{ source: string; warnings: string[] }> {
  const file = resolve(path);
  hooks.running?.();
  const exported = await importConfig(file);
  if (typeof exported !== 'object' || exported === null || !Array.isArray((exported as Record<string, unknown>)['apps'])) {
    throw new AgentpmError('invalid-config', `${file}: expected a PM2 ecosystem file, module.exports = { apps: [...] }`);
  }
  const mapped = fromPm2(exported, basename(file));
  if (mapped.problems.length > 0) throw configProblems(mapped.problems, 'nothing was converted');
  return { source: toEcosystemTs(mapped.config, { from: basename(file), warnings: mapped.warnings }), warnings: mapped.warnings };
}

function configProblems(problems: string[], outcome: string): AgentpmError {
  return new AgentpmError('invalid-config', `${problems.length === 1 ? 'invalid configuration' : `${problems.length} problems in the configuration`}; ${outcome}:\n  ${problems.join('\n  ')}`);
}

let selfResolving = false;
let selfResolved = false;

/**
 * Once per process, before a config is imported: `agentpm` resolves to this agentpm (see
 * self-hook.ts), for import through a module hook and for require() through CommonJS resolution,
 * which node 20's module hooks do not see (tsx runs a `.ts` config outside a `"type": "module"`
 * package as CommonJS, so its `import` becomes a require()).
 */
function resolveSelf(): boolean {
  if (selfResolving) return selfResolved;
  selfResolving = true;
  const hook = new URL('./self-hook.js', import.meta.url);
  const entry = new URL('../index.js', import.meta.url);
  const cjsEntry = fileURLToPath(new URL('./define.cjs', import.meta.url));
  // Running from the sources (tests under tsx): there is no compiled entry to map to.
  if (![fileURLToPath(hook), fileURLToPath(entry), cjsEntry].every((file) => existsSync(file))) return false;
  register(hook, { data: { entry: entry.href } });
  const cjs = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
  const original = cjs._resolveFilename;
  cjs._resolveFilename = function resolveFilename(this: unknown, request: string, ...rest: unknown[]): string {
    return request === 'agentpm' ? cjsEntry : original.call(this, request, ...rest);
  };
  selfResolved = true;
  return true;
}

/**
 * A compiled config (compile.ts), run as the file itself would be: an ES module from its text (what it
 * imports is named by absolute URL), or a CommonJS module whose `require` and module paths are those of
 * the config file.
 */
function runCompiled(file: string, runnable: RunnableConfig): Promise<Record<string, unknown>> {
  if (runnable.format === 'esm') return import(`data:text/javascript;base64,${Buffer.from(runnable.code).toString('base64')}`) as Promise<Record<string, unknown>>;
  const cjs = Module as unknown as { _nodeModulePaths(dir: string): string[] };
  const module = new Module(file) as Module & { _compile(code: string, filename: string): void };
  module.filename = file;
  module.paths = cjs._nodeModulePaths(dirname(file));
  module._compile(runnable.code, file);
  module.loaded = true;
  return Promise.resolve(module.exports as Record<string, unknown>);
}

async function importConfig(file: string, runnable: RunnableConfig | null = null): Promise<unknown> {
  try {
    const extension = extname(file);
    if (extension === '.json') return JSON.parse(readFileSync(file, 'utf8')) as unknown;
    resolveSelf();
    let loaded: Record<string, unknown>;
    if (runnable !== null) {
      loaded = await runCompiled(file, runnable);
    } else if (extension === '.ts' || extension === '.mts' || extension === '.cts') {
      const { tsImport } = await import('tsx/esm/api');
      loaded = (await tsImport(pathToFileURL(file).href, import.meta.url)) as Record<string, unknown>;
    } else {
      loaded = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    }
    let config: unknown = loaded['default'] ?? loaded;
    // A CommonJS file seen through tsx or import may nest module.exports under default once more.
    if (typeof config === 'object' && config !== null && !('apps' in config) && 'default' in config) config = (config as Record<string, unknown>)['default'];
    return config;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ERR_MODULE_NOT_FOUND') {
      throw new AgentpmError('invalid-config', `cannot load ${file}: ${(error as Error).message}`);
    }
    const message = (error as Error).message.split('\n')[0] ?? '';
    if (/(module|exports|require) is not defined in ES module scope/.test(message)) {
      // A PM2 file (module.exports = ...) inside a "type": "module" package.
      throw new AgentpmError('invalid-config', `cannot load ${file}: ${message}; it is CommonJS in a "type": "module" package: rename it to ${basename(file, extname(file))}.cjs`);
    }
    throw new AgentpmError('invalid-config', `cannot load ${file}: ${message}; fix the file and try again`);
  }
}
