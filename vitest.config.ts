import { defineConfig } from 'vitest/config';

// One project per test tier; `npm test` runs them all. Tiers that need a real engine start it in
// their globalSetup (DynamoDB Local, ElasticMQ for SQS, the local Kubernetes control plane) on free
// loopback ports.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/setup/dynamodb.ts', 'test/setup/elasticmq.ts'],
          // Generous: DynamoDB Local shares two cores with other builds.
          testTimeout: 60_000,
          hookTimeout: 180_000,
        },
      },
      {
        test: {
          name: 'cluster',
          include: ['test/cluster/**/*.test.ts'],
          // One real control plane (etcd, kube-apiserver, kube-scheduler, KWOK) for every file;
          // files run one at a time against it, each test in namespaces of its own.
          globalSetup: ['test/setup/dynamodb.ts', 'test/setup/elasticmq.ts', 'test/setup/controlplane.ts'],
          fileParallelism: false,
          // After unit, integration and infra (group 0), before airflow (group 2).
          sequence: { groupOrder: 1 },
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'infra',
          include: ['test/infra/**/*.test.ts'],
          // CDK synthesis (and esbuild bundling, in one file) is CPU-bound on a shared machine.
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
      {
        test: {
          name: 'airflow',
          include: ['test/airflow/**/*.test.ts'],
          // podwarden-airflow's pytest suite with the real Airflow and provider; its scenarios start
          // their own control plane (test/airflow/ground.ts). It runs after every other tier, so its
          // timings do not share the two cores with them.
          sequence: { groupOrder: 2 },
          hookTimeout: 45 * 60_000,
        },
      },
    ],
  },
});
