/**
 * The package's public entry: typed configuration for `ecosystem.config.ts`, and the programmatic API
 * (`connect()`, see api.ts).
 *
 *   import { defineConfig } from 'agentpm';
 *   export default defineConfig({ apps: [{ name: 'bot', script: 'bot.ts', maxMemory: '1.5G' }] });
 */
import type { EcosystemConfig } from './config/types.js';

export type { AppConfig, Duration, EcosystemConfig, SignalName, Size } from './config/types.js';
export type { ActionResult, AgentEvent, AppDetail, AppSpec, AppStatus, AppSummary, DaemonStatus, ExitReason, ExitRecord, StartResult } from './protocol.js';
export type { Agentpm, ConnectOptions, StartOptions, Targets } from './api.js';
export { AgentpmError, type ErrorCode } from './errors.js';
import type { Agentpm, ConnectOptions } from './api.js';

/** Identity at run time; gives editors the types of every field. */
export function defineConfig(config: EcosystemConfig): EcosystemConfig {
  return config;
}

/**
 * Connects to the daemon of a home (starting one when none runs), for scripting what the CLI does. Loaded
 * on first use: a config that only imports defineConfig does not load the client.
 */
export async function connect(options: ConnectOptions = {}): Promise<Agentpm> {
  const api = await import('./api.js');
  return api.connect(options);
}
