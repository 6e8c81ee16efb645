// The containment cases under the proc backend (see helpers/containment-cases.ts).
import { containmentCases } from './helpers/containment-cases.js';

containmentCases('proc');
