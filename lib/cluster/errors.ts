import { ClusterError } from '../core/ports.ts';

/** What a request tried to do, so that an error can say it in Kubernetes RBAC terms. */
export interface KubeRequestTarget {
  cluster: string;
  verb: 'get' | 'create' | 'delete' | 'list';
  resource: 'pods' | 'events';
  /** Undefined for a list across all namespaces. */
  namespace?: string;
  name?: string;
}

/** A non-2xx answer from the API server. `body` is the parsed Status object when it was JSON. */
export interface HttpFailure {
  status: number;
  headers: Record<string, string | undefined>;
  body: unknown;
}

/** The Kubernetes `Status` object the API server sends with every failure. */
interface KubeStatus {
  message?: string;
  reason?: string;
  details?: { retryAfterSeconds?: number };
}

// Network failures worth another try: the connection broke or timed out, the name did not resolve.
const TRANSIENT_NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

export function describeTarget(target: KubeRequestTarget): string {
  const object = target.name ? `${target.resource} "${target.name}"` : target.resource;
  const where = target.namespace ? `in namespace "${target.namespace}"` : 'in all namespaces';
  return `${target.verb} ${object} ${where} on cluster "${target.cluster}"`;
}

/**
 * Parses Retry-After (delay-seconds or an HTTP date) into milliseconds from `now`; undefined when
 * absent or unreadable.
 */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function asStatus(body: unknown): KubeStatus {
  if (typeof body === 'string') {
    try {
      return asStatus(JSON.parse(body));
    } catch {
      return body.trim() ? { message: body.trim().slice(0, 500) } : {};
    }
  }
  return body !== null && typeof body === 'object' ? (body as KubeStatus) : {};
}

function header(headers: HttpFailure['headers'], name: string): string | undefined {
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() === name) return value;
  return undefined;
}

/** Maps an API server failure to the ClusterError kind the core acts on. */
export function clusterErrorFromResponse(
  target: KubeRequestTarget,
  failure: HttpFailure,
  now: number = Date.now(),
): ClusterError {
  const { status } = failure;
  const body = asStatus(failure.body);
  const said = body.message ? `: ${body.message}` : '';
  const what = describeTarget(target);

  if (status === 404) return new ClusterError('not-found', `${what}: not found${said}`, status);
  if (status === 409) {
    return body.reason === 'AlreadyExists'
      ? new ClusterError('already-exists', `${what}: already exists${said}`, status)
      : new ClusterError('conflict', `${what}: conflict${said}`, status);
  }
  if (status === 429 || status === 408 || status === 410 || (status >= 500 && status !== 501)) {
    const headerDelay = parseRetryAfter(header(failure.headers, 'retry-after'), now);
    const bodySeconds = body.details?.retryAfterSeconds;
    const retryAfterMs = headerDelay ?? (typeof bodySeconds === 'number' ? bodySeconds * 1000 : undefined);
    const label =
      status === 429 ? 'throttled (429 Too Many Requests)' : `temporarily failed (HTTP ${status})`;
    return new ClusterError('retryable', `${what}: ${label}${said}`, status, retryAfterMs);
  }
  if (status === 401) {
    return new ClusterError(
      'fatal',
      `${what}: the API server rejected the credentials (401 Unauthorized; for EKS, check that the role has an access entry and the clock is right)${said}`,
      status,
    );
  }
  if (status === 403) return new ClusterError('fatal', forbiddenMessage(target, body.message), status);
  return new ClusterError(
    'fatal',
    `${what}: rejected (HTTP ${status}${body.reason ? ` ${body.reason}` : ''})${said}`,
    status,
  );
}

function forbiddenMessage(target: KubeRequestTarget, serverMessage: string | undefined): string {
  const what = describeTarget(target);
  const said = serverMessage ? ` (API server: ${serverMessage})` : '';
  // Authorization denials read "... cannot <verb> resource ..."; other 403s come from admission
  // (a terminating namespace, PodSecurity, a quota) and no RBAC rule would fix them.
  if (serverMessage && !/\bcannot\b/.test(serverMessage)) {
    return `${what}: forbidden by the API server, not by RBAC${said}`;
  }
  const rule = `{apiGroups: [""], resources: ["${target.resource}"], verbs: ["${target.verb}"]}`;
  const binding = target.namespace
    ? `a Role in namespace "${target.namespace}" bound to the caller by a RoleBinding (or a ClusterRole and ClusterRoleBinding)`
    : 'a ClusterRole bound to the caller by a ClusterRoleBinding (listing all namespaces)';
  return `${what}: forbidden (403): RBAC lacks the rule ${rule} in ${binding}${said}`;
}

/** Shape of client-node's ApiException, so errors from its typed APIs map the same way. */
interface ApiExceptionLike {
  code: number;
  body: unknown;
  headers: Record<string, string>;
}

function isApiExceptionLike(error: unknown): error is ApiExceptionLike {
  return (
    error instanceof Error &&
    typeof (error as Partial<ApiExceptionLike>).code === 'number' &&
    'body' in error &&
    typeof (error as Partial<ApiExceptionLike>).headers === 'object'
  );
}

function errorCode(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/**
 * Maps anything a request threw: a ClusterError passes through, an ApiException maps by status,
 * a broken or timed-out connection is retryable, and the rest (TLS verification, bad config) is
 * fatal because retrying would not change it.
 */
export function clusterErrorFromThrown(
  target: KubeRequestTarget,
  error: unknown,
  now?: number,
): ClusterError {
  if (error instanceof ClusterError) return error;
  if (isApiExceptionLike(error)) {
    return clusterErrorFromResponse(
      target,
      { status: error.code, headers: error.headers, body: error.body },
      now,
    );
  }
  const what = describeTarget(target);
  const name = (error as { name?: unknown } | undefined)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') {
    return new ClusterError('retryable', `${what}: the request timed out`);
  }
  const code = errorCode(error);
  const detail = describeError(error);
  if (code && TRANSIENT_NETWORK_CODES.has(code)) {
    return new ClusterError('retryable', `${what}: network error (${code}): ${detail}`);
  }
  if (code && /CERT|TLS|SSL|SIGNATURE/.test(code)) {
    return new ClusterError(
      'fatal',
      `${what}: TLS verification failed (${code}); check the CA data: ${detail}`,
    );
  }
  // undici reports a dropped connection as a bare "fetch failed" / "terminated" without a code.
  if (error instanceof TypeError && /fetch failed|terminated/.test(error.message)) {
    return new ClusterError('retryable', `${what}: network error: ${detail}`);
  }
  return new ClusterError('fatal', `${what}: ${detail}`);
}

function describeError(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    parts.push(e instanceof Error ? e.message : String(e));
  }
  return parts.join(': ');
}
