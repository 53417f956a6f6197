import type { AwsCredentialIdentity } from '@smithy/types';
import { describe, expect, it } from 'vitest';
import {
  createEksTokenProvider,
  EKS_TOKEN_LIFETIME_MS,
  EKS_TOKEN_PREFIX,
  stsHostname,
} from '../../lib/cluster/eks-token.ts';

// AWS's documentation example keys: fixed inputs, so the signature is deterministic.
const CREDENTIALS: AwsCredentialIdentity = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  // '/', '+' and '=' exercise the URI encoding of the signed query.
  sessionToken: 'IQoJb3JpZ2luX2VjEXAMPLE/session+token==',
};
const SIGNED_AT = Date.parse('2024-05-06T07:08:09Z');

/*
 * Computed independently of the AWS SDK with Python's hashlib and hmac (Python 3.11), by SigV4 as
 * AWS documents it for query-string (presigned) requests:
 *   q = {Action: GetCallerIdentity, Version: 2011-06-15, X-Amz-Algorithm: AWS4-HMAC-SHA256,
 *        X-Amz-Credential: AKIDEXAMPLE/20240506/eu-west-1/sts/aws4_request,
 *        X-Amz-Date: 20240506T070809Z, X-Amz-Expires: 60, X-Amz-Security-Token: <token above>,
 *        X-Amz-SignedHeaders: host;x-k8s-aws-id}
 *   enc = lambda s: urllib.parse.quote(s, safe='-_.~')
 *   canonical = '\n'.join(['GET', '/', '&'.join(f'{enc(k)}={enc(v)}' for k, v in sorted(q.items())),
 *       'host:sts.eu-west-1.amazonaws.com', 'x-k8s-aws-id:prod-cluster_1', '',
 *       'host;x-k8s-aws-id', sha256(b'').hexdigest()])
 *   to_sign = '\n'.join(['AWS4-HMAC-SHA256', '20240506T070809Z',
 *       '20240506/eu-west-1/sts/aws4_request', sha256(canonical).hexdigest()])
 *   key = HMAC chain of 'AWS4'+secret over '20240506', 'eu-west-1', 'sts', 'aws4_request'
 *   signature = hmac(key, to_sign, sha256).hexdigest()
 */
const EXPECTED_SIGNATURE = '410719bda783ca6647375d2ca5c65252a88cebc864a5ca477fea5c09b1f4fbfa';

function decode(token: string): URL {
  expect(token.startsWith(EKS_TOKEN_PREFIX)).toBe(true);
  const payload = token.slice(EKS_TOKEN_PREFIX.length);
  expect(payload).toMatch(/^[A-Za-z0-9_-]+$/); // base64url, no padding
  return new URL(Buffer.from(payload, 'base64url').toString('utf8'));
}

function fixedClock(start: number) {
  const clock = { at: start, now: () => clock.at };
  return clock;
}

describe('EKS token', () => {
  it('is a presigned STS GetCallerIdentity URL that signs the cluster name header', async () => {
    const clock = fixedClock(SIGNED_AT);
    const provider = createEksTokenProvider({
      clusterName: 'prod-cluster_1',
      region: 'eu-west-1',
      credentials: async () => CREDENTIALS,
      now: clock.now,
    });
    const { token, expiresAt } = await provider.getToken();
    const url = decode(token);
    expect(url.protocol).toBe('https:');
    expect(url.host).toBe('sts.eu-west-1.amazonaws.com');
    expect(url.pathname).toBe('/');
    const query = Object.fromEntries(url.searchParams);
    expect(query).toEqual({
      Action: 'GetCallerIdentity',
      Version: '2011-06-15',
      'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
      'X-Amz-Credential': 'AKIDEXAMPLE/20240506/eu-west-1/sts/aws4_request',
      'X-Amz-Date': '20240506T070809Z',
      'X-Amz-Expires': '60',
      'X-Amz-Security-Token': CREDENTIALS.sessionToken,
      'X-Amz-SignedHeaders': 'host;x-k8s-aws-id',
      'X-Amz-Signature': EXPECTED_SIGNATURE,
    });
    expect(expiresAt).toBe(SIGNED_AT + EKS_TOKEN_LIFETIME_MS);
  });

  it('signs for another cluster and region with a different signature and no token without a session', async () => {
    const provider = createEksTokenProvider({
      clusterName: 'other',
      region: 'us-east-1',
      credentials: async () => ({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: CREDENTIALS.secretAccessKey }),
      now: () => SIGNED_AT,
    });
    const url = decode((await provider.getToken()).token);
    expect(url.host).toBe('sts.us-east-1.amazonaws.com');
    expect(url.searchParams.get('X-Amz-Credential')).toBe('AKIDEXAMPLE/20240506/us-east-1/sts/aws4_request');
    expect(url.searchParams.has('X-Amz-Security-Token')).toBe(false);
    expect(url.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
    expect(url.searchParams.get('X-Amz-Signature')).not.toBe(EXPECTED_SIGNATURE);
  });

  it('uses the .com.cn STS endpoint in China regions', () => {
    expect(stsHostname('cn-north-1')).toBe('sts.cn-north-1.amazonaws.com.cn');
    expect(stsHostname('ap-southeast-2')).toBe('sts.ap-southeast-2.amazonaws.com');
  });

  it('caches the token and signs a new one once it is 10 minutes old', async () => {
    const clock = fixedClock(SIGNED_AT);
    let resolutions = 0;
    const provider = createEksTokenProvider({
      clusterName: 'prod',
      region: 'eu-west-1',
      credentials: async () => {
        resolutions++;
        return CREDENTIALS;
      },
      now: clock.now,
    });
    const first = await provider.getToken();
    clock.at = SIGNED_AT + 10 * 60_000 - 1;
    expect(await provider.getToken()).toBe(first);
    expect(resolutions).toBe(1);

    clock.at = SIGNED_AT + 10 * 60_000;
    const second = await provider.getToken();
    expect(resolutions).toBe(2);
    expect(second.token).not.toBe(first.token);
    expect(decode(second.token).searchParams.get('X-Amz-Date')).toBe('20240506T071809Z');
    expect(second.expiresAt).toBe(clock.at + EKS_TOKEN_LIFETIME_MS);
  });

  it('honours a custom refresh margin', async () => {
    const clock = fixedClock(SIGNED_AT);
    const provider = createEksTokenProvider({
      clusterName: 'prod',
      region: 'eu-west-1',
      credentials: async () => CREDENTIALS,
      now: clock.now,
      refreshBeforeMs: 60_000,
    });
    const first = await provider.getToken();
    clock.at = SIGNED_AT + 13 * 60_000;
    expect(await provider.getToken()).toBe(first);
    clock.at = SIGNED_AT + 14 * 60_000;
    expect(await provider.getToken()).not.toBe(first);
  });

  it('ends the token early when the signing credentials expire first', async () => {
    const clock = fixedClock(SIGNED_AT);
    const credentialsEnd = SIGNED_AT + 7 * 60_000;
    const provider = createEksTokenProvider({
      clusterName: 'prod',
      region: 'eu-west-1',
      credentials: async () => ({ ...CREDENTIALS, expiration: new Date(credentialsEnd) }),
      now: clock.now,
    });
    const first = await provider.getToken();
    expect(first.expiresAt).toBe(credentialsEnd);
    clock.at = SIGNED_AT + 2 * 60_000; // within 5 minutes of the credentials' end: re-sign
    expect(await provider.getToken()).not.toBe(first);
  });

  it('shares one signing between concurrent callers', async () => {
    let resolutions = 0;
    const provider = createEksTokenProvider({
      clusterName: 'prod',
      region: 'eu-west-1',
      credentials: async () => {
        resolutions++;
        return CREDENTIALS;
      },
      now: () => SIGNED_AT,
    });
    const tokens = await Promise.all([provider.getToken(), provider.getToken(), provider.getToken()]);
    expect(resolutions).toBe(1);
    expect(new Set(tokens.map((t) => t.token)).size).toBe(1);
  });

  it('does not cache a failure to resolve credentials', async () => {
    let calls = 0;
    const provider = createEksTokenProvider({
      clusterName: 'prod',
      region: 'eu-west-1',
      credentials: async () => {
        calls++;
        if (calls === 1) throw new Error('no credentials yet');
        return CREDENTIALS;
      },
      now: () => SIGNED_AT,
    });
    await expect(provider.getToken()).rejects.toThrow('no credentials yet');
    expect((await provider.getToken()).token.startsWith(EKS_TOKEN_PREFIX)).toBe(true);
  });

  it('rejects a bad cluster name, region or refresh margin by name', () => {
    const credentials = async () => CREDENTIALS;
    expect(() => createEksTokenProvider({ clusterName: '', region: 'eu-west-1', credentials })).toThrow(
      /clusterName "" is not an EKS cluster name/,
    );
    expect(() => createEksTokenProvider({ clusterName: 'a b', region: 'eu-west-1', credentials })).toThrow(
      /clusterName "a b"/,
    );
    expect(() => createEksTokenProvider({ clusterName: 'prod', region: 'Europe', credentials })).toThrow(
      /region "Europe" is not an AWS region/,
    );
    expect(() =>
      createEksTokenProvider({
        clusterName: 'prod',
        region: 'eu-west-1',
        credentials,
        refreshBeforeMs: EKS_TOKEN_LIFETIME_MS,
      }),
    ).toThrow(/refreshBeforeMs must be between 0 and 900000/);
  });
});
