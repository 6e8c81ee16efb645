import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { EventBus } from '../src/daemon/events.js';
import type { AgentEvent } from '../src/protocol.js';

let dir: string;
let counter = 0;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'agentpm-unit-events-'));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A fresh file name in the temporary directory, one per test. */
function freshFile(): string {
  counter += 1;
  return join(dir, `events-${counter}.jsonl`);
}

function readLines(file: string): AgentEvent[] {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, 'utf8');
  assert.ok(text === '' || text.endsWith('\n'), 'the file ends with a whole line');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as AgentEvent);
}

function sizeOf(file: string): number {
  return existsSync(file) ? statSync(file).size : 0;
}

describe('EventBus: the on-disk log', () => {
  test('emit returns the event it recorded, stamped with an ISO time', () => {
    const bus = new EventBus({ file: freshFile() });
    const before = Date.now();
    const event = bus.emit('spawn', 'bot', 'abc123', null, { pid: 42 });
    assert.equal(event.type, 'spawn');
    assert.equal(event.app, 'bot');
    assert.equal(event.instance, 'abc123');
    assert.equal(event.reason, null);
    assert.deepEqual(event.data, { pid: 42 });
    assert.equal(new Date(event.at).toISOString(), event.at);
    assert.ok(Date.parse(event.at) >= before - 1 && Date.parse(event.at) <= Date.now() + 1);
    assert.deepEqual(bus.emit('daemon', null, null, 'started').data, {});
  });

  test('appends each event as one JSON line, in order', () => {
    const file = freshFile();
    const bus = new EventBus({ file });
    const emitted = [
      bus.emit('daemon', null, null, 'started', { pid: 1 }),
      bus.emit('spawn', 'bot', 'i1', null, { pid: 42 }),
      bus.emit('exit', 'bot', 'i1', 'crashed', { code: 1, signal: null, message: 'line\nbreak "quoted"' }),
    ];
    assert.deepEqual(readLines(file), emitted);
  });

  test('appends to an existing file rather than replacing it', () => {
    const file = freshFile();
    const first = new EventBus({ file }).emit('daemon', null, null, 'started', { pid: 1 });
    const second = new EventBus({ file }).emit('daemon', null, null, 'started', { pid: 2 });
    assert.deepEqual(readLines(file), [first, second]);
  });

  test('the file is private to its owner', () => {
    const file = freshFile();
    new EventBus({ file }).emit('daemon', null, null, 'started');
    assert.equal(statSync(file).mode & 0o777, 0o600);
  });

  test('rotates to <file>.1 past maxFileBytes: disk use stays bounded and no event is lost across the two files', () => {
    const file = freshFile();
    const maxFileBytes = 400;
    const bus = new EventBus({ file, maxFileBytes });
    const emitted: AgentEvent[] = [];
    for (let index = 0; index < 60; index += 1) {
      emitted.push(bus.emit('state', 'bot', 'i1', null, { from: 'online', to: 'stopping', index }));
      assert.ok(sizeOf(file) <= maxFileBytes, `${file} is ${sizeOf(file)} bytes after event ${index}`);
      assert.ok(sizeOf(`${file}.1`) <= maxFileBytes, `${file}.1 is ${sizeOf(`${file}.1`)} bytes after event ${index}`);
    }
    assert.ok(existsSync(`${file}.1`), 'the log was rotated');
    const name = file.slice(dir.length + 1);
    assert.deepEqual(readdirSync(dir).filter((entry) => entry.startsWith(name)).sort(), [name, `${name}.1`]);
    // the two files hold the most recent events, contiguous and in order, the newest last
    const kept = [...readLines(`${file}.1`), ...readLines(file)];
    assert.ok(kept.length >= 2);
    assert.deepEqual(kept, emitted.slice(-kept.length));
    // and the current file was filled close to the limit before rotating
    const lineBytes = Buffer.byteLength(`${JSON.stringify(emitted[0])}\n`);
    assert.ok(sizeOf(`${file}.1`) > maxFileBytes - lineBytes - 10, `${file}.1 holds only ${sizeOf(`${file}.1`)} bytes`);
  });

  test('counts the bytes already in an existing file: a file near the limit rotates at the first event', () => {
    const file = freshFile();
    const old = `${'x'.repeat(290)}\n`;
    writeFileSync(file, old);
    const event = new EventBus({ file, maxFileBytes: 300 }).emit('daemon', null, null, 'started', { pid: 7 });
    assert.equal(readFileSync(`${file}.1`, 'utf8'), old);
    assert.deepEqual(readLines(file), [event]);
  });

  test(
    'counts bytes, not characters: non-ASCII data does not push the file past maxFileBytes',
    () => {
      const file = freshFile();
      const maxFileBytes = 400;
      const bus = new EventBus({ file, maxFileBytes });
      for (let index = 0; index < 30; index += 1) {
        bus.emit('exit', 'bot', 'i1', 'crashed', { message: 'é'.repeat(40 + index) });
        assert.ok(sizeOf(file) <= maxFileBytes, `${file} is ${sizeOf(file)} bytes after event ${index}`);
      }
    },
  );

  test(
    'an event larger than maxFileBytes is still written, even as the first event of a new file',
    () => {
      const file = freshFile();
      const bus = new EventBus({ file, maxFileBytes: 100 });
      const event = bus.emit('exit', 'bot', 'i1', 'spawn-failed', { message: 'm'.repeat(200) });
      assert.deepEqual(readLines(file), [event]);
    },
  );

  test('a log that cannot be written does not stop the bus', () => {
    const bus = new EventBus({ file: join(dir, 'no-such-dir', 'events.jsonl') });
    const seen: AgentEvent[] = [];
    bus.subscribe((event) => seen.push(event));
    const event = bus.emit('daemon', null, null, 'started');
    assert.deepEqual(seen, [event]);
    assert.deepEqual(bus.recent(null, 10), [event]);
  });
});

describe('EventBus: recent events', () => {
  test('oldest first, the last N', () => {
    const bus = new EventBus({ file: freshFile() });
    const emitted = Array.from({ length: 5 }, (_, index) => bus.emit('spawn', 'bot', `i${index}`, null, { pid: index }));
    assert.deepEqual(bus.recent(null, 3), emitted.slice(2));
    assert.deepEqual(bus.recent(null, 100), emitted);
    assert.deepEqual(bus.recent(null, 1), [emitted[4]]);
  });

  test("filters by app: the last N of that app's events", () => {
    const bus = new EventBus({ file: freshFile() });
    const a1 = bus.emit('spawn', 'a', 'a1', null, { pid: 1 });
    const b1 = bus.emit('spawn', 'b', 'b1', null, { pid: 2 });
    const a2 = bus.emit('exit', 'a', 'a1', 'crashed', { code: 1 });
    const daemon = bus.emit('daemon', null, null, 'started', { pid: 9 });
    const a3 = bus.emit('spawn', 'a', 'a2', null, { pid: 3 });
    const b2 = bus.emit('exit', 'b', 'b1', 'exited', { code: 0 });
    assert.deepEqual(bus.recent('a', 10), [a1, a2, a3]);
    assert.deepEqual(bus.recent('a', 2), [a2, a3]);
    assert.deepEqual(bus.recent('b', 10), [b1, b2]);
    assert.deepEqual(bus.recent('c', 10), []);
    assert.deepEqual(bus.recent(null, 10), [a1, b1, a2, daemon, a3, b2]);
  });

  test('the ring is bounded by `recent`', () => {
    const bus = new EventBus({ file: freshFile(), recent: 3 });
    const emitted = Array.from({ length: 7 }, (_, index) => bus.emit('spawn', index % 2 === 0 ? 'even' : 'odd', null, null, { pid: index }));
    assert.deepEqual(bus.recent(null, 100), emitted.slice(-3));
    // the bound is on the ring, not per app: older events of an app are gone too
    assert.deepEqual(bus.recent('even', 100), [emitted[4], emitted[6]]);
  });

  test('the ring keeps 1000 events by default', () => {
    const bus = new EventBus({ file: join(dir, 'no-such-dir', 'events.jsonl') });
    for (let index = 0; index < 1_005; index += 1) bus.emit('spawn', 'bot', null, null, { pid: index });
    const kept = bus.recent(null, 10_000);
    assert.equal(kept.length, 1_000);
    assert.deepEqual(kept[0]?.data, { pid: 5 });
    assert.deepEqual(kept[999]?.data, { pid: 1_004 });
  });
});

describe('EventBus: subscribers', () => {
  test('every subscriber gets each event as it is emitted', () => {
    const bus = new EventBus({ file: freshFile() });
    const first: AgentEvent[] = [];
    const second: AgentEvent[] = [];
    bus.subscribe((event) => first.push(event));
    bus.subscribe((event) => second.push(event));
    const emitted = [bus.emit('spawn', 'bot', 'i1', null, { pid: 1 }), bus.emit('exit', 'bot', 'i1', 'crashed', { code: 1 })];
    assert.deepEqual(first, emitted);
    assert.deepEqual(second, emitted);
    assert.equal(first[0], emitted[0]);
  });

  test('a subscriber sees the event already recorded', () => {
    const file = freshFile();
    const bus = new EventBus({ file });
    let recordedAtDelivery: AgentEvent[] = [];
    let onDisk: AgentEvent[] = [];
    bus.subscribe(() => {
      recordedAtDelivery = bus.recent(null, 10);
      onDisk = readLines(file);
    });
    const event = bus.emit('spawn', 'bot', 'i1', null, { pid: 1 });
    assert.deepEqual(recordedAtDelivery, [event]);
    assert.deepEqual(onDisk, [event]);
  });

  test('unsubscribe stops delivery to that subscriber only', () => {
    const bus = new EventBus({ file: freshFile() });
    const gone: AgentEvent[] = [];
    const staying: AgentEvent[] = [];
    const unsubscribe = bus.subscribe((event) => gone.push(event));
    bus.subscribe((event) => staying.push(event));
    const first = bus.emit('spawn', 'bot', 'i1', null, { pid: 1 });
    unsubscribe();
    const second = bus.emit('spawn', 'bot', 'i2', null, { pid: 2 });
    assert.deepEqual(gone, [first]);
    assert.deepEqual(staying, [first, second]);
  });

  test('a throwing subscriber does not stop the others, nor the recording', () => {
    const file = freshFile();
    const bus = new EventBus({ file });
    const seen: AgentEvent[] = [];
    bus.subscribe(() => {
      throw new Error('socket closed');
    });
    bus.subscribe((event) => seen.push(event));
    let event: AgentEvent | undefined;
    assert.doesNotThrow(() => {
      event = bus.emit('spawn', 'bot', 'i1', null, { pid: 1 });
    });
    assert.ok(event);
    assert.deepEqual(seen, [event]);
    assert.deepEqual(bus.recent(null, 10), [event]);
    assert.deepEqual(readLines(file), [event]);
  });
});

describe('EventBus: history across a daemon restart', () => {
  test('a new bus on an existing log starts with its last events, skipping a torn line', () => {
    const file = freshFile();
    const first = new EventBus({ file, recent: 3 });
    const emitted = [1, 2, 3, 4].map((pid) => first.emit('spawn', 'bot', `i${pid}`, null, { pid }));
    writeFileSync(file, `${readFileSync(file, 'utf8')}{"type":"spa`); // a write cut short by a crash
    const second = new EventBus({ file, recent: 3 });
    assert.deepEqual(second.recent(null, 10), emitted.slice(-3));
    assert.deepEqual(second.recent('bot', 1), emitted.slice(-1));
  });
});
