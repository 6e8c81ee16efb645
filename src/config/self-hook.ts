/**
 * A module resolve hook, registered by load.ts (once) before a config file is imported: the bare
 * specifier `agentpm`, as in `import { defineConfig } from 'agentpm'`, resolves to the running agentpm's
 * own entry. A config then loads wherever it lives, including when agentpm is installed globally and
 * is not resolvable from the config's directory. Runs in node's module-hooks thread; `data.entry` is
 * the URL of dist/index.js.
 */
import type { InitializeHook, ResolveHook } from 'node:module';

let entry: string | null = null;

export const initialize: InitializeHook<{ entry: string }> = (data) => {
  entry = data.entry;
};

export const resolve: ResolveHook = (specifier, context, nextResolve) => {
  if (specifier === 'agentpm' && entry !== null) return { url: entry, format: 'module', shortCircuit: true };
  return nextResolve(specifier, context);
};
