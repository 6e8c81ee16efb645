/**
 * Errors that reach a user carry a stable kebab-case `code` (for scripts and tests) and a message that
 * says what went wrong and what to do about it. Throwing is for these and for broken invariants;
 * expected outcomes of process operations are returned as values.
 */
export type ErrorCode =
  | 'bad-request'
  | 'frame-too-large'
  | 'protocol-mismatch'
  | 'unknown-app'
  | 'already-running'
  | 'invalid-config'
  | 'invalid-argument'
  | 'home-unsafe'
  | 'daemon-running'
  | 'daemon-unreachable'
  /** The daemon refuses a connection: too many open, or its descriptors are kept for supervision. */
  | 'daemon-busy'
  /** A subscriber stopped reading while events piled up: dropped, it should reconnect. */
  | 'slow-consumer'
  /** A client that did not say hello, or left a request half-sent, for too long. */
  | 'client-timeout'
  | 'spawn-failed'
  | 'containment-unavailable'
  | 'stop-failed'
  | 'registry-unwritable'
  /** The metrics endpoint could not be served (its port is in use...); the daemon runs on without it. */
  | 'metrics-unavailable'
  | 'internal';

export class AgentpmError extends Error {
  override readonly name = 'AgentpmError';
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface ErrorPayload {
  code: ErrorCode;
  message: string;
}

export function toErrorPayload(error: unknown): ErrorPayload {
  if (error instanceof AgentpmError) return { code: error.code, message: error.message };
  const message = error instanceof Error ? error.message : String(error);
  return { code: 'internal', message: `internal error: ${message} (please report it with the daemon log)` };
}

export function unreachable(value: never): never {
  throw new Error(`unreachable: ${JSON.stringify(value)}`);
}
