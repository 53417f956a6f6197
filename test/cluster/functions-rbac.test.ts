/**
 * The functions' RBAC (`podwarden manifests --functions-rbac`) applied to the real local control
 * plane, judged by its real RBAC authorizer through SubjectAccessReviews for the group an EKS
 * access entry gives the functions' roles: allowed exactly what the functions do, in the allowed
 * namespaces only.
 */
import { randomBytes } from 'node:crypto';
import {
  AuthorizationV1Api,
  RbacAuthorizationV1Api,
  type V1Role,
  type V1RoleBinding,
} from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { functionsRbacManifests } from '../../lib/bridge/manifests.ts';
import { createTestNamespace, loadTestKubeConfig, waitFor } from './support.ts';

const kc = loadTestKubeConfig();
const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
const authorization = kc.makeApiClient(AuthorizationV1Api);
const GROUP = `podwarden-functions-${randomBytes(3).toString('hex')}`;

let allowed: string;
let other: string;

async function may(
  namespace: string,
  verb: string,
  resource: string,
  subresource?: string,
): Promise<boolean> {
  const review = await authorization.createSubjectAccessReview({
    body: {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: {
        user: 'arn:aws:sts::123456789012:assumed-role/Podwarden-CheckRole/check',
        groups: [GROUP, 'system:authenticated'],
        resourceAttributes: { namespace, verb, resource, ...(subresource ? { subresource } : {}), group: '' },
      },
    },
  });
  return review.status?.allowed === true;
}

beforeAll(async () => {
  allowed = await createTestNamespace(kc, 'functions-rbac');
  other = await createTestNamespace(kc, 'functions-rbac-other');
  for (const object of functionsRbacManifests({ group: GROUP, namespaces: [allowed] })) {
    if (object.kind === 'Role')
      await rbac.createNamespacedRole({ namespace: allowed, body: object as unknown as V1Role });
    else
      await rbac.createNamespacedRoleBinding({
        namespace: allowed,
        body: object as unknown as V1RoleBinding,
      });
  }
  // The authorizer reads RBAC objects through an informer: wait until the binding is seen.
  await waitFor('the binding to take effect', () => may(allowed, 'get', 'pods'));
});

describe('functions RBAC on the real authorizer', () => {
  it.each([
    ['get', 'pods'],
    ['list', 'pods'],
    ['create', 'pods'],
    ['delete', 'pods'],
    ['list', 'events'],
    ['create', 'events'],
  ])('allows %s %s in an allowed namespace', async (verb, resource) => {
    expect(await may(allowed, verb, resource)).toBe(true);
  });

  it.each([
    ['watch', 'pods'],
    ['update', 'pods'],
    ['patch', 'pods'],
    ['deletecollection', 'pods'],
    ['delete', 'events'],
    ['get', 'secrets'],
    ['create', 'configmaps'],
  ])('refuses %s %s', async (verb, resource) => {
    expect(await may(allowed, verb, resource)).toBe(false);
  });

  it('refuses exec and everything in a namespace that is not allowed', async () => {
    expect(await may(allowed, 'create', 'pods', 'exec')).toBe(false);
    expect(await may(allowed, 'create', 'pods', 'eviction')).toBe(false);
    expect(await may(other, 'get', 'pods')).toBe(false);
    expect(await may(other, 'create', 'pods')).toBe(false);
  });
});
