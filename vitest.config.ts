import { defineConfig } from 'vitest/config';

// One project per test tier; `npm test` runs them all. Tiers that need a real engine start it in
// their globalSetup (DynamoDB Local, the local Kubernetes control plane) on free loopback ports.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
        },
      },
    ],
  },
});
