/**
 * The package's run-time entry for configs compiled to CommonJS (`require('agentpm')`: a `.ts` config
 * outside a `"type": "module"` package runs through tsx as CommonJS, as do `.cts` and `.cjs` files).
 * load.ts maps `agentpm` here for require(), as self-hook.ts does for import. Only `defineConfig`
 * exists at run time; it is the identity, like index.ts's.
 */
function defineConfig<T>(config: T): T {
  return config;
}

export = { defineConfig };
