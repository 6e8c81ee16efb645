/**
 * The process-layer cases that depend on containment, run once per backend the machine supports (one
 * small test file per backend forces it with AGENTPM_CONTAINMENT): stop, attribution, the escape,
 * adoption after kill -9 of the daemon, a fork storm, a memory limit, and what is left in cgroupfs.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { BackendKind } from '../../src/cgroup/types.js';
import type { AgentEvent, DaemonStatus } from '../../src/protocol.js';
import { cgroupsBelow, findTrees, treeNameOf } from './cgroups.js';
import { isAlivePid, readPids } from './procs.js';
import { FIXTURES, Rig, waitFor } from './rig.js';

const TREE = join(FIXTURES, 'tree.mjs');
const FORK_STORM = join(FIXTURES, 'fork-storm.mjs');
const MEMORY_TREE = join(FIXTURES, 'memory-tree.mjs');
const MB = 1024 * 1024;

/**
 * An app that starts a helper the way agent tools do: environment cleared, new session, double fork
 * (the intermediate shell exits at once). The helper holds 50 MB and writes its pid to `helper.pid`.
 */
function escapeApp(rig: Rig): { script: string; pidfile: string } {
  const pidfile = join(rig.home, 'helper.pid');
  const script = join(rig.home, 'escape.sh');
  const helper = `require('fs').writeFileSync(process.argv[1], String(process.pid)); const held = Buffer.alloc(50 * 1024 * 1024, 1); setInterval(() => held[0]++, 1000)`;
  writeFileSync(script, `#!/bin/sh\nenv -i /bin/sh -c "setsid ${process.execPath} -e \\"${helper}\\" ${pidfile} &"\nexec sleep 600\n`, { mode: 0o755 });
  return { script, pidfile };
}

async function helperPid(rig: Rig, pidfile: string): Promise<number> {
  const [pid] = await waitFor(() => readPids(pidfile, 1), 'the helper to start');
  rig.ownPids.add(pid as number); // killed at teardown if it escaped
  return pid as number;
}

/** What the backend's cgroups can enforce on this machine (the v2 controllers may not be enabled). */
export interface KernelCaps {
  memory: boolean;
  pids: boolean;
}

export function containmentCases(backend: BackendKind, extraEnv: Record<string, string> = {}, caps: KernelCaps = { memory: false, pids: false }): void {
  const contained = backend !== 'proc';
  const env = { AGENTPM_CONTAINMENT: backend, ...extraEnv };
  const treeDirs = (rig: Rig): string[] => findTrees(new Set([treeNameOf(rig.home)]));
  /** The cgroups below an app's directory, in every hierarchy: its instances (and `detached`). */
  const instanceCgroups = (rig: Rig, app: string): string[] =>
    treeDirs(rig)
      .map((dir) => join(dir, 'apps', app))
      .filter((dir) => existsSync(dir))
      .flatMap((dir) => cgroupsBelow(dir).filter((below) => below !== dir));

  test(`${backend}: daemon status, ls --json and show name the backend`, async (t) => {
    const rig = await Rig.create(env);
    t.after(() => rig.dispose());
    await rig.ok(['start', TREE, '--name', 'tree', '--env', 'CHILDREN=1']);
    const status = JSON.parse(await rig.ok(['daemon', 'status', '--json'])) as DaemonStatus;
    assert.equal(status.containment.backend, backend);
    assert.match(status.containment.reason, /AGENTPM_CONTAINMENT/);
    assert.equal((await rig.app('tree')).containment, backend);
    assert.match(await rig.ok(['daemon', 'status']), new RegExp(`containment\\s+${backend}`));
    assert.match(await rig.ok(['show', 'tree']), new RegExp(`containment\\s+${backend}`));
    assert.equal(treeDirs(rig).length > 0, contained, contained ? 'the home has a cgroup tree' : 'proc creates no cgroup');
  });

  test(`${backend}: stop ends a whole tree (a TERM-ignoring root and child, a setsid grandchild)`, async (t) => {
    const rig = await Rig.create(env);
    t.after(() => rig.dispose());
    const pidfile = join(rig.home, 'pids');
    await rig.ok(['start', TREE, '--name', 'tree', '--kill-timeout', '500ms', '--env', 'CHILDREN=2', '--env', 'STUBBORN=1', '--env', 'SETSID=1', '--env', 'IGNORE_TERM=1', '--env', `PIDFILE=${pidfile}`]);
    const pids = await waitFor(() => readPids(pidfile, 5), 'the tree to write its pids');
    await waitFor(async () => (await rig.show('tree')).tree.some((proc) => proc.pid === pids[4]) || undefined, 'show to list the setsid grandchild');
    await rig.ok(['stop', 'tree']);
    assert.deepEqual(pids.filter(isAlivePid), [], 'no process of the tree survives the stop');
    assert.equal((await rig.app('tree')).lastExit?.reason, 'stopped');
  });

  if (contained) {
    test(`${backend}: a helper that clears its environment, calls setsid and double-forks is counted in ls and gone after stop`, async (t) => {
      const rig = await Rig.create(env);
      t.after(() => rig.dispose());
      const { script, pidfile } = escapeApp(rig);
      await rig.ok(['start', script, '--name', 'agent']);
      const helper = await helperPid(rig, pidfile);
      // Counted, and its 50 MB with it (it allocates right after writing its pid).
      await waitFor(async () => {
        const summary = await rig.app('agent');
        return summary.processes === 2 && summary.memory > 50 * MB ? summary : undefined;
      }, 'ls to count the helper and its memory');
      assert.ok((await rig.show('agent')).tree.some((proc) => proc.pid === helper), 'show lists the helper');
      await rig.ok(['stop', 'agent']);
      assert.equal(isAlivePid(helper), false, 'the helper is gone after stop');
      assert.deepEqual(instanceCgroups(rig, 'agent'), [], 'the stopped instance\'s cgroup is removed');
    });

    test(`${backend}: after kill -9 of the daemon, the next one reads the cgroup: the escaped helper is still counted, and ended by stop`, async (t) => {
      const rig = await Rig.create(env);
      t.after(() => rig.dispose());
      const { script, pidfile } = escapeApp(rig);
      await rig.ok(['start', script, '--name', 'agent']);
      const helper = await helperPid(rig, pidfile);
      await waitFor(async () => (await rig.app('agent')).processes === 2 || undefined, 'ls to count the helper');
      const daemon = rig.daemonPid() as number;
      process.kill(daemon, 'SIGKILL');
      await waitFor(() => !isAlivePid(daemon), 'the daemon to die');
      const adopted = await rig.app('agent'); // starts a new daemon, which adopts
      assert.equal(adopted.status, 'online');
      assert.equal(adopted.processes, 2, 'the helper is found through the cgroup, not by tags');
      assert.equal(adopted.restarts, 0, 'adopted, not restarted');
      await rig.ok(['stop', 'agent']);
      assert.equal(isAlivePid(helper), false);
    });

    test(`${backend}: an instance cgroup no registry entry owns is ended by the next daemon, escaped helper included, and removed`, async (t) => {
      const rig = await Rig.create(env);
      t.after(() => rig.dispose());
      const { script, pidfile } = escapeApp(rig);
      await rig.ok(['start', script, '--name', 'agent']);
      const helper = await helperPid(rig, pidfile);
      const { pid } = await waitFor(async () => {
        const summary = await rig.app('agent');
        return summary.processes === 2 ? summary : undefined;
      }, 'ls to count the helper');
      const daemon = rig.daemonPid() as number;
      process.kill(daemon, 'SIGKILL');
      await waitFor(() => !isAlivePid(daemon), 'the daemon to die');
      // The registry forgets the app (as an older or damaged registry would): its cgroup is nobody's now.
      const registryPath = join(rig.home, 'registry.json');
      const registry = JSON.parse(readFileSync(registryPath, 'utf8')) as { apps: unknown[] };
      writeFileSync(registryPath, JSON.stringify({ ...registry, apps: [] }));
      assert.deepEqual(await rig.ls(), []);
      await waitFor(() => !isAlivePid(helper) && !isAlivePid(pid as number), 'the root and the untagged helper to be ended');
      assert.deepEqual(instanceCgroups(rig, 'agent'), [], 'the instance cgroup is removed');
    });

    test(`${backend}: delete removes the app's cgroups, kill removes the home's tree`, async (t) => {
      const rig = await Rig.create(env);
      t.after(() => rig.dispose());
      await rig.ok(['start', TREE, '--name', 'one', '--env', 'CHILDREN=1']);
      await rig.ok(['start', TREE, '--name', 'two', '--env', 'CHILDREN=1']);
      const appDir = (name: string): string[] => treeDirs(rig).map((dir) => join(dir, 'apps', name)).filter((dir) => existsSync(dir));
      await waitFor(() => appDir('one').length > 0 || undefined, 'the app cgroup');
      await rig.ok(['delete', 'one']);
      assert.deepEqual(appDir('one'), [], 'no cgroup of a deleted app is left');
      assert.ok(appDir('two').length > 0);
      await rig.ok(['kill']);
      assert.deepEqual(treeDirs(rig), [], 'kill leaves no cgroup of the home');
    });
  } else {
    test('proc: the known limit: a helper with a cleared environment, its own session and a dead parent escapes ls and stop', async (t) => {
      const rig = await Rig.create(env);
      t.after(() => rig.dispose());
      const { script, pidfile } = escapeApp(rig);
      await rig.ok(['start', script, '--name', 'agent']);
      const helper = await helperPid(rig, pidfile);
      // Once the intermediate shell is gone (a moment after the helper starts), nothing links the helper to the app.
      await waitFor(async () => ((await rig.app('agent')).processes === 1 && isAlivePid(helper)) || undefined, 'the inference to lose the helper while it lives');
      await rig.ok(['stop', 'agent']);
      assert.equal(isAlivePid(helper), true, 'the helper outlives the stop (what the cgroup backends prevent)');
      process.kill(helper, 'SIGKILL');
    });
  }

  test(`${backend}: a fork storm is contained and nothing of it survives`, async (t) => {
    const rig = await Rig.create(env);
    t.after(() => rig.dispose());
    await rig.ok(['start', FORK_STORM, '--name', 'storm', '--max-children', '20', '--restart-delay', '60s', '--kill-timeout', '10s']);
    const app = await waitFor(async () => {
      const summary = await rig.app('storm');
      return summary.lastExit ? summary : undefined;
    }, 'the storm to be contained', 15_000, 10);
    assert.equal(app.lastExit?.reason, 'children-limit');
    assert.equal(app.lastExit?.signal, 'SIGKILL');
    assert.deepEqual(rig.tagged(), [], 'nothing of the storm survives');
  });

  test(`${backend}: a memory breach in a child restarts the whole tree (memory-limit), the children with it`, async (t) => {
    const rig = await Rig.create(env);
    t.after(() => rig.dispose());
    const pidfile = join(rig.home, 'children');
    await rig.ok(['start', MEMORY_TREE, '--name', 'agent', '--max-memory', '150M', '--restart-delay', '30s', '--env', 'CHILD_MB=60,60', '--env', `PIDFILE=${pidfile}`]);
    const app = await waitFor(async () => {
      const summary = await rig.app('agent');
      return summary.lastExit ? summary : undefined;
    }, 'the limit to be enforced');
    assert.equal(app.lastExit?.reason, 'memory-limit');
    assert.ok((app.lastExit?.limit?.measured ?? 0) > 150 * MB);
    assert.deepEqual(rig.tagged(), []);
  });

  test(`${backend}: a spike past the hard memory cap ${caps.memory ? 'is OOM-killed by the kernel inside the instance, recorded from its own cgroup as oom-killed' : 'is caught by the graceful limit (no kernel cap here)'}`, async (t) => {
    const rig = await Rig.create(env);
    t.after(() => rig.dispose());
    const script = join(rig.home, 'spike.mjs');
    // 300 MB at once: far past the cap before any tick can see it.
    writeFileSync(script, `const held = Buffer.alloc(300 * 1024 * 1024, 1);\nsetInterval(() => held[0]++, 1000);\n`);
    const config = join(rig.home, 'spike.config.json');
    writeFileSync(config, JSON.stringify({ apps: [{ name: 'spike', script, maxMemory: '100M', hardMemory: '100M', autorestart: false }] }));
    await rig.ok(['start', config]);
    const app = await waitFor(async () => {
      const summary = await rig.app('spike');
      return summary.lastExit ? summary : undefined;
    }, 'the spike to end', 15_000);
    if (caps.memory) {
      assert.equal(app.lastExit?.reason, 'oom-killed', JSON.stringify(app.lastExit));
      assert.equal(app.lastExit?.signal, 'SIGKILL');
    } else {
      assert.equal(app.lastExit?.reason, 'memory-limit', JSON.stringify(app.lastExit));
    }
  });

  if (caps.memory) {
    test(`${backend}: a child the kernel kills at the hard cap is reported as such, and the app keeps running`, async (t) => {
      const rig = await Rig.create(env);
      t.after(() => rig.dispose());
      const config = join(rig.home, 'child.config.json');
      writeFileSync(config, JSON.stringify({ apps: [{ name: 'agent', script: MEMORY_TREE, env: { CHILD_MB: '300' }, maxMemory: '150M', hardMemory: '150M' }] }));
      await rig.ok(['start', config]);
      const breach = await waitFor(async () => {
        const lines = (await rig.ok(['events', '--json', '--app', 'agent'])).trim().split('\n').filter(Boolean);
        return lines.map((line) => JSON.parse(line) as AgentEvent).find((event) => event.type === 'limit-breach' && event.data['action'] === 'kernel-oom-kill');
      }, 'the kernel OOM kill to be reported', 15_000);
      assert.equal(breach.data['kills'], 1);
      const app = await rig.app('agent');
      assert.equal(app.status, 'online', 'the root lives on');
      assert.equal(app.restarts, 0);
      assert.match(await rig.ok(['events', '--app', 'agent']), /the kernel OOM-killed 1 process\(es\) in the app's cgroup at its hard memory cap \(150 MB\)/);
    });
  }

  if (caps.pids) {
    test(`${backend}: a burst of 300 spawns with no delay never gets past pids.max: the kernel refuses the rest`, async (t) => {
      const rig = await Rig.create(env);
      t.after(() => rig.dispose());
      const script = join(rig.home, 'burst.mjs');
      const report = join(rig.home, 'burst.report');
      // Counts the spawns the kernel allowed and those it refused (EAGAIN), then reports them.
      writeFileSync(
        script,
        `import { spawn } from 'node:child_process';\nimport { writeFileSync } from 'node:fs';\nlet ok = 0, refused = 0;\n` +
          `const settle = () => { if (ok + refused === 300) writeFileSync(${JSON.stringify(report)}, JSON.stringify({ ok, refused })); };\n` +
          `for (let i = 0; i < 300; i += 1) spawn('sleep', ['600'], { stdio: 'ignore' }).on('spawn', () => { ok += 1; settle(); }).on('error', () => { refused += 1; settle(); });\n` +
          `setInterval(() => {}, 60_000);\n`,
      );
      await rig.ok(['start', script, '--name', 'burst', '--max-tasks', '60']);
      const counts = await waitFor(() => (existsSync(report) ? (JSON.parse(readFileSync(report, 'utf8')) as { ok: number; refused: number }) : undefined), 'the burst to settle', 15_000);
      // The root's own threads count against the cap too.
      assert.ok(counts.ok > 10 && counts.ok < 60, `the kernel admitted fewer than pids.max (${JSON.stringify(counts)})`);
      assert.equal(counts.ok + counts.refused, 300);
      assert.ok(rig.tagged().length <= 60, 'no more processes live than the cap allows');
      await rig.ok(['stop', 'burst']);
      assert.deepEqual(rig.tagged(), []);
    });
  }
}
