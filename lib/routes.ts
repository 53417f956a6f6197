/**
 * The one route table: which event goes to which handler, as data. The CDK stack builds its
 * EventBridge rules (and schedules) from it, and a local runtime picks handlers with `dispatch`, so
 * the deployed wiring and the local one cannot drift apart.
 *
 * Schedules are routes too: their rule delivers a small synthetic event (`scheduleEvent`) instead of
 * EventBridge's generic `Scheduled Event`, so every handler is picked by the same kind of pattern.
 */
import { BRIDGE_SOURCE, KUBERNETES_EVENT, POD_CHANGED, TASK_INSTANCE_CHANGED } from './core/inbound.ts';

export const HANDLER_NAMES = ['pod-changed', 'kubernetes-event', 'orchestrator', 'timer', 'reaper'] as const;
export type HandlerName = (typeof HANDLER_NAMES)[number];
/** Functions fed by a queue, not by a route: `check` consumes the delayed due-check queue. */
export const QUEUE_HANDLER_NAMES = ['check'] as const;
/** Every Lambda function of the stack. */
export const FUNCTION_NAMES = [...HANDLER_NAMES, ...QUEUE_HANDLER_NAMES] as const;
export type FunctionName = (typeof FUNCTION_NAMES)[number];

/** What an orchestrator listener (e.g. Airflow's) sends when a task instance changes state. */
export { TASK_INSTANCE_CHANGED };
export const DEFAULT_ORCHESTRATOR_SOURCES: readonly string[] = Object.freeze(['airflow.listener']);

/** Source and detail-types of the events the schedule rules deliver. */
export const SCHEDULE_SOURCE = 'podwarden.schedule';
export const TIMER_PASS = 'Timer Pass';
export const REAPER_PASS = 'Reaper Pass';

/** Podwarden's own outbound events use this source; no route may listen to it (that would loop). */
export const OUTBOUND_SOURCE = 'podwarden';

/**
 * The subset of EventBridge's pattern grammar the routes use: lists of exact values, nested under
 * `detail`. It is small on purpose, so that `matchesPattern` agrees with EventBridge on every route.
 */
export interface DetailPattern {
  readonly [field: string]: readonly string[] | DetailPattern;
}

export interface EventPattern {
  readonly source: readonly string[];
  readonly 'detail-type'?: readonly string[];
  readonly detail?: DetailPattern;
}

interface RouteCommon {
  /** Stable identifier, e.g. `bridge-pod-changed`; the stack derives construct ids from it. */
  readonly id: string;
  readonly handler: HandlerName;
  readonly description: string;
  readonly pattern: EventPattern;
}

export interface EventRoute extends RouteCommon {
  readonly trigger: 'event';
}

export interface ScheduleRoute extends RouteCommon {
  readonly trigger: 'schedule';
  readonly everyMinutes: number;
  /** The detail-type of the event the schedule delivers (its pattern matches exactly that). */
  readonly detailType: string;
}

export type Route = EventRoute | ScheduleRoute;

export interface RouteOptions {
  /** kubernetes-event-exporter `source` values this deployment accepts (PODWARDEN_EXPORTER_SOURCES keys). */
  exporterSources?: readonly string[];
  /** Sources of `Task Instance Changed` events (PODWARDEN_ORCHESTRATOR_SOURCES). */
  orchestratorSources?: readonly string[];
}

const RESERVED_SOURCES = [BRIDGE_SOURCE, SCHEDULE_SOURCE, OUTBOUND_SOURCE];
// EventBridge's own limits for a source: 1-256 characters; `aws.` is reserved for AWS services.
const SOURCE = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,255}$/;

export class RouteError extends Error {
  override name = 'RouteError';
}

function checkSources(what: string, sources: readonly string[], taken: Map<string, string>): void {
  for (const source of sources) {
    if (!SOURCE.test(source) || source.startsWith('aws.')) {
      throw new RouteError(
        `${what} source ${JSON.stringify(source)} is not a usable EventBridge source (1-256 of A-Z a-z 0-9 . _ / -, not aws.*)`,
      );
    }
    if (RESERVED_SOURCES.includes(source)) {
      throw new RouteError(`${what} source ${JSON.stringify(source)} is reserved for Podwarden itself`);
    }
    const other = taken.get(source);
    if (other !== undefined) {
      throw new RouteError(`source ${JSON.stringify(source)} is listed both as ${other} and as ${what}`);
    }
    taken.set(source, what);
  }
}

/** The routes for a deployment; the exporter route exists only when exporter sources are configured. */
export function routeTable(options: RouteOptions = {}): readonly Route[] {
  const exporterSources = options.exporterSources ?? [];
  const orchestratorSources = options.orchestratorSources ?? DEFAULT_ORCHESTRATOR_SOURCES;
  if (orchestratorSources.length === 0) {
    throw new RouteError('at least one orchestrator source is needed (the default is airflow.listener)');
  }
  const taken = new Map<string, string>();
  checkSources('an exporter', exporterSources, taken);
  checkSources('an orchestrator', orchestratorSources, taken);

  const routes: Route[] = [
    {
      trigger: 'event',
      id: 'bridge-pod-changed',
      handler: 'pod-changed',
      description: 'A managed pod was added, modified or deleted (podwarden bridge)',
      pattern: { source: [BRIDGE_SOURCE], 'detail-type': [POD_CHANGED] },
    },
    {
      trigger: 'event',
      id: 'bridge-kubernetes-event',
      handler: 'kubernetes-event',
      description: 'A Kubernetes Event about a managed pod (podwarden bridge)',
      pattern: { source: [BRIDGE_SOURCE], 'detail-type': [KUBERNETES_EVENT] },
    },
  ];
  if (exporterSources.length > 0) {
    routes.push({
      trigger: 'event',
      id: 'exporter-kubernetes-event',
      handler: 'kubernetes-event',
      description: "A pod's Kubernetes Event in kubernetes-event-exporter's EventBridge format",
      // The exporter lets its users choose the detail-type; its detail is the whole event, so the
      // involved object's kind keeps events about other objects from invoking the function at all.
      pattern: { source: [...exporterSources], detail: { involvedObject: { kind: ['Pod'] } } },
    });
  }
  routes.push(
    {
      trigger: 'event',
      id: 'orchestrator-task-instance',
      handler: 'orchestrator',
      description: "The orchestrator's view of a task instance changed (e.g. an Airflow listener)",
      pattern: { source: [...orchestratorSources], 'detail-type': [TASK_INSTANCE_CHANGED] },
    },
    {
      trigger: 'schedule',
      id: 'timer-schedule',
      handler: 'timer',
      description: 'Runs the tasks whose timers are due',
      everyMinutes: 1,
      detailType: TIMER_PASS,
      pattern: { source: [SCHEDULE_SOURCE], 'detail-type': [TIMER_PASS] },
    },
    {
      trigger: 'schedule',
      id: 'reaper-schedule',
      handler: 'reaper',
      description: 'Finds and deletes zombie pods by the reaper rules',
      everyMinutes: 5,
      detailType: REAPER_PASS,
      pattern: { source: [SCHEDULE_SOURCE], 'detail-type': [REAPER_PASS] },
    },
  );
  return Object.freeze(routes);
}

/**
 * The event a schedule route delivers. The stack passes EventBridge's own id and time placeholders;
 * a local runtime passes a fresh id and the current time.
 */
export function scheduleEvent(
  route: ScheduleRoute,
  fields: { id: string; time: string },
): {
  version: '0';
  id: string;
  source: string;
  'detail-type': string;
  time: string;
  detail: Record<string, never>;
} {
  return {
    version: '0',
    id: fields.id,
    source: SCHEDULE_SOURCE,
    'detail-type': route.detailType,
    time: fields.time,
    detail: {},
  };
}

/** EventBridge's matching for the pattern subset above: every field must be present and listed. */
export function matchesPattern(pattern: EventPattern, event: unknown): boolean {
  if (!isRecord(event)) return false;
  const envelope = { ...event, detail: decodeDetail(event.detail) };
  return matchesFields(pattern as unknown as DetailPattern, envelope);
}

function matchesFields(pattern: DetailPattern, value: Record<string, unknown>): boolean {
  for (const [field, wanted] of Object.entries(pattern)) {
    const actual = value[field];
    if (isValueList(wanted)) {
      // As in EventBridge: an array in the event matches when any of its elements is listed.
      const candidates = Array.isArray(actual) ? actual : [actual];
      if (!candidates.some((candidate) => typeof candidate === 'string' && wanted.includes(candidate)))
        return false;
    } else if (!isRecord(actual) || !matchesFields(wanted, actual)) {
      return false;
    }
  }
  return true;
}

/** Every route whose pattern matches the event (the table is built so that at most one does). */
export function matchingRoutes(event: unknown, routes: readonly Route[] = routeTable()): Route[] {
  return routes.filter((route) => matchesPattern(route.pattern, event));
}

/** The route an event goes to, or undefined when no route wants it. */
export function dispatch(event: unknown, routes: readonly Route[] = routeTable()): Route | undefined {
  return routes.find((route) => matchesPattern(route.pattern, event));
}

function isValueList(value: readonly string[] | DetailPattern): value is readonly string[] {
  return Array.isArray(value);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function decodeDetail(detail: unknown): unknown {
  // EventBridge delivers `detail` as an object; a local transport may still hold the wire string.
  if (typeof detail !== 'string') return detail;
  try {
    return JSON.parse(detail);
  } catch {
    return undefined;
  }
}
