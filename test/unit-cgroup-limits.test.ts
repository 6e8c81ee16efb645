import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { kernelLimitProblems, kernelLimitsFor, PIDS_MAX_LIMIT, type KernelLimitSpec } from '../src/cgroup/limits.js';
import { ADDED_SPEC_DEFAULTS } from '../src/config/defaults.js';
import { resolveApps } from '../src/config/resolve.js';
import { parseCpu } from '../src/config/units.js';
import { parseAppSpec, parseRequest } from '../src/daemon/requests.js';
import { AgentpmError } from '../src/errors.js';
import type { AppDefinition } from '../src/protocol.js';

const MB = 1024 * 1024;
const NONE: KernelLimitSpec = { maxMemoryBytes: null, hardMemoryBytes: null, maxChildren: null, maxTasks: null, maxCpuPercent: null, onLimit: 'restart' };

describe('kernelLimitsFor: hard memory cap', () => {
  test('none without maxMemory or hardMemory', () => {
    assert.equal(kernelLimitsFor(NONE, null).memoryMaxBytes, null);
  });

  test('defaults to 1.25 × maxMemory, rounded up to whole pages', () => {
    assert.equal(kernelLimitsFor({ ...NONE, maxMemoryBytes: 400 * MB }, null).memoryMaxBytes, 500 * MB);
    // 1.25 × 1,000,001 = 1,250,001.25 → the next multiple of 4096 above it.
    const odd = kernelLimitsFor({ ...NONE, maxMemoryBytes: 1_000_001 }, null).memoryMaxBytes;
    assert.equal(odd, 1_253_376);
    assert.ok(odd !== null && odd % 4096 === 0 && odd >= 1_000_001 * 1.25);
  });

  test('an explicit hardMemory wins, also without maxMemory; false means none', () => {
    assert.equal(kernelLimitsFor({ ...NONE, maxMemoryBytes: 400 * MB, hardMemoryBytes: 900 * MB }, null).memoryMaxBytes, 900 * MB);
    assert.equal(kernelLimitsFor({ ...NONE, hardMemoryBytes: 300 * MB }, null).memoryMaxBytes, 300 * MB);
    assert.equal(kernelLimitsFor({ ...NONE, maxMemoryBytes: 400 * MB, hardMemoryBytes: false }, null).memoryMaxBytes, null);
  });

  test('hardMemory equal to maxMemory is allowed, below it is refused', () => {
    assert.equal(kernelLimitsFor({ ...NONE, maxMemoryBytes: 400 * MB, hardMemoryBytes: 400 * MB }, null).memoryMaxBytes, 400 * MB);
    assert.throws(
      () => kernelLimitsFor({ ...NONE, maxMemoryBytes: 400 * MB, hardMemoryBytes: 300 * MB }, null),
      (error: unknown) => error instanceof AgentpmError && error.code === 'invalid-config' && /hardMemory.*300 MB is below maxMemory \(400 MB\)/.test(error.message),
    );
  });

  test('an OOM kills the whole instance unless onLimit keeps the agent (kill-offender)', () => {
    assert.equal(kernelLimitsFor({ ...NONE, maxMemoryBytes: MB }, null).memoryOomGroup, true);
    assert.equal(kernelLimitsFor({ ...NONE, maxMemoryBytes: MB, onLimit: 'kill-offender' }, null).memoryOomGroup, false);
  });
});

describe('kernelLimitsFor: tasks cap (pids.max)', () => {
  test('none without maxChildren or maxTasks', () => {
    assert.equal(kernelLimitsFor(NONE, null).pidsMax, null);
    assert.equal(kernelLimitsFor(NONE, 500).pidsMax, null);
  });

  test('before the start: 32 for the root + 16 per child + 64', () => {
    assert.equal(kernelLimitsFor({ ...NONE, maxChildren: 50 }, null).pidsMax, 32 + 50 * 16 + 64);
    assert.equal(kernelLimitsFor({ ...NONE, maxChildren: 0 }, null).pidsMax, 96);
  });

  test("the root's tasks counted once started raise the cap, never lower it below the root allowance", () => {
    assert.equal(kernelLimitsFor({ ...NONE, maxChildren: 10 }, 5).pidsMax, 32 + 160 + 64);
    assert.equal(kernelLimitsFor({ ...NONE, maxChildren: 10 }, 120).pidsMax, 120 + 160 + 64);
  });

  test('the real case fits: an agent with 14 MCP servers behind npx wrappers, 11 threads each', () => {
    const agentThreads = 24;
    const tree = agentThreads + 14 * 2 * 11;
    const cap = kernelLimitsFor({ ...NONE, maxChildren: 50 }, agentThreads).pidsMax;
    assert.ok(cap !== null && tree < cap, `tree of ${tree} tasks under a cap of ${String(cap)}`);
    // ...while single-threaded children stop at a finite number: a fork storm cannot go on.
    assert.ok(cap !== null && cap <= 1000);
  });

  test('maxTasks overrides the derivation; false means none; huge values clamp to what the kernel accepts', () => {
    assert.equal(kernelLimitsFor({ ...NONE, maxChildren: 50, maxTasks: 2000 }, 900).pidsMax, 2000);
    assert.equal(kernelLimitsFor({ ...NONE, maxTasks: 64 }, null).pidsMax, 64);
    assert.equal(kernelLimitsFor({ ...NONE, maxChildren: 50, maxTasks: false }, null).pidsMax, null);
    assert.equal(kernelLimitsFor({ ...NONE, maxChildren: 1_000_000 }, null).pidsMax, PIDS_MAX_LIMIT);
  });

  test('maxTasks that leaves no room for maxChildren is refused, naming the derived value', () => {
    const [problem, ...rest] = kernelLimitProblems({ ...NONE, maxChildren: 50, maxTasks: 50 });
    assert.equal(rest.length, 0);
    assert.equal(problem?.field, 'maxTasks');
    assert.match(problem?.message ?? '', /leaves no room for maxChildren \(50\).*derive 896/);
    assert.deepEqual(kernelLimitProblems({ ...NONE, maxChildren: 50, maxTasks: 51 }), []);
  });
});

describe('kernelLimitsFor: CPU quota', () => {
  test('none without maxCpu; percent of a core → quota per 100 ms', () => {
    assert.equal(kernelLimitsFor(NONE, null).cpu, null);
    assert.deepEqual(kernelLimitsFor({ ...NONE, maxCpuPercent: 150 }, null).cpu, { quotaUs: 150_000, periodUs: 100_000 });
    assert.deepEqual(kernelLimitsFor({ ...NONE, maxCpuPercent: 1 }, null).cpu, { quotaUs: 1000, periodUs: 100_000 });
    assert.deepEqual(kernelLimitsFor({ ...NONE, maxCpuPercent: 12.5 }, null).cpu, { quotaUs: 12_500, periodUs: 100_000 });
  });

  test('below 1% (the kernel refuses quotas under 1 ms) is refused', () => {
    assert.equal(kernelLimitProblems({ ...NONE, maxCpuPercent: 0.5 })[0]?.field, 'maxCpu');
  });

  test("parseCpu: '150%', cores as a number or a string", () => {
    assert.deepEqual(parseCpu('150%'), { ok: true, value: 150 });
    assert.deepEqual(parseCpu(' 50 % '), { ok: true, value: 50 });
    assert.deepEqual(parseCpu(1.5), { ok: true, value: 150 });
    assert.deepEqual(parseCpu('2'), { ok: true, value: 200 });
    for (const bad of ['fast', '-1%', '1.5 cores', '%', 0, -1, Number.NaN]) {
      const parsed = parseCpu(bad);
      assert.equal(parsed.ok, false, `accepted ${String(bad)}`);
    }
  });
});

describe('the fields through config resolution and request validation', () => {
  let baseDir: string;
  before(() => {
    baseDir = mkdtempSync(join(tmpdir(), 'agentpm-unit-cglimits-'));
    writeFileSync(join(baseDir, 'bot.js'), '\n');
  });
  after(() => rmSync(baseDir, { recursive: true, force: true }));

  const resolveOne = (app: Record<string, unknown>): AppDefinition => {
    const [spec] = resolveApps({ apps: [{ script: 'bot.js', ...app }] }, { source: 'test.config.ts', baseDir });
    assert.ok(spec);
    return spec;
  };
  const refusal = (app: Record<string, unknown>): string => {
    try {
      resolveApps({ apps: [{ script: 'bot.js', ...app }] }, { source: 'test.config.ts', baseDir });
    } catch (error) {
      assert.ok(error instanceof AgentpmError && error.code === 'invalid-config');
      return error.message;
    }
    assert.fail('accepted');
  };

  test('resolved: sizes, false, counts and CPU shares', () => {
    const spec = resolveOne({ maxMemory: '400M', hardMemory: '1G', maxChildren: 20, maxTasks: 600, maxCpu: '150%' });
    assert.equal(spec.hardMemoryBytes, 1024 * MB);
    assert.equal(spec.maxTasks, 600);
    assert.equal(spec.maxCpuPercent, 150);
    const off = resolveOne({ maxMemory: '400M', hardMemory: false, maxTasks: false, maxCpu: 0.5 });
    assert.equal(off.hardMemoryBytes, false);
    assert.equal(off.maxTasks, false);
    assert.equal(off.maxCpuPercent, 50);
    const unset = resolveOne({});
    assert.deepEqual([unset.hardMemoryBytes, unset.maxTasks, unset.maxCpuPercent], [null, null, null]);
  });

  test('refused with the field, the values and the fix', () => {
    assert.match(refusal({ maxMemory: '400M', hardMemory: '300M' }), /field `hardMemory`: 300 MB is below maxMemory \(400 MB\).*set hardMemory to at least maxMemory/);
    assert.match(refusal({ hardMemory: 'lots' }), /field `hardMemory`: expected a size such as '512M'/);
    assert.match(refusal({ hardMemory: true }), /field `hardMemory`: expected a size such as '2G', or false for no kernel cap, got true/);
    assert.match(refusal({ hardMemory: 0 }), /field `hardMemory`: must be more than 0/);
    assert.match(refusal({ maxChildren: 50, maxTasks: 10 }), /field `maxTasks`: 10 leaves no room for maxChildren \(50\)/);
    assert.match(refusal({ maxTasks: 0 }), /field `maxTasks`: expected a whole number from 1/);
    assert.match(refusal({ maxCpu: 'fast' }), /field `maxCpu`: expected a share of CPU such as '50%', '150%'/);
    assert.match(refusal({ maxCpu: '0%' }), /field `maxCpu`: expected 1% to 100000% of a core, got 0%/);
    assert.match(refusal({ maxcpu: '50%' }), /unknown field `maxcpu`; did you mean `maxCpu`\?/);
  });

  test('a hand-made start request is held to the same rules; a valid one passes', () => {
    const definition = resolveOne({ maxMemory: '400M', maxChildren: 5 });
    const start = (app: Record<string, unknown>) => parseRequest({ id: 1, type: 'start', apps: [{ ...definition, ...app }], env: {}, ifRunning: 'refuse' });
    assert.equal(start({}).ok, true);
    assert.equal(start({ hardMemoryBytes: false, maxTasks: false, maxCpuPercent: 250 }).ok, true);
    const low = start({ hardMemoryBytes: 100 * MB });
    assert.ok(!low.ok && /hardMemory: 100 MB is below maxMemory/.test(low.message), JSON.stringify(low));
    const tasks = start({ maxTasks: 3 });
    assert.ok(!tasks.ok && /maxTasks: 3 leaves no room/.test(tasks.message), JSON.stringify(tasks));
    assert.equal(start({ maxCpuPercent: 0 }).ok, false);
    assert.equal(start({ maxTasks: true }).ok, false);
  });

  test('a registry saved before the fields existed reads with derived caps', () => {
    const { hardMemoryBytes, maxTasks, maxCpuPercent, ...old } = { ...resolveOne({ maxMemory: '400M', maxChildren: 5 }), baseEnv: {} };
    assert.deepEqual([hardMemoryBytes, maxTasks, maxCpuPercent], [null, null, null]);
    assert.equal(parseAppSpec(old), null, 'the fields are required in a current spec');
    const upgraded = parseAppSpec({ ...ADDED_SPEC_DEFAULTS, ...old });
    assert.ok(upgraded);
    assert.equal(kernelLimitsFor(upgraded, null).memoryMaxBytes, 500 * MB);
    assert.equal(kernelLimitsFor(upgraded, null).pidsMax, 32 + 5 * 16 + 64);
    // A saved spec is held to the same rules as a request.
    assert.equal(parseAppSpec({ ...upgraded, hardMemoryBytes: 100 * MB }), null);
  });
});
