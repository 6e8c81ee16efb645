// The containment cases under the cgroup2 backend. On the hybrid hosts CI runs on, the unified
// hierarchy has no controllers: membership, freeze and cgroup.kill work, limits stay the tick's. The
// tests give the daemon a cgroup2 directory of their own (AGENTPM_CGROUP2_ROOT) and remove it after.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after } from 'node:test';
import { test } from 'node:test';
import { removeTrees } from './helpers/cgroups.js';
import { containmentCases } from './helpers/containment-cases.js';

const unified = readFileSync('/proc/mounts', 'latin1').split('\n').map((line) => line.split(' ')).find(([, , type]) => type === 'cgroup2')?.[1];
const ownPath = /^0::(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'latin1'))?.[1];

if (unified && ownPath !== undefined && process.getuid?.() === 0) {
  const root = join(unified, ownPath === '/' ? '' : ownPath, `agentpm-test-cg2-${process.pid}`);
  mkdirSync(root);
  after(() => removeTrees(existsSync(root) ? [root] : []));
  // Limits only where the v2 controllers reach this directory (not on the hybrid hosts of CI).
  const controllers = readFileSync(join(root, 'cgroup.controllers'), 'latin1');
  containmentCases('cgroup2', { AGENTPM_CGROUP2_ROOT: root }, { memory: /\bmemory\b/.test(controllers), pids: /\bpids\b/.test(controllers) });
} else {
  test('cgroup2 containment', { skip: 'needs root and a cgroup2 hierarchy' }, () => undefined);
}
