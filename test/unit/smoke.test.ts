import { describe, expect, it } from 'vitest';

describe('runtime', () => {
  it('runs the tests on Node.js 24, the Lambda runtime', () => {
    expect(process.versions.node.split('.')[0]).toBe('24');
  });
});
