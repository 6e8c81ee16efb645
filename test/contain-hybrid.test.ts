// The containment cases under the hybrid backend (see helpers/containment-cases.ts).
import { containmentCases } from './helpers/containment-cases.js';

containmentCases('hybrid', {}, { memory: true, pids: true });
