/**
 * The decision engine's public face. The engine itself lives in `engine/`, one file per concern
 * (start with `engine/index.ts`); this module keeps the import path every caller already uses.
 */
export {
  type Decision,
  decide,
  decideAll,
  dueIsDeadline,
  isOrchestratorFinished,
  isOrchestratorState,
  nextDeadline,
  nextDue,
  ORCHESTRATOR_STATES,
  pullRecheckMs,
  recreateBackoffMs,
  startTask,
} from './engine/index.ts';
