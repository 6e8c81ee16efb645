/**
 * The event stream: one place where every event is recorded (a bounded, rotated JSON-lines file),
 * remembered (a ring of recent events for `agentpm events`) and pushed to subscribers (the CLI's
 * --follow, the TUI, alerting).
 */
import { renameSync, statSync } from 'node:fs';
import type { AgentEvent, EventType } from '../protocol.js';
import { appendOwnedFile, readOwnedFile } from '../safe-files.js';
import { maskData } from '../secrets.js';

export type Subscriber = (event: AgentEvent) => void;

export interface EventBusOptions {
  /** The JSON-lines file; rotated to `<file>.1` past maxFileBytes, so at most twice that is kept. */
  file: string;
  maxFileBytes?: number;
  /** Events kept in memory for queries. */
  recent?: number;
}

export class EventBus {
  private readonly ring: AgentEvent[] = [];
  private readonly subscribers = new Set<Subscriber>();
  private readonly maxFileBytes: number;
  private readonly recentLimit: number;
  private fileBytes: number;

  constructor(private readonly options: EventBusOptions) {
    this.maxFileBytes = options.maxFileBytes ?? 1024 * 1024;
    this.recentLimit = options.recent ?? 1000;
    this.fileBytes = sizeOf(options.file);
    this.ring.push(...readRecent(options.file, this.recentLimit));
  }

  emit(type: EventType, app: string | null, instance: string | null, reason: string | null, data: Record<string, unknown> = {}): AgentEvent {
    // Masked once, here: the log file, queries, subscribers and the alerts built from them never see a credential.
    const event: AgentEvent = { type, app, instance, at: new Date().toISOString(), reason, data: maskData(data) };
    this.ring.push(event);
    if (this.ring.length > this.recentLimit) this.ring.splice(0, this.ring.length - this.recentLimit);
    this.append(event);
    for (const subscriber of this.subscribers) {
      try {
        subscriber(event);
      } catch {
        // a failing subscriber (a closed socket) must not stop the others or supervision
      }
    }
    return event;
  }

  recent(app: string | null, limit: number): AgentEvent[] {
    const matching = app === null ? this.ring : this.ring.filter((event) => event.app === app);
    return matching.slice(-limit);
  }

  subscribe(subscriber: Subscriber): () => void {
    this.subscribers.add(subscriber);
    return () => this.subscribers.delete(subscriber);
  }

  private append(event: AgentEvent): void {
    const line = `${JSON.stringify(event)}\n`;
    const bytes = Buffer.byteLength(line);
    try {
      if (this.fileBytes > 0 && this.fileBytes + bytes > this.maxFileBytes) {
        renameSync(this.options.file, `${this.options.file}.1`);
        this.fileBytes = 0;
      }
      appendOwnedFile(this.options.file, line);
      this.fileBytes += bytes;
    } catch {
      // the on-disk log is best effort: a full disk must not stop supervision
    }
  }
}

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/**
 * The last events of an earlier daemon, so `agentpm events` and the TUI keep their history across a
 * daemon restart. The file is bounded by rotation, so reading it whole is bounded too.
 */
function readRecent(file: string, limit: number): AgentEvent[] {
  let text: string;
  try {
    text = readOwnedFile(file).toString('utf8');
  } catch {
    return [];
  }
  const events: AgentEvent[] = [];
  for (const line of text.split('\n').slice(-limit - 1)) {
    if (line.trim() === '') continue;
    try {
      const event = JSON.parse(line) as AgentEvent;
      // A log written before masking existed (or by hand) is masked on the way in.
      events.push({ ...event, data: maskData(event.data ?? {}) });
    } catch {
      // a line cut short by a crash mid-write: skip it
    }
  }
  return events.slice(-limit);
}
