/**
 * Loading a config file: `.ts/.mts/.cts` through tsx (loaded only when needed, so other commands do
 * not pay for it), `.js/.mjs/.cjs` by import, `.json` by parsing. The export is `default` (or
 * `module.exports`), a `defineConfig({ apps })` object.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AgentpmError } from '../errors.js';
import type { AppSpec, DaemonSettings } from '../protocol.js';
import { resolveApps, resolveReapSettings } from './resolve.js';

const CONFIG_EXTENSIONS = ['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs', '.json'];

/** `ecosystem.*`, `*.config.*` and any `.json` are configs; every other file is a script to run. */
export function isConfigFile(path: string): boolean {
  const name = basename(path);
  const extension = extname(name);
  if (!CONFIG_EXTENSIONS.includes(extension)) return false;
  return extension === '.json' || name.startsWith('ecosystem.') || name.slice(0, -extension.length).endsWith('.config');
}

export interface LoadedConfig {
  apps: AppSpec[];
  /** From the top-level `reap` section, if any. */
  settings: Partial<DaemonSettings> | null;
}

export async function loadConfigFile(path: string, baseEnv: Record<string, string>): Promise<LoadedConfig> {
  const file = resolve(path);
  const exported = await importConfig(file);
  const apps = resolveApps(exported, { source: file, baseDir: dirname(file), baseEnv });
  return { apps, settings: resolveReapSettings(exported, file) };
}

async function importConfig(file: string): Promise<unknown> {
  try {
    const extension = extname(file);
    if (extension === '.json') return JSON.parse(readFileSync(file, 'utf8')) as unknown;
    let loaded: Record<string, unknown>;
    if (extension === '.ts' || extension === '.mts' || extension === '.cts') {
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
    throw new AgentpmError('invalid-config', `cannot load ${file}: ${(error as Error).message.split('\n')[0]}; fix the file and try again`);
  }
}
