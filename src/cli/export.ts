/**
 * `agentpm export systemd|kubernetes <config>`: loads the config exactly as `start` does (in a child
 * process, with its time limit; --env and --only as for start), then writes or prints the files. No daemon
 * is involved: the export is of the config, not of what runs now.
 */
import { execFileSync } from 'node:child_process';
import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import { AgentpmError } from '../errors.js';
import type { ExportInput, ExportResult } from '../export/common.js';
import { printable, writeExport, type OutputStyle } from '../export/output.js';
import { wholeNumberFlag } from './flags.js';

export interface ExportOptions {
  out?: string;
  env?: string;
  only?: string;
}

export interface SystemdExportOptions extends ExportOptions {
  user?: boolean;
  systemdVersion?: string;
}

export interface KubernetesExportOptions extends ExportOptions {
  image: string;
}

async function loadForExport(config: string, options: ExportOptions): Promise<ExportInput> {
  const { isConfigFile } = await import('../config/load.js');
  if (!isConfigFile(config)) {
    throw new AgentpmError('invalid-argument', `${config} is not a config file (ecosystem.*, *.config.* or .json); export reads the apps of a config: put the script in one (export default defineConfig({ apps: [{ script: '${config}' }] }))`);
  }
  const only = options.only?.split(',').map((name) => name.trim()).filter(Boolean);
  if (options.only !== undefined && only?.length === 0) throw new AgentpmError('invalid-argument', `--only expects app names separated by commas, got '${options.only}'`);
  const { loadConfigIsolated } = await import('../config/isolated.js');
  const file = resolve(config);
  const loaded = await loadConfigIsolated(file, { environment: options.env ?? null, only: only ?? null });
  for (const warning of loaded.warnings ?? []) process.stderr.write(`agentpm: warning: ${warning}\n`);
  return { apps: loaded.apps, settings: loaded.settings, source: file };
}

/** The running systemd's version, or null when there is none to ask. */
export function localSystemdVersion(): number | null {
  try {
    const text = execFileSync('systemctl', ['--version'], { encoding: 'utf8', timeout: 5_000, stdio: ['ignore', 'pipe', 'ignore'] });
    const match = /^systemd (\d+)/.exec(text);
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

function emit(result: ExportResult, options: ExportOptions, style: OutputStyle, envDir: string): void {
  for (const warning of result.warnings) process.stderr.write(`agentpm: warning: ${warning}\n`);
  if (options.out === undefined) {
    process.stdout.write(printable(result.files, style, envDir));
    const withheld = result.files.filter((file) => file.secret);
    if (withheld.length > 0) process.stderr.write(`agentpm: ${withheld.map((file) => file.name).join(', ')} not printed (secret values); use --out DIR to write ${withheld.length === 1 ? 'it' : 'them'} with mode 0600\n`);
    return;
  }
  for (const path of writeExport(result.files, options.out)) {
    const file = result.files.find((item) => path.endsWith(`/${item.name}`));
    process.stdout.write(`wrote ${path}${file?.secret ? ' (mode 0600: secret values)' : ''}\n`);
  }
}

export async function exportSystemd(config: string, options: SystemdExportOptions): Promise<void> {
  const { DEFAULT_SYSTEMD_VERSION, MIN_SYSTEMD_VERSION, systemdUnits } = await import('../export/systemd.js');
  const version = options.systemdVersion === undefined ? (localSystemdVersion() ?? DEFAULT_SYSTEMD_VERSION) : wholeNumberFlag('--systemd-version', options.systemdVersion, MIN_SYSTEMD_VERSION, 10_000);
  const input = await loadForExport(config, options);
  const envDir = resolve(options.out ?? '.');
  const uid = process.getuid?.() ?? 0;
  const result = systemdUnits(input, {
    user: options.user === true,
    version,
    envDir,
    path: process.env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin',
    userName: uid === 0 ? null : userInfo().username,
  });
  emit(result, options, 'units', envDir);
}

export async function exportKubernetes(config: string, options: KubernetesExportOptions): Promise<void> {
  const { kubernetesManifests } = await import('../export/kubernetes.js');
  const input = await loadForExport(config, options);
  emit(kubernetesManifests(input, { image: options.image }), options, 'yaml', resolve(options.out ?? '.'));
}
