/**
 * What every export target shares: the files it produces, the split of an app's variables into plain and
 * secret-looking ones (by the one classifier that masks `show`), the apps an app depends on, and the
 * notes on what agentpm does that the target cannot.
 */
import { formatBytes, formatSetting } from '../config/units.js';
import { AgentpmError } from '../errors.js';
import type { AppDefinition, DaemonSettings, HealthCheck } from '../protocol.js';
import { isSecretVariable, maskArgs, maskCommand, maskUrl } from '../secrets.js';

export interface ExportFile {
  /** A file name, no directory. */
  name: string;
  content: string;
  /** Holds secret values: written with mode 0600, never printed. */
  secret: boolean;
  /** For a secret file: the variable names it holds (what may be said about it). */
  holds?: string[];
}

export interface ExportResult {
  files: ExportFile[];
  /** For the user, on stderr: what they must know before they use the files. */
  warnings: string[];
}

/** What an export is made from: the config's apps, as `start` loads them, and its top-level settings. */
export interface ExportInput {
  apps: AppDefinition[];
  settings: Partial<DaemonSettings> | null;
  /** The config file, for the header of every file. */
  source: string;
}

export interface SplitEnv {
  plain: Array<[string, string]>;
  secret: Array<[string, string]>;
}

export function splitEnv(env: Record<string, string>): SplitEnv {
  const split: SplitEnv = { plain: [], secret: [] };
  for (const [name, value] of Object.entries(env)) split[isSecretVariable(name, value) ? 'secret' : 'plain'].push([name, value]);
  return split;
}

/** The apps this one starts after (its `dependsOn`). */
export function dependenciesOf(app: AppDefinition): string[] {
  return app.dependsOn;
}

/** Refuses variable names the target would drop or mangle, naming them, rather than exporting an app without them. */
export function checkEnvNames(app: AppDefinition, valid: RegExp, target: string): void {
  const bad = Object.keys(app.env).filter((name) => !valid.test(name));
  if (bad.length > 0) {
    throw new AgentpmError('invalid-config', `app ${app.name}: ${target} cannot carry the variable name(s) ${bad.map((name) => JSON.stringify(name)).join(', ')}; rename them (letters, digits and _, not starting with a digit)`);
  }
}

/** A warning when the app's arguments hold a credential: a command line is visible to every user of the machine or cluster. */
export function argumentsWarning(app: AppDefinition, where: string): string | null {
  const all = [...app.interpreterArgs, ...app.args];
  const masked = maskArgs(all);
  if (masked.every((arg, index) => arg === all[index])) return null;
  return `app ${app.name}: its arguments hold what looks like a credential (${masked.join(' ')}); it is written into ${where}, which others can read. Pass it in env instead: secret-looking variables are kept out of the exported files.`;
}

export function describeHealth(health: HealthCheck): string {
  const probe = health.http !== null ? `GET ${maskUrl(health.http)}` : `\`${maskCommand(health.command ?? '')}\``;
  return `${probe} every ${formatSetting(health.intervalMs)}, timeout ${formatSetting(health.timeoutMs)}, restart after ${health.retries} failure(s) in a row (ignored for ${formatSetting(health.startPeriodMs)} after a start)`;
}

/**
 * agentpm's behaviours that neither systemd nor Kubernetes has, for the app: one line of text each. The
 * targets add their own beside these (maxChildren and health checks carry over differently to each).
 */
export function uncarried(app: AppDefinition, settings: Partial<DaemonSettings> | null): string[] {
  const notes: string[] = [];
  if (app.maxMemoryBytes !== null) {
    notes.push(
      `maxMemory ${formatBytes(app.maxMemoryBytes)} (${app.memoryMetric.toUpperCase()} of the whole tree): agentpm restarts the app gracefully (stop signal, grace, reason "memory") after ${app.memoryBreachTicks} tick(s) over it${app.onLimit === 'kill-offender' ? ', first ending the largest descendants (onLimit kill-offender)' : ''}. Only the kernel's hard cap carries over.`,
    );
  }
  if (app.hangTimeoutMs !== null) notes.push(`hangTimeout ${formatSetting(app.hangTimeoutMs)}: agentpm restarts an app that prints nothing for that long; nothing here reads the output.`);
  const hooks = app.notify.length + (settings?.notify?.length ?? 0);
  if (hooks > 0) notes.push(`alerts: ${hooks} notify hook(s) (crash, OOM kill, limit restart, give-up...) are not run.`);
  if (app.watch !== null) notes.push(`watch: agentpm restarts on changes under ${app.watch.join(', ')}; not carried over.`);
  if (settings?.guard || app.priority !== 0 || app.guardAction !== 'restart') {
    notes.push(`memory-pressure guard (priority ${app.priority}, guardAction ${app.guardAction}): agentpm ends the lowest-priority tree when the machine runs short; not carried over.`);
  }
  if (!app.reap) notes.push('reap: false (processes that detach themselves are left running): not carried over; they are ended with the rest.');
  return notes;
}

/** Whole seconds, rounded up: a timeout or grace never shrinks in the translation. */
export function ceilSeconds(ms: number): number {
  return Math.ceil(ms / 1000);
}
