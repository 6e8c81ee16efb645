/**
 * Which containment this daemon can have, decided once at start from /proc/self/cgroup (where the
 * daemon is), /proc/mounts (which hierarchies exist) and whether the daemon may write there (root, or a
 * subtree delegated to its user; a read-only cgroupfs, as Docker mounts by default, counts as none).
 * Pure over its inputs, so the decision is unit-tested on fixtures.
 */
import { AgentpmError } from '../errors.js';
import { BACKENDS, type BackendKind, type CgroupDirs } from './types.js';

export const V1_CONTROLLERS = ['memory', 'pids', 'cpu', 'freezer'] as const;
type V1Controller = (typeof V1_CONTROLLERS)[number];

export interface DetectInput {
  /** Text of /proc/self/cgroup. */
  selfCgroup: string;
  /** Text of /proc/mounts. */
  mounts: string;
  /** AGENTPM_CONTAINMENT */
  forced: string | undefined;
  /** AGENTPM_CGROUP2_ROOT: a cgroup2 directory to use instead of the daemon's own (tests). */
  cgroup2Root: string | undefined;
  uid: number;
  /** The name of this home's tree (agentpm-<hash>): a daemon started inside it builds beside it, not in it. */
  treeName: string;
  writable(path: string): boolean;
  exists(path: string): boolean;
  /** Controllers listed in a v2 directory's cgroup.controllers. */
  controllers(dir: string): string[];
}

export interface Detected {
  backend: BackendKind;
  reason: string;
  enable: string | null;
  /** The daemon's own cgroup per hierarchy the backend uses: the home's tree goes under these. */
  own: CgroupDirs;
}

const HOW_TO_ENABLE =
  'run the daemon as root, or with a delegated cgroup: `agentpm startup systemd --user` writes a unit with Delegate=yes, ' +
  'and with a systemd user manager running (`loginctl enable-linger $USER`) the CLI starts the daemon in a delegated scope itself';

/** Parses /proc/self/cgroup: the v2 path (line `0::/path`) and each v1 controller's path. */
export function parseSelfCgroup(text: string): { v2: string | null; v1: Map<string, string> } {
  let v2: string | null = null;
  const v1 = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!match) continue;
    const [, id, controllers = '', path = ''] = match;
    if (id === '0' && controllers === '') v2 = path;
    else for (const name of controllers.split(',')) if (name) v1.set(name, path);
  }
  return { v2, v1 };
}

/** Mount points of the cgroup2 filesystem and of each v1 controller, from /proc/mounts. */
export function parseMounts(text: string): { v2: string[]; v1: Map<string, string> } {
  const v2: string[] = [];
  const v1 = new Map<string, string>();
  for (const line of text.split('\n')) {
    const [, point, type, options = ''] = line.split(' ');
    if (!point || point.includes('\\')) continue;
    if (type === 'cgroup2') v2.push(point);
    else if (type === 'cgroup') for (const option of options.split(',')) if (!v1.has(option)) v1.set(option, point);
  }
  return { v2, v1 };
}

/** A daemon started from inside this home's own tree (a CLI run by an app) builds beside that tree. */
function outsideOwnTree(path: string, treeName: string): string {
  const at = path.indexOf(`/${treeName}`);
  return at < 0 ? path : path.slice(0, at) || '/';
}

function joinCgroup(mount: string, path: string): string {
  return path === '/' ? mount : `${mount}${path}`;
}

export function detectContainment(input: DetectInput): Detected {
  const self = parseSelfCgroup(input.selfCgroup);
  const mounts = parseMounts(input.mounts);
  const usable = (dir: string): boolean => input.exists(dir) && input.writable(dir) && input.writable(`${dir}/cgroup.procs`);

  // The unified hierarchy: the daemon's own cgroup in it, or the directory the tests name.
  let v2Dir: string | null = null;
  let v2Problem = 'no cgroup2 hierarchy is mounted';
  if (input.cgroup2Root) {
    v2Dir = input.cgroup2Root;
    if (!usable(v2Dir)) v2Problem = `AGENTPM_CGROUP2_ROOT ${v2Dir} is not a writable cgroup2 directory`;
  } else if (self.v2 !== null && mounts.v2[0]) {
    v2Dir = joinCgroup(mounts.v2[0], outsideOwnTree(self.v2, input.treeName));
    if (!input.exists(v2Dir)) v2Problem = `the daemon's cgroup2 directory ${v2Dir} is not visible (another cgroup namespace?)`;
    else if (!usable(v2Dir)) v2Problem = `${v2Dir} is not writable by uid ${input.uid} (${input.writable(mounts.v2[0]) ? 'not delegated to this user' : 'a read-only cgroupfs, or not root'})`;
  }
  const v2Ok = v2Dir !== null && usable(v2Dir);
  const v2Controllers = v2Ok && v2Dir ? input.controllers(v2Dir) : [];

  // The v1 controllers: the daemon's own cgroup in each.
  const v1: Partial<Record<V1Controller, string>> = {};
  const v1Problems: string[] = [];
  for (const name of V1_CONTROLLERS) {
    const mount = mounts.v1.get(name);
    const path = self.v1.get(name);
    if (!mount || path === undefined) {
      if (name !== 'cpu') v1Problems.push(`no v1 ${name} hierarchy`);
      continue;
    }
    const dir = joinCgroup(mount, outsideOwnTree(path, input.treeName));
    if (usable(dir)) v1[name] = dir;
    else if (name !== 'cpu') v1Problems.push(`${dir} is not writable by uid ${input.uid}`);
  }
  const v1Ok = v1.memory !== undefined && v1.pids !== undefined && v1.freezer !== undefined;

  const cgroup2 = (why: string): Detected => ({ backend: 'cgroup2', reason: why, enable: null, own: { unified: v2Dir ?? '' } });
  const hybrid = (why: string): Detected => ({ backend: 'hybrid', reason: why, enable: null, own: { ...v1, unified: v2Dir ?? '' } });
  const cgroup1 = (why: string): Detected => ({ backend: 'cgroup1', reason: why, enable: null, own: { ...v1 } });
  const v2Limits = v2Controllers.includes('memory') && v2Controllers.includes('pids');

  const forced = input.forced?.trim();
  if (forced) {
    if (!(BACKENDS as readonly string[]).includes(forced)) {
      throw new AgentpmError('invalid-argument', `AGENTPM_CONTAINMENT=${forced} is not a backend; use one of ${BACKENDS.join(', ')}, or unset it to let the daemon choose`);
    }
    const refuse = (why: string): never => {
      throw new AgentpmError('containment-unavailable', `AGENTPM_CONTAINMENT=${forced} cannot work here: ${why}. Unset it to let the daemon choose (it falls back to what the machine allows)`);
    };
    switch (forced as BackendKind) {
      case 'proc':
        return { backend: 'proc', reason: 'forced by AGENTPM_CONTAINMENT=proc', enable: 'unset AGENTPM_CONTAINMENT', own: {} };
      case 'cgroup2':
        if (!v2Ok) refuse(v2Problem);
        return cgroup2(`forced by AGENTPM_CONTAINMENT=cgroup2 (${v2Limits ? 'with' : 'without'} the memory and pids controllers)`);
      case 'hybrid':
        if (!v2Ok) refuse(v2Problem);
        if (!v1Ok) refuse(v1Problems.join('; '));
        return hybrid('forced by AGENTPM_CONTAINMENT=hybrid');
      case 'cgroup1':
        if (!v1Ok) refuse(v1Problems.join('; '));
        return cgroup1('forced by AGENTPM_CONTAINMENT=cgroup1');
    }
  }

  if (v2Ok && v2Limits) return cgroup2(`a writable cgroup2 subtree at ${v2Dir} with the memory and pids controllers`);
  if (v2Ok && v1Ok) return hybrid(`cgroup v1 controllers (memory, pids, freezer) for limits and the unified hierarchy at ${v2Dir} for membership and kill`);
  if (v1Ok) return cgroup1(`cgroup v1 memory, pids and freezer hierarchies are writable (${v2Problem})`);
  if (v2Ok) {
    return { ...cgroup2(`a writable cgroup2 subtree at ${v2Dir}, without the memory and pids controllers (membership and kill only)`), enable: 'a subtree with the memory and pids controllers delegated (Delegate=yes) also gives kernel limits' };
  }
  const problems = [v2Problem, ...v1Problems].join('; ');
  return { backend: 'proc', reason: `no writable cgroup: ${problems}`, enable: HOW_TO_ENABLE, own: {} };
}
