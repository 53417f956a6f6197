/**
 * Options every AWS SDK client of the functions is built with.
 *
 * `cacheMiddleware`: the client resolves its middleware stack once per command type instead of on
 * every request. A reaper pass over 10,000 pods sends thousands of DynamoDB requests, and resolving
 * the stack each time was about a tenth of the SDK's CPU in them (`npm run bench -- scale`, worker
 * profiled). The price: middleware added after a client's first request is not used, and nothing
 * here adds any.
 */
export const AWS_CLIENT_OPTIONS = { cacheMiddleware: true } as const;
