import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { resolveApps } from '../src/config/resolve.js';
import { parseAppSpec, parseRequest } from '../src/daemon/requests.js';
import { v } from '../src/validate.js';
import * as reference from './helpers/requests-zod.js';

/** The first issue as the daemon reports it: path and message, or 'ok'. */
function first(schema: { safeParse(input: unknown): { ok: true } | { ok: false; issues: { path: (string | number)[]; message: string }[] } }, input: unknown): string {
  const result = schema.safeParse(input);
  if (result.ok) return 'ok';
  const issue = result.issues[0]!;
  return issue.path.length > 0 ? `${issue.path.join('.')}: ${issue.message}` : issue.message;
}

describe('the schema checker', () => {
  test('types, bounds and formats, in zod 4 wording', () => {
    assert.equal(first(v.string(), 1), 'Invalid input: expected string, received number');
    assert.equal(first(v.string(), null), 'Invalid input: expected string, received null');
    assert.equal(first(v.string(), []), 'Invalid input: expected string, received array');
    assert.equal(first(v.string().min(1), ''), 'Too small: expected string to have >=1 characters');
    assert.equal(first(v.string().min(1).max(3), 'abcd'), 'Too big: expected string to have <=3 characters');
    assert.equal(first(v.string().regex(/^a$/, 'only a'), 'b'), 'only a');
    assert.equal(first(v.string().url(), 'no url'), 'Invalid URL');
    assert.equal(first(v.number(), '1'), 'Invalid input: expected number, received string');
    assert.equal(first(v.number().int(), 1.5), 'Invalid input: expected int, received number');
    assert.equal(first(v.number().int().max(3), 2 ** 53), 'Too big: expected int to be <=9007199254740991');
    assert.equal(first(v.number().int().nonnegative(), -1), 'Too small: expected number to be >=0');
    assert.equal(first(v.number().positive(), 0), 'Too small: expected number to be >0');
    assert.equal(first(v.number().max(5), 6), 'Too big: expected number to be <=5');
    assert.equal(first(v.boolean(), 'true'), 'Invalid input: expected boolean, received string');
    assert.equal(first(v.literal(true), false), 'Invalid input: expected true');
    assert.equal(first(v.enum(['a', 'b']), 'c'), 'Invalid option: expected one of "a"|"b"');
    assert.equal(first(v.array(v.string()).min(1), []), 'Too small: expected array to have >=1 items');
    assert.equal(first(v.array(v.string()), ['a', 2]), '1: Invalid input: expected string, received number');
    assert.equal(first(v.record(), { a: 1 }), 'a: Invalid input: expected string, received number');
    assert.equal(first(v.record(), []), 'Invalid input: expected record, received array');
    assert.equal(first(v.string().nullable(), null), 'ok');
    assert.equal(first(v.string().nullable(), undefined), 'Invalid input: expected string, received undefined');
  });

  test('a fraction stops the bounds after it; bounds are checked in order', () => {
    assert.equal(first(v.number().int().nonnegative().max(10), -1.5), 'Invalid input: expected int, received number');
    assert.equal(first(v.number().int().nonnegative().max(10).min(1), 0), 'Too small: expected number to be >=1');
    assert.equal(first(v.number().int().nonnegative().max(10).min(1), 11), 'Too big: expected number to be <=10');
  });

  test('objects: fields in order, a missing one, unknown keys after the fields, refinements last', () => {
    const point = v.strictObject({ x: v.number(), y: v.number(), label: v.string().optional() });
    assert.equal(first(point, { x: 1, y: 2 }), 'ok');
    assert.equal(first(point, { y: 'a' }), 'x: Invalid input: expected number, received undefined');
    assert.equal(first(point, { x: 1, y: 2, z: 3, w: 4 }), 'Unrecognized keys: "z", "w"');
    assert.equal(first(point, { x: 1, y: 2, label: 3 }), 'label: Invalid input: expected string, received number');
    assert.equal(first(point, null), 'Invalid input: expected object, received null');
    const refined = point.superRefine((value, context) => value.x > value.y && context.addIssue({ message: 'x above y' }));
    assert.equal(first(refined, { x: 3, y: 2 }), 'x above y');
    assert.equal(first(refined, { x: 3, y: 2, z: 1 }), 'Unrecognized key: "z"', 'the unknown key comes before the refinement');
    assert.deepEqual(point.safeParse({ label: 'p', y: 2, x: 1 }), { ok: true, value: { x: 1, y: 2, label: 'p' } }, 'rebuilt in declaration order');
  });

  test('unions: the only branch that failed on bounds alone is reported, else "Invalid input"', () => {
    const cap = v.union([v.number().int().positive().max(5), v.literal(false)]);
    assert.equal(first(cap, false), 'ok');
    assert.equal(first(cap, 7), 'Too big: expected number to be <=5');
    assert.equal(first(cap, 'x'), 'Invalid input');
    const target = v.union([v.strictObject({ all: v.literal(true) }), v.strictObject({ names: v.array(v.string()).min(1) })]);
    assert.equal(first(target, { names: [] }), 'names: Too small: expected array to have >=1 items');
    assert.equal(first(target, {}), 'Invalid input');
    const request = v.discriminatedUnion('type', [v.strictObject({ type: v.literal('a') }), v.strictObject({ type: v.literal('b'), n: v.number() })]);
    assert.equal(first(request, { type: 'c' }), "type: Invalid discriminator value. Expected 'a' | 'b'");
    assert.equal(first(request, { type: 'b', n: '1' }), 'n: Invalid input: expected number, received string');
    assert.equal(first(request, 'b'), 'Invalid input: expected object, received string');
  });

  test('a URL is trimmed as zod trims it', () => {
    assert.deepEqual(v.string().url().safeParse(' http://127.0.0.1:9/x\n'), { ok: true, value: 'http://127.0.0.1:9/x' });
  });
});

// ---------------------------------------------------------------------------------------------------
// The daemon's requests against the zod schema they were written with: the same verdict, message and
// output for valid requests of every type and for thousands of corruptions of them.

const definition = resolveApps(
  {
    apps: [
      {
        name: 'bot',
        script: 'idle.mjs',
        args: ['--fast'],
        env: { A: '1' },
        maxMemory: '400M',
        hardMemory: '500M',
        maxChildren: 5,
        maxCpu: '50%',
        watch: ['src'],
        notify: [{ command: 'echo hi', webhook: 'http://127.0.0.1:9/hook', events: ['crash'], timeout: '5s' }],
        health: { http: 'http://127.0.0.1:8080/health', interval: '5s' },
        cronRestart: { schedule: '0 4 * * *', timezone: 'UTC' },
        dependsOn: ['db'],
        oomScoreAdj: 100,
      },
      { name: 'db', script: 'idle.mjs' },
    ],
  },
  { source: 'test.config.ts', baseDir: fileURLToPath(new URL('./fixtures/', import.meta.url)) },
).find((app) => app.name === 'bot');
assert.ok(definition);
const caller = { pid: 10, startTime: 20 };
const VALID: Record<string, unknown>[] = [
  { id: 1, type: 'hello', protocol: 3, version: '0.1.0' },
  { id: 2, type: 'status' },
  { id: 3, type: 'ls' },
  { id: 4, type: 'show', name: 'bot' },
  { id: 5, type: 'start', apps: [definition], env: { PATH: '/bin' }, ifRunning: 'apply' },
  { id: 6, type: 'start-saved', names: ['bot'], ifRunning: 'refuse' },
  { id: 7, type: 'notify-test', app: null },
  { id: 8, type: 'save' },
  { id: 9, type: 'resurrect' },
  { id: 10, type: 'stop', target: { all: true } },
  { id: 11, type: 'restart', target: { names: ['a', 'b'] } },
  { id: 12, type: 'delete', target: { names: ['a'] } },
  { id: 13, type: 'signal', name: 'bot', signal: 'SIGUSR1' },
  { id: 14, type: 'events', app: 'bot', limit: 100 },
  { id: 15, type: 'subscribe', app: null },
  { id: 16, type: 'reap', options: { app: null, dryRun: true, allHomes: false, unmanaged: { match: 'mcp-.*', olderThanMs: 1000 }, only: [caller], graceMs: 100, caller } },
  {
    id: 17,
    type: 'settings',
    settings: {
      reapIntervalMs: 5000,
      unmanaged: [{ match: 'x', olderThanMs: 0 }],
      notify: [{ command: null, webhook: 'https://example.com/h', events: null, timeoutMs: 1000 }],
      guard: { minAvailableBytes: 1024, minAvailablePercent: 5, pressureSomeAvg10: null },
      metrics: { listen: '127.0.0.1:9464', allowPublic: false },
    },
  },
  { id: 18, type: 'kill' },
  { id: 19, type: 'daemon-stop' },
  { id: 20, type: 'flush', target: { all: true } },
];

/** Replacement values tried at every position: each type, bounds, formats. */
const CORRUPTIONS: unknown[] = [
  undefined, null, true, false, 0, -1, 1, 1.5, 100, 1e300, 2 ** 53, -(2 ** 53), '', 'x', 'SIGNOPE', '../etc', 'http://x', ' http://a.b/\t', '0 4 * * *',
  '(', 'a'.repeat(300), [], ['x'], [1], [''], [null], {}, { x: 1 }, { all: true }, { all: false }, { names: [] }, { names: ['a'] }, { pid: 1, startTime: 1 },
];

type Json = unknown;
/** Every value of `base` with the value at one path replaced (undefined: deleted), plus an unknown key added to each object. */
function* corruptions(base: Json, path: (string | number)[] = []): Generator<{ where: string; value: Json }> {
  const where = path.join('.') || '(root)';
  for (const replacement of CORRUPTIONS) yield { where: `${where} = ${JSON.stringify(replacement)}`, value: replacement };
  if (Array.isArray(base)) {
    yield { where: `${where} + extra item`, value: [...base, base[0] ?? 'x'] };
    for (let index = 0; index < base.length; index += 1) {
      for (const inner of corruptions(base[index], [...path, index])) {
        const copy = [...base];
        copy[index] = inner.value;
        yield { where: inner.where, value: copy };
      }
    }
  } else if (typeof base === 'object' && base !== null) {
    const record = base as Record<string, Json>;
    yield { where: `${where} + unknown key`, value: { ...record, extra: 1 } };
    const rest = JSON.stringify(record).slice(1);
    yield { where: `${where} + __proto__ key`, value: JSON.parse(`{"__proto__": 1${rest === '}' ? '' : ', '}${rest}`) as Json };
    for (const key of Object.keys(record)) {
      for (const inner of corruptions(record[key], [...path, key])) {
        const copy = { ...record };
        if (inner.value === undefined) delete copy[key];
        else copy[key] = inner.value;
        yield { where: inner.where, value: copy };
      }
    }
  }
}

describe('the daemon answers as its zod schema did', () => {
  test('valid requests of every type pass, with the same output', () => {
    for (const request of VALID) {
      const ours = parseRequest(request);
      assert.ok(ours.ok, `${String(request['type'])}: ${JSON.stringify(ours)}`);
      assert.deepEqual(ours, reference.parseRequest(request));
      assert.equal(JSON.stringify(ours), JSON.stringify(reference.parseRequest(request)), 'the same key order');
    }
  });

  test('every corruption of every request gets the same verdict and message', () => {
    let compared = 0;
    let refused = 0;
    for (const request of VALID) {
      for (const { where, value } of corruptions(request)) {
        // Through JSON, as requests arrive (undefined fields disappear).
        const input = JSON.parse(JSON.stringify(value) ?? 'null') as unknown;
        const ours = parseRequest(input);
        const theirs = reference.parseRequest(input);
        assert.deepEqual(ours, theirs, `${String(request['type'])} ${where}`);
        compared += 1;
        if (!ours.ok) refused += 1;
      }
    }
    // The corpus must really exercise both outcomes (a generator that yields nothing proves nothing).
    assert.ok(compared > 5000 && refused > 4000 && compared - refused > 100, `${compared} compared, ${refused} refused`);
  });

  test('saved definitions: the same verdict on the same corruptions', () => {
    const spec = { ...definition, baseEnv: { PATH: '/bin' } };
    let compared = 0;
    for (const { where, value } of corruptions(spec)) {
      const input = JSON.parse(JSON.stringify(value) ?? 'null') as unknown;
      assert.deepEqual(parseAppSpec(input), reference.parseAppSpec(input), where);
      compared += 1;
    }
    assert.ok(compared > 1000);
  });

  test('relations between fields and refinements are reported as before', () => {
    const start = (app: Record<string, unknown>): unknown => ({ id: 1, type: 'start', apps: [{ ...definition, ...app }], env: {}, ifRunning: 'refuse' });
    const cases = [
      start({ hardMemoryBytes: 100 * 2 ** 20 }),
      start({ dependsOn: ['bot'] }),
      start({ cronRestart: { schedule: 'not cron', timezone: null } }),
      start({ cronRestart: { schedule: '0 4 31 2 *', timezone: null } }),
      start({ cronRestart: { schedule: '0 4 * * *', timezone: 'Mars/Base' } }),
      start({ maxTasks: 3 }),
      start({ hardMemoryBytes: 100 * 2 ** 20, extra: 1 }),
      { id: 1, type: 'settings', settings: { metrics: { listen: '0.0.0.0:9464', allowPublic: false } } },
      { id: 1, type: 'settings', settings: { metrics: { listen: 'nope', allowPublic: true } } },
      { id: 1, type: 'reap', options: { ...(VALID[15]!['options'] as object), unmanaged: { match: '(', olderThanMs: 0 } } },
      { id: 'x', type: 'ls' },
      { id: 1.5, type: 'ls' },
      [1, 2, 3],
      'a string',
    ];
    for (const input of cases) {
      const ours = parseRequest(input);
      assert.equal(ours.ok, false, JSON.stringify(input));
      assert.deepEqual(ours, reference.parseRequest(input));
    }
  });
});
