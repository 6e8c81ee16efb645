/**
 * A small schema checker for the daemon's requests, in place of zod: zod kept about 14 MB resident in a
 * daemon that runs for weeks, for the few dozen rules a request has.
 *
 * It follows zod 4's semantics where a client can see them, so that replies did not change when it
 * replaced zod: the same first issue (path and message, in zod's English wording), the same order of
 * checks (an object's fields in declaration order, then its unknown keys, then its refinements), the
 * same rule for which union branch is reported, and the same output (objects rebuilt in declaration
 * order, URLs trimmed). An issue either aborts the checks that follow (a wrong type) or lets them run
 * (a bound, a format, a refinement), as in zod. test/unit-validate.test.ts compares the two on
 * many inputs.
 */

export type PathKey = string | number;
export interface Issue {
  path: PathKey[];
  message: string;
  /** False: later checks of the enclosing schemas do not run (zod's "aborted"). */
  continue: boolean;
}
export type Parsed<T> = { ok: true; value: T } | { ok: false; issues: Issue[] };

export interface RefineContext {
  addIssue(issue: { message: string }): void;
}
// A method's parameter is bivariant: a Schema<number> is usable where a Schema<unknown> is expected.
type Check<T> = { bivariant(value: T, issues: Issue[]): void }['bivariant'];

export abstract class Schema<T> {
  protected readonly checks: Check<T>[] = [];

  /** Parses `input`, pushing issues (paths relative to this schema); returns the output value. */
  protected abstract parseType(input: unknown, issues: Issue[]): unknown;

  run(input: unknown, issues: Issue[]): unknown {
    const start = issues.length;
    const value = this.parseType(input, issues);
    for (const check of this.checks) {
      if (aborted(issues, start)) break;
      check(value as T, issues);
    }
    return value;
  }

  safeParse(input: unknown): Parsed<T> {
    const issues: Issue[] = [];
    const value = this.run(input, issues);
    return issues.length === 0 ? { ok: true, value: value as T } : { ok: false, issues };
  }

  /** A rule zod cannot express on the type (custom issue at this schema's path). */
  refine(test: (value: T) => boolean, message: string): this {
    return this.with((value, issues) => {
      if (!test(value)) issues.push({ path: [], message, continue: true });
    });
  }

  superRefine(refinement: (value: T, context: RefineContext) => void): this {
    return this.with((value, issues) => refinement(value, { addIssue: ({ message }) => issues.push({ path: [], message, continue: true }) }));
  }

  nullable(): Schema<T | null> {
    return new Nullable(this);
  }

  optional(): Optional<T> {
    return new Optional(this);
  }

  protected with(check: Check<T>): this {
    const copy = Object.create(Object.getPrototypeOf(this) as object) as this;
    Object.assign(copy, this, { checks: [...this.checks, check] });
    return copy;
  }
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

function aborted(issues: Issue[], from: number): boolean {
  for (let i = from; i < issues.length; i += 1) if (!issues[i]!.continue) return true;
  return false;
}

/** zod's name for what was received. */
function received(input: unknown): string {
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'array';
  if (typeof input === 'number') return Number.isNaN(input) ? 'NaN' : Number.isFinite(input) ? 'number' : String(input);
  return typeof input;
}

const typeIssue = (expected: string, input: unknown): Issue => ({ path: [], message: `Invalid input: expected ${expected}, received ${received(input)}`, continue: false });
const show = (value: unknown): string => (typeof value === 'string' ? `"${value}"` : String(value));
const bound = (issues: Issue[], message: string): void => void issues.push({ path: [], message, continue: true });

export class Str extends Schema<string> {
  protected parseType(input: unknown, issues: Issue[]): unknown {
    if (typeof input !== 'string') issues.push(typeIssue('string', input));
    return input;
  }

  min(length: number): this {
    return this.with((value, issues) => value.length < length && bound(issues, `Too small: expected string to have >=${length} characters`));
  }

  max(length: number): this {
    return this.with((value, issues) => value.length > length && bound(issues, `Too big: expected string to have <=${length} characters`));
  }

  regex(pattern: RegExp, message: string): this {
    return this.with((value, issues) => {
      pattern.lastIndex = 0;
      if (!pattern.test(value)) bound(issues, message);
    });
  }

  /** A URL as WHATWG parses it; the value is trimmed of whitespace, tabs and newlines, as zod's is. */
  url(): Schema<string> {
    return new Url(this);
  }
}

export class Url extends Schema<string> {
  constructor(private readonly base: Str) {
    super();
  }

  protected parseType(input: unknown, issues: Issue[]): unknown {
    const start = issues.length;
    const value = this.base.run(input, issues);
    if (aborted(issues, start)) return value;
    const trimmed = (value as string).trim();
    if (!URL.canParse(trimmed)) {
      bound(issues, 'Invalid URL');
      return value;
    }
    return trimmed.replace(/[\t\n\r]/g, '');
  }
}

export class Num extends Schema<number> {
  protected parseType(input: unknown, issues: Issue[]): unknown {
    if (typeof input !== 'number' || !Number.isFinite(input)) issues.push(typeIssue('number', input));
    return input;
  }

  /** A safe integer; later bounds are not checked on a fraction. */
  int(): this {
    return this.with((value, issues) => {
      if (!Number.isInteger(value)) issues.push(typeIssue('int', value));
      else if (value > Number.MAX_SAFE_INTEGER) bound(issues, `Too big: expected int to be <=${Number.MAX_SAFE_INTEGER}`);
      else if (value < Number.MIN_SAFE_INTEGER) bound(issues, `Too small: expected int to be >=${Number.MIN_SAFE_INTEGER}`);
    });
  }

  min(limit: number): this {
    return this.with((value, issues) => value < limit && bound(issues, `Too small: expected number to be >=${limit}`));
  }

  max(limit: number): this {
    return this.with((value, issues) => value > limit && bound(issues, `Too big: expected number to be <=${limit}`));
  }

  nonnegative(): this {
    return this.min(0);
  }

  positive(): this {
    return this.with((value, issues) => value <= 0 && bound(issues, 'Too small: expected number to be >0'));
  }
}

export class Bool extends Schema<boolean> {
  protected parseType(input: unknown, issues: Issue[]): unknown {
    if (typeof input !== 'boolean') issues.push(typeIssue('boolean', input));
    return input;
  }
}

export class Values<T extends string | number | boolean> extends Schema<T> {
  constructor(readonly values: readonly T[]) {
    super();
  }

  protected parseType(input: unknown, issues: Issue[]): unknown {
    if (!this.values.includes(input as T)) {
      const message = this.values.length === 1 ? `Invalid input: expected ${show(this.values[0])}` : `Invalid option: expected one of ${this.values.map(show).join('|')}`;
      issues.push({ path: [], message, continue: false });
    }
    return input;
  }
}

export class Nullable<T> extends Schema<T | null> {
  constructor(private readonly inner: Schema<T>) {
    super();
  }

  protected parseType(input: unknown, issues: Issue[]): unknown {
    return input === null ? null : this.inner.run(input, issues);
  }
}

/** Allowed to be absent (in an object) or undefined. */
export class Optional<T> extends Schema<T | undefined> {
  constructor(private readonly inner: Schema<T>) {
    super();
  }

  protected parseType(input: unknown, issues: Issue[]): unknown {
    return input === undefined ? undefined : this.inner.run(input, issues);
  }
}

function nested(issues: Issue[], key: PathKey, run: (issues: Issue[]) => unknown): unknown {
  const inner: Issue[] = [];
  const value = run(inner);
  for (const issue of inner) issues.push({ ...issue, path: [key, ...issue.path] });
  return value;
}

export class List<T> extends Schema<T[]> {
  constructor(private readonly item: Schema<T>) {
    super();
  }

  protected parseType(input: unknown, issues: Issue[]): unknown {
    if (!Array.isArray(input)) {
      issues.push(typeIssue('array', input));
      return input;
    }
    return input.map((item: unknown, index) => nested(issues, index, (inner) => this.item.run(item, inner)));
  }

  min(length: number): this {
    return this.with((value, issues) => value.length < length && bound(issues, `Too small: expected array to have >=${length} items`));
  }

  max(length: number): this {
    return this.with((value, issues) => value.length > length && bound(issues, `Too big: expected array to have <=${length} items`));
  }
}

const isObject = (input: unknown): input is Record<string, unknown> => typeof input === 'object' && input !== null && !Array.isArray(input);

/** An object of string values (any keys). */
export class StringRecord extends Schema<Record<string, string>> {
  private readonly value = new Str();

  protected parseType(input: unknown, issues: Issue[]): unknown {
    if (!isObject(input)) {
      issues.push(typeIssue('record', input));
      return input;
    }
    const output: Record<string, string> = {};
    for (const key of Object.keys(input)) {
      // Dropped unchecked, as zod drops it: assigned, it would replace the output's prototype.
      if (key === '__proto__') continue;
      output[key] = nested(issues, key, (inner) => this.value.run(input[key], inner)) as string;
    }
    return output;
  }
}

type Shape = Record<string, Schema<unknown>>;
type OptionalKeys<S extends Shape> = { [K in keyof S]: S[K] extends Optional<unknown> ? K : never }[keyof S];
export type ShapeOutput<S extends Shape> = { [K in Exclude<keyof S, OptionalKeys<S>>]: Infer<S[K]> } & { [K in OptionalKeys<S>]?: Infer<S[K]> };

/** An object with exactly these keys (an unknown key is an issue; it does not abort). */
export class StrictObject<S extends Shape> extends Schema<ShapeOutput<S>> {
  constructor(readonly shape: S) {
    super();
  }

  protected parseType(input: unknown, issues: Issue[]): unknown {
    if (!isObject(input)) {
      issues.push(typeIssue('object', input));
      return input;
    }
    const output: Record<string, unknown> = {};
    for (const [key, schema] of Object.entries(this.shape)) {
      const present = Object.hasOwn(input, key);
      if (!present && schema instanceof Optional) continue;
      const value = nested(issues, key, (inner) => schema.run(input[key], inner));
      if (present) output[key] = value;
    }
    const unknown = Object.keys(input).filter((key) => !Object.hasOwn(this.shape, key));
    if (unknown.length > 0) issues.push({ path: [], message: `Unrecognized key${unknown.length > 1 ? 's' : ''}: ${unknown.map(show).join(', ')}`, continue: true });
    return output;
  }

  /** The same object without some keys (and without the refinements, as zod's omit). */
  omit<K extends keyof S & string>(...keys: K[]): StrictObject<Omit<S, K>> {
    const shape = Object.fromEntries(Object.entries(this.shape).filter(([key]) => !keys.includes(key as K)));
    return new StrictObject(shape as Omit<S, K>);
  }
}

/**
 * The first option that accepts the input. If none does, the issues of the only option that failed on
 * bounds alone (not on a type), else "Invalid input".
 */
export class Union<T> extends Schema<T> {
  constructor(private readonly options: Schema<unknown>[]) {
    super();
  }

  protected parseType(input: unknown, issues: Issue[]): unknown {
    const results = this.options.map((option) => {
      const own: Issue[] = [];
      return { value: option.run(input, own), issues: own };
    });
    const success = results.find((result) => result.issues.length === 0);
    if (success) return success.value;
    const notAborted = results.filter((result) => !aborted(result.issues, 0));
    if (notAborted.length === 1) {
      issues.push(...notAborted[0]!.issues);
      return notAborted[0]!.value;
    }
    issues.push({ path: [], message: 'Invalid input', continue: false });
    return input;
  }
}

/** Options told apart by the literal value of one key. */
export class DiscriminatedUnion<T> extends Schema<T> {
  private readonly byValue = new Map<unknown, Schema<unknown>>();

  constructor(
    private readonly key: string,
    options: StrictObject<Shape>[],
  ) {
    super();
    for (const option of options) {
      const tag = option.shape[key];
      if (!(tag instanceof Values)) throw new Error(`option without a literal ${key}`);
      for (const value of tag.values) this.byValue.set(value, option);
    }
  }

  protected parseType(input: unknown, issues: Issue[]): unknown {
    if (!isObject(input)) {
      issues.push(typeIssue('object', input));
      return input;
    }
    const option = this.byValue.get(input[this.key]);
    if (option) return option.run(input, issues);
    const expected = [...this.byValue.keys()].map((value) => `'${String(value)}'`).join(' | ');
    issues.push({ path: [this.key], message: `Invalid discriminator value. Expected ${expected}`, continue: false });
    return input;
  }
}

export const v = {
  string: (): Str => new Str(),
  number: (): Num => new Num(),
  boolean: (): Schema<boolean> => new Bool(),
  literal: <const T extends string | number | boolean>(value: T): Schema<T> => new Values([value]),
  enum: <const T extends string>(values: readonly T[]): Schema<T> => new Values(values),
  array: <T>(item: Schema<T>): List<T> => new List(item),
  record: (): Schema<Record<string, string>> => new StringRecord(),
  strictObject: <S extends Shape>(shape: S): StrictObject<S> => new StrictObject(shape),
  union: <O extends Schema<unknown>[]>(options: O): Schema<Infer<O[number]>> => new Union(options),
  discriminatedUnion: <O extends StrictObject<Shape>[]>(key: string, options: O): Schema<Infer<O[number]>> => new DiscriminatedUnion(key, options),
};
