/**
 * Image-pull errors: which container waiting reasons and kubelet events are about pulls, and whether
 * a pull error is worth waiting out (the kubelet keeps retrying) or will never heal.
 */

/**
 * Waiting reasons the kubelet (pkg/kubelet/images) and CRI runtimes write on a container whose image
 * could not be pulled. `RegistryUnavailable` comes from older kubelets, `SignatureValidationFailed`
 * from runtimes that verify signatures (CRI-O, via the CRI error the kubelet passes on).
 */
export const IMAGE_PULL_REASONS = [
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'ErrImageNeverPull',
  'RegistryUnavailable',
  'ImageInspectError',
  'SignatureValidationFailed',
] as const;
export type ImagePullReason = (typeof IMAGE_PULL_REASONS)[number];

export function isImagePullReason(reason: string | undefined): reason is ImagePullReason {
  return (IMAGE_PULL_REASONS as readonly string[]).includes(reason ?? '');
}

const PULL_EVENT_MESSAGE: Readonly<Record<string, RegExp>> = {
  // `Failed to pull image "x": <cause>`, and the runtime manager's `Error: ErrImagePull` follow-up.
  Failed: new RegExp(`^(?:Failed to pull image\\b|Error: (?:${IMAGE_PULL_REASONS.join('|')})\\b)`),
  // `Back-off pulling image "x"` (newer kubelets append `: ErrImagePull: <cause>`); not the
  // `Back-off restarting failed container` event, which shares the reason.
  BackOff: /^Back-off pulling image\b/,
  // `Container image "x" is not present with pull policy of Never`.
  ErrImageNeverPull: /./,
  // `Failed to apply default image tag "x": couldn't parse image reference ...` (InvalidImageName).
  InspectFailed: /^Failed to (?:apply default image tag|inspect image)\b/,
};

/** Whether a Kubernetes event from the kubelet reports a failed image pull. */
export function isImagePullEvent(reason: string, message: string): boolean {
  const pattern = Object.hasOwn(PULL_EVENT_MESSAGE, reason) ? PULL_EVENT_MESSAGE[reason] : undefined;
  return pattern?.test(message ?? '') ?? false;
}

export interface PullVerdict {
  kind: 'transient' | 'permanent';
  /** What kind of failure it is, e.g. `rate-limit`, `registry-5xx`, `network`, `not-found`. */
  category: string;
  /** The text that decided the verdict, as it appears in the message; `no known pattern` otherwise. */
  matched: string;
  /**
   * True when the classifier is not sure the error heals by itself (authentication, unknown
   * messages): the task waits, but only until its pull deadline. Every transient verdict is bounded
   * by the deadline; this flag says the wait is a bet, so reports can say so.
   */
  untilDeadline: boolean;
}

interface Rule {
  category: string;
  kind: PullVerdict['kind'];
  untilDeadline: boolean;
  pattern: RegExp;
}

const rule = (kind: PullVerdict['kind'], category: string, pattern: RegExp, untilDeadline = false): Rule => ({
  kind,
  category,
  pattern,
  untilDeadline,
});

/** Waiting reasons that settle the verdict whatever the message says. */
const PERMANENT_REASONS: Readonly<Record<string, string>> = {
  InvalidImageName: 'invalid-image-name',
  ErrImageNeverPull: 'never-pull',
  SignatureValidationFailed: 'signature',
};

/**
 * HTTP status codes are matched only as a status line (`503 Service Unavailable`) or after
 * `status`/`status code`, never as bare digits, which also occur in tags, ports and digests.
 */
const status = (codes: string): RegExp =>
  new RegExp(
    `\\b(?:${codes})\\s+[A-Z][a-z]+(?: [A-Z][a-z]+)*|\\b[Ss]tatus(?: [Cc]ode)?:?\\s*(?:${codes})\\b`,
  );

/**
 * A single-word signal, as registries write it (`toomanyrequests: ...`, `403 Forbidden`), but not as
 * part of an image reference (`acme/forbidden-city:1`), which containerd repeats unquoted.
 */
const word = (text: string): RegExp => new RegExp(`(?<![\\w./:-])${text}(?![\\w./-])`, 'i');

/**
 * The registry or the network failed to answer: whatever else the message says (an image name or a
 * URL path that happens to contain `not found`, a `401` on the retry), the registry never said the
 * image is missing, so these win over every permanent rule.
 */
const TRANSIENT_RULES: readonly Rule[] = [
  rule('transient', 'rate-limit', word('toomanyrequests')),
  rule('transient', 'rate-limit', /too many requests|rate exceeded|pull QPS exceeded/i),
  rule('transient', 'rate-limit', status('429')),
  rule(
    'transient',
    'registry-5xx',
    /bad gateway|service unavailable|gateway time-?out|internal server error/i,
  ),
  rule('transient', 'registry-5xx', status('500|502|503|504')),
  rule('transient', 'network', /i\/o timeout|TLS handshake timeout|connection reset|connection refused/i),
  rule('transient', 'network', /context deadline exceeded|Client\.Timeout exceeded|unexpected EOF/i),
  rule('transient', 'network', /network is unreachable|no route to host/i),
  rule('transient', 'dns', /no such host|server misbehaving|Temporary failure in name resolution/i),
];

/** The registry answered, and the answer will not change by retrying. Specific causes first. */
const PERMANENT_RULES: readonly Rule[] = [
  rule('permanent', 'invalid-image-name', /invalid reference format|couldn't parse image reference/i),
  rule('permanent', 'never-pull', /not present with pull policy of Never/i),
  rule('permanent', 'platform', /no match for platform in manifest/i),
  rule('permanent', 'not-found', /manifest unknown|\bnot found\b|repository does not exist|name unknown/i),
  rule(
    'permanent',
    'access-denied',
    /pull access denied|access to the resource is denied|not authorized to perform/i,
  ),
  rule('permanent', 'access-denied', word('insufficient_scope')),
  rule('permanent', 'access-denied', word('forbidden')),
  rule('permanent', 'access-denied', status('403')),
];

/**
 * Authentication failures heal when credentials are refreshed (ECR tokens, a credential provider
 * throttled while refreshing): worth waiting for, but only until the deadline.
 */
const UNCERTAIN_RULES: readonly Rule[] = [
  rule('transient', 'auth', status('401'), true),
  rule('transient', 'auth', word('unauthorized'), true),
  rule('transient', 'auth', /no basic auth credentials/i, true),
];

/** The kubelet's own back-off message without a cause: the pull is being retried. */
const BACK_OFF_RULE = rule('transient', 'back-off', /Back-off pulling image/i);

/** Applied in this order; the first match decides. */
const MESSAGE_RULES: readonly Rule[] = [
  ...TRANSIENT_RULES,
  ...PERMANENT_RULES,
  ...UNCERTAIN_RULES,
  BACK_OFF_RULE,
];

/**
 * URLs and quoted image references are blanked (same length, so match positions still point into
 * the original) before matching: a repository called `not-found` or a path segment must not decide.
 */
function blankNames(message: string): string {
  return message.replace(/https?:\/\/\S+|"[^"]*"/g, (name) => ' '.repeat(name.length));
}

/**
 * Classifies a pull error from the container's waiting reason and message (or a kubelet event's).
 * Precedence: a permanent waiting reason; then registry/network failures (transient); then
 * answers that will not change (permanent); then authentication (transient until the deadline);
 * then a bare kubelet back-off (transient); anything else: transient until the deadline.
 */
export function classifyPullError(reason: string, message: string): PullVerdict {
  const byReason = Object.hasOwn(PERMANENT_REASONS, reason) ? PERMANENT_REASONS[reason] : undefined;
  if (byReason !== undefined) {
    return { kind: 'permanent', category: byReason, matched: `reason ${reason}`, untilDeadline: false };
  }
  const text = message ?? '';
  const blanked = blankNames(text);
  for (const candidate of MESSAGE_RULES) {
    const match = candidate.pattern.exec(blanked);
    if (match) {
      return {
        kind: candidate.kind,
        category: candidate.category,
        matched: text.slice(match.index, match.index + match[0].length).trim(),
        untilDeadline: candidate.untilDeadline,
      };
    }
  }
  if (reason === 'RegistryUnavailable') {
    return {
      kind: 'transient',
      category: 'registry-unavailable',
      matched: `reason ${reason}`,
      untilDeadline: false,
    };
  }
  return { kind: 'transient', category: 'unknown', matched: 'no known pattern', untilDeadline: true };
}
