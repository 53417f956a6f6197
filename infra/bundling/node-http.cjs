// node:http without the ESM facade: an ESM import of a built-in syncs every export, and node:http's
// lazy ones (WebSocket, MessageEvent, ...) load Node's own copy of undici, ~20 ms of a cold start.
// The handler bundles alias `http` and `node:http` to this file (infra/bundling/options.ts).
module.exports = process.getBuiltinModule('node:http');
