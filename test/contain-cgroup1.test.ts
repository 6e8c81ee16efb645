// The containment cases under the cgroup1 backend (see helpers/containment-cases.ts).
import { containmentCases } from './helpers/containment-cases.js';

containmentCases('cgroup1', {}, { memory: true, pids: true });
