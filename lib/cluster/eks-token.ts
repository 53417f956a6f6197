import { Sha256 } from '@aws-crypto/sha256-js';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';

/**
 * EKS bearer tokens, as `aws eks get-token` and aws-iam-authenticator make them: a presigned STS
 * GetCallerIdentity URL that names the cluster in the signed `x-k8s-aws-id` header. The API server
 * replays the URL against STS to learn who the caller is, so signing happens locally with the
 * Lambda's own credentials and no AWS call is made here.
 */

export const EKS_TOKEN_PREFIX = 'k8s-aws-v1.';
export const CLUSTER_ID_HEADER = 'x-k8s-aws-id';
/** EKS accepts a token for 15 minutes after its X-Amz-Date, whatever X-Amz-Expires says. */
export const EKS_TOKEN_LIFETIME_MS = 15 * 60_000;
/** aws-iam-authenticator always presigns with 60 s; EKS expects that value. */
export const PRESIGN_EXPIRES_SECONDS = 60;
/** Default margin: a cached token is replaced once it is 10 minutes old. */
export const DEFAULT_REFRESH_BEFORE_MS = 5 * 60_000;

export interface EksTokenProviderOptions {
  clusterName: string;
  region: string;
  /** Defaults to the AWS SDK's default chain (in Lambda: the function role from the environment). */
  credentials?: AwsCredentialIdentityProvider;
  /** Milliseconds since the epoch; injectable so tests can sign at a fixed instant. */
  now?: () => number;
  /** How long before the token's end a fresh one is signed. */
  refreshBeforeMs?: number;
}

export interface EksToken {
  token: string;
  /** When EKS stops accepting it (earlier if the signing credentials expire first). */
  expiresAt: number;
}

export interface EksTokenProvider {
  getToken(): Promise<EksToken>;
}

// Cluster names: 1-100 characters, alphanumerics, hyphens and underscores, starting alphanumeric.
const CLUSTER_NAME = /^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;

export function stsHostname(region: string): string {
  return region.startsWith('cn-') ? `sts.${region}.amazonaws.com.cn` : `sts.${region}.amazonaws.com`;
}

export function createEksTokenProvider(options: EksTokenProviderOptions): EksTokenProvider {
  const { clusterName, region } = options;
  if (typeof clusterName !== 'string' || !CLUSTER_NAME.test(clusterName)) {
    throw new Error(
      `EKS token: clusterName ${JSON.stringify(clusterName)} is not an EKS cluster name (1-100 letters, digits, - or _)`,
    );
  }
  if (typeof region !== 'string' || !REGION.test(region)) {
    throw new Error(`EKS token: region ${JSON.stringify(region)} is not an AWS region such as us-east-1`);
  }
  const refreshBeforeMs = options.refreshBeforeMs ?? DEFAULT_REFRESH_BEFORE_MS;
  if (!Number.isFinite(refreshBeforeMs) || refreshBeforeMs <= 0 || refreshBeforeMs >= EKS_TOKEN_LIFETIME_MS) {
    throw new Error(
      `EKS token: refreshBeforeMs must be between 0 and ${EKS_TOKEN_LIFETIME_MS} (exclusive), got ${refreshBeforeMs}`,
    );
  }
  const now = options.now ?? Date.now;
  const credentials = options.credentials ?? defaultProvider();
  const hostname = stsHostname(region);

  let cached: EksToken | undefined;
  let refreshAt = 0;
  let inFlight: Promise<EksToken> | undefined;

  async function sign(): Promise<EksToken> {
    const signedAt = now();
    // Resolved here rather than by the signer so that the token's end can follow the credentials'.
    const resolved: AwsCredentialIdentity = await credentials();
    const signer = new SignatureV4({ credentials: resolved, region, service: 'sts', sha256: Sha256 });
    const presigned = await signer.presign(
      {
        method: 'GET',
        protocol: 'https:',
        hostname,
        path: '/',
        query: { Action: 'GetCallerIdentity', Version: '2011-06-15' },
        headers: { host: hostname, [CLUSTER_ID_HEADER]: clusterName },
      },
      { expiresIn: PRESIGN_EXPIRES_SECONDS, signingDate: new Date(signedAt) },
    );
    const url = `https://${hostname}/?${formatQuery(presigned.query ?? {})}`;
    const credentialsEnd = resolved.expiration?.getTime() ?? Number.POSITIVE_INFINITY;
    const expiresAt = Math.min(signedAt + EKS_TOKEN_LIFETIME_MS, credentialsEnd);
    cached = { token: EKS_TOKEN_PREFIX + Buffer.from(url, 'utf8').toString('base64url'), expiresAt };
    refreshAt = expiresAt - refreshBeforeMs;
    return cached;
  }

  return {
    getToken(): Promise<EksToken> {
      if (cached && now() < refreshAt) return Promise.resolve(cached);
      // Concurrent callers share one signing rather than each resolving credentials.
      inFlight ??= sign().finally(() => {
        inFlight = undefined;
      });
      return inFlight;
    },
  };
}

type QueryValue = string | Array<string> | null;

/** Query string with AWS's URI encoding (RFC 3986 unreserved set only), keys in byte order. */
function formatQuery(query: Record<string, QueryValue>): string {
  const pairs: string[] = [];
  for (const key of Object.keys(query).sort()) {
    const value = query[key];
    if (value === null || value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value])
      pairs.push(`${awsEncode(key)}=${awsEncode(item)}`);
  }
  return pairs.join('&');
}

function awsEncode(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}
