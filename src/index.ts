/**
 * The package's public entry: typed configuration for `ecosystem.config.ts`.
 *
 *   import { defineConfig } from 'agentpm';
 *   export default defineConfig({ apps: [{ name: 'bot', script: 'bot.ts', maxMemory: '1.5G' }] });
 */
import type { EcosystemConfig } from './config/types.js';

export type { AppConfig, Duration, EcosystemConfig, SignalName, Size } from './config/types.js';
export type { AppSpec, AppStatus, AppSummary, ExitReason, ExitRecord } from './protocol.js';

/** Identity at run time; gives editors the types of every field. */
export function defineConfig(config: EcosystemConfig): EcosystemConfig {
  return config;
}
