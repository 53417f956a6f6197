import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiException, KubeConfig, RequestContext } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type ClusterConnection,
  clusterConnectionsFromEnv,
  kubeConfigFor,
  parseClusterConnections,
} from '../../lib/cluster/connections.ts';
import { EKS_TOKEN_PREFIX } from '../../lib/cluster/eks-token.ts';
import {
  clusterErrorFromResponse,
  clusterErrorFromThrown,
  type KubeRequestTarget,
  parseRetryAfter,
} from '../../lib/cluster/errors.ts';
import { KubeCluster } from '../../lib/cluster/kube-cluster.ts';
import { backoffDelay, withRetries } from '../../lib/cluster/retry.ts';
import { ClusterError } from '../../lib/core/ports.ts';
import { CA_DATA } from '../support/ca.ts';

const EKS = {
  kind: 'eks',
  clusterName: 'prod-eu',
  endpoint: 'https://ABC123.gr7.eu-west-1.eks.amazonaws.com/',
  caData: CA_DATA,
  region: 'eu-west-1',
};

describe('parseClusterConnections', () => {
  it('reads every kind from JSON text, as PODWARDEN_CLUSTERS holds it', () => {
    const connections = parseClusterConnections(
      JSON.stringify({
        local: { kind: 'kubeconfig', path: '/tmp/kubeconfig', context: 'dev' },
        home: { kind: 'kubeconfig' },
        self: { kind: 'in-cluster' },
        prod: EKS,
      }),
    );
    expect([...connections.keys()]).toEqual(['local', 'home', 'self', 'prod']);
    expect(connections.get('local')).toEqual({ kind: 'kubeconfig', path: '/tmp/kubeconfig', context: 'dev' });
    expect(connections.get('home')).toEqual({ kind: 'kubeconfig' });
    expect(connections.get('self')).toEqual({ kind: 'in-cluster' });
    // The trailing slash is dropped so that API paths join cleanly.
    expect(connections.get('prod')).toEqual({
      ...EKS,
      endpoint: 'https://ABC123.gr7.eu-west-1.eks.amazonaws.com',
    });
  });

  it('reads PODWARDEN_CLUSTERS and says so when it is unset or wrong', () => {
    expect(
      clusterConnectionsFromEnv({ PODWARDEN_CLUSTERS: '{"a": {"kind": "in-cluster"}}' }).get('a'),
    ).toEqual({
      kind: 'in-cluster',
    });
    expect(() => clusterConnectionsFromEnv({})).toThrow(/PODWARDEN_CLUSTERS is not set/);
    expect(() => clusterConnectionsFromEnv({ PODWARDEN_CLUSTERS: '{"a": {}}' })).toThrow(
      /^PODWARDEN_CLUSTERS: cluster "a": field "kind"/,
    );
  });

  it('accepts an already parsed value', () => {
    expect(parseClusterConnections({ a: { kind: 'in-cluster' } }).get('a')).toEqual({ kind: 'in-cluster' });
  });

  it.each<[string, unknown, RegExp]>([
    ['not JSON', '{prod', /not valid JSON/],
    ['an array', '[]', /expected a JSON object mapping cluster names/],
    ['empty', '{}', /no cluster is configured/],
    ['a bad cluster name', { 'a/b': { kind: 'in-cluster' } }, /cluster name "a\/b" must be/],
    ['a connection that is not an object', { prod: 'eks' }, /cluster "prod": connection must be an object/],
    ['an unknown kind', { prod: { kind: 'gke' } }, /cluster "prod": field "kind" must be .* got "gke"/],
    ['a missing kind', { prod: {} }, /cluster "prod": field "kind"/],
    [
      'a typo in a field',
      { prod: { ...EKS, endpiont: 'x' } },
      /cluster "prod": unknown field "endpiont" for kind "eks"/,
    ],
    [
      'a field in-cluster does not take',
      { me: { kind: 'in-cluster', path: '/x' } },
      /cluster "me": unknown field "path"/,
    ],
    [
      'a missing EKS field',
      { prod: { ...EKS, region: undefined } },
      /cluster "prod": field "region" is required/,
    ],
    [
      'an empty path',
      { dev: { kind: 'kubeconfig', path: '' } },
      /cluster "dev": field "path" must be a non-empty string/,
    ],
    [
      'a numeric context',
      { dev: { kind: 'kubeconfig', context: 3 } },
      /cluster "dev": field "context" must be/,
    ],
    [
      'a bad EKS cluster name',
      { prod: { ...EKS, clusterName: 'has space' } },
      /cluster "prod": field "clusterName"/,
    ],
    [
      'a non-URL endpoint',
      { prod: { ...EKS, endpoint: 'eks' } },
      /cluster "prod": field "endpoint" "eks" is not a URL/,
    ],
    [
      'a plain http endpoint',
      { prod: { ...EKS, endpoint: 'http://x' } },
      /cluster "prod": field "endpoint" must be an https/,
    ],
    [
      'CA data that is not base64 PEM',
      { prod: { ...EKS, caData: 'hello' } },
      /cluster "prod": field "caData"/,
    ],
    ['a bad region', { prod: { ...EKS, region: 'eu west' } }, /cluster "prod": field "region" "eu west"/],
  ])('rejects %s, naming the cluster and field', (_, input, message) => {
    expect(() => parseClusterConnections(input)).toThrow(message);
  });
});

describe('kubeConfigFor', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'podwarden-kubeconfig-'));
    writeFileSync(
      join(dir, 'config'),
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          { name: 'one', cluster: { server: 'https://127.0.0.1:6443' } },
          { name: 'two', cluster: { server: 'https://127.0.0.2:6443' } },
        ],
        users: [{ name: 'u', user: { token: 'static-token' } }],
        contexts: [
          { name: 'first', context: { cluster: 'one', user: 'u' } },
          { name: 'second', context: { cluster: 'two', user: 'u' } },
        ],
        'current-context': 'first',
      }),
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loads a kubeconfig file at its current context or the one named', async () => {
    const path = join(dir, 'config');
    expect((await kubeConfigFor({ kind: 'kubeconfig', path })).getCurrentCluster()?.server).toBe(
      'https://127.0.0.1:6443',
    );
    const second = await kubeConfigFor({ kind: 'kubeconfig', path, context: 'second' });
    expect(second.getCurrentCluster()?.server).toBe('https://127.0.0.2:6443');
  });

  it('takes the first KUBECONFIG entry when no path is given', async () => {
    vi.stubEnv('KUBECONFIG', `${join(dir, 'config')}:/nonexistent`);
    try {
      expect((await kubeConfigFor({ kind: 'kubeconfig' })).getCurrentContext()).toBe('first');
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('names a missing file or context', async () => {
    await expect(kubeConfigFor({ kind: 'kubeconfig', path: join(dir, 'absent') })).rejects.toThrow(
      /kubeconfig .*absent does not exist/,
    );
    await expect(
      kubeConfigFor({ kind: 'kubeconfig', path: join(dir, 'config'), context: 'third' }),
    ).rejects.toThrow(/has no context "third" \(it has: first, second\)/);
  });

  it('refuses in-cluster outside a pod', async () => {
    vi.stubEnv('KUBERNETES_SERVICE_HOST', '');
    try {
      await expect(kubeConfigFor({ kind: 'in-cluster' })).rejects.toThrow(
        /KUBERNETES_SERVICE_HOST .* not set/,
      );
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('builds in-cluster config from the service account files', async () => {
    const prefix = join(dir, 'pod');
    const accountDir = join(prefix, 'var/run/secrets/kubernetes.io/serviceaccount');
    await import('node:fs/promises').then((fs) => fs.mkdir(accountDir, { recursive: true }));
    vi.stubEnv('KUBERNETES_SERVICE_HOST', '10.0.0.1');
    vi.stubEnv('KUBERNETES_SERVICE_PORT', '443');
    try {
      await expect(kubeConfigFor({ kind: 'in-cluster' }, { inClusterPathPrefix: prefix })).rejects.toThrow(
        /serviceaccount\/token is missing/,
      );
      writeFileSync(join(accountDir, 'token'), 'projected-token');
      writeFileSync(join(accountDir, 'ca.crt'), Buffer.from(CA_DATA, 'base64'));
      const kc = await kubeConfigFor({ kind: 'in-cluster' }, { inClusterPathPrefix: prefix });
      expect(kc.getCurrentCluster()?.server).toBe('https://10.0.0.1:443');
      const request = new RequestContext('https://10.0.0.1/api', 'GET');
      await kc.applySecurityAuthentication(request);
      expect(request.getHeaders().Authorization).toBe('Bearer projected-token');
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('authenticates EKS requests with a token signed from the credentials, per request', async () => {
    const [, connection] = [...parseClusterConnections({ prod: EKS })][0]!;
    const kc = await kubeConfigFor(connection, {
      credentials: async () => ({
        accessKeyId: 'AKIDEXAMPLE',
        secretAccessKey: 'secret',
        sessionToken: 'session',
      }),
    });
    expect(kc.getCurrentCluster()).toMatchObject({
      server: 'https://ABC123.gr7.eu-west-1.eks.amazonaws.com',
      caData: CA_DATA,
      skipTLSVerify: false,
    });
    const request = new RequestContext('https://ABC123.gr7.eu-west-1.eks.amazonaws.com/api', 'GET');
    await kc.applySecurityAuthentication(request);
    const authorization = request.getHeaders().Authorization ?? '';
    expect(authorization.startsWith(`Bearer ${EKS_TOKEN_PREFIX}`)).toBe(true);
    const url = new URL(
      Buffer.from(authorization.slice(`Bearer ${EKS_TOKEN_PREFIX}`.length), 'base64url').toString(),
    );
    expect(url.host).toBe('sts.eu-west-1.amazonaws.com');
    expect(url.searchParams.get('X-Amz-Security-Token')).toBe('session');
  });

  it('takes an injected EKS token provider', async () => {
    let calls = 0;
    const kc = await kubeConfigFor(EKS as ClusterConnection, {
      eksTokenProvider: (c) => ({
        getToken: async () => ({
          token: `token-${c.kind === 'eks' ? c.clusterName : ''}-${++calls}`,
          expiresAt: 0,
        }),
      }),
    });
    for (const expected of ['token-prod-eu-1', 'token-prod-eu-2']) {
      const request = new RequestContext('https://x/api', 'GET');
      await kc.applySecurityAuthentication(request);
      expect(request.getHeaders().Authorization).toBe(`Bearer ${expected}`);
    }
  });
});

const POD_GET: KubeRequestTarget = {
  cluster: 'prod',
  verb: 'get',
  resource: 'pods',
  namespace: 'jobs',
  name: 'p1',
};
const status = (reason: string, message: string, extra: object = {}) => ({
  kind: 'Status',
  apiVersion: 'v1',
  status: 'Failure',
  reason,
  message,
  ...extra,
});

describe('error mapping', () => {
  it('maps 404 and the two kinds of 409', () => {
    const notFound = clusterErrorFromResponse(POD_GET, {
      status: 404,
      headers: {},
      body: status('NotFound', 'pods "p1" not found'),
    });
    expect(notFound).toMatchObject({ kind: 'not-found', status: 404 });
    expect(notFound.message).toBe(
      'get pods "p1" in namespace "jobs" on cluster "prod": not found: pods "p1" not found',
    );
    expect(
      clusterErrorFromResponse(POD_GET, { status: 409, headers: {}, body: status('AlreadyExists', 'exists') })
        .kind,
    ).toBe('already-exists');
    expect(
      clusterErrorFromResponse(POD_GET, { status: 409, headers: {}, body: status('Conflict', 'x') }).kind,
    ).toBe('conflict');
  });

  it('maps 429 with Retry-After in seconds or as a date, and 5xx, to retryable', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    const throttled = clusterErrorFromResponse(
      POD_GET,
      { status: 429, headers: { 'Retry-After': '3' }, body: status('TooManyRequests', 'slow down') },
      now,
    );
    expect(throttled).toMatchObject({ kind: 'retryable', status: 429, retryAfterMs: 3000 });
    expect(throttled.message).toMatch(/throttled \(429 Too Many Requests\): slow down/);
    const dated = clusterErrorFromResponse(
      POD_GET,
      { status: 503, headers: { 'retry-after': 'Wed, 01 Jan 2025 00:00:07 GMT' }, body: 'upstream down' },
      now,
    );
    expect(dated).toMatchObject({ kind: 'retryable', status: 503, retryAfterMs: 7000 });
    expect(dated.message).toMatch(/HTTP 503\): upstream down/);
    const fromBody = clusterErrorFromResponse(POD_GET, {
      status: 500,
      headers: {},
      body: status('InternalError', 'etcd', { details: { retryAfterSeconds: 2 } }),
    });
    expect(fromBody).toMatchObject({ kind: 'retryable', retryAfterMs: 2000 });
    for (const code of [408, 410, 502, 504]) {
      expect(clusterErrorFromResponse(POD_GET, { status: code, headers: {}, body: undefined }).kind).toBe(
        'retryable',
      );
    }
  });

  it('parses Retry-After strictly', () => {
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(' 0 ')).toBe(0);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:00 GMT', Date.parse('2025-01-01T00:01:00Z'))).toBe(0);
  });

  it('makes 403 fatal, naming the verb, resource, namespace and the missing RBAC rule', () => {
    const denied = clusterErrorFromResponse(
      { cluster: 'prod', verb: 'delete', resource: 'pods', namespace: 'jobs', name: 'p1' },
      {
        status: 403,
        headers: {},
        body: status(
          'Forbidden',
          'pods "p1" is forbidden: User "system:serviceaccount:podwarden:lambda" cannot delete resource "pods" in API group "" in the namespace "jobs"',
        ),
      },
    );
    expect(denied.kind).toBe('fatal');
    expect(denied.status).toBe(403);
    expect(denied.message).toContain('delete pods "p1" in namespace "jobs" on cluster "prod"');
    expect(denied.message).toContain(
      'RBAC lacks the rule {apiGroups: [""], resources: ["pods"], verbs: ["delete"]}',
    );
    expect(denied.message).toContain('a Role in namespace "jobs"');
    expect(denied.message).toContain('cannot delete resource "pods"');

    const clusterWide = clusterErrorFromResponse(
      { cluster: 'prod', verb: 'list', resource: 'events' },
      {
        status: 403,
        headers: {},
        body: status('Forbidden', 'events is forbidden: User "x" cannot list resource'),
      },
    );
    expect(clusterWide.message).toContain('list events in all namespaces');
    expect(clusterWide.message).toContain('verbs: ["list"]');
    expect(clusterWide.message).toContain('ClusterRoleBinding');
  });

  it('does not blame RBAC for an admission 403', () => {
    const terminating = clusterErrorFromResponse(
      { cluster: 'prod', verb: 'create', resource: 'pods', namespace: 'old' },
      {
        status: 403,
        headers: {},
        body: status(
          'Forbidden',
          'unable to create new content in namespace old because it is being terminated',
        ),
      },
    );
    expect(terminating.kind).toBe('fatal');
    expect(terminating.message).toContain('not by RBAC');
    expect(terminating.message).not.toContain('lacks the rule');
  });

  it('makes 401 and 422 fatal with the server message', () => {
    expect(
      clusterErrorFromResponse(POD_GET, { status: 401, headers: {}, body: status('Unauthorized', 'no') }),
    ).toMatchObject({ kind: 'fatal', message: expect.stringMatching(/rejected the credentials \(401/) });
    const invalid = clusterErrorFromResponse(POD_GET, {
      status: 422,
      headers: {},
      body: status('Invalid', 'Pod "p1" is invalid: spec.containers: Required value'),
    });
    expect(invalid.kind).toBe('fatal');
    expect(invalid.message).toMatch(/HTTP 422 Invalid\): Pod "p1" is invalid/);
  });

  it('maps a client-node ApiException by its status and headers', () => {
    const exception = new ApiException(
      429,
      'HTTP-Code: 429',
      JSON.stringify(status('TooManyRequests', 'too many requests')),
      { 'retry-after': '1' },
    );
    expect(clusterErrorFromThrown(POD_GET, exception)).toMatchObject({
      kind: 'retryable',
      retryAfterMs: 1000,
    });
    const gone = new ApiException(404, 'HTTP-Code: 404', JSON.stringify(status('NotFound', 'gone')), {});
    expect(clusterErrorFromThrown(POD_GET, gone).kind).toBe('not-found');
  });

  it('maps network failures to retryable and TLS failures to fatal', () => {
    const refused = new TypeError('fetch failed', {
      cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' }),
    });
    const mapped = clusterErrorFromThrown(POD_GET, refused);
    expect(mapped.kind).toBe('retryable');
    expect(mapped.message).toContain('ECONNREFUSED');
    expect(clusterErrorFromThrown(POD_GET, new DOMException('timed out', 'TimeoutError')).kind).toBe(
      'retryable',
    );
    const tls = new TypeError('fetch failed', {
      cause: Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }),
    });
    expect(clusterErrorFromThrown(POD_GET, tls)).toMatchObject({
      kind: 'fatal',
      message: expect.stringMatching(/TLS verification failed/),
    });
    const own = new ClusterError('conflict', 'x');
    expect(clusterErrorFromThrown(POD_GET, own)).toBe(own);
  });
});

describe('retry policy', () => {
  const policy = (sleeps: number[], attempts = 4) => ({
    attempts,
    baseDelayMs: 100,
    maxDelayMs: 1000,
    random: () => 1,
    sleep: async (ms: number) => {
      sleeps.push(ms);
    },
  });

  it('backs off exponentially up to the cap, with jitter in the upper half', () => {
    const full = { baseDelayMs: 100, maxDelayMs: 1000, random: () => 1 };
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(full, n))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(backoffDelay({ ...full, random: () => 0 }, 3)).toBe(200);
  });

  it('retries retryable errors, honouring Retry-After, then gives up with the attempts named', async () => {
    const sleeps: number[] = [];
    let calls = 0;
    const failing = withRetries(policy(sleeps), async () => {
      calls++;
      throw new ClusterError('retryable', 'busy', 503, calls === 2 ? 700 : undefined);
    });
    await expect(failing).rejects.toMatchObject({
      kind: 'retryable',
      message: 'busy (gave up after 4 attempts)',
    });
    expect(calls).toBe(4);
    expect(sleeps).toEqual([100, 700, 400]);
  });

  it('returns the first success', async () => {
    const sleeps: number[] = [];
    let calls = 0;
    const result = await withRetries(policy(sleeps), async () => {
      if (++calls < 3) throw new ClusterError('retryable', 'busy', 429, 50);
      return 'ok';
    });
    expect(result).toBe('ok');
    expect(sleeps).toEqual([50, 50]);
  });

  it('surfaces a Retry-After longer than the cap at once, keeping it for the caller', async () => {
    const sleeps: number[] = [];
    const longWait = withRetries(policy(sleeps), async () => {
      throw new ClusterError('retryable', 'throttled', 429, 60_000);
    });
    await expect(longWait).rejects.toMatchObject({ kind: 'retryable', retryAfterMs: 60_000 });
    expect(sleeps).toEqual([]);
  });

  it('does not retry other kinds', async () => {
    const sleeps: number[] = [];
    let calls = 0;
    await expect(
      withRetries(policy(sleeps), async () => {
        calls++;
        throw new ClusterError('fatal', 'denied', 403);
      }),
    ).rejects.toMatchObject({ kind: 'fatal' });
    expect(calls).toBe(1);
  });
});

describe('KubeCluster configuration', () => {
  const connections = parseClusterConnections({ a: { kind: 'in-cluster' } });

  it.each<[string, object, RegExp]>([
    ['zero attempts', { attempts: 0 }, /attempts must be an integer from 1 to 10, got 0/],
    ['fractional base delay', { baseDelayMs: 1.5 }, /baseDelayMs must be an integer/],
    [
      'a cap below the base',
      { baseDelayMs: 500, maxDelayMs: 100 },
      /maxDelayMs \(100\) must not be below baseDelayMs \(500\)/,
    ],
    ['a zero page size', { pageSize: 0 }, /pageSize must be an integer from 1/],
    ['a negative timeout', { requestTimeoutMs: -1 }, /requestTimeoutMs must be an integer/],
  ])('rejects %s', (_, options, message) => {
    expect(() => new KubeCluster(connections, options)).toThrow(message);
  });

  it('rejects an empty map', () => {
    expect(() => new KubeCluster(new Map())).toThrow(/no cluster connection is configured/);
  });

  it('rejects an unknown cluster name, listing the configured ones', async () => {
    const cluster = new KubeCluster(
      parseClusterConnections({ a: { kind: 'in-cluster' }, b: { kind: 'in-cluster' } }),
    );
    await expect(cluster.getPod('c', 'default', 'p')).rejects.toMatchObject({
      kind: 'fatal',
      message: 'unknown cluster "c" (configured: a, b)',
    });
  });

  it('rejects invalid names before any request', async () => {
    const cluster = new KubeCluster(connections);
    await expect(cluster.getPod('a', 'Not_A_Namespace', 'p')).rejects.toThrow(
      /namespace "Not_A_Namespace" is not a valid namespace name/,
    );
    await expect(cluster.getPod('a', 'default', 'UPPER')).rejects.toThrow(/"UPPER" is not a valid pod name/);
    await expect(cluster.createPod('a', { metadata: { name: 'p' } })).rejects.toThrow(
      /pod has no metadata.namespace/,
    );
    await expect(cluster.deletePod('a', 'default', 'p', { uid: '', gracePeriodSeconds: 0 })).rejects.toThrow(
      /a uid precondition is required/,
    );
    await expect(
      cluster.deletePod('a', 'default', 'p', { uid: 'u', gracePeriodSeconds: -1 }),
    ).rejects.toThrow(/gracePeriodSeconds must be a non-negative integer/);
  });

  it('retries a refused connection with back-off, then surfaces it as retryable', async () => {
    // A port that was just free: nothing listens there, so the kernel refuses the connection.
    const port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
    const kc = new KubeConfig();
    kc.loadFromClusterAndUser(
      { name: 'closed', server: `https://127.0.0.1:${port}`, skipTLSVerify: true },
      { name: 'nobody', token: 'x' },
    );
    const sleeps: number[] = [];
    const cluster = new KubeCluster(async () => kc, {
      attempts: 3,
      baseDelayMs: 10,
      random: () => 1,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    });
    const failure = await cluster.listPods('anywhere', { namespace: 'default' }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ClusterError);
    expect(failure).toMatchObject({
      kind: 'retryable',
      message: expect.stringMatching(/ECONNREFUSED.*after 3 attempts/),
    });
    expect(sleeps).toEqual([10, 20]);
  });

  it('reports a connection that cannot be set up as fatal, naming the cluster', async () => {
    const cluster = new KubeCluster(
      parseClusterConnections({ dev: { kind: 'kubeconfig', path: '/nonexistent/kc' } }),
    );
    await expect(cluster.getPod('dev', 'default', 'p')).rejects.toMatchObject({
      kind: 'fatal',
      message: 'cluster "dev": cannot set up the connection: kubeconfig /nonexistent/kc does not exist',
    });
  });
});
