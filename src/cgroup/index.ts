/**
 * Choosing the daemon's containment at start (see detect.ts) and setting it up; a cgroup backend the
 * kernel refuses at setup falls back to `proc`, with the reason, unless it was forced.
 */
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { AgentpmError } from '../errors.js';
import { CgroupContainment, ProcContainment } from './backends.js';
import { detectContainment } from './detect.js';
import type { Containment, ContainmentInfo } from './types.js';

export type { Containment, ContainmentInfo, InstanceCgroup, BackendKind } from './types.js';

/** agentpm-<hash of the home's real path>: several homes' daemons share a cgroup without meeting. */
export function treeNameFor(home: string): string {
  let real = home;
  try {
    real = realpathSync(home);
  } catch {
    // not there yet: the path as given
  }
  return `agentpm-${createHash('sha256').update(real).digest('hex').slice(0, 12)}`;
}

function launcher(): string {
  if (process.env['AGENTPM_LAUNCHER'] === 'systemd-scope') return 'systemd-scope';
  return process.env['INVOCATION_ID'] ? 'systemd-unit' : 'direct';
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'latin1');
  } catch {
    return '';
  }
}

export function createContainment(home: string): Containment {
  const treeName = treeNameFor(home);
  const forced = process.env['AGENTPM_CONTAINMENT'];
  const detected = detectContainment({
    selfCgroup: readText('/proc/self/cgroup'),
    mounts: readText('/proc/mounts'),
    forced,
    cgroup2Root: process.env['AGENTPM_CGROUP2_ROOT'] || undefined,
    uid: process.getuid?.() ?? -1,
    treeName,
    writable: (path) => {
      try {
        accessSync(path, constants.W_OK);
        return true;
      } catch {
        return false;
      }
    },
    exists: existsSync,
    controllers: (dir) => readText(join(dir, 'cgroup.controllers')).split(/\s+/).filter(Boolean),
  });
  const info: ContainmentInfo = { backend: detected.backend, reason: detected.reason, enable: detected.enable, launcher: launcher(), dirs: {} };
  if (detected.backend === 'proc') return new ProcContainment(info);
  const containment = new CgroupContainment(info, detected.backend, detected.own, treeName);
  try {
    containment.setup();
    return containment;
  } catch (error) {
    containment.shutdown(false);
    const why = `the ${detected.backend} backend failed at setup: ${(error as Error).message}`;
    if (forced) throw new AgentpmError('containment-unavailable', `AGENTPM_CONTAINMENT=${forced} cannot work here: ${why}`);
    return new ProcContainment({ ...info, backend: 'proc', reason: why, enable: 'run the daemon as root, or with a delegated cgroup (Delegate=yes)' });
  }
}
